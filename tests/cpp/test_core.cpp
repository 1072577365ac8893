// The C++ API without Python: tensors, views, broadcasting, autograd, modes, the registry and error messages.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "loom/autograd/node.h"
#include "loom/loom.h"

namespace {

using loom::DType;
using loom::Shape;
using loom::Tensor;

Tensor from_vector(const std::vector<double>& values, const Shape& shape, DType dtype = DType::Float64) {
  Tensor t = loom::from_blob_copy(values.data(), shape, DType::Float64);
  return loom::to_dtype(t, dtype);
}

std::vector<double> values_of(const Tensor& t) {
  Tensor c = loom::contiguous(loom::to_dtype(t, DType::Float64));
  return std::vector<double>(c.data<double>(), c.data<double>() + c.numel());
}

loom::ErrorKind kind_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const loom::Error& e) {
    return e.kind();
  }
  ADD_FAILURE() << "expected a loom::Error";
  return loom::ErrorKind::Runtime;
}

std::string message_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const loom::Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected a loom::Error";
  return "";
}

TEST(Tensor, Creation) {
  Tensor z = loom::zeros({2, 3});
  EXPECT_EQ(z.dtype(), DType::Float32);
  EXPECT_EQ(z.sizes(), (Shape{2, 3}));
  EXPECT_EQ(z.strides(), (Shape{3, 1}));
  EXPECT_EQ(z.numel(), 6);
  EXPECT_TRUE(z.is_contiguous());
  for (double v : values_of(z)) EXPECT_EQ(v, 0.0);
  Tensor f = loom::full({4}, loom::Scalar(2.5), DType::Float64);
  EXPECT_EQ(values_of(f), (std::vector<double>{2.5, 2.5, 2.5, 2.5}));
  Tensor a = loom::arange(loom::Scalar(int64_t(0)), loom::Scalar(int64_t(5)), loom::Scalar(int64_t(2)));
  EXPECT_EQ(a.dtype(), DType::Int64);
  EXPECT_EQ(values_of(a), (std::vector<double>{0, 2, 4}));
  Tensor e = loom::eye(2, std::nullopt, DType::Int32);
  EXPECT_EQ(values_of(e), (std::vector<double>{1, 0, 0, 1}));
  EXPECT_EQ(loom::ones({}).dim(), 0);
  EXPECT_EQ(loom::ones({}).item().to_double(), 1.0);
  EXPECT_EQ(loom::zeros({0, 4}).numel(), 0);
}

TEST(Tensor, CreationErrors) {
  EXPECT_EQ(kind_of([] { loom::zeros({-1}); }), loom::ErrorKind::Value);
  EXPECT_EQ(kind_of([] { loom::empty({int64_t(1) << 62, int64_t(1) << 62}); }), loom::ErrorKind::Value);
  EXPECT_EQ(kind_of([] { loom::ones({2, 2}).item(); }), loom::ErrorKind::Value);
  EXPECT_EQ(kind_of([] { loom::arange(loom::Scalar(int64_t(0)), loom::Scalar(int64_t(5)), loom::Scalar(int64_t(0))); }),
            loom::ErrorKind::Value);
}

TEST(Tensor, ViewsShareStorage) {
  Tensor base = from_vector({0, 1, 2, 3, 4, 5}, {2, 3});
  Tensor t = loom::transpose(base, 0, 1);
  EXPECT_EQ(t.sizes(), (Shape{3, 2}));
  EXPECT_EQ(t.strides(), (Shape{1, 3}));
  EXPECT_FALSE(t.is_contiguous());
  EXPECT_EQ(t.storage(), base.storage());
  EXPECT_TRUE(t.is_view());
  Tensor row = loom::select(base, 0, 1);
  EXPECT_EQ(row.offset(), 3);
  EXPECT_EQ(row.data_ptr(), static_cast<char*>(base.data_ptr()) + 3 * sizeof(double));
  Tensor narrow = loom::narrow(base, 1, 1, 2);
  loom::fill_(narrow, loom::Scalar(-1.0));
  EXPECT_EQ(values_of(base), (std::vector<double>{0, -1, -1, 3, -1, -1}));
  EXPECT_EQ(values_of(t), (std::vector<double>{0, 3, -1, -1, -1, -1}));
  EXPECT_EQ(base.version(), t.version());  // one version counter per storage
  Tensor r = loom::reshape(t, {6});        // not viewable: a copy
  EXPECT_NE(r.storage(), base.storage());
  EXPECT_EQ(kind_of([&] { loom::view(t, {6}); }), loom::ErrorKind::Runtime);
  Tensor e = loom::expand(loom::select(base, 1, 0), {4, 2});
  EXPECT_EQ(e.strides(), (Shape{0, 3}));
}

