// The C++ nn API (loom::nn): names and state dicts as PyTorch writes them, load_state_dict errors, layers equal
// to their functional ops, gradients (one checked by finite differences in float64), BatchNorm statistics,
// default initialisation bounds, and a tiny MLP that learns XOR.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "loom/loom.h"

namespace nn = loom::nn;
using loom::Scalar;
using loom::Tensor;

namespace {

std::vector<std::string> keys(const std::vector<std::pair<std::string, Tensor>>& entries) {
  std::vector<std::string> out;
  for (const auto& entry : entries) out.push_back(entry.first);
  return out;
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
  return loom::max(loom::abs(loom::to_dtype(a, loom::DType::Float64) - loom::to_dtype(b, loom::DType::Float64)))
      .item()
      .to_double();
}

double max_abs(const Tensor& a) { return loom::max(loom::abs(a)).item().to_double(); }

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const loom::Error& e) {
    return e.what();
  }
  return "";
}

// Module with a ModuleList and a norm: the nesting of the PyTorch reference below.
struct Block : nn::Module {
  std::shared_ptr<nn::ModuleList> layers;
  std::shared_ptr<nn::LayerNorm> norm;
  Block() : Module("Block") {
    layers = register_module("layers", std::make_shared<nn::ModuleList>(std::make_shared<nn::Linear>(4, 8),
                                                                          std::make_shared<nn::ReLU>(),
                                                                          std::make_shared<nn::Linear>(8, 4)));
    norm = register_module("norm", std::make_shared<nn::LayerNorm>(loom::Shape{4}));
  }
  Tensor forward(const Tensor& x) override {
    Tensor h = x;
    for (const auto& m : *layers) h = m->forward(h);
    return norm->forward(h);
  }
};

// torch: nn.Sequential(nn.Linear(3, 4), Block(), nn.Sequential(nn.BatchNorm1d(4), nn.Conv1d(4, 2, 3, bias=False)))
std::shared_ptr<nn::Sequential> nested_model() {
  return std::make_shared<nn::Sequential>(
      std::make_shared<nn::Linear>(3, 4), std::make_shared<Block>(),
      std::make_shared<nn::Sequential>(std::make_shared<nn::BatchNorm1d>(4),
                                       std::make_shared<nn::Conv1d>(4, 2, 3, nn::Conv1dOptions{.bias = false})));
}

}  // namespace

// ---------------- names ----------------

TEST(NNModule, NamesMatchPyTorch) {
  auto model = nested_model();
  // Printed by PyTorch 2.13 for the same structure.
  std::vector<std::string> params = {"0.weight",          "0.bias",        "1.layers.0.weight", "1.layers.0.bias",
                                     "1.layers.2.weight", "1.layers.2.bias", "1.norm.weight",   "1.norm.bias",
                                     "2.0.weight",        "2.0.bias",      "2.1.weight"};
  std::vector<std::string> state = {"0.weight",          "0.bias",
                                    "1.layers.0.weight", "1.layers.0.bias",
                                    "1.layers.2.weight", "1.layers.2.bias",
                                    "1.norm.weight",     "1.norm.bias",
                                    "2.0.weight",        "2.0.bias",
                                    "2.0.running_mean",  "2.0.running_var",
                                    "2.0.num_batches_tracked", "2.1.weight"};
  std::vector<std::string> buffers = {"2.0.running_mean", "2.0.running_var", "2.0.num_batches_tracked"};
  std::vector<std::string> modules = {"",           "0",          "1",      "1.layers", "1.layers.0", "1.layers.1",
                                      "1.layers.2", "1.norm",     "2",      "2.0",      "2.1"};
  EXPECT_EQ(keys(model->named_parameters()), params);
  EXPECT_EQ(keys(model->state_dict()), state);
  EXPECT_EQ(keys(model->named_buffers()), buffers);
  std::vector<std::string> module_names;
  for (const auto& entry : model->named_modules()) module_names.push_back(entry.first);
  EXPECT_EQ(module_names, modules);
  EXPECT_EQ(model->parameters().size(), params.size());
  EXPECT_EQ(keys(model->named_parameters(/*recurse=*/false)).size(), 0u);
  EXPECT_EQ(model->children().size(), 3u);
  // Parameters are the modules' own tensors, reachable by dotted name.
  auto block = std::dynamic_pointer_cast<Block>((*model)[1]);
  ASSERT_TRUE(block);
  EXPECT_TRUE(model->parameter("1.layers.2.bias").is_same(block->layers->at<nn::Linear>(2)->bias));
  EXPECT_TRUE(model->child("1.norm") == block->norm);
  EXPECT_EQ(model->buffer("2.0.num_batches_tracked").dtype(), loom::DType::Int64);
  EXPECT_NE(error_of([&] { model->parameter("1.layers.7.weight"); }).find("no submodule \"7\""), std::string::npos);
  // Shapes follow PyTorch's layouts.
  EXPECT_EQ(model->parameter("1.layers.0.weight").sizes(), (loom::Shape{8, 4}));
  EXPECT_EQ(model->parameter("2.1.weight").sizes(), (loom::Shape{2, 4, 3}));
}

