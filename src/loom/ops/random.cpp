// Random op definitions. All are leaves for autograd (no backward): sampling is not differentiable.
#include "loom/ops/random.h"

#include <algorithm>
#include <cmath>

#include "loom/ops/creation.h"
#include "loom/ops/registry.h"
#include "loom/ops/shape.h"

namespace loom {

namespace {

std::vector<TensorMeta> infer_sampled(const std::vector<Tensor>&, const Attrs& a) {
  const Shape& sizes = a.get<Shape>("sizes");
  checked_numel(sizes, "random");
  return {TensorMeta{sizes, a.get<DType>("dtype"), a.get<Device>("device")}};
}

std::vector<TensorMeta> infer_bernoulli(const std::vector<Tensor>& in, const Attrs&) {
  LOOM_CHECK(is_floating(in[0].dtype()), Type, "bernoulli: expected a floating point probability tensor, got ",
             dtype_name(in[0].dtype()));
  return {TensorMeta{in[0].sizes(), in[0].dtype(), in[0].device()}};
}

std::vector<TensorMeta> infer_multinomial(const std::vector<Tensor>& in, const Attrs& a) {
  const Tensor& p = in[0];
  int64_t n = a.get<int64_t>("num_samples");
  LOOM_CHECK(p.dim() == 1 || p.dim() == 2, Value, "multinomial: prob_dist must be 1 or 2 dim, got shape ",
             shape_str(p.sizes()));
  LOOM_CHECK(is_floating(p.dtype()), Type, "multinomial: prob_dist must be a floating point tensor, got ",
             dtype_name(p.dtype()));
  int64_t categories = p.sizes().back();
  LOOM_CHECK(categories > 0, Value, "multinomial: prob_dist of shape ", shape_str(p.sizes()), " has no categories");
  LOOM_CHECK(n > 0, Value, "multinomial: cannot sample num_samples <= 0 samples, got ", n);
  LOOM_CHECK(a.get<bool>("replacement") || n <= categories, Value, "multinomial: cannot sample ", n,
             " samples without replacement from ", categories, " categories");
  Shape sizes = p.dim() == 1 ? Shape{n} : Shape{p.sizes()[0], n};
  return {TensorMeta{sizes, DType::Int64, p.device()}};
}

// An explicit generator, else the default generator of the device the numbers are drawn for.
Generator& pick(Generator* generator, Device device) { return generator ? *generator : default_generator(device); }

// Reserves enough Philox blocks for `count` elements (each element uses at most half a block).
Attrs random_attrs(Generator& gen, int64_t count) {
  uint64_t blocks = (static_cast<uint64_t>(count) + 1) / 2 + 1;  // count >= 0: no overflow in uint64
  uint64_t offset = gen.reserve(blocks);
  return Attrs().set("seed", static_cast<int64_t>(gen.seed())).set("offset", static_cast<int64_t>(offset));
}

Tensor sample(const char* op, const Shape& sizes, DType dtype, Generator* generator, Device device, Attrs attrs) {
  Generator& gen = pick(generator, device);
  Attrs all = random_attrs(gen, checked_numel(sizes, op));
  for (auto& [k, v] : attrs.items()) all.set(k, v);
  all.set("sizes", sizes).set("dtype", dtype).set("device", device);
  return dispatch1(Registry::instance().op(op), {}, std::move(all));
}

void check_float(DType dtype, const char* op) {
  LOOM_CHECK(is_floating(dtype), Type, op, ": expected a floating point dtype, got ", dtype_name(dtype));
}

}  // namespace

void define_random_ops(Registry& r) {
  // Attrs of every sampling op: sizes, dtype, device, seed, offset (Philox block), plus the distribution's own.
  r.define({.name = "uniform", .infer = infer_sampled});   // low, high
  r.define({.name = "normal", .infer = infer_sampled});    // mean, std
  r.define({.name = "randint", .infer = infer_sampled});   // low, high
  r.define({.name = "randperm", .infer = infer_sampled});  // sizes = {n}
  r.define({.name = "bernoulli", .infer = infer_bernoulli});  // input: probabilities; seed, offset
  r.define({.name = "multinomial", .infer = infer_multinomial});  // input: weights; num_samples, replacement
}

Tensor uniform(const Shape& sizes, double low, double high, DType dtype, Generator* generator, Device device) {
  check_float(dtype, "uniform_");
  LOOM_CHECK(low <= high && std::isfinite(low) && std::isfinite(high), Value,
             "uniform_: expects low <= high and both finite, got low=", low, ", high=", high);
  return sample("uniform", sizes, dtype, generator, device, Attrs().set("low", low).set("high", high));
}

Tensor normal(const Shape& sizes, double mean, double std, DType dtype, Generator* generator, Device device) {
  check_float(dtype, "normal_");
  LOOM_CHECK(std >= 0.0 && std::isfinite(std), Value, "normal_: expects std >= 0.0, got std=", std);
  return sample("normal", sizes, dtype, generator, device, Attrs().set("mean", mean).set("std", std));
}

Tensor rand(const Shape& sizes, DType dtype, Generator* generator, Device device) {
  return uniform(sizes, 0.0, 1.0, dtype, generator, device);
}

Tensor randn(const Shape& sizes, DType dtype, Generator* generator, Device device) {
  return normal(sizes, 0.0, 1.0, dtype, generator, device);
}

Tensor randint(int64_t low, int64_t high, const Shape& sizes, DType dtype, Generator* generator, Device device) {
  LOOM_CHECK(low < high, Value, "randint: expects low < high, got low=", low, ", high=", high);
  LOOM_CHECK(dtype != DType::Bool, Type, "randint: dtype bool is not supported");
  return sample("randint", sizes, dtype, generator, device, Attrs().set("low", low).set("high", high));
}

Tensor randperm(int64_t n, DType dtype, Generator* generator, Device device) {
  LOOM_CHECK(n >= 0, Value, "randperm: n must be non-negative, got ", n);
  LOOM_CHECK(!is_floating(dtype) || n <= (int64_t(1) << 24), Value, "randperm: n is too large for dtype ", dtype_name(dtype));
  LOOM_CHECK(dtype != DType::Bool, Type, "randperm: dtype bool is not supported");
  return sample("randperm", {n}, dtype, generator, device, Attrs());
}

Tensor bernoulli(const Tensor& p, Generator* generator) {
  Generator& gen = pick(generator, p.device());
  return dispatch1(LOOM_OP("bernoulli"), {p}, random_attrs(gen, p.numel()));
}

Tensor multinomial(const Tensor& probs, int64_t num_samples, bool replacement, Generator* generator) {
  Generator& gen = pick(generator, probs.device());
  // Element (row, j) of the stream: sample j with replacement, category j's race time without.
  int64_t rows = probs.dim() == 2 ? probs.sizes()[0] : 1;
  int64_t per_row = replacement ? num_samples : (probs.dim() ? probs.sizes().back() : 0);
  Attrs attrs = random_attrs(gen, checked_numel({rows, std::max<int64_t>(per_row, 0)}, "multinomial"));
  attrs.set("num_samples", num_samples).set("replacement", replacement);
  return dispatch1(LOOM_OP("multinomial"), {probs}, std::move(attrs));
}

Tensor bernoulli(const Tensor& like, double p, Generator* generator) {
  LOOM_CHECK(p >= 0.0 && p <= 1.0, Value, "bernoulli: p must be in [0, 1], got ", p);
  DType dtype = is_floating(like.dtype()) ? like.dtype() : default_float_dtype();
  return bernoulli(full(like.sizes(), Scalar(p), dtype, like.device()), generator);
}

Tensor& uniform_(Tensor& t, double low, double high, Generator* generator) {
  return detail::commit_inplace(t, uniform(t.sizes(), low, high, t.dtype(), generator, t.device()), "uniform_");
}

Tensor& normal_(Tensor& t, double mean, double std, Generator* generator) {
  return detail::commit_inplace(t, normal(t.sizes(), mean, std, t.dtype(), generator, t.device()), "normal_");
}

Tensor& bernoulli_(Tensor& t, double p, Generator* generator) {
  return detail::commit_inplace(t, bernoulli(t, p, generator), "bernoulli_");
}

}  // namespace loom