TEST(Tensor, BroadcastingAdd) {
  Tensor a = from_vector({1, 2, 3}, {3, 1});
  Tensor b = from_vector({10, 20}, {1, 2});
  Tensor c = loom::add(a, b);
  EXPECT_EQ(c.sizes(), (Shape{3, 2}));
  EXPECT_EQ(values_of(c), (std::vector<double>{11, 21, 12, 22, 13, 23}));
  Tensor d = loom::add(a, b, loom::Scalar(2.0));  // a + 2 b
  EXPECT_EQ(values_of(d), (std::vector<double>{21, 41, 22, 42, 23, 43}));
  Tensor i = loom::add(loom::ones({2}, DType::UInt8), loom::ones({2}, DType::Int8));
  EXPECT_EQ(i.dtype(), DType::Int16);
  EXPECT_EQ(loom::promote_types(DType::Int64, DType::Float16), DType::Float16);
}

TEST(Autograd, SmallExpressionMatchesHandDerivative) {
  // f(x, y) = sum(x * y + exp(x) / y); df/dx = y + exp(x) / y, df/dy = x - exp(x) / y^2
  std::vector<double> xs{0.5, -1.0, 2.0}, ys{1.5, 2.0, -0.5};
  Tensor x = from_vector(xs, {3});
  Tensor y = from_vector(ys, {3});
  x.set_requires_grad(true);
  y.set_requires_grad(true);
  Tensor f = loom::sum(loom::add(loom::mul(x, y), loom::div(loom::exp(x), y)));
  EXPECT_TRUE(f.requires_grad());
  EXPECT_FALSE(f.is_leaf());
  ASSERT_NE(f.grad_fn(), nullptr);
  EXPECT_EQ(f.grad_fn()->name(), "sum");
  f.backward();
  std::vector<double> gx = values_of(x.grad()), gy = values_of(y.grad());
  for (size_t i = 0; i < xs.size(); ++i) {
    EXPECT_NEAR(gx[i], ys[i] + std::exp(xs[i]) / ys[i], 1e-12);
    EXPECT_NEAR(gy[i], xs[i] - std::exp(xs[i]) / (ys[i] * ys[i]), 1e-12);
  }
  // A second backward without retain_graph raises.
  EXPECT_EQ(kind_of([&] { f.backward(); }), loom::ErrorKind::Runtime);
}

TEST(Autograd, GradAndNoGrad) {
  Tensor x = from_vector({1.0, 2.0}, {2});
  x.set_requires_grad(true);
  Tensor y = loom::sum(loom::mul(loom::mul(x, x), x));  // d/dx = 3 x^2, d2/dx2 = 6 x
  std::vector<Tensor> g = loom::autograd::grad({y}, {x}, {}, false, true, false);
  EXPECT_EQ(values_of(g[0]), (std::vector<double>{3, 12}));
  std::vector<Tensor> gg = loom::autograd::grad({loom::sum(g[0])}, {x}, {}, false, false, false);
  EXPECT_EQ(values_of(gg[0]), (std::vector<double>{6, 12}));
  {
    loom::NoGradGuard no_grad;
    EXPECT_FALSE(loom::mul(x, 2.0).requires_grad());
  }
  EXPECT_TRUE(loom::mul(x, 2.0).requires_grad());
  EXPECT_EQ(kind_of([] { loom::ones({2}, DType::Int64).set_requires_grad(true); }), loom::ErrorKind::Type);
}

// A mode that counts the op calls it sees (the hook autocast and the compiler's tracer use).
class CountingMode final : public loom::Mode {
 public:
  std::map<std::string, int> calls;
  std::optional<std::vector<Tensor>> on_call(const loom::OpDef& op, std::vector<Tensor>&, loom::Attrs&) override {
    ++calls[op.name];
    return std::nullopt;
  }
};

