// Elementwise functions, methods, Python operators and in-place variants.
#include "convert.h"

namespace loom::python {

Tensor as_tensor_arg(nb::handle value, const Tensor& like, const char* op) {
  if (nb::isinstance<Tensor>(value)) return nb::cast<Tensor>(value);
  Scalar s;
  if (!nb::try_cast<Scalar>(value, s))
    fail(ErrorKind::Type, op, ": expected a tensor or a number, got '", nb::inst_name(value).c_str(), "'");
  return wrapped_scalar(s, Device());  // numbers stay on the host (see number() in ops/elementwise.cpp)
}

namespace {

using BinaryFn = Tensor (*)(const Tensor&, const Tensor&);

bool is_operand(nb::handle h) {
  Scalar s;
  return nb::isinstance<Tensor>(h) || nb::try_cast<Scalar>(h, s);
}

// op(input, other) where either may be a number (but not both).
Tensor call_binary(BinaryFn fn, nb::handle a, nb::handle b, const char* op) {
  if (nb::isinstance<Tensor>(a)) {
    const Tensor& ta = nb::cast<const Tensor&>(a);
    return fn(ta, as_tensor_arg(b, ta, op));
  }
  LOOM_CHECK(nb::isinstance<Tensor>(b), Type, op, ": expected at least one tensor argument, got '",
             nb::inst_name(a).c_str(), "' and '", nb::inst_name(b).c_str(), "'");
  const Tensor& tb = nb::cast<const Tensor&>(b);
  return fn(as_tensor_arg(a, tb, op), tb);
}

#define LOOM_WRAP2(fn) +[](const Tensor& a, const Tensor& b) { return loom::fn(a, b); }

struct BinaryEntry {
  const char* name;
  BinaryFn fn;
  const char* dunder;   // Python operator, or nullptr
  const char* rdunder;  // reflected operator
  const char* idunder;  // in-place operator
};

const BinaryEntry kBinary[] = {
    {"mul", LOOM_WRAP2(mul), "__mul__", "__rmul__", "__imul__"},
    {"true_divide", LOOM_WRAP2(div), "__truediv__", "__rtruediv__", "__itruediv__"},
    {"floor_divide", LOOM_WRAP2(floor_divide), "__floordiv__", "__rfloordiv__", "__ifloordiv__"},
    {"remainder", LOOM_WRAP2(remainder), "__mod__", "__rmod__", "__imod__"},
    {"pow", LOOM_WRAP2(pow), "__pow__", "__rpow__", "__ipow__"},
    {"maximum", LOOM_WRAP2(maximum), nullptr, nullptr, nullptr},
    {"minimum", LOOM_WRAP2(minimum), nullptr, nullptr, nullptr},
    {"atan2", LOOM_WRAP2(atan2), nullptr, nullptr, nullptr},
    {"eq", LOOM_WRAP2(eq), "__eq__", nullptr, nullptr},
    {"ne", LOOM_WRAP2(ne), "__ne__", nullptr, nullptr},
    {"lt", LOOM_WRAP2(lt), "__lt__", nullptr, nullptr},
    {"le", LOOM_WRAP2(le), "__le__", nullptr, nullptr},
    {"gt", LOOM_WRAP2(gt), "__gt__", nullptr, nullptr},
    {"ge", LOOM_WRAP2(ge), "__ge__", nullptr, nullptr},
    {"logical_and", LOOM_WRAP2(logical_and), nullptr, nullptr, nullptr},
    {"logical_or", LOOM_WRAP2(logical_or), nullptr, nullptr, nullptr},
    {"logical_xor", LOOM_WRAP2(logical_xor), nullptr, nullptr, nullptr},
    {"bitwise_and", LOOM_WRAP2(bitwise_and), "__and__", "__rand__", "__iand__"},
    {"bitwise_or", LOOM_WRAP2(bitwise_or), "__or__", "__ror__", "__ior__"},
    {"bitwise_xor", LOOM_WRAP2(bitwise_xor), "__xor__", "__rxor__", "__ixor__"},
};

using UnaryFn = Tensor (*)(const Tensor&);
#define LOOM_WRAP1(fn) {#fn, +[](const Tensor& a) { return loom::fn(a); }}
const std::pair<const char*, UnaryFn> kUnary[] = {
    LOOM_WRAP1(neg),   LOOM_WRAP1(abs),        LOOM_WRAP1(sign),    LOOM_WRAP1(exp),         LOOM_WRAP1(expm1),
    LOOM_WRAP1(log),   LOOM_WRAP1(log1p),      LOOM_WRAP1(log2),    LOOM_WRAP1(sqrt),        LOOM_WRAP1(rsqrt),
    LOOM_WRAP1(sin),   LOOM_WRAP1(cos),        LOOM_WRAP1(tanh),    LOOM_WRAP1(sigmoid),     LOOM_WRAP1(erf),
    LOOM_WRAP1(reciprocal), LOOM_WRAP1(square), LOOM_WRAP1(floor),  LOOM_WRAP1(ceil),        LOOM_WRAP1(round),
    LOOM_WRAP1(trunc), LOOM_WRAP1(relu),       LOOM_WRAP1(silu),    LOOM_WRAP1(logical_not), LOOM_WRAP1(bitwise_not),
    LOOM_WRAP1(isnan), LOOM_WRAP1(isinf),      LOOM_WRAP1(isfinite),
};
#undef LOOM_WRAP1
#undef LOOM_WRAP2

Tensor clamp_any(const Tensor& t, nb::handle min, nb::handle max) {
  bool tensor_bounds = nb::isinstance<Tensor>(min) || nb::isinstance<Tensor>(max);
  if (tensor_bounds) {
    Tensor lo = min.is_none() ? Tensor() : as_tensor_arg(min, t, "clamp");
    Tensor hi = max.is_none() ? Tensor() : as_tensor_arg(max, t, "clamp");
    return clamp(t, lo, hi);
  }
  std::optional<Scalar> lo, hi;
  if (!min.is_none()) lo = cast_arg<Scalar>(min, "clamp", "min");
  if (!max.is_none()) hi = cast_arg<Scalar>(max, "clamp", "max");
  return clamp(t, lo, hi);
}

// x.mul_(y), x *= y, ...: the C++ in-place functions where they exist (they write straight into x when no graph
// is recorded), else computed out of place and committed.
Tensor& binary_inplace(Tensor& a, const Tensor& other, BinaryFn fn, const char* name) {
  if (std::string_view(name) == "mul") return mul_(a, other);
  if (std::string_view(name) == "true_divide") return div_(a, other);
  return detail::commit_inplace(a, fn(a, other), name);
}

}  // namespace

void bind_elementwise(nb::module_& m, nb::class_<Tensor>& cls) {
  for (const BinaryEntry& e : kBinary) {
    BinaryFn fn = e.fn;
    const char* name = e.name;
    m.def(name, [fn, name](nb::handle a, nb::handle b) { return call_binary(fn, a, b, name); }, nb::arg("input"),
          nb::arg("other"));
    cls.def(name, [fn, name](const Tensor& a, nb::handle b) { return fn(a, as_tensor_arg(b, a, name)); },
            nb::arg("other"));
    std::string inplace = std::string(name) + "_";
    cls.def(inplace.c_str(), [fn, name](Tensor& a, nb::handle b) -> Tensor& {
      return binary_inplace(a, as_tensor_arg(b, a, name), fn, name);
    }, nb::arg("other"), nb::rv_policy::reference);
    if (e.dunder)
      cls.def(e.dunder, [fn, name](const Tensor& a, nb::handle b) -> nb::object {
        if (!is_operand(b)) return nb::borrow(Py_NotImplemented);
        return nb::cast(fn(a, as_tensor_arg(b, a, name)));
      }, nb::is_operator());
    if (e.rdunder) {
      // Reflected arithmetic (2 - x): swap the operands. Comparisons need no reflection: Python mirrors them.
      cls.def(e.rdunder, [fn, name](const Tensor& a, nb::handle b) -> nb::object {
        if (!is_operand(b)) return nb::borrow(Py_NotImplemented);
        return nb::cast(fn(as_tensor_arg(b, a, name), a));
      }, nb::is_operator());
    }
    if (e.idunder)
      cls.def(e.idunder, [fn, name](Tensor& a, nb::handle b) -> nb::object {
        if (!is_operand(b)) return nb::borrow(Py_NotImplemented);
        binary_inplace(a, as_tensor_arg(b, a, name), fn, name);
        return nb::borrow(nb::find(a));
      }, nb::is_operator());
  }
  m.attr("multiply") = m.attr("mul");
  m.attr("divide") = m.attr("true_divide");
  m.attr("greater") = m.attr("gt");
  m.attr("less") = m.attr("lt");

  // add/sub take alpha; div takes rounding_mode.
  auto add_fn = [](const Tensor& a, nb::handle b, Scalar alpha) { return add(a, as_tensor_arg(b, a, "add"), alpha); };
  auto sub_fn = [](const Tensor& a, nb::handle b, Scalar alpha) { return sub(a, as_tensor_arg(b, a, "sub"), alpha); };
  auto div_fn = [](const Tensor& a, nb::handle b, std::optional<std::string> mode) {
    return div(a, as_tensor_arg(b, a, "div"), mode);
  };
  m.def("add", add_fn, nb::arg("input"), nb::arg("other"), nb::kw_only(), nb::arg("alpha") = Scalar(int64_t(1)));
  m.def("add", [](Scalar a, const Tensor& b, Scalar alpha) { return add(wrapped_scalar(a), b, alpha); },
        nb::arg("input"), nb::arg("other"), nb::kw_only(), nb::arg("alpha") = Scalar(int64_t(1)));
  cls.def("add", add_fn, nb::arg("other"), nb::kw_only(), nb::arg("alpha") = Scalar(int64_t(1)));
  m.def("sub", sub_fn, nb::arg("input"), nb::arg("other"), nb::kw_only(), nb::arg("alpha") = Scalar(int64_t(1)));
  m.def("sub", [](Scalar a, const Tensor& b, Scalar alpha) { return sub(wrapped_scalar(a), b, alpha); },
        nb::arg("input"), nb::arg("other"), nb::kw_only(), nb::arg("alpha") = Scalar(int64_t(1)));
  cls.def("sub", sub_fn, nb::arg("other"), nb::kw_only(), nb::arg("alpha") = Scalar(int64_t(1)));
  m.attr("subtract") = m.attr("sub");
  m.def("div", div_fn, nb::arg("input"), nb::arg("other"), nb::kw_only(), nb::arg("rounding_mode").none() = nb::none());
  m.def("div", [](Scalar a, const Tensor& b) { return div(wrapped_scalar(a), b); }, nb::arg("input"), nb::arg("other"));
  cls.def("div", div_fn, nb::arg("other"), nb::kw_only(), nb::arg("rounding_mode").none() = nb::none());
  cls.def("add_", [](Tensor& a, nb::handle b, Scalar alpha) -> Tensor& {
    return add_(a, as_tensor_arg(b, a, "add_"), alpha);
  }, nb::arg("other"), nb::kw_only(), nb::arg("alpha") = Scalar(int64_t(1)), nb::rv_policy::reference);
  cls.def("sub_", [](Tensor& a, nb::handle b, Scalar alpha) -> Tensor& {
    return sub_(a, as_tensor_arg(b, a, "sub_"), alpha);
  }, nb::arg("other"), nb::kw_only(), nb::arg("alpha") = Scalar(int64_t(1)), nb::rv_policy::reference);
  cls.def("div_", [](Tensor& a, nb::handle b, std::optional<std::string> mode) -> Tensor& {
    if (!mode) return div_(a, as_tensor_arg(b, a, "div_"));
    return detail::commit_inplace(a, div(a, as_tensor_arg(b, a, "div_"), mode), "div_");
  }, nb::arg("other"), nb::kw_only(), nb::arg("rounding_mode").none() = nb::none(), nb::rv_policy::reference);
  cls.def("__add__", [](const Tensor& a, nb::handle b) -> nb::object {
    if (!is_operand(b)) return nb::borrow(Py_NotImplemented);
    return nb::cast(add(a, as_tensor_arg(b, a, "add")));
  }, nb::is_operator());
  cls.def("__radd__", [](const Tensor& a, nb::handle b) -> nb::object {
    if (!is_operand(b)) return nb::borrow(Py_NotImplemented);
    return nb::cast(add(as_tensor_arg(b, a, "add"), a));
  }, nb::is_operator());
  cls.def("__iadd__", [](Tensor& a, nb::handle b) -> nb::object {
    if (!is_operand(b)) return nb::borrow(Py_NotImplemented);
    add_(a, as_tensor_arg(b, a, "add_"));
    return nb::borrow(nb::find(a));
  }, nb::is_operator());
  cls.def("__sub__", [](const Tensor& a, nb::handle b) -> nb::object {
    if (!is_operand(b)) return nb::borrow(Py_NotImplemented);
    return nb::cast(sub(a, as_tensor_arg(b, a, "sub")));
  }, nb::is_operator());
  cls.def("__rsub__", [](const Tensor& a, nb::handle b) -> nb::object {
    if (!is_operand(b)) return nb::borrow(Py_NotImplemented);
    return nb::cast(sub(as_tensor_arg(b, a, "sub"), a));
  }, nb::is_operator());
  cls.def("__isub__", [](Tensor& a, nb::handle b) -> nb::object {
    if (!is_operand(b)) return nb::borrow(Py_NotImplemented);
    sub_(a, as_tensor_arg(b, a, "sub_"));
    return nb::borrow(nb::find(a));
  }, nb::is_operator());

  for (const auto& [name, fn] : kUnary) {
    UnaryFn f = fn;
    m.def(name, f, nb::arg("input"));
    cls.def(name, f);
    std::string inplace = std::string(name) + "_";
    const char* label = name;
    const OpDef* def = Registry::instance().find(name);  // exp_, relu_, ...: straight into a when possible
    cls.def(inplace.c_str(), [f, label, def](Tensor& a) -> Tensor& {
      if (def && detail::try_inplace(a, *def, {a})) return a;
      return detail::commit_inplace(a, f(a), label);
    }, nb::rv_policy::reference);
  }
  m.attr("negative") = m.attr("neg");
  m.attr("absolute") = m.attr("abs");
  cls.def("__neg__", [](const Tensor& a) { return neg(a); });
  cls.def("__abs__", [](const Tensor& a) { return abs(a); });
  cls.def("__invert__", [](const Tensor& a) { return bitwise_not(a); });
  cls.def("__pos__", [](const Tensor& a) { return a; });

  m.def("leaky_relu", &leaky_relu, nb::arg("input"), nb::arg("negative_slope") = 0.01);
  m.def("gelu", &gelu, nb::arg("input"), nb::kw_only(), nb::arg("approximate") = "none");
  m.def("softplus", &softplus, nb::arg("input"), nb::arg("beta") = 1.0, nb::arg("threshold") = 20.0);
  for (const char* name : {"clamp", "clip"}) {
    m.def(name, &clamp_any, nb::arg("input"), nb::arg("min").none() = nb::none(), nb::arg("max").none() = nb::none());
    cls.def(name, &clamp_any, nb::arg("min").none() = nb::none(), nb::arg("max").none() = nb::none());
    cls.def((std::string(name) + "_").c_str(), [](Tensor& t, nb::handle min, nb::handle max) -> Tensor& {
      return detail::commit_inplace(t, clamp_any(t, min, max), "clamp_");
    }, nb::arg("min").none() = nb::none(), nb::arg("max").none() = nb::none(), nb::rv_policy::reference);
  }
  m.def("where", [](const Tensor& condition, nb::handle a, nb::handle b) {
    const Tensor& like = nb::isinstance<Tensor>(a) ? nb::cast<const Tensor&>(a) : condition;
    return where(condition, as_tensor_arg(a, like, "where"), as_tensor_arg(b, like, "where"));
  }, nb::arg("condition"), nb::arg("input"), nb::arg("other"));
  cls.def("where", [](const Tensor& self, const Tensor& condition, nb::handle other) {
    return where(condition, self, as_tensor_arg(other, self, "where"));
  }, nb::arg("condition"), nb::arg("other"));
  cls.def("fill_", [](Tensor& t, Scalar v) -> Tensor& { return fill_(t, v); }, nb::arg("value"), nb::rv_policy::reference);
  cls.def("zero_", [](Tensor& t) -> Tensor& { return zero_(t); }, nb::rv_policy::reference);
}

}  // namespace loom::python
