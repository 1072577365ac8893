// loom::nn layers: torch.nn's layers in C++, with PyTorch's constructor options, parameter and buffer names,
// shapes and default initialisation, so state dicts move between the two by name. Each forward is a call of
// the functional op of the same name (loom::linear, loom::conv2d, loom::batch_norm, ...), so autograd comes
// from the ops. Options that PyTorch passes as keywords are an options struct, written with designated
// initialisers:
//
//   auto conv = std::make_shared<loom::nn::Conv2d>(1, 32, 3, loom::nn::Conv2dOptions{.stride = 2, .padding = 1});
//   auto norm = std::make_shared<loom::nn::BatchNorm2d>(32);
//
// Initialisation draws from the default generator (loom::manual_seed makes it reproducible).
#pragma once
#include <concepts>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <vector>

#include "loom/core/tensor.h"
#include "loom/nn/module.h"

namespace loom::nn {

// One value used for every spatial dim, or one value per dim: `3` or `{3, 5}`.
struct IntArg {
  std::vector<int64_t> values;
  template <std::integral T>
  IntArg(T value) : values{static_cast<int64_t>(value)} {}            // NOLINT: implicit, like torch's int
  IntArg(std::initializer_list<int64_t> list) : values(list) {}       // NOLINT
  IntArg(std::vector<int64_t> list) : values(std::move(list)) {}      // NOLINT
};

// Convolution padding: sizes (`1`, `{1, 2}`) or "same" / "valid".
struct PaddingArg {
  std::vector<int64_t> sizes{0};
  std::string mode;  // "", "same" or "valid"
  template <std::integral T>
  PaddingArg(T value) : sizes{static_cast<int64_t>(value)} {}         // NOLINT
  PaddingArg(std::initializer_list<int64_t> list) : sizes(list) {}    // NOLINT
  PaddingArg(const char* name) : mode(name) {}                        // NOLINT
  PaddingArg(std::string name) : mode(std::move(name)) {}             // NOLINT
};

// ---- linear ----

// y = x W^T + b. weight (out_features, in_features) ~ kaiming_uniform(a = sqrt(5)), i.e. U(-k, k) with
// k = 1/sqrt(in_features); bias (out_features) ~ U(-k, k).
class Linear : public Module {
 public:
  Linear(int64_t in_features, int64_t out_features, bool bias = true);
  Tensor forward(const Tensor& input) override;
  std::string extra_repr() const override;
  void reset_parameters();

  int64_t in_features, out_features;
  Tensor weight, bias;
};

// Returns its input (a placeholder, as torch.nn.Identity).
class Identity : public Module {
 public:
  Identity() : Module("Identity") {}
  Tensor forward(const Tensor& input) override { return input; }
};

// ---- convolution ----

struct Conv1dOptions {
  int64_t stride = 1;
  PaddingArg padding = 0;
  int64_t dilation = 1;
  int64_t groups = 1;
  bool bias = true;
};

struct Conv2dOptions {
  IntArg stride = 1;
  PaddingArg padding = 0;
  IntArg dilation = 1;
  int64_t groups = 1;
  bool bias = true;
};

// input (N, C_in, L) or (C_in, L); weight (out_channels, in_channels / groups, kernel_size); bias (out_channels).
// Both ~ U(-k, k), k = 1/sqrt(in_channels / groups * kernel_size). Only zero padding (padding_mode "zeros").
class Conv1d : public Module {
 public:
  Conv1d(int64_t in_channels, int64_t out_channels, int64_t kernel_size, Conv1dOptions options = {});
  Tensor forward(const Tensor& input) override;
  std::string extra_repr() const override;
  void reset_parameters();

  int64_t in_channels, out_channels, kernel_size;
  Conv1dOptions options;
  Tensor weight, bias;
};

// input (N, C_in, H, W) or (C_in, H, W); weight (out_channels, in_channels / groups, kh, kw); bias (out_channels).
// Both ~ U(-k, k), k = 1/sqrt(in_channels / groups * kh * kw). Only zero padding (padding_mode "zeros").
class Conv2d : public Module {
 public:
  Conv2d(int64_t in_channels, int64_t out_channels, IntArg kernel_size, Conv2dOptions options = {});
  Tensor forward(const Tensor& input) override;
  std::string extra_repr() const override;
  void reset_parameters();