// A mode that replaces every "neg" with a constant result without running the kernel.
class ReplacingMode final : public loom::Mode {
 public:
  std::optional<std::vector<Tensor>> on_call(const loom::OpDef& op, std::vector<Tensor>& inputs,
                                             loom::Attrs&) override {
    if (op.name != "neg") return std::nullopt;
    return std::vector<Tensor>{loom::full(inputs[0].sizes(), loom::Scalar(42.0), inputs[0].dtype())};
  }
};

TEST(Registry, ModeSeesEveryOpCall) {
  Tensor a = loom::ones({2, 2});
  CountingMode mode;
  {
    loom::ModeGuard guard(&mode);
    Tensor b = loom::add(a, a);
    Tensor c = loom::mul(b, b);
    loom::sum(c);
    loom::add(c, b);
  }
  EXPECT_EQ(mode.calls["add"], 2);
  EXPECT_EQ(mode.calls["mul"], 1);
  EXPECT_EQ(mode.calls["sum"], 1);
  loom::add(a, a);  // after the guard: not counted
  EXPECT_EQ(mode.calls["add"], 2);

  ReplacingMode replace;
  loom::ModeGuard guard(&replace);
  EXPECT_EQ(values_of(loom::neg(a)), (std::vector<double>{42, 42, 42, 42}));
  EXPECT_EQ(values_of(loom::add(a, a)), (std::vector<double>{2, 2, 2, 2}));
}

TEST(Registry, UnknownOpRaisesNotImplemented) {
  auto& registry = loom::Registry::instance();
  EXPECT_EQ(registry.find("no_such_op"), nullptr);
  EXPECT_EQ(kind_of([&] { registry.op("no_such_op"); }), loom::ErrorKind::NotImplemented);
  EXPECT_NE(message_of([&] { registry.op("no_such_op"); }).find("no_such_op"), std::string::npos);
  const loom::OpDef& add = registry.op("add");
  EXPECT_EQ(add.name, "add");
  std::vector<std::string> names = registry.op_names();
  EXPECT_NE(std::find(names.begin(), names.end(), "mul"), names.end());
}

TEST(Errors, MessagesNameOpAndShapes) {
  std::string m = message_of([] { loom::add(loom::ones({2, 3}), loom::ones({4, 5})); });
  EXPECT_NE(m.find("add"), std::string::npos) << m;
  EXPECT_NE(m.find("(2, 3)"), std::string::npos) << m;
  EXPECT_NE(m.find("(4, 5)"), std::string::npos) << m;
  EXPECT_EQ(kind_of([] { loom::add(loom::ones({2, 3}), loom::ones({4, 5})); }), loom::ErrorKind::Value);
  std::string v = message_of([] { loom::view(loom::ones({2, 3}), {7}); });
  EXPECT_NE(v.find("view"), std::string::npos) << v;
  EXPECT_NE(v.find("(2, 3)"), std::string::npos) << v;
  EXPECT_EQ(kind_of([] { loom::select(loom::ones({2, 3}), 2, 0); }), loom::ErrorKind::Index);
  std::string s = message_of([] { loom::sub(loom::ones({2}, DType::Bool), loom::ones({2}, DType::Bool)); });
  EXPECT_NE(s.find("sub"), std::string::npos) << s;
  EXPECT_NE(s.find("bool"), std::string::npos) << s;
}

TEST(Tensor, InplaceOnNonLeafKeepsGradients) {
  Tensor x = from_vector({1.0, -2.0, 3.0}, {3});
  x.set_requires_grad(true);
  Tensor y = loom::mul(x, 2.0);
  loom::mul_(y, loom::Scalar(3.0));  // y = 6 x
  Tensor v = loom::narrow(y, 0, 0, 2);
  loom::add_(v, loom::Scalar(1.0));  // a view of a non-leaf
  loom::sum(loom::mul(y, y)).backward();
  // d/dx sum((6x + [1,1,0])^2) = 12 (6x + [1,1,0])
  EXPECT_EQ(values_of(x.grad()), (std::vector<double>{12 * 7, 12 * -11, 12 * 18}));
}

