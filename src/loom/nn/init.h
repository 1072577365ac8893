// loom::nn::init: in-place parameter initialisation with torch.nn.init's formulas. Every function fills the
// tensor without recording autograd (as torch does under no_grad) and draws from `generator` (default: the
// process-wide default generator, seeded by loom::manual_seed). Each returns its argument.
#pragma once
#include <optional>
#include <string>
#include <utility>

#include "loom/core/generator.h"
#include "loom/core/scalar.h"
#include "loom/core/tensor.h"

namespace loom::nn::init {

// The recommended gain for a nonlinearity: "linear", "conv1d", "conv2d", "sigmoid", "identity" -> 1;
// "tanh" -> 5/3; "relu" -> sqrt(2); "leaky_relu" -> sqrt(2 / (1 + slope^2)) (slope = param, default 0.01);
// "selu" -> 3/4. Raises ValueError for other names.
double calculate_gain(const std::string& nonlinearity, std::optional<double> param = std::nullopt);
// (fan_in, fan_out) of a weight of at least 2 dims: size(1) * receptive field, size(0) * receptive field.
std::pair<int64_t, int64_t> calculate_fan_in_and_fan_out(const Tensor& tensor);

Tensor& uniform_(Tensor& tensor, double a = 0.0, double b = 1.0, Generator* generator = nullptr);
Tensor& normal_(Tensor& tensor, double mean = 0.0, double std = 1.0, Generator* generator = nullptr);
Tensor& constant_(Tensor& tensor, Scalar value);
Tensor& ones_(Tensor& tensor);
Tensor& zeros_(Tensor& tensor);
// U(-a, a) with a = gain * sqrt(6 / (fan_in + fan_out)).
Tensor& xavier_uniform_(Tensor& tensor, double gain = 1.0, Generator* generator = nullptr);
// N(0, std^2) with std = gain * sqrt(2 / (fan_in + fan_out)).
Tensor& xavier_normal_(Tensor& tensor, double gain = 1.0, Generator* generator = nullptr);
// U(-bound, bound) with bound = gain * sqrt(3 / fan), gain = calculate_gain(nonlinearity, a) and fan the
// fan_in or fan_out (mode "fan_in" / "fan_out"). Linear and Conv layers use a = sqrt(5): bound = 1/sqrt(fan_in).
Tensor& kaiming_uniform_(Tensor& tensor, double a = 0.0, const std::string& mode = "fan_in",
                         const std::string& nonlinearity = "leaky_relu", Generator* generator = nullptr);
// N(0, std^2) with std = gain / sqrt(fan).
Tensor& kaiming_normal_(Tensor& tensor, double a = 0.0, const std::string& mode = "fan_in",
                        const std::string& nonlinearity = "leaky_relu", Generator* generator = nullptr);

}  // namespace loom::nn::init