TEST(NNModule, ReprLikePyTorch) {
  auto model =
      std::make_shared<nn::Sequential>(std::make_shared<nn::Linear>(3, 4), std::make_shared<nn::ReLU>(),
                                       std::make_shared<nn::Conv1d>(4, 2, 3, nn::Conv1dOptions{.bias = false}));
  EXPECT_EQ(model->str(),
            "Sequential(\n  (0): Linear(in_features=3, out_features=4, bias=True)\n  (1): ReLU()\n"
            "  (2): Conv1d(4, 2, kernel_size=(3,), stride=(1,), bias=False)\n)");
}

TEST(NNModule, SharedParametersListedOnceButStateDictHasBoth) {
  auto shared = std::make_shared<nn::Linear>(2, 2);
  auto model = std::make_shared<nn::Sequential>(shared, std::make_shared<nn::Tanh>(), shared);
  EXPECT_EQ(keys(model->named_parameters()), (std::vector<std::string>{"0.weight", "0.bias"}));
  EXPECT_EQ(keys(model->state_dict()), (std::vector<std::string>{"0.weight", "0.bias", "2.weight", "2.bias"}));
  EXPECT_EQ(model->modules().size(), 3u);  // the Sequential, the Linear once, the Tanh
}

TEST(NNModule, RegistrationErrors) {
  nn::Module m("Custom");
  m.register_parameter("w", loom::ones({2}));
  EXPECT_NE(error_of([&] { m.register_buffer("w", loom::ones({2})); }).find("already a parameter"), std::string::npos);
  EXPECT_NE(error_of([&] { m.register_parameter("a.b", loom::ones({2})); }).find("must not contain"),
            std::string::npos);
  EXPECT_NE(error_of([&] { m.register_parameter("i", loom::ones({2}, loom::DType::Int64)); }).find("int64"),
            std::string::npos);
  EXPECT_NE(error_of([&] { m.forward(loom::ones({1})); }).find("Custom.forward"), std::string::npos);
  // A stack-allocated module still reports itself in modules().
  EXPECT_EQ(m.modules().size(), 1u);
  EXPECT_EQ(keys(m.named_parameters()), (std::vector<std::string>{"w"}));
  EXPECT_TRUE(m.parameter("w").requires_grad());
}

// ---------------- state dicts ----------------

TEST(NNModule, LoadStateDictCopiesValuesAndConverts) {
  loom::manual_seed(1);
  auto a = nested_model();
  auto b = nested_model();
  EXPECT_GT(max_abs_diff(a->parameter("0.weight"), b->parameter("0.weight")), 0.0);
  Tensor before = b->parameter("0.weight");
  // Float64 values convert into the float32 parameters.
  nn::StateDict state;
  for (const auto& [key, t] : a->state_dict())
    state.emplace_back(key, loom::is_floating(t.dtype()) ? loom::to_dtype(t, loom::DType::Float64) : t);
  auto result = b->load_state_dict(state);
  EXPECT_TRUE(result.missing_keys.empty());
  EXPECT_TRUE(result.unexpected_keys.empty());
  nn::StateDict sa = a->state_dict(), sb = b->state_dict();
  ASSERT_EQ(sa.size(), sb.size());
  for (size_t i = 0; i < sa.size(); ++i) EXPECT_EQ(max_abs_diff(sa[i].second, sb[i].second), 0.0) << sa[i].first;
  EXPECT_EQ(max_abs_diff(a->parameter("1.layers.2.weight"), b->parameter("1.layers.2.weight")), 0.0);
  EXPECT_TRUE(b->parameter("0.weight").is_same(before));  // copied in place: handles stay valid
  EXPECT_EQ(b->parameter("0.weight").dtype(), loom::DType::Float32);
  EXPECT_TRUE(b->parameter("0.weight").requires_grad());
}

