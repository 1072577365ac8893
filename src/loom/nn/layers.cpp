// loom::nn layers: parameter registration, PyTorch's default initialisation, forward through the functional ops.
#include "loom/nn/layers.h"

#include <cmath>
#include <sstream>

#include "loom/autograd/grad_mode.h"
#include "loom/core/error.h"
#include "loom/nn/init.h"
#include "loom/ops/creation.h"
#include "loom/ops/elementwise.h"
#include "loom/ops/index.h"
#include "loom/ops/linalg.h"
#include "loom/ops/nn.h"
#include "loom/ops/reduce.h"
#include "loom/ops/shape.h"

namespace loom::nn {

namespace {

std::string bool_str(bool value) { return value ? "True" : "False"; }

// "(3, 3)" for a spatial tuple, expanded to `n` entries.
std::string tuple_str(const std::vector<int64_t>& values) {
  std::ostringstream out;
  out << "(";
  for (size_t i = 0; i < values.size(); ++i) out << (i ? ", " : "") << values[i];
  if (values.size() == 1) out << ",";
  out << ")";
  return out.str();
}

// Pooling reprs print a single number when every dim agrees, as PyTorch does for an int argument.
std::string compact(const std::vector<int64_t>& v) {
  return v.size() == 1 || (v.size() == 2 && v[0] == v[1]) ? std::to_string(v[0]) : tuple_str(v);
}

// One value per spatial dim: a single value is repeated `n` times.
std::vector<int64_t> expand(const std::vector<int64_t>& values, size_t n, const std::string& layer, const char* what) {
  LOOM_CHECK(values.size() == 1 || values.size() == n, Value, layer, ": ", what, " must have 1 or ", n,
             " values, got ", values.size());
  if (values.size() == n) return values;
  return std::vector<int64_t>(n, values[0]);
}

void check_positive(int64_t value, const std::string& layer, const char* what) {
  LOOM_CHECK(value > 0, Value, layer, ": ", what, " must be positive, got ", value);
}

void check_non_negative(int64_t value, const std::string& layer, const char* what) {
  LOOM_CHECK(value >= 0, Value, layer, ": ", what, " must be non-negative, got ", value);
}

// torch's Linear/Conv reset_parameters: weight ~ kaiming_uniform(a = sqrt(5)), bias ~ U(-1/sqrt(fan_in), ..).
void reset_linear_like(Tensor& weight, Tensor& bias) {
  init::kaiming_uniform_(weight, std::sqrt(5.0));
  if (bias.defined()) {
    int64_t fan_in = init::calculate_fan_in_and_fan_out(weight).first;
    double bound = fan_in > 0 ? 1.0 / std::sqrt(static_cast<double>(fan_in)) : 0.0;
    init::uniform_(bias, -bound, bound);
  }
}

ConvPadding conv_padding(const PaddingArg& padding, size_t n, const std::string& layer) {
  if (!padding.mode.empty()) {
    LOOM_CHECK(padding.mode == "same" || padding.mode == "valid", Value, layer,
               ": padding must be a size, \"same\" or \"valid\", got \"", padding.mode, "\"");
    return ConvPadding{{0}, padding.mode};
  }
  std::vector<int64_t> sizes = expand(padding.sizes, n, layer, "padding");
  for (int64_t p : sizes) check_non_negative(p, layer, "padding");
  return ConvPadding{sizes, ""};
}

std::string padding_str(const PaddingArg& padding, size_t n) {
  if (!padding.mode.empty()) return "'" + padding.mode + "'";
  return tuple_str(padding.sizes.size() == n ? padding.sizes : std::vector<int64_t>(n, padding.sizes[0]));
}

void check_conv_channels(int64_t in_channels, int64_t out_channels, int64_t groups, const std::string& layer) {
  check_positive(groups, layer, "groups");
  check_non_negative(in_channels, layer, "in_channels");
  check_non_negative(out_channels, layer, "out_channels");
  LOOM_CHECK(in_channels % groups == 0, Value, layer, ": in_channels (", in_channels, ") must be divisible by groups (",
             groups, ")");
  LOOM_CHECK(out_channels % groups == 0, Value, layer, ": out_channels (", out_channels,
             ") must be divisible by groups (", groups, ")");
}

}  // namespace

// ================= Linear =================

Linear::Linear(int64_t in_features, int64_t out_features, bool with_bias)
    : Module("Linear"), in_features(in_features), out_features(out_features) {
  check_non_negative(in_features, "Linear", "in_features");
  check_non_negative(out_features, "Linear", "out_features");
  weight = register_parameter("weight", empty({out_features, in_features}));
  bias = register_parameter("bias", with_bias ? empty({out_features}) : Tensor());
  reset_parameters();
}

void Linear::reset_parameters() { reset_linear_like(weight, bias); }

Tensor Linear::forward(const Tensor& input) { return loom::linear(input, weight, bias); }

std::string Linear::extra_repr() const {
  std::ostringstream out;
  out << "in_features=" << in_features << ", out_features=" << out_features << ", bias=" << bool_str(bias.defined());
  return out.str();
}

// ================= Conv1d / Conv2d =================

Conv1d::Conv1d(int64_t in_channels, int64_t out_channels, int64_t kernel_size, Conv1dOptions options)
    : Module("Conv1d"), in_channels(in_channels), out_channels(out_channels), kernel_size(kernel_size),
      options(std::move(options)) {
  check_conv_channels(in_channels, out_channels, this->options.groups, "Conv1d");
  check_positive(kernel_size, "Conv1d", "kernel_size");
  check_positive(this->options.stride, "Conv1d", "stride");
  check_positive(this->options.dilation, "Conv1d", "dilation");
  conv_padding(this->options.padding, 1, "Conv1d");
  weight = register_parameter("weight", empty({out_channels, in_channels / this->options.groups, kernel_size}));
  bias = register_parameter("bias", this->options.bias ? empty({out_channels}) : Tensor());
  reset_parameters();
}

void Conv1d::reset_parameters() { reset_linear_like(weight, bias); }

Tensor Conv1d::forward(const Tensor& input) {
  return loom::conv1d(input, weight, bias, options.stride, conv_padding(options.padding, 1, "Conv1d"),
                      options.dilation, options.groups);
}

std::string Conv1d::extra_repr() const {
  std::ostringstream out;
  out << in_channels << ", " << out_channels << ", kernel_size=(" << kernel_size << ",), stride=(" << options.stride
      << ",)";
  if (!options.padding.mode.empty() || options.padding.sizes != std::vector<int64_t>{0})
    out << ", padding=" << padding_str(options.padding, 1);
  if (options.dilation != 1) out << ", dilation=(" << options.dilation << ",)";
  if (options.groups != 1) out << ", groups=" << options.groups;
  if (!options.bias) out << ", bias=False";
  return out.str();
}

Conv2d::Conv2d(int64_t in_channels, int64_t out_channels, IntArg kernel, Conv2dOptions opts)
    : Module("Conv2d"), in_channels(in_channels), out_channels(out_channels), options(std::move(opts)) {
  check_conv_channels(in_channels, out_channels, options.groups, "Conv2d");
  kernel_size = expand(kernel.values, 2, "Conv2d", "kernel_size");
  options.stride.values = expand(options.stride.values, 2, "Conv2d", "stride");
  options.dilation.values = expand(options.dilation.values, 2, "Conv2d", "dilation");
  for (int64_t k : kernel_size) check_positive(k, "Conv2d", "kernel_size");
  for (int64_t s : options.stride.values) check_positive(s, "Conv2d", "stride");
  for (int64_t d : options.dilation.values) check_positive(d, "Conv2d", "dilation");
  if (options.padding.mode.empty()) options.padding.sizes = conv_padding(options.padding, 2, "Conv2d").sizes;
  conv_padding(options.padding, 2, "Conv2d");
  weight = register_parameter(
      "weight", empty({out_channels, in_channels / options.groups, kernel_size[0], kernel_size[1]}));
  bias = register_parameter("bias", options.bias ? empty({out_channels}) : Tensor());
  reset_parameters();
}

void Conv2d::reset_parameters() { reset_linear_like(weight, bias); }

Tensor Conv2d::forward(const Tensor& input) {
  return loom::conv2d(input, weight, bias, options.stride.values, conv_padding(options.padding, 2, "Conv2d"),
                      options.dilation.values, options.groups);
}

std::string Conv2d::extra_repr() const {
  std::ostringstream out;
  out << in_channels << ", " << out_channels << ", kernel_size=" << tuple_str(kernel_size)
      << ", stride=" << tuple_str(options.stride.values);
  if (!options.padding.mode.empty() || options.padding.sizes != std::vector<int64_t>{0, 0})
    out << ", padding=" << padding_str(options.padding, 2);
  if (options.dilation.values != std::vector<int64_t>{1, 1}) out << ", dilation=" << tuple_str(options.dilation.values);
  if (options.groups != 1) out << ", groups=" << options.groups;
  if (!options.bias) out << ", bias=False";
  return out.str();
}

// ================= BatchNorm =================

BatchNorm::BatchNorm(std::string name, int64_t num_features, BatchNormOptions options)
    : Module(std::move(name)), num_features(num_features), options(options) {
  check_non_negative(num_features, this->name(), "num_features");
  LOOM_CHECK(!options.momentum || (*options.momentum >= 0.0 && *options.momentum <= 1.0), Value, this->name(),
             ": momentum must be in [0, 1], got ", options.momentum.value_or(0.0));
  weight = register_parameter("weight", options.affine ? empty({num_features}) : Tensor());
  bias = register_parameter("bias", options.affine ? empty({num_features}) : Tensor());
  if (options.track_running_stats) {
    running_mean = register_buffer("running_mean", zeros({num_features}));
    running_var = register_buffer("running_var", ones({num_features}));
    num_batches_tracked = register_buffer("num_batches_tracked", zeros({}, DType::Int64));
  }
  reset_parameters();
}

void BatchNorm::reset_running_stats() {
  if (!options.track_running_stats) return;
  NoGradGuard no_grad;
  zero_(running_mean);
  fill_(running_var, Scalar(1.0));
  zero_(num_batches_tracked);
}

void BatchNorm::reset_parameters() {
  reset_running_stats();
  if (options.affine) {
    init::ones_(weight);
    init::zeros_(bias);
  }
}

Tensor BatchNorm::forward(const Tensor& input) {
  check_input_dim(input);
  double factor = options.momentum.value_or(0.0);
  if (training_ && options.track_running_stats) {
    NoGradGuard no_grad;
    add_(num_batches_tracked, Scalar(int64_t(1)));
    if (!options.momentum) factor = 1.0 / static_cast<double>(num_batches_tracked.item().to_double());
  }
  bool use_batch_stats = training_ || !running_mean.defined();
  bool pass_running = !training_ || options.track_running_stats;
  return loom::batch_norm(input, pass_running ? running_mean : Tensor(), pass_running ? running_var : Tensor(),
                          weight, bias, use_batch_stats, factor, options.eps);
}

std::string BatchNorm::extra_repr() const {
  std::ostringstream out;
  out << num_features << ", eps=" << options.eps << ", momentum=";
  if (options.momentum)
    out << *options.momentum;
  else
    out << "None";
  out << ", affine=" << bool_str(options.affine) << ", track_running_stats=" << bool_str(options.track_running_stats);
  return out.str();
}

BatchNorm1d::BatchNorm1d(int64_t num_features, BatchNormOptions options)
    : BatchNorm("BatchNorm1d", num_features, options) {}

void BatchNorm1d::check_input_dim(const Tensor& input) const {
  LOOM_CHECK(input.dim() == 2 || input.dim() == 3, Value, "BatchNorm1d: expected 2D or 3D input (got ", input.dim(),
             "D input of shape ", shape_str(input.sizes()), ")");
}

BatchNorm2d::BatchNorm2d(int64_t num_features, BatchNormOptions options)
    : BatchNorm("BatchNorm2d", num_features, options) {}

void BatchNorm2d::check_input_dim(const Tensor& input) const {
  LOOM_CHECK(input.dim() == 4, Value, "BatchNorm2d: expected 4D input (got ", input.dim(), "D input of shape ",
             shape_str(input.sizes()), ")");
}

// ================= LayerNorm / GroupNorm / RMSNorm =================

LayerNorm::LayerNorm(Shape shape, LayerNormOptions options)
    : Module("LayerNorm"), normalized_shape(std::move(shape)), options(options) {
  for (int64_t s : normalized_shape) check_non_negative(s, "LayerNorm", "normalized_shape entries");
  weight = register_parameter("weight", options.elementwise_affine ? ones(normalized_shape) : Tensor());
  bias = register_parameter("bias", options.elementwise_affine && options.bias ? zeros(normalized_shape) : Tensor());
}

Tensor LayerNorm::forward(const Tensor& input) {
  return loom::layer_norm(input, normalized_shape, weight, bias, options.eps);
}

std::string LayerNorm::extra_repr() const {
  std::ostringstream out;
  out << tuple_str(normalized_shape) << ", eps=" << options.eps
      << ", elementwise_affine=" << bool_str(options.elementwise_affine) << ", bias=" << bool_str(options.bias);
  return out.str();
}

GroupNorm::GroupNorm(int64_t num_groups, int64_t num_channels, double eps, bool affine)
    : Module("GroupNorm"), num_groups(num_groups), num_channels(num_channels), eps(eps), affine(affine) {
  check_positive(num_groups, "GroupNorm", "num_groups");
  check_non_negative(num_channels, "GroupNorm", "num_channels");
  LOOM_CHECK(num_channels % num_groups == 0, Value, "GroupNorm: num_channels (", num_channels,
             ") must be divisible by num_groups (", num_groups, ")");
  weight = register_parameter("weight", affine ? ones({num_channels}) : Tensor());
  bias = register_parameter("bias", affine ? zeros({num_channels}) : Tensor());
}

Tensor GroupNorm::forward(const Tensor& input) { return loom::group_norm(input, num_groups, weight, bias, eps); }

std::string GroupNorm::extra_repr() const {
  std::ostringstream out;
  out << num_groups << ", " << num_channels << ", eps=" << eps << ", affine=" << bool_str(affine);
  return out.str();
}

RMSNorm::RMSNorm(Shape shape, std::optional<double> eps, bool elementwise_affine)
    : Module("RMSNorm"), normalized_shape(std::move(shape)), eps(eps) {
  for (int64_t s : normalized_shape) check_non_negative(s, "RMSNorm", "normalized_shape entries");
  weight = register_parameter("weight", elementwise_affine ? ones(normalized_shape) : Tensor());
}

Tensor RMSNorm::forward(const Tensor& input) { return loom::rms_norm(input, normalized_shape, weight, eps); }

std::string RMSNorm::extra_repr() const {
  std::ostringstream out;
  out << tuple_str(normalized_shape) << ", eps=";
  if (eps)
    out << *eps;
  else
    out << "None";
  out << ", elementwise_affine=" << bool_str(weight.defined());
  return out.str();
}

// ================= Embedding / Dropout =================

Embedding::Embedding(int64_t num_embeddings, int64_t embedding_dim, std::optional<int64_t> pad)
    : Module("Embedding"), num_embeddings(num_embeddings), embedding_dim(embedding_dim) {
  check_non_negative(num_embeddings, "Embedding", "num_embeddings");
  check_non_negative(embedding_dim, "Embedding", "embedding_dim");
  if (pad) {
    LOOM_CHECK(*pad < num_embeddings && *pad >= -num_embeddings, Value,
               "Embedding: padding_idx must be within num_embeddings (", num_embeddings, "), got ", *pad);
    padding_idx = *pad < 0 ? *pad + num_embeddings : *pad;
  }
  weight = register_parameter("weight", empty({num_embeddings, embedding_dim}));
  init::normal_(weight);
  if (padding_idx) {
    NoGradGuard no_grad;
    Tensor row = select(weight, 0, *padding_idx);
    zero_(row);
  }
}

Tensor Embedding::forward(const Tensor& input) { return loom::embedding(weight, input, padding_idx); }

std::string Embedding::extra_repr() const {
  std::ostringstream out;
  out << num_embeddings << ", " << embedding_dim;
  if (padding_idx) out << ", padding_idx=" << *padding_idx;
  return out.str();
}

Dropout::Dropout(double p) : Module("Dropout"), p(p) {
  LOOM_CHECK(p >= 0.0 && p <= 1.0, Value, "Dropout: probability has to be between 0 and 1, but got ", p);
}

Tensor Dropout::forward(const Tensor& input) { return loom::dropout(input, p, training_); }

std::string Dropout::extra_repr() const {
  std::ostringstream out;
  out << "p=" << p << ", inplace=False";
  return out.str();
}

// ================= activations =================

Tensor ReLU::forward(const Tensor& input) { return loom::relu(input); }
Tensor LeakyReLU::forward(const Tensor& input) { return loom::leaky_relu(input, negative_slope); }
std::string LeakyReLU::extra_repr() const {
  std::ostringstream out;
  out << "negative_slope=" << negative_slope;
  return out.str();
}

GELU::GELU(std::string approx) : Module("GELU"), approximate(std::move(approx)) {
  LOOM_CHECK(approximate == "none" || approximate == "tanh", Value,
             "GELU: approximate must be \"none\" or \"tanh\", got \"", approximate, "\"");
}
Tensor GELU::forward(const Tensor& input) { return loom::gelu(input, approximate); }
std::string GELU::extra_repr() const { return "approximate='" + approximate + "'"; }

Tensor SiLU::forward(const Tensor& input) { return loom::silu(input); }
Tensor Tanh::forward(const Tensor& input) { return loom::tanh(input); }
Tensor Sigmoid::forward(const Tensor& input) { return loom::sigmoid(input); }
Tensor Softmax::forward(const Tensor& input) { return loom::softmax(input, dim); }
std::string Softmax::extra_repr() const { return "dim=" + std::to_string(dim); }
Tensor LogSoftmax::forward(const Tensor& input) { return loom::log_softmax(input, dim); }
std::string LogSoftmax::extra_repr() const { return "dim=" + std::to_string(dim); }

// ================= shape and pooling =================

Tensor Flatten::forward(const Tensor& input) { return loom::flatten(input, start_dim, end_dim); }
std::string Flatten::extra_repr() const {
  return "start_dim=" + std::to_string(start_dim) + ", end_dim=" + std::to_string(end_dim);
}

MaxPool2d::MaxPool2d(IntArg kernel, MaxPool2dOptions opts) : Module("MaxPool2d"), options(std::move(opts)) {
  kernel_size = expand(kernel.values, 2, "MaxPool2d", "kernel_size");
  for (int64_t k : kernel_size) check_positive(k, "MaxPool2d", "kernel_size");
}

Tensor MaxPool2d::forward(const Tensor& input) {
  return loom::max_pool2d(input, kernel_size, options.stride ? options.stride->values : Pair{},
                          options.padding.values, options.dilation.values, options.ceil_mode);
}

std::string MaxPool2d::extra_repr() const {
  std::ostringstream out;
  out << "kernel_size=" << compact(kernel_size)
      << ", stride=" << compact(options.stride ? options.stride->values : kernel_size)
      << ", padding=" << compact(options.padding.values) << ", dilation=" << compact(options.dilation.values)
      << ", ceil_mode=" << bool_str(options.ceil_mode);
  return out.str();
}

AvgPool2d::AvgPool2d(IntArg kernel, AvgPool2dOptions opts) : Module("AvgPool2d"), options(std::move(opts)) {
  kernel_size = expand(kernel.values, 2, "AvgPool2d", "kernel_size");
  for (int64_t k : kernel_size) check_positive(k, "AvgPool2d", "kernel_size");
}

Tensor AvgPool2d::forward(const Tensor& input) {
  return loom::avg_pool2d(input, kernel_size, options.stride ? options.stride->values : Pair{},
                          options.padding.values, options.ceil_mode, options.count_include_pad,
                          options.divisor_override);
}

std::string AvgPool2d::extra_repr() const {
  std::ostringstream out;
  out << "kernel_size=" << compact(kernel_size)
      << ", stride=" << compact(options.stride ? options.stride->values : kernel_size)
      << ", padding=" << compact(options.padding.values);
  return out.str();
}

AdaptiveAvgPool2d::AdaptiveAvgPool2d(std::vector<std::optional<int64_t>> size)
    : Module("AdaptiveAvgPool2d"), output_size(std::move(size)) {}

Tensor AdaptiveAvgPool2d::forward(const Tensor& input) { return loom::adaptive_avg_pool2d(input, output_size); }

std::string AdaptiveAvgPool2d::extra_repr() const {
  std::ostringstream out;
  out << "output_size=(";
  for (size_t i = 0; i < output_size.size(); ++i) {
    out << (i ? ", " : "");
    if (output_size[i])
      out << *output_size[i];
    else
      out << "None";
  }
  out << ")";
  return out.str();
}

}  // namespace loom::nn
