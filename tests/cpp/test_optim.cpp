// loom::optim from C++: hand-computed first steps, minimising a quadratic, clipping, and the fused ops' errors.
#include <gtest/gtest.h>

#include <cmath>

#include "loom/loom.h"

namespace {

using loom::Tensor;

Tensor param(std::vector<float> values) {
  Tensor t = loom::from_blob_copy(values.data(), {static_cast<int64_t>(values.size())}, loom::DType::Float32);
  t.set_requires_grad(true);
  return t;
}

// loss = sum((x - target)^2) / 2, so grad = x - target.
Tensor quadratic(const Tensor& x, const Tensor& target) {
  Tensor d = loom::sub(x, target);
  return loom::mul(loom::sum(loom::mul(d, d)), loom::Scalar(0.5));
}

}  // namespace

TEST(Optim, SGDFirstStepMatchesHandComputation) {
  Tensor x = param({1.0f, -2.0f});
  loom::optim::SGD opt({x}, {.lr = 0.1, .momentum = 0.9, .weight_decay = 0.01, .nesterov = true});
  x.set_grad(loom::from_blob_copy(std::vector<float>{0.5f, 1.0f}.data(), {2}, loom::DType::Float32));
  opt.step();
  // g = grad + wd * x; buf = g (first step); nesterov: g + momentum * buf; x -= lr * that.
  for (int i = 0; i < 2; ++i) {
    float x0 = i == 0 ? 1.0f : -2.0f, grad = i == 0 ? 0.5f : 1.0f;
    float g = grad + 0.01f * x0;
    float expected = x0 - 0.1f * (g + 0.9f * g);
    EXPECT_NEAR(x.data<float>()[i], expected, 1e-6f);
    EXPECT_NEAR(opt.momentum_buffer(x).data<float>()[i], g, 1e-7f);
  }
}

TEST(Optim, AdamWFirstStepMatchesHandComputation) {
  Tensor x = param({1.0f, -2.0f, 3.0f});
  loom::optim::AdamW opt({x}, {.lr = 0.01, .weight_decay = 0.1});
  std::vector<float> grad = {0.5f, -1.0f, 0.0f};
  x.set_grad(loom::from_blob_copy(grad.data(), {3}, loom::DType::Float32));
  opt.step();
  std::vector<double> x0 = {1.0, -2.0, 3.0};
  for (int i = 0; i < 3; ++i) {
    // Step 1: m = 0.1 g, v = 0.001 g^2, bias-corrected m/(1-0.9) = g, sqrt(v/(1-0.999)) = |g|.
    double decayed = x0[i] * (1 - 0.01 * 0.1);
    double expected = decayed - 0.01 * grad[i] / (std::abs(grad[i]) + 1e-8);
    EXPECT_NEAR(x.data<float>()[i], expected, 1e-6);
  }
  const loom::optim::AdamState* state = opt.state(x);
  ASSERT_NE(state, nullptr);
  EXPECT_EQ(state->step.item().to_double(), 1.0);
  EXPECT_NEAR(state->exp_avg.data<float>()[1], -0.1f, 1e-7f);
  EXPECT_NEAR(state->exp_avg_sq.data<float>()[1], 0.001f, 1e-8f);
}

TEST(Optim, SGDAndAdamWMinimiseAQuadratic) {
  Tensor target = loom::from_blob_copy(std::vector<float>{3.0f, -1.0f, 0.5f}.data(), {3}, loom::DType::Float32);
  Tensor a = param({0.0f, 0.0f, 0.0f});
  Tensor b = param({0.0f, 0.0f, 0.0f});
  loom::optim::SGD sgd({a}, {.lr = 0.1, .momentum = 0.9});
  loom::optim::AdamW adamw({b}, {.lr = 0.05, .weight_decay = 0.0});
  for (int step = 0; step < 300; ++step) {
    sgd.zero_grad();
    quadratic(a, target).backward();
    sgd.step();
    adamw.zero_grad();
    quadratic(b, target).backward();
    adamw.step();
  }
  EXPECT_LT(quadratic(a, target).item().to_double(), 1e-6);
  EXPECT_LT(quadratic(b, target).item().to_double(), 1e-3);
}

TEST(Optim, ZeroGradAndSkipsParamsWithoutGrad) {
  Tensor a = param({1.0f});
  Tensor b = param({2.0f});
  loom::optim::Adam opt({a, b}, {.lr = 0.1});
  a.set_grad(loom::ones({1}));
  opt.step();
  EXPECT_NE(a.data<float>()[0], 1.0f);
  EXPECT_EQ(b.data<float>()[0], 2.0f);  // no grad: untouched, no state
  EXPECT_EQ(opt.state(b), nullptr);
  opt.zero_grad(false);
  ASSERT_TRUE(a.grad().defined());
  EXPECT_EQ(a.grad().data<float>()[0], 0.0f);
  opt.zero_grad();
  EXPECT_FALSE(a.grad().defined());
}

TEST(Optim, ParamGroupsAndLearningRates) {
  Tensor a = param({1.0f});
  Tensor b = param({1.0f});
  loom::optim::SGD opt({a}, {.lr = 0.1});
  opt.add_param_group({b}, {.lr = 0.5});
  EXPECT_EQ(opt.num_param_groups(), 2u);
  opt.set_lr(0, 0.2);
  a.set_grad(loom::ones({1}));
  b.set_grad(loom::ones({1}));
  opt.step();
  EXPECT_NEAR(a.data<float>()[0], 0.8f, 1e-7f);
  EXPECT_NEAR(b.data<float>()[0], 0.5f, 1e-7f);
  EXPECT_THROW(opt.add_param_group({a}), loom::Error);  // already in a group
}