TEST(NNModule, LoadStateDictStrictErrorsNameKeys) {
  auto model = nested_model();
  nn::StateDict state = model->state_dict();
  Tensor original = loom::clone(model->parameter("0.bias"));

  // Missing and unexpected keys.
  nn::StateDict partial(state.begin() + 2, state.end());
  partial.emplace_back("extra.weight", loom::ones({1}));
  partial.emplace_back("0.bias", loom::zeros({4}));  // would be copied if the load went through
  std::string message = error_of([&] { model->load_state_dict(partial); });
  EXPECT_NE(message.find("Error(s) in loading state_dict for Sequential"), std::string::npos) << message;
  EXPECT_NE(message.find("Missing key(s) in state_dict: \"0.weight\"."), std::string::npos) << message;
  EXPECT_NE(message.find("Unexpected key(s) in state_dict: \"extra.weight\"."), std::string::npos) << message;
  EXPECT_EQ(max_abs_diff(model->parameter("0.bias"), original), 0.0);  // nothing copied on error

  // Non-strict: the keys are returned and the rest is loaded.
  auto result = model->load_state_dict(partial, /*strict=*/false);
  EXPECT_EQ(result.missing_keys, (std::vector<std::string>{"0.weight"}));
  EXPECT_EQ(result.unexpected_keys, (std::vector<std::string>{"extra.weight"}));
  EXPECT_EQ(max_abs(model->parameter("0.bias")), 0.0);

  // A shape mismatch raises even when not strict, naming the key and both shapes.
  nn::StateDict wrong = state;
  wrong[2].second = loom::zeros({3, 3});
  message = error_of([&] { model->load_state_dict(wrong, /*strict=*/false); });
  EXPECT_NE(message.find("size mismatch for 1.layers.0.weight: copying a param with shape (3, 3) from checkpoint, "
                         "the shape in current model is (8, 4)"),
            std::string::npos)
      << message;
}

// ---------------- layers against the functional ops ----------------

TEST(NNLayers, LinearEqualsFunctionalAndLoops) {
  auto fc = std::make_shared<nn::Linear>(5, 3);
  Tensor x = loom::randn({4, 5});
  Tensor y = fc->forward(x);
  EXPECT_EQ(max_abs_diff(y, loom::linear(x, fc->weight, fc->bias)), 0.0);
  // Independent reference: y[n][o] = sum_i x[n][i] W[o][i] + b[o].
  const float* xs = x.data<float>();
  const float* w = fc->weight.data<float>();
  const float* b = fc->bias.data<float>();
  for (int n = 0; n < 4; ++n)
    for (int o = 0; o < 3; ++o) {
      double expected = b[o];
      for (int i = 0; i < 5; ++i) expected += double(xs[n * 5 + i]) * w[o * 5 + i];
      EXPECT_NEAR(y.data<float>()[n * 3 + o], expected, 1e-5);
    }
  auto no_bias = std::make_shared<nn::Linear>(5, 3, /*bias=*/false);
  EXPECT_FALSE(no_bias->bias.defined());
  EXPECT_EQ(keys(no_bias->state_dict()), (std::vector<std::string>{"weight"}));
  EXPECT_NE(error_of([&] { fc->forward(loom::randn({4, 6})); }), "");
}

