// Reductions, scans and the softmax family as functions and methods (dim may be an int, a list or None).
#include <cmath>

#include "convert.h"

namespace loom::python {

// dim=None -> all dims; dim=int (or a 0-d integer tensor) -> [int]; dim=sequence -> list.
std::vector<int64_t> dims_arg(nb::handle dim, const char* op) {
  if (dim.is_none()) return {};
  if (PyBool_Check(dim.ptr())) fail(ErrorKind::Type, op, ": dim must be an int or a sequence of ints, got bool");
  return int_list_arg(dim, op, "dim");
}

// torch.return_types-like named tuples: (values, indices). Also used by sort.cpp.
nb::object reduce_family_result_pair(const char* type_name, const char* first, const char* second, const Tensor& a, const Tensor& b) {
  static nb::dict* types = new nb::dict();  // leaked on purpose: lives until interpreter exit
  nb::str key(type_name);
  if (!types->contains(key)) {
    nb::object namedtuple = nb::module_::import_("collections").attr("namedtuple");
    (*types)[key] = namedtuple(key, nb::make_tuple(nb::str(first), nb::str(second)));
  }
  return (*types)[key](nb::cast(a), nb::cast(b));
}

namespace {

nb::object max_any(const char* op, const Tensor& t, nb::handle dim, bool keepdim, nb::handle other) {
  bool is_max = op[1] == 'a';
  if (!other.is_none() || nb::isinstance<Tensor>(dim)) {
    nb::handle b = other.is_none() ? dim : other;
    Tensor tb = as_tensor_arg(b, t, op);
    return nb::cast(is_max ? maximum(t, tb) : minimum(t, tb));
  }
  if (dim.is_none()) return nb::cast(is_max ? max(t) : min(t));
  int64_t d = 0;
  LOOM_CHECK(!PyBool_Check(dim.ptr()) && nb::try_cast(dim, d), Type, op, ": dim must be an int, got '",
             nb::inst_name(dim).c_str(), "'");
  auto [values, indices] = is_max ? max(t, d, keepdim) : min(t, d, keepdim);
  return reduce_family_result_pair(op, "values", "indices", values, indices);
}

// var/std accept (dim, unbiased, keepdim, *, correction) and the legacy var(input, unbiased).
double correction_arg(nb::handle& dim, std::optional<bool> unbiased, std::optional<double> correction, const char* op) {
  if (PyBool_Check(dim.ptr())) {
    LOOM_CHECK(!unbiased, Type, op, ": got unbiased twice");
    unbiased = dim.ptr() == Py_True;
    dim = nb::none();
  }
  LOOM_CHECK(!(unbiased && correction), Value, op, ": cannot pass both unbiased and correction");
  if (correction) return *correction;
  return unbiased.value_or(true) ? 1.0 : 0.0;
}

double p_arg(nb::handle p) {
  if (p.is_none()) return 2.0;
  if (nb::isinstance<nb::str>(p)) {
    std::string name = nb::cast<std::string>(p);
    if (name == "fro") return 2.0;
    if (name == "nuc") fail(ErrorKind::NotImplemented, "norm: the nuclear norm ('nuc') is not implemented");
    fail(ErrorKind::Value, "norm: unknown norm type '", name, "' (expected a number, 'fro' or 'nuc')");
  }
  double value;
  if (!nb::try_cast(p, value)) fail(ErrorKind::Type, "norm: p must be a number or 'fro', got '", nb::inst_name(p).c_str(), "'");
  return value;
}

}  // namespace

void bind_reduce(nb::module_& m, nb::class_<Tensor>& cls) {
  auto sum_fn = [](const Tensor& t, nb::handle dim, bool keepdim, std::optional<DType> dtype) {
    return sum(t, dims_arg(dim, "sum"), keepdim, dtype);
  };
  auto mean_fn = [](const Tensor& t, nb::handle dim, bool keepdim, std::optional<DType> dtype) {
    return mean(t, dims_arg(dim, "mean"), keepdim, dtype);
  };
  auto prod_fn = [](const Tensor& t, nb::handle dim, bool keepdim, std::optional<DType> dtype) {
    return prod(t, dims_arg(dim, "prod"), keepdim, dtype);
  };
  for (auto [name, fn] : {std::pair{"sum", +sum_fn}, {"mean", +mean_fn}, {"prod", +prod_fn}}) {
    m.def(name, fn, nb::arg("input"), nb::arg("dim").none() = nb::none(), nb::arg("keepdim") = false, nb::kw_only(),
          nb::arg("dtype").none() = nb::none());
    cls.def(name, fn, nb::arg("dim").none() = nb::none(), nb::arg("keepdim") = false, nb::kw_only(),
            nb::arg("dtype").none() = nb::none());
  }
  m.def("sum_to_size", &sum_to, nb::arg("input"), nb::arg("size"));
  cls.def("sum_to_size", &sum_to, nb::arg("size"));

  using DimsFn = Tensor (*)(const Tensor&, const Dims&, bool);
  for (auto [name, fn] : {std::pair<const char*, DimsFn>{"amax", &amax}, {"amin", &amin}, {"all", &all}, {"any", &any}}) {
    auto f = [fn, name](const Tensor& t, nb::handle dim, bool keepdim) { return fn(t, dims_arg(dim, name), keepdim); };
    m.def(name, f, nb::arg("input"), nb::arg("dim").none() = nb::none(), nb::arg("keepdim") = false);
    cls.def(name, f, nb::arg("dim").none() = nb::none(), nb::arg("keepdim") = false);
  }
  for (const char* name : {"max", "min"}) {
    m.def(name, [name](const Tensor& t, nb::handle dim, bool keepdim, nb::handle other) {
      return max_any(name, t, dim, keepdim, other);
    }, nb::arg("input"), nb::arg("dim").none() = nb::none(), nb::arg("keepdim") = false, nb::kw_only(),
          nb::arg("other").none() = nb::none());
    cls.def(name, [name](const Tensor& t, nb::handle dim, bool keepdim, nb::handle other) {
      return max_any(name, t, dim, keepdim, other);
    }, nb::arg("dim").none() = nb::none(), nb::arg("keepdim") = false, nb::kw_only(), nb::arg("other").none() = nb::none());
  }
  using ArgFn = Tensor (*)(const Tensor&, std::optional<int64_t>, bool);
  for (auto [name, fn] : {std::pair<const char*, ArgFn>{"argmax", &argmax}, {"argmin", &argmin}}) {
    m.def(name, fn, nb::arg("input"), nb::arg("dim").none() = nb::none(), nb::arg("keepdim") = false);
    cls.def(name, fn, nb::arg("dim").none() = nb::none(), nb::arg("keepdim") = false);
  }

  for (const char* name : {"var", "std"}) {
    bool is_var = name[0] == 'v';
    auto f = [name, is_var](const Tensor& t, nb::handle dim, std::optional<bool> unbiased, bool keepdim,
                            std::optional<double> correction) {
      double c = correction_arg(dim, unbiased, correction, name);
      return is_var ? var(t, dims_arg(dim, name), c, keepdim) : loom::std(t, dims_arg(dim, name), c, keepdim);
    };
    m.def(name, f, nb::arg("input"), nb::arg("dim").none() = nb::none(), nb::arg("unbiased").none() = nb::none(),
          nb::arg("keepdim") = false, nb::kw_only(), nb::arg("correction").none() = nb::none());
    cls.def(name, f, nb::arg("dim").none() = nb::none(), nb::arg("unbiased").none() = nb::none(),
            nb::arg("keepdim") = false, nb::kw_only(), nb::arg("correction").none() = nb::none());
    std::string pair_name = std::string(name) + "_mean";
    m.def(pair_name.c_str(), [name, is_var](const Tensor& t, nb::handle dim, std::optional<bool> unbiased, bool keepdim,
                                            std::optional<double> correction) {
      double c = correction_arg(dim, unbiased, correction, name);
      auto [first, mu] = is_var ? var_mean(t, dims_arg(dim, name), c, keepdim) : std_mean(t, dims_arg(dim, name), c, keepdim);
      return nb::make_tuple(first, mu);
    }, nb::arg("input"), nb::arg("dim").none() = nb::none(), nb::arg("unbiased").none() = nb::none(),
          nb::arg("keepdim") = false, nb::kw_only(), nb::arg("correction").none() = nb::none());
  }

  auto norm_fn = [](const Tensor& t, nb::handle p, nb::handle dim, bool keepdim, std::optional<DType> dtype) {
    return norm(t, p_arg(p), dims_arg(dim, "norm"), keepdim, dtype);
  };
  m.def("norm", [](const Tensor& t, nb::handle p, nb::handle dim, bool keepdim, nb::handle out,
                   std::optional<DType> dtype) {
    LOOM_CHECK(out.is_none(), NotImplemented, "norm: out= is not supported");
    return norm(t, p_arg(p), dims_arg(dim, "norm"), keepdim, dtype);
  }, nb::arg("input"), nb::arg("p").none() = "fro", nb::arg("dim").none() = nb::none(), nb::arg("keepdim") = false,
        nb::arg("out").none() = nb::none(), nb::arg("dtype").none() = nb::none());
  cls.def("norm", norm_fn, nb::arg("p").none() = "fro", nb::arg("dim").none() = nb::none(), nb::arg("keepdim") = false,
          nb::arg("dtype").none() = nb::none());

  auto logsumexp_fn = [](const Tensor& t, nb::handle dim, bool keepdim) { return logsumexp(t, dims_arg(dim, "logsumexp"), keepdim); };
  m.def("logsumexp", logsumexp_fn, nb::arg("input"), nb::arg("dim").none() = nb::none(), nb::arg("keepdim") = false);
  cls.def("logsumexp", logsumexp_fn, nb::arg("dim").none() = nb::none(), nb::arg("keepdim") = false);

  using ScanFn = Tensor (*)(const Tensor&, int64_t, std::optional<DType>);
  for (auto [name, fn] : {std::pair<const char*, ScanFn>{"cumsum", &cumsum}, {"cumprod", &cumprod}}) {
    m.def(name, fn, nb::arg("input"), nb::arg("dim"), nb::kw_only(), nb::arg("dtype").none() = nb::none());
    cls.def(name, fn, nb::arg("dim"), nb::kw_only(), nb::arg("dtype").none() = nb::none());
  }
  m.def("logcumsumexp", &logcumsumexp, nb::arg("input"), nb::arg("dim"));
  cls.def("logcumsumexp", &logcumsumexp, nb::arg("dim"));
  using PairScanFn = std::pair<Tensor, Tensor> (*)(const Tensor&, int64_t);
  for (auto [name, fn] : {std::pair<const char*, PairScanFn>{"cummax", &cummax}, {"cummin", &cummin}}) {
    auto f = [name, fn](const Tensor& t, int64_t dim) {
      auto [values, indices] = fn(t, dim);
      return reduce_family_result_pair(name, "values", "indices", values, indices);
    };
    m.def(name, f, nb::arg("input"), nb::arg("dim"));
    cls.def(name, f, nb::arg("dim"));
  }
  auto aminmax_fn = [](const Tensor& t, nb::handle dim, bool keepdim) {
    auto [lo, hi] = aminmax(t, dims_arg(dim, "aminmax"), keepdim);
    return reduce_family_result_pair("aminmax", "min", "max", lo, hi);
  };
  m.def("aminmax", aminmax_fn, nb::arg("input"), nb::kw_only(), nb::arg("dim").none() = nb::none(),
        nb::arg("keepdim") = false);
  cls.def("aminmax", aminmax_fn, nb::kw_only(), nb::arg("dim").none() = nb::none(), nb::arg("keepdim") = false);
  auto nansum_fn = [](const Tensor& t, nb::handle dim, bool keepdim, std::optional<DType> dtype) {
    return nansum(t, dims_arg(dim, "nansum"), keepdim, dtype);
  };
  auto nanmean_fn = [](const Tensor& t, nb::handle dim, bool keepdim, std::optional<DType> dtype) {
    return nanmean(t, dims_arg(dim, "nanmean"), keepdim, dtype);
  };
  for (auto [name, fn] : {std::pair{"nansum", +nansum_fn}, {"nanmean", +nanmean_fn}}) {
    m.def(name, fn, nb::arg("input"), nb::arg("dim").none() = nb::none(), nb::arg("keepdim") = false, nb::kw_only(),
          nb::arg("dtype").none() = nb::none());
    cls.def(name, fn, nb::arg("dim").none() = nb::none(), nb::arg("keepdim") = false, nb::kw_only(),
            nb::arg("dtype").none() = nb::none());
  }
  auto count_fn = [](const Tensor& t, nb::handle dim) { return count_nonzero(t, dims_arg(dim, "count_nonzero")); };
  m.def("count_nonzero", count_fn, nb::arg("input"), nb::arg("dim").none() = nb::none());
  cls.def("count_nonzero", count_fn, nb::arg("dim").none() = nb::none());

  for (auto [name, fn] : {std::pair<const char*, ScanFn>{"softmax", &softmax}, {"log_softmax", &log_softmax}}) {
    m.def(name, fn, nb::arg("input"), nb::arg("dim"), nb::arg("dtype").none() = nb::none());
    cls.def(name, fn, nb::arg("dim"), nb::arg("dtype").none() = nb::none());
  }
}

}  // namespace loom::python