TEST(Optim, InvalidOptionsRaise) {
  Tensor a = param({1.0f});
  EXPECT_THROW(loom::optim::SGD({a}, {.lr = -1.0}), loom::Error);
  EXPECT_THROW(loom::optim::SGD({a}, {.lr = 0.1, .nesterov = true}), loom::Error);
  EXPECT_THROW(loom::optim::AdamW({a}, {.betas = {1.0, 0.999}}), loom::Error);
}

TEST(Optim, RestoredStateContinuesLikeAnUninterruptedRun) {
  auto grad_at = [](int step) {
    std::vector<float> g = {0.3f * step - 1.0f, 0.5f, -0.2f * step};
    return loom::from_blob_copy(g.data(), {3}, loom::DType::Float32);
  };
  Tensor full = param({1.0f, 2.0f, 3.0f});
  loom::optim::AdamW full_opt({full}, {.lr = 0.1, .amsgrad = true});
  Tensor first = param({1.0f, 2.0f, 3.0f});
  loom::optim::AdamW first_opt({first}, {.lr = 0.1, .amsgrad = true});
  Tensor sgd_full = param({1.0f, 2.0f, 3.0f});
  loom::optim::SGD sgd_full_opt({sgd_full}, {.lr = 0.1, .momentum = 0.9});
  Tensor sgd_first = param({1.0f, 2.0f, 3.0f});
  loom::optim::SGD sgd_first_opt({sgd_first}, {.lr = 0.1, .momentum = 0.9});
  for (int step = 0; step < 10; ++step) {
    for (auto* p : {&full, &sgd_full}) p->set_grad(grad_at(step));
    full_opt.step();
    sgd_full_opt.step();
    if (step < 5) {
      for (auto* p : {&first, &sgd_first}) p->set_grad(grad_at(step));
      first_opt.step();
      sgd_first_opt.step();
    }
  }
  Tensor resumed = loom::clone(first.detach());
  resumed.set_requires_grad(true);
  loom::optim::AdamW resumed_opt({resumed}, {.lr = 0.1, .amsgrad = true});
  resumed_opt.set_state(resumed, *first_opt.state(first));
  Tensor sgd_resumed = loom::clone(sgd_first.detach());
  sgd_resumed.set_requires_grad(true);
  loom::optim::SGD sgd_resumed_opt({sgd_resumed}, {.lr = 0.1, .momentum = 0.9});
  sgd_resumed_opt.set_momentum_buffer(sgd_resumed, sgd_first_opt.momentum_buffer(sgd_first));
  for (int step = 5; step < 10; ++step) {
    for (auto* p : {&resumed, &sgd_resumed}) p->set_grad(grad_at(step));
    resumed_opt.step();
    sgd_resumed_opt.step();
  }
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(resumed.data<float>()[i], full.data<float>()[i]);
    EXPECT_EQ(sgd_resumed.data<float>()[i], sgd_full.data<float>()[i]);
  }
  EXPECT_EQ(resumed_opt.state(resumed)->step.item().to_double(), 10.0);
  EXPECT_THROW(resumed_opt.set_state(full, *full_opt.state(full)), loom::Error);  // not its parameter
}

TEST(Optim, ClipGradNorm) {
  Tensor a = param({0.0f, 0.0f});
  Tensor b = param({0.0f});
  a.set_grad(loom::from_blob_copy(std::vector<float>{3.0f, 0.0f}.data(), {2}, loom::DType::Float32));
  b.set_grad(loom::from_blob_copy(std::vector<float>{4.0f}.data(), {1}, loom::DType::Float32));
  Tensor total = loom::optim::clip_grad_norm_({a, b}, 1.0);
  EXPECT_NEAR(total.item().to_double(), 5.0, 1e-6);
  EXPECT_NEAR(a.grad().data<float>()[0], 3.0f / (5.0f + 1e-6f), 1e-6f);
  EXPECT_NEAR(b.grad().data<float>()[0], 4.0f / (5.0f + 1e-6f), 1e-6f);
  loom::optim::clip_grad_value_({a, b}, 0.1);
  EXPECT_NEAR(b.grad().data<float>()[0], 0.1f, 1e-7f);
}

TEST(Optim, FusedOpsRejectMismatchedLists) {
  Tensor p = loom::zeros({3});
  Tensor g64 = loom::zeros({3}, loom::DType::Float64);
  Tensor g2 = loom::zeros({2});
  Tensor step = loom::zeros({});
  try {
    loom::optim::fused_adam_({p}, {g2}, {loom::zeros({3})}, {loom::zeros({3})}, {}, {step}, {}, true);
    FAIL() << "expected an error";
  } catch (const loom::Error& e) {
    EXPECT_NE(std::string(e.what()).find("_fused_adamw_: grads[0] has shape"), std::string::npos) << e.what();
  }
  EXPECT_THROW(loom::optim::fused_sgd_({p}, {g64}, {}, {}, {}), loom::Error);
  uint64_t v = p.version();
  loom::optim::fused_sgd_({p}, {loom::ones({3})}, {}, {}, {.lr = 1.0});
  EXPECT_GT(p.version(), v);
  EXPECT_EQ(p.data<float>()[0], -1.0f);
}