TEST(NNLayers, Conv2dEqualsFunctional) {
  auto conv = std::make_shared<nn::Conv2d>(4, 6, nn::IntArg{3, 2},
                                           nn::Conv2dOptions{.stride = 2, .padding = {1, 0}, .groups = 2});
  EXPECT_EQ(conv->weight.sizes(), (loom::Shape{6, 2, 3, 2}));
  EXPECT_EQ(conv->bias.sizes(), (loom::Shape{6}));
  Tensor x = loom::randn({2, 4, 7, 6});
  Tensor expected = loom::conv2d(x, conv->weight, conv->bias, {2, 2}, loom::ConvPadding{{1, 0}, ""}, {1, 1}, 2);
  EXPECT_EQ(max_abs_diff(conv->forward(x), expected), 0.0);
  auto same = std::make_shared<nn::Conv2d>(3, 5, 3, nn::Conv2dOptions{.padding = "same", .bias = false});
  EXPECT_EQ(same->forward(loom::randn({1, 3, 8, 9})).sizes(), (loom::Shape{1, 5, 8, 9}));
  EXPECT_NE(error_of([] { nn::Conv2d(3, 4, 3, nn::Conv2dOptions{.groups = 2}); }).find("divisible by groups"),
            std::string::npos);
  auto conv1 = std::make_shared<nn::Conv1d>(3, 4, 5, nn::Conv1dOptions{.padding = 2});
  Tensor s = loom::randn({2, 3, 10});
  EXPECT_EQ(max_abs_diff(conv1->forward(s), loom::conv1d(s, conv1->weight, conv1->bias, 1, loom::ConvPadding{{2}, ""})),
            0.0);
}

TEST(NNLayers, NormsEqualFunctional) {
  Tensor x = loom::randn({3, 4, 5, 5});
  auto ln = std::make_shared<nn::LayerNorm>(loom::Shape{5, 5}, nn::LayerNormOptions{.eps = 1e-3});
  loom::nn::init::normal_(ln->weight);
  loom::nn::init::normal_(ln->bias);
  EXPECT_EQ(max_abs_diff(ln->forward(x), loom::layer_norm(x, {5, 5}, ln->weight, ln->bias, 1e-3)), 0.0);

  auto bn = std::make_shared<nn::BatchNorm2d>(4);
  loom::nn::init::normal_(bn->weight);
  Tensor rm = loom::zeros({4}), rv = loom::ones({4});
  EXPECT_EQ(max_abs_diff(bn->forward(x), loom::batch_norm(x, rm, rv, bn->weight, bn->bias, true, 0.1, 1e-5)), 0.0);
  EXPECT_EQ(max_abs_diff(bn->running_mean, rm), 0.0);
  EXPECT_EQ(max_abs_diff(bn->running_var, rv), 0.0);

  auto gn = std::make_shared<nn::GroupNorm>(2, 4);
  EXPECT_EQ(max_abs_diff(gn->forward(x), loom::group_norm(x, 2, gn->weight, gn->bias)), 0.0);
  auto rms = std::make_shared<nn::RMSNorm>(loom::Shape{5});
  EXPECT_EQ(max_abs_diff(rms->forward(x), loom::rms_norm(x, {5}, rms->weight)), 0.0);
  EXPECT_NE(error_of([] { nn::GroupNorm(3, 4); }).find("divisible by num_groups"), std::string::npos);
  EXPECT_NE(error_of([&] { bn->forward(loom::randn({3, 4})); }).find("expected 4D input"), std::string::npos);
}

