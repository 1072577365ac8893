// Random sampling from the counter-based Philox generator (core/generator.h).
//
// Each call reserves a block range of the generator and records (seed, offset) as op attributes, so element i
// of a result depends only on (seed, offset, i): results do not depend on the thread count, and a CUDA kernel
// given the same attributes reproduces them exactly.
#pragma once
#include <optional>

#include "loom/core/generator.h"
#include "loom/core/tensor.h"

namespace loom {

// Uniform on [low, high).
Tensor rand(const Shape& sizes, DType dtype = DType::Float32, Generator* generator = nullptr, Device device = Device());
// Standard normal (Box-Muller).
Tensor randn(const Shape& sizes, DType dtype = DType::Float32, Generator* generator = nullptr, Device device = Device());
Tensor uniform(const Shape& sizes, double low, double high, DType dtype, Generator* generator = nullptr,
               Device device = Device());
Tensor normal(const Shape& sizes, double mean, double std, DType dtype, Generator* generator = nullptr,
              Device device = Device());
// Integers uniform on [low, high).
Tensor randint(int64_t low, int64_t high, const Shape& sizes, DType dtype = DType::Int64, Generator* generator = nullptr,
               Device device = Device());
// 1 with probability p (elementwise, p in [0, 1]), else 0, in p's dtype.
Tensor bernoulli(const Tensor& p, Generator* generator = nullptr);
Tensor bernoulli(const Tensor& like, double p, Generator* generator = nullptr);
// Samples `num_samples` category indices per row of `probs` (1-D: categories; 2-D: rows x categories;
// non-negative weights, need not sum to 1), int64 of shape (num_samples) or (rows, num_samples). Without
// replacement a category is drawn at most once per row (an exponential race, equivalent to drawing one at a time
// in proportion to the remaining weights; zero weights come last, in index order), so num_samples may not exceed
// the number of categories.
Tensor multinomial(const Tensor& probs, int64_t num_samples, bool replacement = false, Generator* generator = nullptr);
// A random permutation of 0..n-1 (Fisher-Yates on one Philox stream).
Tensor randperm(int64_t n, DType dtype = DType::Int64, Generator* generator = nullptr, Device device = Device());

Tensor& uniform_(Tensor& t, double low = 0.0, double high = 1.0, Generator* generator = nullptr);
Tensor& normal_(Tensor& t, double mean = 0.0, double std = 1.0, Generator* generator = nullptr);
Tensor& bernoulli_(Tensor& t, double p, Generator* generator = nullptr);

}  // namespace loom