  int64_t in_channels, out_channels;
  std::vector<int64_t> kernel_size;  // {kh, kw}
  Conv2dOptions options;
  Tensor weight, bias;
};

// ---- normalisation ----

struct BatchNormOptions {
  double eps = 1e-5;
  // Weight of the batch statistic in the running average; nullopt = cumulative average (1 / batches seen).
  std::optional<double> momentum = 0.1;
  bool affine = true;
  bool track_running_stats = true;
};

// Batch normalisation over dim 1 with PyTorch's parameters: weight (ones), bias (zeros); buffers running_mean
// (zeros), running_var (ones), num_batches_tracked (int64 scalar 0). In training mode it normalises with the
// batch statistics and updates the running ones (running_var with the unbiased variance); in eval mode it uses
// the running statistics (or the batch's when track_running_stats is false).
class BatchNorm : public Module {
 public:
  Tensor forward(const Tensor& input) override;
  std::string extra_repr() const override;
  void reset_running_stats();
  void reset_parameters();

  int64_t num_features;
  BatchNormOptions options;
  Tensor weight, bias, running_mean, running_var, num_batches_tracked;

 protected:
  BatchNorm(std::string name, int64_t num_features, BatchNormOptions options);
  virtual void check_input_dim(const Tensor& input) const = 0;
};

// Input (N, C) or (N, C, L).
class BatchNorm1d : public BatchNorm {
 public:
  explicit BatchNorm1d(int64_t num_features, BatchNormOptions options = {});

 protected:
  void check_input_dim(const Tensor& input) const override;
};

// Input (N, C, H, W).
class BatchNorm2d : public BatchNorm {
 public:
  explicit BatchNorm2d(int64_t num_features, BatchNormOptions options = {});

 protected:
  void check_input_dim(const Tensor& input) const override;
};

struct LayerNormOptions {
  double eps = 1e-5;
  bool elementwise_affine = true;
  bool bias = true;
};

// Normalises over the trailing dims normalized_shape; weight (ones) and bias (zeros) of normalized_shape.
class LayerNorm : public Module {
 public:
  explicit LayerNorm(Shape normalized_shape, LayerNormOptions options = {});
  Tensor forward(const Tensor& input) override;
  std::string extra_repr() const override;

  Shape normalized_shape;
  LayerNormOptions options;
  Tensor weight, bias;
};

// Normalises each group of num_channels / num_groups channels of (N, C, *); weight (ones), bias (zeros) of (C).
class GroupNorm : public Module {
 public:
  GroupNorm(int64_t num_groups, int64_t num_channels, double eps = 1e-5, bool affine = true);
  Tensor forward(const Tensor& input) override;
  std::string extra_repr() const override;

  int64_t num_groups, num_channels;
  double eps;
  bool affine;
  Tensor weight, bias;
};

// x / sqrt(mean(x^2 over normalized_shape) + eps) * weight; weight (ones) of normalized_shape; eps nullopt =
// the machine epsilon of the input's dtype.
class RMSNorm : public Module {
 public:
  explicit RMSNorm(Shape normalized_shape, std::optional<double> eps = std::nullopt, bool elementwise_affine = true);
  Tensor forward(const Tensor& input) override;
  std::string extra_repr() const override;

  Shape normalized_shape;
  std::optional<double> eps;
  Tensor weight;
};

// ---- embedding and dropout ----

// A lookup table: weight (num_embeddings, embedding_dim) ~ N(0, 1), row padding_idx zeroed and given no
// gradient. Input: integer indices of any shape; output: input.shape + (embedding_dim,).
class Embedding : public Module {
 public:
  Embedding(int64_t num_embeddings, int64_t embedding_dim, std::optional<int64_t> padding_idx = std::nullopt);
  Tensor forward(const Tensor& input) override;
  std::string extra_repr() const override;

