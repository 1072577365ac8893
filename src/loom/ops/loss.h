// Loss functions with PyTorch's semantics (torch.nn.functional), as composites of loom ops so their gradients
// come from the ops they are made of. `reduction` is "mean" (default), "sum" or "none" (kl_div also takes
// "batchmean"). Errors name the loss, the shapes and the dtypes of the offending arguments.
#pragma once
#include <string>

#include "loom/core/tensor.h"

namespace loom {

// Cross entropy of logits `input` against `target`:
// - class indices: input (N, C, d1...) or (C), target (N, d1...) or () of an integer dtype; targets equal to
//   `ignore_index` contribute nothing (and are left out of the mean's denominator); `weight` (C) rescales classes
//   and "mean" divides by the summed weights of the counted targets.
// - class probabilities: a floating target of the input's shape (ignore_index must stay -100).
// `label_smoothing` in [0, 1] mixes the target with the uniform distribution over C classes.
Tensor cross_entropy(const Tensor& input, const Tensor& target, const Tensor& weight = Tensor(),
                     int64_t ignore_index = -100, const std::string& reduction = "mean", double label_smoothing = 0.0);
// Negative log likelihood of log-probabilities `input` at class-index `target` (same layouts as cross_entropy).
Tensor nll_loss(const Tensor& input, const Tensor& target, const Tensor& weight = Tensor(), int64_t ignore_index = -100,
                const std::string& reduction = "mean");
// Elementwise losses: input and target broadcast; an optional `weight` of the input's shape multiplies the
// elementwise loss, and then "mean" divides by sum(weight) (mse, l1) or by the element count (huber).
Tensor mse_loss(const Tensor& input, const Tensor& target, const std::string& reduction = "mean",
                const Tensor& weight = Tensor());
Tensor l1_loss(const Tensor& input, const Tensor& target, const std::string& reduction = "mean",
               const Tensor& weight = Tensor());
// 0.5 d^2 / beta where |d| < beta, else |d| - 0.5 beta (l1_loss when beta == 0).
Tensor smooth_l1_loss(const Tensor& input, const Tensor& target, const std::string& reduction = "mean",
                      double beta = 1.0);
// 0.5 d^2 where |d| < delta, else delta (|d| - 0.5 delta).
Tensor huber_loss(const Tensor& input, const Tensor& target, const std::string& reduction = "mean", double delta = 1.0,
                  const Tensor& weight = Tensor());
// -weight (t log x + (1 - t) log(1 - x)) with the logs clamped at -100; input probabilities in [0, 1] and a
// target of the same shape.
Tensor binary_cross_entropy(const Tensor& input, const Tensor& target, const Tensor& weight = Tensor(),
                            const std::string& reduction = "mean");
// Binary cross entropy of logits, computed stably: (1 - t) x + (1 + (pos_weight - 1) t) softplus(-x).
// `pos_weight` broadcasts against the last (class) dim; `weight` against the input.
Tensor binary_cross_entropy_with_logits(const Tensor& input, const Tensor& target, const Tensor& weight = Tensor(),
                                        const std::string& reduction = "mean", const Tensor& pos_weight = Tensor());
// KL divergence with log-probabilities `input`: target (log t - input) * t, or exp(t) (t - input) when log_target.
Tensor kl_div(const Tensor& input, const Tensor& target, const std::string& reduction = "mean", bool log_target = false);

// Poisson NLL: exp(input) - target input (log_input) or input - target log(input + eps); `full` adds the
// Stirling term target log target - target + 0.5 log(2 pi target) where target > 1.
Tensor poisson_nll_loss(const Tensor& input, const Tensor& target, bool log_input = true, bool full = false,
                        double eps = 1e-8, const std::string& reduction = "mean");
// Gaussian NLL: 0.5 (log var + (input - target)^2 / var) (+ 0.5 log(2 pi) when full); var is clamped at eps
// (the clamp passes gradients straight through) and may lack the last dim or have one broadcast dim.
Tensor gaussian_nll_loss(const Tensor& input, const Tensor& target, const Tensor& var, bool full = false,
                         double eps = 1e-6, const std::string& reduction = "mean");
// max(0, -target (input1 - input2) + margin), target in {1, -1}.
Tensor margin_ranking_loss(const Tensor& input1, const Tensor& input2, const Tensor& target, double margin = 0.0,
                           const std::string& reduction = "mean");
// input where target == 1, max(0, margin - input) where target == -1.
Tensor hinge_embedding_loss(const Tensor& input, const Tensor& target, double margin = 1.0,
                            const std::string& reduction = "mean");
// log(1 + exp(-target input)).
Tensor soft_margin_loss(const Tensor& input, const Tensor& target, const std::string& reduction = "mean");
// Mean over the C classes of -(t log sigmoid(x) + (1 - t) log sigmoid(-x)) (times weight), for input (N, C).
Tensor multilabel_soft_margin_loss(const Tensor& input, const Tensor& target, const Tensor& weight = Tensor(),
                                   const std::string& reduction = "mean");
// 1 - cos(x1, x2) where target == 1, max(0, cos(x1, x2) - margin) where target == -1 (cosine over the last dim).
Tensor cosine_embedding_loss(const Tensor& input1, const Tensor& input2, const Tensor& target, double margin = 0.0,
                             const std::string& reduction = "mean");
// max(0, margin + d(anchor, positive) - d(anchor, negative)), d the p-norm distance of the last dim (+ eps);
// `swap` uses min(d(a, n), d(p, n)).
Tensor triplet_margin_loss(const Tensor& anchor, const Tensor& positive, const Tensor& negative, double margin = 1.0,
                           double p = 2.0, double eps = 1e-6, bool swap = false, const std::string& reduction = "mean");

}  // namespace loom
