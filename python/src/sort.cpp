// sort, argsort, topk as functions and methods; results are (values, indices) named tuples like torch's.
#include "convert.h"

namespace loom::python {

nb::object reduce_family_result_pair(const char* type_name, const char* first, const char* second, const Tensor& a, const Tensor& b);

void bind_sort(nb::module_& m, nb::class_<Tensor>& cls) {
  auto sort_fn = [](const Tensor& t, int64_t dim, bool descending, bool stable) {
    auto [values, indices] = sort(t, dim, descending, stable);
    return reduce_family_result_pair("sort", "values", "indices", values, indices);
  };
  m.def("sort", sort_fn, nb::arg("input"), nb::arg("dim") = -1, nb::arg("descending") = false, nb::kw_only(),
        nb::arg("stable") = false);
  cls.def("sort", sort_fn, nb::arg("dim") = -1, nb::arg("descending") = false, nb::kw_only(), nb::arg("stable") = false);
  m.def("argsort", &argsort, nb::arg("input"), nb::arg("dim") = -1, nb::arg("descending") = false, nb::kw_only(),
        nb::arg("stable") = false);
  cls.def("argsort", &argsort, nb::arg("dim") = -1, nb::arg("descending") = false, nb::kw_only(),
          nb::arg("stable") = false);
  auto topk_fn = [](const Tensor& t, int64_t k, int64_t dim, bool largest, bool sorted) {
    auto [values, indices] = topk(t, k, dim, largest, sorted);
    return reduce_family_result_pair("topk", "values", "indices", values, indices);
  };
  m.def("topk", topk_fn, nb::arg("input"), nb::arg("k"), nb::arg("dim") = -1, nb::arg("largest") = true,
        nb::arg("sorted") = true);
  cls.def("topk", topk_fn, nb::arg("k"), nb::arg("dim") = -1, nb::arg("largest") = true, nb::arg("sorted") = true);
  auto kthvalue_fn = [](const Tensor& t, int64_t k, int64_t dim, bool keepdim) {
    auto [values, indices] = kthvalue(t, k, dim, keepdim);
    return reduce_family_result_pair("kthvalue", "values", "indices", values, indices);
  };
  m.def("kthvalue", kthvalue_fn, nb::arg("input"), nb::arg("k"), nb::arg("dim") = -1, nb::arg("keepdim") = false);
  cls.def("kthvalue", kthvalue_fn, nb::arg("k"), nb::arg("dim") = -1, nb::arg("keepdim") = false);
  for (const char* name : {"median", "nanmedian"}) {
    bool ignore_nan = name[0] == 'n';
    auto f = [name, ignore_nan](const Tensor& t, std::optional<int64_t> dim, bool keepdim) -> nb::object {
      if (!dim) return nb::cast(ignore_nan ? nanmedian(t) : median(t));
      auto [values, indices] = ignore_nan ? nanmedian(t, *dim, keepdim) : median(t, *dim, keepdim);
      return reduce_family_result_pair(name, "values", "indices", values, indices);
    };
    m.def(name, f, nb::arg("input"), nb::arg("dim").none() = nb::none(), nb::arg("keepdim") = false);
    cls.def(name, f, nb::arg("dim").none() = nb::none(), nb::arg("keepdim") = false);
  }
}

}  // namespace loom::python