TEST(NNLayers, EmbeddingDropoutActivationsPooling) {
  auto emb = std::make_shared<nn::Embedding>(10, 3, -1);
  EXPECT_EQ(*emb->padding_idx, 9);
  EXPECT_EQ(max_abs(loom::select(emb->weight, 0, 9)), 0.0);
  Tensor idx = loom::from_blob_copy(std::vector<int64_t>{1, 9, 4, 1}.data(), {2, 2}, loom::DType::Int64);
  Tensor e = emb->forward(idx);
  EXPECT_EQ(e.sizes(), (loom::Shape{2, 2, 3}));
  loom::sum(e).backward();
  EXPECT_EQ(loom::select(emb->weight.grad(), 0, 1).data<float>()[0], 2.0f);  // row 1 used twice
  EXPECT_EQ(max_abs(loom::select(emb->weight.grad(), 0, 9)), 0.0);          // padding row gets no gradient

  auto drop = std::make_shared<nn::Dropout>(0.5);
  Tensor x = loom::ones({1000});
  Tensor dropped = drop->forward(x);
  double zeros = loom::sum(loom::eq(dropped, Scalar(0.0))).item().to_double();
  EXPECT_GT(zeros, 400);
  EXPECT_LT(zeros, 600);
  EXPECT_EQ(max_abs(dropped), 2.0);
  drop->eval();
  EXPECT_TRUE(drop->forward(x).is_same(x));
  EXPECT_NE(error_of([] { nn::Dropout(1.5); }).find("between 0 and 1"), std::string::npos);

  Tensor z = loom::randn({2, 3, 6, 6});
  EXPECT_EQ(max_abs_diff(nn::ReLU().forward(z), loom::relu(z)), 0.0);
  EXPECT_EQ(max_abs_diff(nn::GELU("tanh").forward(z), loom::gelu(z, "tanh")), 0.0);
  EXPECT_EQ(max_abs_diff(nn::SiLU().forward(z), loom::silu(z)), 0.0);
  EXPECT_EQ(max_abs_diff(nn::Sigmoid().forward(z), loom::sigmoid(z)), 0.0);
  EXPECT_EQ(max_abs_diff(nn::Tanh().forward(z), loom::tanh(z)), 0.0);
  EXPECT_EQ(nn::Flatten().forward(z).sizes(), (loom::Shape{2, 108}));
  EXPECT_EQ(max_abs_diff(nn::MaxPool2d(2).forward(z), loom::max_pool2d(z, {2, 2})), 0.0);
  EXPECT_EQ(nn::MaxPool2d(3, {.stride = 1, .padding = 1}).forward(z).sizes(), (loom::Shape{2, 3, 6, 6}));
  EXPECT_EQ(max_abs_diff(nn::AvgPool2d(2).forward(z), loom::avg_pool2d(z, {2, 2})), 0.0);
  EXPECT_EQ(nn::AdaptiveAvgPool2d({1, 1}).forward(z).sizes(), (loom::Shape{2, 3, 1, 1}));
}

// ---------------- autograd ----------------

TEST(NNAutograd, EveryParameterGetsAGradAndOneMatchesFiniteDifferences) {
  loom::manual_seed(3);
  auto model = std::make_shared<nn::Sequential>(
      std::make_shared<nn::Conv2d>(2, 3, 3, nn::Conv2dOptions{.padding = 1}), std::make_shared<nn::BatchNorm2d>(3),
      std::make_shared<nn::GELU>(), std::make_shared<nn::MaxPool2d>(2), std::make_shared<nn::Flatten>(),
      std::make_shared<nn::Linear>(12, 5), std::make_shared<nn::LayerNorm>(loom::Shape{5}),
      std::make_shared<nn::Tanh>(), std::make_shared<nn::Linear>(5, 2));
  model->to(loom::DType::Float64);
  for (const auto& [name, p] : model->named_parameters()) EXPECT_EQ(p.dtype(), loom::DType::Float64) << name;
  EXPECT_EQ(model->buffer("1.running_mean").dtype(), loom::DType::Float64);
  EXPECT_EQ(model->buffer("1.num_batches_tracked").dtype(), loom::DType::Int64);  // not floating: unchanged

  Tensor x = loom::randn({4, 2, 4, 4}, loom::DType::Float64);
  Tensor target = loom::randn({4, 2}, loom::DType::Float64);
  auto loss_fn = [&] { return loom::mse_loss(model->forward(x), target); };
  Tensor loss = loss_fn();
  loss.backward();
  for (const auto& [name, p] : model->named_parameters()) {
    ASSERT_TRUE(p.grad().defined()) << name;
    EXPECT_EQ(p.grad().sizes(), p.sizes()) << name;
    EXPECT_GT(max_abs(p.grad()), 0.0) << name;
  }
  // Central differences on a few conv weights (BatchNorm in training mode: the output ignores running stats).
  Tensor w = model->parameter("0.weight");
  double* data = w.data<double>();
  const double* grad = w.grad().data<double>();
  const double h = 1e-6;
  for (int i : {0, 7, 20, 53}) {
    double saved = data[i];
    data[i] = saved + h;
    double plus = loss_fn().item().to_double();
    data[i] = saved - h;
    double minus = loss_fn().item().to_double();
    data[i] = saved;
    EXPECT_NEAR(grad[i], (plus - minus) / (2 * h), 1e-7 + 1e-5 * std::fabs(grad[i])) << "0.weight[" << i << "]";
  }
  model->zero_grad();
  for (const Tensor& p : model->parameters()) EXPECT_FALSE(p.grad().defined());
  loss_fn().backward();
  model->zero_grad(/*set_to_none=*/false);
  for (const Tensor& p : model->parameters()) EXPECT_EQ(max_abs(p.grad()), 0.0);
}

