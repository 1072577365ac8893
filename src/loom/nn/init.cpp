// loom::nn::init: torch.nn.init's formulas on top of loom's in-place random fills.
#include "loom/nn/init.h"

#include <cmath>

#include "loom/autograd/grad_mode.h"
#include "loom/core/error.h"
#include "loom/ops/creation.h"
#include "loom/ops/random.h"

namespace loom::nn::init {

namespace {

void check_defined(const Tensor& tensor, const char* fn) {
  LOOM_CHECK(tensor.defined(), Value, "init.", fn, ": the tensor is undefined");
  LOOM_CHECK(is_floating(tensor.dtype()), Type, "init.", fn, ": expected a floating-point tensor, got dtype ",
             dtype_name(tensor.dtype()));
}

int64_t fan(const Tensor& tensor, const std::string& mode, const char* fn) {
  LOOM_CHECK(mode == "fan_in" || mode == "fan_out", Value, "init.", fn, ": mode must be \"fan_in\" or \"fan_out\", ",
             "got \"", mode, "\"");
  auto [fan_in, fan_out] = calculate_fan_in_and_fan_out(tensor);
  return mode == "fan_in" ? fan_in : fan_out;
}

}  // namespace

double calculate_gain(const std::string& nonlinearity, std::optional<double> param) {
  if (nonlinearity == "linear" || nonlinearity == "conv1d" || nonlinearity == "conv2d" ||
      nonlinearity == "conv3d" || nonlinearity == "conv_transpose1d" || nonlinearity == "conv_transpose2d" ||
      nonlinearity == "sigmoid" || nonlinearity == "identity")
    return 1.0;
  if (nonlinearity == "tanh") return 5.0 / 3.0;
  if (nonlinearity == "relu") return std::sqrt(2.0);
  if (nonlinearity == "leaky_relu") {
    double slope = param.value_or(0.01);
    return std::sqrt(2.0 / (1.0 + slope * slope));
  }
  if (nonlinearity == "selu") return 3.0 / 4.0;
  fail(ErrorKind::Value, "init.calculate_gain: unsupported nonlinearity \"", nonlinearity, "\"");
}

std::pair<int64_t, int64_t> calculate_fan_in_and_fan_out(const Tensor& tensor) {
  LOOM_CHECK(tensor.defined() && tensor.dim() >= 2, Value,
             "init.calculate_fan_in_and_fan_out: fan in and fan out can not be computed for a tensor with fewer ",
             "than 2 dimensions, got shape ", tensor.defined() ? shape_str(tensor.sizes()) : std::string("undefined"));
  int64_t receptive = 1;
  for (int64_t d = 2; d < tensor.dim(); ++d) receptive *= tensor.size(d);
  return {tensor.size(1) * receptive, tensor.size(0) * receptive};
}

Tensor& uniform_(Tensor& tensor, double a, double b, Generator* generator) {
  check_defined(tensor, "uniform_");
  LOOM_CHECK(a <= b, Value, "init.uniform_: expected a <= b, got a = ", a, ", b = ", b);
  NoGradGuard no_grad;
  return loom::uniform_(tensor, a, b, generator);
}

Tensor& normal_(Tensor& tensor, double mean, double std, Generator* generator) {
  check_defined(tensor, "normal_");
  LOOM_CHECK(std >= 0, Value, "init.normal_: expected std >= 0, got ", std);
  NoGradGuard no_grad;
  return loom::normal_(tensor, mean, std, generator);
}

Tensor& constant_(Tensor& tensor, Scalar value) {
  LOOM_CHECK(tensor.defined(), Value, "init.constant_: the tensor is undefined");
  NoGradGuard no_grad;
  return fill_(tensor, value);
}

Tensor& ones_(Tensor& tensor) { return constant_(tensor, Scalar(1.0)); }
Tensor& zeros_(Tensor& tensor) { return constant_(tensor, Scalar(0.0)); }

Tensor& xavier_uniform_(Tensor& tensor, double gain, Generator* generator) {
  check_defined(tensor, "xavier_uniform_");
  auto [fan_in, fan_out] = calculate_fan_in_and_fan_out(tensor);
  double bound = gain * std::sqrt(6.0 / static_cast<double>(fan_in + fan_out));
  return init::uniform_(tensor, -bound, bound, generator);
}

Tensor& xavier_normal_(Tensor& tensor, double gain, Generator* generator) {
  check_defined(tensor, "xavier_normal_");
  auto [fan_in, fan_out] = calculate_fan_in_and_fan_out(tensor);
  return init::normal_(tensor, 0.0, gain * std::sqrt(2.0 / static_cast<double>(fan_in + fan_out)), generator);
}

Tensor& kaiming_uniform_(Tensor& tensor, double a, const std::string& mode, const std::string& nonlinearity,
                         Generator* generator) {
  check_defined(tensor, "kaiming_uniform_");
  if (tensor.numel() == 0) return tensor;  // torch warns and leaves a zero-element tensor alone
  int64_t f = fan(tensor, mode, "kaiming_uniform_");
  double bound = calculate_gain(nonlinearity, a) * std::sqrt(3.0 / static_cast<double>(f));
  return init::uniform_(tensor, -bound, bound, generator);
}

Tensor& kaiming_normal_(Tensor& tensor, double a, const std::string& mode, const std::string& nonlinearity,
                        Generator* generator) {
  check_defined(tensor, "kaiming_normal_");
  if (tensor.numel() == 0) return tensor;
  int64_t f = fan(tensor, mode, "kaiming_normal_");
  return init::normal_(tensor, 0.0, calculate_gain(nonlinearity, a) / std::sqrt(static_cast<double>(f)), generator);
}

}  // namespace loom::nn::init
