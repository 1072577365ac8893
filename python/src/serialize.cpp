// Bindings for the safetensors reader/writer behind loom.save / loom.load (python/loom/serialization.py).
#include <nanobind/stl/map.h>
#include <nanobind/stl/pair.h>

#include "convert.h"
#include "loom/serialize/safetensors.h"

namespace loom::python {

void bind_serialize(nb::module_& m) {
  m.def(
      "_save_safetensors",
      [](const std::string& path, const serialize::NamedTensors& tensors, const serialize::Metadata& metadata) {
        nb::gil_scoped_release release;
        serialize::save_safetensors(path, tensors, metadata);
      },
      nb::arg("path"), nb::arg("tensors"), nb::arg("metadata"),
      "Writes [(name, tensor), ...] and a str->str metadata dict to a safetensors file, atomically.");
  m.def(
      "_load_safetensors",
      [](const std::string& path) {
        serialize::SafetensorsContents contents;
        {
          nb::gil_scoped_release release;
          contents = serialize::load_safetensors(path);
        }
        return std::make_pair(std::move(contents.tensors), std::move(contents.metadata));
      },
      nb::arg("path"),
      "Reads a safetensors file (validated first) into ([(name, tensor), ...] in file order, metadata dict).");
}

}  // namespace loom::python