// ---------------- BatchNorm statistics ----------------

TEST(NNLayers, BatchNormRunningStatsAndEvalMode) {
  auto bn = std::make_shared<nn::BatchNorm2d>(3);
  Tensor x = loom::add(loom::mul(loom::randn({8, 3, 4, 4}), Scalar(2.0)), Scalar(1.5));
  Tensor mean = loom::mean(x, {0, 2, 3});
  Tensor var = loom::var(x, {0, 2, 3});  // unbiased, as the running estimate uses
  bn->forward(x);
  EXPECT_LT(max_abs_diff(bn->running_mean, loom::mul(mean, Scalar(0.1))), 1e-6);
  EXPECT_LT(max_abs_diff(bn->running_var, loom::add(loom::mul(var, Scalar(0.1)), Scalar(0.9))), 1e-6);
  EXPECT_EQ(bn->num_batches_tracked.item().to_double(), 1.0);

  // Eval: running statistics normalise, and they do not change.
  bn->eval();
  EXPECT_FALSE(bn->is_training());
  Tensor rm = loom::clone(bn->running_mean), rv = loom::clone(bn->running_var);
  Tensor y = bn->forward(x);
  Tensor expected = loom::div(loom::sub(x, loom::reshape(rm, {1, 3, 1, 1})),
                              loom::sqrt(loom::add(loom::reshape(rv, {1, 3, 1, 1}), Scalar(1e-5))));
  EXPECT_LT(max_abs_diff(y, expected), 1e-5);
  EXPECT_EQ(max_abs_diff(bn->running_mean, rm), 0.0);
  EXPECT_EQ(bn->num_batches_tracked.item().to_double(), 1.0);

  // momentum = nullopt: the cumulative average of the batch statistics.
  auto cumulative = std::make_shared<nn::BatchNorm1d>(2, nn::BatchNormOptions{.momentum = std::nullopt});
  Tensor a = loom::randn({16, 2}), b = loom::add(loom::randn({16, 2}), Scalar(3.0));
  cumulative->forward(a);
  cumulative->forward(b);
  Tensor average = loom::mul(loom::add(loom::mean(a, {0}), loom::mean(b, {0})), Scalar(0.5));
  EXPECT_LT(max_abs_diff(cumulative->running_mean, average), 1e-6);
  EXPECT_EQ(cumulative->num_batches_tracked.item().to_double(), 2.0);

  // train()/eval() reach nested modules.
  auto model = std::make_shared<nn::Sequential>(std::make_shared<nn::Sequential>(bn));
  model->train();
  EXPECT_TRUE(bn->is_training());
  model->eval();
  EXPECT_FALSE(bn->is_training());
}

// ---------------- initialisation ----------------

