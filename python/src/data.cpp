// Data loading bindings (loom._C._data): IDX files, tokenizers, the DataLoader's C++ prefetch thread.
#include "convert.h"
#include "loom/data/idx.h"

namespace loom::python {

void bind_data(nb::module_& root) {
  nb::module_ m = root.def_submodule("_data", "C++ data loading: IDX files, tokenizers, batch prefetch.");
  m.def("read_idx", [](const std::string& path) {
    nb::gil_scoped_release release;
    return data::read_idx(path);
  }, nb::arg("path"), "Reads an IDX file (plain or gzip'd) into a tensor of its dtype and shape.");
  m.def("write_idx", [](const std::string& path, const Tensor& t, bool gzip) {
    nb::gil_scoped_release release;
    data::write_idx(path, t, gzip);
  }, nb::arg("path"), nb::arg("tensor"), nb::arg("gzip") = false, "Writes a tensor as an IDX file, optionally gzip'd (atomically).");
}

}  // namespace loom::python