TEST(Tensor, Repr) {
  EXPECT_EQ(from_vector({1, 2.5}, {2}, DType::Float32).str(), "tensor([1.0000, 2.5000])");
  EXPECT_EQ(loom::ones({2}, DType::Int32).str(), "tensor([1, 1], dtype=loom.int32)");
  EXPECT_EQ(loom::zeros({0, 3}).str(), "tensor([], size=(0, 3))");
}

}  // namespace

namespace {

// The ValueError-kind message of `fn`, or "" when it does not throw loom::Error of kind Value.
template <class Fn>
std::string value_error(Fn fn) {
  try {
    fn();
  } catch (const loom::Error& e) {
    return e.kind() == loom::ErrorKind::Value ? e.what() : "";
  }
  return "";
}

}  // namespace

TEST(Checked, ArithmeticRaisesOnOverflowNamingTheOp) {
  constexpr int64_t kMax = INT64_MAX;
  EXPECT_EQ(loom::checked_mul(1 << 20, 1 << 20, "op", "x"), int64_t(1) << 40);
  EXPECT_EQ(loom::checked_add(kMax - 1, 1, "op", "x"), kMax);
  EXPECT_EQ(loom::checked_sub(INT64_MIN + 1, 1, "op", "x"), INT64_MIN);
  EXPECT_NE(value_error([] { loom::checked_mul(int64_t(1) << 32, int64_t(1) << 31, "avg_pool2d", "the size"); })
                .find("avg_pool2d: the size overflows int64"),
            std::string::npos);
  EXPECT_NE(value_error([&] { loom::checked_add(kMax, 1, "op", "x"); }), "");
  EXPECT_NE(value_error([] { loom::checked_sub(INT64_MIN, 1, "op", "x"); }), "");
  EXPECT_NE(value_error([] { loom::checked_geometry(int64_t(1) << 31, "conv2d", "stride"); }).find("conv2d: stride"),
            std::string::npos);
  EXPECT_EQ(loom::checked_geometry(INT32_MAX, "conv2d", "stride"), INT32_MAX);
}

TEST(Checked, SlidingWindowsMatchesTheClosedForm) {
  // (size + pads - dilation * (kernel - 1) - 1) / stride + 1, or 0 when the window does not fit.
  EXPECT_EQ(loom::sliding_windows(4, 0, 0, 3, 1, 1, "op"), 2);
  EXPECT_EQ(loom::sliding_windows(5, 1, 1, 3, 2, 2, "op"), 2);
  EXPECT_EQ(loom::sliding_windows(2, 0, 0, 3, 1, 1, "op"), 0);
  EXPECT_EQ(loom::sliding_windows(4, 0, 0, 3, int64_t(1) << 31, 1, "op"), 0);
  EXPECT_NE(value_error([] { loom::sliding_windows(INT64_MAX - 1, 2, 0, 1, 1, 1, "unfold"); }).find("unfold"),
            std::string::npos);
}

TEST(Checked, ShapesAndViews) {
  EXPECT_EQ(loom::numel({int64_t(1) << 62, int64_t(1) << 62, 0}), 0);
  EXPECT_NE(value_error([] { loom::contiguous_strides({0, int64_t(1) << 62, int64_t(1) << 62}); }), "");
  EXPECT_NE(value_error([] { Tensor::empty(Shape(65, 1), DType::Float32); }).find("at most 64 dimensions"),
            std::string::npos);
  EXPECT_EQ(Tensor::empty(Shape(64, 1), DType::Float32).dim(), 64);
  Tensor base = Tensor::empty({6}, DType::Float32);
  EXPECT_NE(value_error([&] { Tensor::make_view(base, {2}, {INT64_MAX}, 100); }).find("as_strided"),
            std::string::npos);
  EXPECT_NE(value_error([&] { Tensor::make_view(base, {2, 3}, {INT64_MAX - 1, 1}, 0); }), "");
  EXPECT_EQ(Tensor::make_view(base, {2, 2}, {3, 1}, 1).numel(), 4);
  Tensor scalar = Tensor::empty({}, DType::Float32);
  EXPECT_THROW(scalar.size(0), loom::Error);
  EXPECT_THROW(scalar.stride(-1), loom::Error);
}
