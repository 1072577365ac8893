// Every fused op's composite (OpDef::composite, used on a device without the op's kernel) returns what its CPU
// kernel returns: the same outputs, shapes and dtypes, saved statistics included. Each case dispatches the fused op
// directly, once with the CPU kernel and once with it masked (Registry::set_kernel_masked), on the same inputs. The
// kernels themselves are checked against PyTorch in tests/python (test_fused_capability.py, test_ops.py).
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "loom/loom.h"
#include "loom/ops/registry.h"

namespace {

using loom::Attrs;
using loom::DType;
using loom::Registry;
using loom::Shape;
using loom::Tensor;

// Masks the CPU kernel of `op` for the guard's lifetime.
class KernelMask {
 public:
  explicit KernelMask(std::string op) : op_(std::move(op)) {
    Registry::instance().set_kernel_masked(op_, loom::DeviceType::CPU, true);
  }
  ~KernelMask() { Registry::instance().set_kernel_masked(op_, loom::DeviceType::CPU, false); }
  KernelMask(const KernelMask&) = delete;
  KernelMask& operator=(const KernelMask&) = delete;

 private:
  std::string op_;
};

std::vector<double> values_of(const Tensor& t) {
  Tensor c = loom::contiguous(loom::to_dtype(t, DType::Float64));
  return std::vector<double>(c.data<double>(), c.data<double>() + c.numel());
}

Tensor random(const Shape& shape, DType dtype, uint64_t seed) {
  loom::manual_seed(seed);
  return loom::to_dtype(loom::randn(shape, DType::Float64), dtype);
}

// Dispatches `op` with its kernel and then with its composite; compares every output (or those in `compared`).
void expect_composite_matches_kernel(const std::string& op, const std::vector<Tensor>& inputs, const Attrs& attrs,
                                     double tol, std::vector<size_t> compared = {}) {
  const loom::OpDef& def = Registry::instance().op(op);
  ASSERT_NE(def.composite, nullptr) << op << " has no composite";
  ASSERT_TRUE(loom::has_kernel(def, loom::Device()));
  std::vector<Tensor> expected = loom::dispatch(def, inputs, attrs);
  std::vector<Tensor> actual;
  {
    KernelMask mask(op);
    ASSERT_FALSE(loom::has_kernel(def, loom::Device()));
    actual = loom::dispatch(def, inputs, attrs);
  }
  ASSERT_EQ(actual.size(), expected.size()) << op;
  if (compared.empty())
    for (size_t i = 0; i < expected.size(); ++i) compared.push_back(i);
  for (size_t i : compared) {
    SCOPED_TRACE(op + " output " + std::to_string(i));
    ASSERT_EQ(actual[i].sizes(), expected[i].sizes());
    ASSERT_EQ(actual[i].dtype(), expected[i].dtype());
    ASSERT_EQ(actual[i].device(), expected[i].device());
    std::vector<double> a = values_of(actual[i]), e = values_of(expected[i]);
    for (size_t j = 0; j < e.size(); ++j) {
      if (std::isnan(e[j]) || std::isinf(e[j])) {
        EXPECT_TRUE(std::isnan(e[j]) ? std::isnan(a[j]) : a[j] == e[j]) << "at " << j << ": " << a[j] << " vs " << e[j];
        continue;
      }
      EXPECT_NEAR(a[j], e[j], tol * (1.0 + std::abs(e[j]))) << "at " << j;
    }
  }
}

constexpr double kTol64 = 1e-10, kTol32 = 2e-5;

Attrs layer_norm_attrs(int64_t k, bool weight, bool bias, bool rms) {
  return Attrs().set("normalized_dims", k).set("eps", 1e-5).set("has_weight", weight).set("has_bias", bias).set("rms",
                                                                                                                  rms);
}

TEST(Composites, NativeLayerNormAndBackward) {
  for (DType dtype : {DType::Float64, DType::Float32, DType::BFloat16}) {
    for (bool rms : {false, true}) {
      SCOPED_TRACE(std::string(loom::dtype_name(dtype)) + (rms ? " rms" : ""));
      double tol = dtype == DType::Float64 ? kTol64 : dtype == DType::Float32 ? kTol32 : 1e-2;
      Tensor x = random({3, 4, 5}, dtype, 1), w = random({4, 5}, dtype, 2), b = random({4, 5}, dtype, 3);
      std::vector<Tensor> in{x, w};
      if (!rms) in.push_back(b);
      Attrs attrs = layer_norm_attrs(2, true, !rms, rms);
      expect_composite_matches_kernel("native_layer_norm", in, attrs, tol);
      std::vector<Tensor> fwd = loom::dispatch(Registry::instance().op("native_layer_norm"), in, attrs);
      Tensor g = random({3, 4, 5}, dtype, 4);
      Attrs back = Attrs().set("normalized_dims", int64_t(2)).set("has_weight", true).set("rms", rms);
      expect_composite_matches_kernel("layer_norm_backward", {g, x, fwd[1], fwd[2], w}, back, tol);
    }
  }
  // Every dim normalized, no affine parameters.
  Tensor x = random({6}, DType::Float64, 5);
  expect_composite_matches_kernel("native_layer_norm", {x}, layer_norm_attrs(1, false, false, false), kTol64);
  std::vector<Tensor> fwd =
      loom::dispatch(Registry::instance().op("native_layer_norm"), {x}, layer_norm_attrs(1, false, false, false));
  expect_composite_matches_kernel(
      "layer_norm_backward", {random({6}, DType::Float64, 6), x, fwd[1], fwd[2]},
      Attrs().set("normalized_dims", int64_t(1)).set("has_weight", false).set("rms", false), kTol64);
}

TEST(Composites, CrossEntropyLossAndBackward) {
  Tensor x = random({6, 5}, DType::Float64, 7), w = loom::abs(random({5}, DType::Float64, 8));
  std::vector<int64_t> targets{1, 4, -100, 0, 2, 2};
  Tensor t = loom::from_blob_copy(targets.data(), {6}, DType::Int64);
  for (std::string reduction : {"none", "sum", "mean"})
    for (double smoothing : {0.0, 0.2})
      for (bool weighted : {false, true}) {
        SCOPED_TRACE(reduction + " smoothing " + std::to_string(smoothing) + (weighted ? " weighted" : ""));
        Attrs attrs = Attrs()
                          .set("ignore_index", int64_t(-100))
                          .set("reduction", reduction)
                          .set("label_smoothing", smoothing)
                          .set("has_weight", weighted);
        std::vector<Tensor> in{x, t};
        if (weighted) in.push_back(w);
        expect_composite_matches_kernel("cross_entropy_loss", in, attrs, kTol64);
        std::vector<Tensor> fwd = loom::dispatch(Registry::instance().op("cross_entropy_loss"), in, attrs);
        Tensor g = reduction == "none" ? random({6}, DType::Float64, 9) : loom::full({}, 0.7, DType::Float64);
        std::vector<Tensor> back_in{g, x, t, fwd[1], fwd[2]};
        if (weighted) back_in.push_back(w);
        expect_composite_matches_kernel("cross_entropy_backward", back_in, attrs, kTol64);
      }
  // An ignore_index inside the class range.
  Attrs attrs = Attrs()
                    .set("ignore_index", int64_t(2))
                    .set("reduction", std::string("mean"))
                    .set("label_smoothing", 0.1)
                    .set("has_weight", false);
  std::vector<int64_t> in_range{1, 4, 2, 0, 2, 3};
  Tensor t2 = loom::from_blob_copy(in_range.data(), {6}, DType::Int64);
  expect_composite_matches_kernel("cross_entropy_loss", {loom::to_dtype(x, DType::Float32), t2}, attrs, kTol32);
}

TEST(Composites, CrossEntropyLossRaisesForTargetsOutOfRange) {
  Tensor x = random({2, 3}, DType::Float64, 10);
  std::vector<int64_t> targets{1, 3};
  Tensor t = loom::from_blob_copy(targets.data(), {2}, DType::Int64);
  Attrs attrs = Attrs()
                    .set("ignore_index", int64_t(-100))
                    .set("reduction", std::string("mean"))
                    .set("label_smoothing", 0.0)
                    .set("has_weight", false);
  KernelMask mask("cross_entropy_loss");
  try {
    loom::dispatch(Registry::instance().op("cross_entropy_loss"), {x, t}, attrs);
    FAIL() << "expected an IndexError";
  } catch (const loom::Error& e) {
    EXPECT_EQ(e.kind(), loom::ErrorKind::Index);
    EXPECT_NE(std::string(e.what()).find("Target 3 is out of bounds for 3 classes"), std::string::npos) << e.what();
  }
}

TEST(Composites, FlashAttentionAndBackward) {
  Tensor q = random({2, 3, 4}, DType::Float32, 11), k = random({2, 5, 4}, DType::Float32, 12);
  Tensor v = random({2, 5, 6}, DType::Float32, 13);
  // A bool mask with one fully masked row (its output is 0 and its lse -inf), and a float mask.
  std::vector<uint8_t> keep(2 * 3 * 5, 1);
  for (int j = 0; j < 5; ++j) keep[5 + j] = 0;
  keep[17] = keep[23] = 0;
  Tensor bool_mask = loom::to_dtype(loom::from_blob_copy(keep.data(), {2, 3, 5}, DType::UInt8), DType::Bool);
  Tensor float_mask = random({2, 3, 5}, DType::Float32, 14);
  struct Case {
    const char* name;
    Tensor mask;
    bool causal;
  };
  for (const Case& c : {Case{"plain", Tensor(), false}, Case{"causal", Tensor(), true},
                        Case{"bool mask", bool_mask, false}, Case{"float mask", float_mask, false}}) {
    SCOPED_TRACE(c.name);
    Attrs attrs = Attrs().set("scale", 0.4).set("is_causal", c.causal);
    std::vector<Tensor> in{q, k, v};
    if (c.mask.defined()) in.push_back(c.mask);
    expect_composite_matches_kernel("_flash_attention", in, attrs, kTol32);
    std::vector<Tensor> fwd = loom::dispatch(Registry::instance().op("_flash_attention"), in, attrs);
    std::vector<Tensor> back_in{random({2, 3, 6}, DType::Float32, 15), q, k, v, fwd[0], fwd[1]};
    if (c.mask.defined()) back_in.push_back(c.mask);
    expect_composite_matches_kernel("_flash_attention_backward", back_in, attrs, kTol32);
  }
  // No keys: out 0, lse -inf.
  expect_composite_matches_kernel("_flash_attention", {q, random({2, 0, 4}, DType::Float32, 16),
                                                       random({2, 0, 6}, DType::Float32, 17)},
                                  Attrs().set("scale", 0.5).set("is_causal", false), kTol32);
}

TEST(Composites, Conv2dAndBackward) {
  Tensor x = random({2, 4, 7, 6}, DType::Float64, 18), w = random({6, 2, 3, 2}, DType::Float64, 19);
  Tensor b = random({6}, DType::Float64, 20);
  Attrs attrs = Attrs()
                    .set("stride", Shape{2, 1})
                    .set("padding", Shape{1, 0, 2, 1})
                    .set("dilation", Shape{1, 2})
                    .set("groups", int64_t(2));
  expect_composite_matches_kernel("conv2d", {x, w, b}, attrs, kTol64);
  expect_composite_matches_kernel("conv2d", {x, w}, attrs, kTol64);
  expect_composite_matches_kernel("conv2d", {loom::to_dtype(x, DType::Float32), loom::to_dtype(w, DType::Float32)},
                                  attrs, kTol32);
  Tensor out = loom::dispatch(Registry::instance().op("conv2d"), {x, w, b}, attrs)[0];
  Tensor g = random(out.sizes(), DType::Float64, 21);
  Attrs all = attrs;
  all.set("output_mask", Shape{1, 1, 1});
  expect_composite_matches_kernel("conv2d_backward", {g, x, w}, all, kTol64);
  Attrs some = attrs;
  some.set("output_mask", Shape{0, 1, 0});
  expect_composite_matches_kernel("conv2d_backward", {g, x, w}, some, kTol64, {1});
}

TEST(Composites, NativeBatchNormAndBackward) {
  for (Shape shape : {Shape{5, 3}, Shape{4, 3, 6}, Shape{2, 3, 4, 5}}) {
    SCOPED_TRACE(loom::shape_str(shape));
    Tensor x = random(shape, DType::Float64, 22);
    Tensor w = random({3}, DType::Float64, 23), b = random({3}, DType::Float64, 24);
    Attrs attrs = Attrs().set("eps", 1e-5);
    expect_composite_matches_kernel("native_batch_norm", {x, w, b}, attrs, kTol64);
    std::vector<Tensor> fwd = loom::dispatch(Registry::instance().op("native_batch_norm"), {x, w, b}, attrs);
    Tensor g = random(shape, DType::Float64, 25);
    expect_composite_matches_kernel("native_batch_norm_backward", {g, x, w, fwd[1], fwd[2]},
                                    Attrs().set("output_mask", Shape{1, 1, 1}), kTol64);
    expect_composite_matches_kernel("native_batch_norm_backward", {g, x, w, fwd[1], fwd[2]},
                                    Attrs().set("output_mask", Shape{1, 0, 1}), kTol64, {0, 2});
  }
}

TEST(Composites, SoftmaxFamily) {
  Tensor x = random({3, 7, 2}, DType::Float64, 26);
  std::vector<double> special{0.0, -INFINITY, 1.0, -INFINITY, -INFINITY, -INFINITY};
  Tensor rows = loom::from_blob_copy(special.data(), {2, 3}, DType::Float64);
  for (const char* op : {"softmax", "log_softmax"}) {
    SCOPED_TRACE(op);
    for (int64_t dim : {0, 1, 2})
      expect_composite_matches_kernel(op, {x}, Attrs().set("dim", dim).set("op", std::string(op)), kTol64);
    expect_composite_matches_kernel(op, {rows}, Attrs().set("dim", int64_t(1)).set("op", std::string(op)), kTol64);
    expect_composite_matches_kernel(op, {loom::full({}, 2.0, DType::Float32)},
                                    Attrs().set("dim", int64_t(0)).set("op", std::string(op)), kTol32);
  }
  Tensor g = random({3, 7, 2}, DType::Float64, 27);
  Tensor y = loom::softmax(x, 1), logy = loom::log_softmax(x, 1);
  expect_composite_matches_kernel("softmax_backward", {g, y}, Attrs().set("dim", int64_t(1)), kTol64);
  expect_composite_matches_kernel("log_softmax_backward", {g, logy}, Attrs().set("dim", int64_t(1)), kTol64);
}

TEST(Composites, ActivationBackwards) {
  Tensor x = random({4, 9}, DType::Float64, 28), g = random({4, 9}, DType::Float64, 29);
  expect_composite_matches_kernel("relu_backward", {g, loom::relu(x)}, Attrs(), kTol64);
  expect_composite_matches_kernel("gelu_backward", {g, x}, Attrs(), kTol64);
  Tensor x32 = loom::to_dtype(x, DType::Float32), g32 = loom::to_dtype(g, DType::Float32);
  expect_composite_matches_kernel("relu_backward", {g32, loom::relu(x32)}, Attrs(), kTol32);
  expect_composite_matches_kernel("gelu_backward", {g32, x32}, Attrs(), kTol32);
}

}  // namespace