  int64_t num_embeddings, embedding_dim;
  std::optional<int64_t> padding_idx;  // normalised to [0, num_embeddings)
  Tensor weight;
};

// Zeroes elements with probability p in training mode and scales the rest by 1/(1-p); identity in eval mode.
class Dropout : public Module {
 public:
  explicit Dropout(double p = 0.5);
  Tensor forward(const Tensor& input) override;
  std::string extra_repr() const override;

  double p;
};

// ---- activations ----

class ReLU : public Module {
 public:
  ReLU() : Module("ReLU") {}
  Tensor forward(const Tensor& input) override;
};

class LeakyReLU : public Module {
 public:
  explicit LeakyReLU(double negative_slope = 0.01) : Module("LeakyReLU"), negative_slope(negative_slope) {}
  Tensor forward(const Tensor& input) override;
  std::string extra_repr() const override;
  double negative_slope;
};

// approximate: "none" (erf) or "tanh".
class GELU : public Module {
 public:
  explicit GELU(std::string approximate = "none");
  Tensor forward(const Tensor& input) override;
  std::string extra_repr() const override;
  std::string approximate;
};

class SiLU : public Module {
 public:
  SiLU() : Module("SiLU") {}
  Tensor forward(const Tensor& input) override;
};

class Tanh : public Module {
 public:
  Tanh() : Module("Tanh") {}
  Tensor forward(const Tensor& input) override;
};

class Sigmoid : public Module {
 public:
  Sigmoid() : Module("Sigmoid") {}
  Tensor forward(const Tensor& input) override;
};

class Softmax : public Module {
 public:
  explicit Softmax(int64_t dim) : Module("Softmax"), dim(dim) {}
  Tensor forward(const Tensor& input) override;
  std::string extra_repr() const override;
  int64_t dim;
};

class LogSoftmax : public Module {
 public:
  explicit LogSoftmax(int64_t dim) : Module("LogSoftmax"), dim(dim) {}
  Tensor forward(const Tensor& input) override;
  std::string extra_repr() const override;
  int64_t dim;
};

// ---- shape and pooling ----

// Flattens dims start_dim..end_dim into one (default: everything but the batch dim).
class Flatten : public Module {
 public:
  explicit Flatten(int64_t start_dim = 1, int64_t end_dim = -1)
      : Module("Flatten"), start_dim(start_dim), end_dim(end_dim) {}
  Tensor forward(const Tensor& input) override;
  std::string extra_repr() const override;
  int64_t start_dim, end_dim;
};

struct MaxPool2dOptions {
  std::optional<IntArg> stride;  // nullopt = kernel_size
  IntArg padding = 0;
  IntArg dilation = 1;
  bool ceil_mode = false;
};

class MaxPool2d : public Module {
 public:
  explicit MaxPool2d(IntArg kernel_size, MaxPool2dOptions options = {});
  Tensor forward(const Tensor& input) override;
  std::string extra_repr() const override;
  std::vector<int64_t> kernel_size;
  MaxPool2dOptions options;
};

struct AvgPool2dOptions {
  std::optional<IntArg> stride;  // nullopt = kernel_size
  IntArg padding = 0;
  bool ceil_mode = false;
  bool count_include_pad = true;
  std::optional<int64_t> divisor_override;
};

class AvgPool2d : public Module {
 public:
  explicit AvgPool2d(IntArg kernel_size, AvgPool2dOptions options = {});
  Tensor forward(const Tensor& input) override;
  std::string extra_repr() const override;
  std::vector<int64_t> kernel_size;
  AvgPool2dOptions options;
};

// output_size per spatial dim ({h, w}); nullopt keeps that input size.
class AdaptiveAvgPool2d : public Module {
 public:
  explicit AdaptiveAvgPool2d(std::vector<std::optional<int64_t>> output_size);
  Tensor forward(const Tensor& input) override;
  std::string extra_repr() const override;
  std::vector<std::optional<int64_t>> output_size;
};

}  // namespace loom::nn