TEST(NNInit, DefaultBoundsMatchPyTorch) {
  auto fc = std::make_shared<nn::Linear>(400, 300);
  double bound = 1.0 / std::sqrt(400.0);
  EXPECT_LE(max_abs(fc->weight), bound);
  EXPECT_GT(max_abs(fc->weight), 0.98 * bound);  // 120k draws reach the edge of U(-k, k)
  EXPECT_LE(max_abs(fc->bias), bound);
  EXPECT_GT(max_abs(fc->bias), 0.9 * bound);
  // U(-k, k) has std k / sqrt(3).
  EXPECT_NEAR(loom::std(fc->weight).item().to_double(), bound / std::sqrt(3.0), 0.01 * bound);

  auto conv = std::make_shared<nn::Conv2d>(8, 16, 3);
  double conv_bound = 1.0 / std::sqrt(8.0 * 9.0);
  EXPECT_LE(max_abs(conv->weight), conv_bound);
  EXPECT_GT(max_abs(conv->weight), 0.95 * conv_bound);
  EXPECT_LE(max_abs(conv->bias), conv_bound);

  Tensor w = loom::empty({500, 200});
  nn::init::kaiming_uniform_(w, 0.0, "fan_in", "relu");
  EXPECT_LE(max_abs(w), std::sqrt(6.0 / 200.0));
  EXPECT_GT(max_abs(w), 0.99 * std::sqrt(6.0 / 200.0));
  nn::init::kaiming_normal_(w, 0.0, "fan_out", "relu");
  EXPECT_NEAR(loom::std(w).item().to_double(), std::sqrt(2.0 / 500.0), 0.01 * std::sqrt(2.0 / 500.0));
  nn::init::xavier_uniform_(w);
  EXPECT_LE(max_abs(w), std::sqrt(6.0 / 700.0));
  nn::init::xavier_normal_(w, 2.0);
  EXPECT_NEAR(loom::std(w).item().to_double(), 2.0 * std::sqrt(2.0 / 700.0), 0.02 * std::sqrt(2.0 / 700.0));
  nn::init::constant_(w, 0.25);
  EXPECT_EQ(loom::min(w).item().to_double(), 0.25);
  EXPECT_NEAR(nn::init::calculate_gain("leaky_relu", 0.2), std::sqrt(2.0 / 1.04), 1e-12);
  EXPECT_EQ(nn::init::calculate_fan_in_and_fan_out(conv->weight), (std::pair<int64_t, int64_t>{72, 144}));
  Tensor v = loom::empty({3});
  EXPECT_NE(error_of([&] { nn::init::xavier_uniform_(v); }).find("fewer than 2 dimensions"), std::string::npos);
  EXPECT_NE(error_of([&] { nn::init::calculate_gain("swish"); }).find("swish"), std::string::npos);

  // Initialisation follows the default generator.
  loom::manual_seed(42);
  Tensor first = loom::clone(nn::Linear(3, 3).weight);
  loom::manual_seed(42);
  EXPECT_EQ(max_abs_diff(nn::Linear(3, 3).weight, first), 0.0);
}

// ---------------- training ----------------

TEST(NNTraining, TinyMlpLearnsXor) {
  loom::manual_seed(0);
  auto model = std::make_shared<nn::Sequential>(std::make_shared<nn::Linear>(2, 16), std::make_shared<nn::Tanh>(),
                                                std::make_shared<nn::Linear>(16, 1));
  float xs[] = {0, 0, 0, 1, 1, 0, 1, 1};
  float ys[] = {0, 1, 1, 0};
  Tensor x = loom::from_blob_copy(xs, {4, 2}, loom::DType::Float32);
  Tensor y = loom::from_blob_copy(ys, {4, 1}, loom::DType::Float32);
  double first = 0, last = 0;
  for (int step = 0; step < 1000; ++step) {
    model->zero_grad();
    Tensor loss = loom::binary_cross_entropy_with_logits(model->forward(x), y);
    loss.backward();
    {
      loom::NoGradGuard no_grad;
      for (Tensor p : model->parameters()) loom::sub_(p, p.grad(), Scalar(0.5));  // plain SGD
    }
    if (step == 0) first = loss.item().to_double();
    last = loss.item().to_double();
  }
  EXPECT_GT(first, 0.5);
  EXPECT_LT(last, 0.02);
  model->eval();
  Tensor predicted = loom::gt(model->forward(x), Scalar(0.0));
  for (int i = 0; i < 4; ++i) EXPECT_EQ(predicted.data<bool>()[i], ys[i] == 1.0f) << i;
}

// ---------------- against PyTorch ----------------

// A small CNN loaded through a state dict with PyTorch's keys; the expected numbers were printed by PyTorch 2.13:
//   m = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.BatchNorm2d(3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
//                     nn.Linear(12, 4)).double(); m.load_state_dict(<the tensors below>)
//   loss = F.cross_entropy(m(x), tensor([1, 3])); loss.backward(); then m.eval(); m(x)
TEST(NNTorchReference, SmallCnnLossGradsRunningStatsAndEvalOutput) {
  using loom::DType;
  auto wave = [](int64_t n, double freq, double scale, loom::Shape shape, bool cosine = false) {
    Tensor t = loom::mul(loom::arange(Scalar(int64_t(0)), Scalar(n), Scalar(int64_t(1)), DType::Float64), Scalar(freq));
    return loom::reshape(loom::mul(cosine ? loom::cos(t) : loom::sin(t), Scalar(scale)), shape);
  };
  auto vec = [](std::vector<double> v) { return loom::from_blob_copy(v.data(), {int64_t(v.size())}, DType::Float64); };
  auto model = std::make_shared<nn::Sequential>(
      std::make_shared<nn::Conv2d>(2, 3, 3, nn::Conv2dOptions{.padding = 1}), std::make_shared<nn::BatchNorm2d>(3),
      std::make_shared<nn::ReLU>(), std::make_shared<nn::MaxPool2d>(2), std::make_shared<nn::Flatten>(),
      std::make_shared<nn::Linear>(12, 4));
  model->to(DType::Float64);
  nn::StateDict state = {{"0.weight", wave(54, 0.21, 0.3, {3, 2, 3, 3}, true)},
                         {"0.bias", vec({0.1, -0.2, 0.05})},
                         {"1.weight", vec({1.0, 0.5, 1.5})},
                         {"1.bias", vec({0.0, 0.1, -0.1})},
                         {"1.running_mean", loom::zeros({3}, DType::Float64)},
                         {"1.running_var", loom::ones({3}, DType::Float64)},
                         {"1.num_batches_tracked", loom::zeros({}, DType::Int64)},
                         {"5.weight", wave(48, 0.13, 0.2, {4, 12})},
                         {"5.bias", vec({0.01, 0.02, 0.03, 0.04})}};
  model->load_state_dict(state);
  Tensor x = wave(100, 0.37, 1.0, {2, 2, 5, 5});
  int64_t labels[] = {1, 3};
  Tensor target = loom::from_blob_copy(labels, {2}, DType::Int64);
  Tensor loss = loom::cross_entropy(model->forward(x), target);
  loss.backward();
  const double tol = 1e-12;
  EXPECT_NEAR(loss.item().to_double(), 2.2199376675461715, tol);
  auto grad = [&](const std::string& name) { return loom::contiguous(model->parameter(name).grad()); };
  auto expect_values = [&](const Tensor& t, std::vector<double> expected, const std::string& what) {
    for (size_t i = 0; i < expected.size(); ++i)
      EXPECT_NEAR(t.data<double>()[i], expected[i], tol) << what << "[" << i << "]";
  };
  expect_values(grad("0.weight"),
                {-0.04792049238076347, -0.026691034655356764, 0.009472256541050807, 0.05601611485195743},
                "0.weight.grad");
  EXPECT_NEAR(loom::sum(grad("0.weight")).item().to_double(), -0.06538508236708573, tol);
  EXPECT_LT(max_abs(grad("0.bias")), 1e-15);  // a bias before BatchNorm has no effect
  expect_values(grad("1.weight"), {0.16530001490190457, 0.564613218222037, 0.6242620300178393}, "1.weight.grad");
  expect_values(grad("1.bias"), {0.15645740428698704, 0.38027477652522773, 0.5137968289819161}, "1.bias.grad");
  expect_values(grad("5.weight"), {0.558130278277975, 0.8531974860884488, 0.0, 0.0}, "5.weight.grad");
  expect_values(grad("5.bias"), {0.568759064829824, -0.1162092148320395, 0.019619030587127193, -0.47216888058491163},
                "5.bias.grad");
  expect_values(model->buffer("1.running_mean"), {0.04378156913090935, -0.03740186839530453, -0.0008325721913532456},
                "running_mean");
  expect_values(model->buffer("1.running_var"), {0.9569967148205172, 0.9646600952349649, 0.9784947883688023},
                "running_var");
  model->eval();
  expect_values(loom::contiguous(model->forward(x)),
                {1.388786725788864, 1.2193104810151918, -1.3228909331043697, -1.1885224187769183, 1.4751312882916718,
                 1.1769004380358243, -1.4101512231840805, -1.1479965204100289},
                "eval logits");
}
