// Data loading bindings (loom._C._data): IDX files, tokenizers, the DataLoader's C++ prefetch thread.
// Long C++ calls release the GIL; text arguments are viewed in place (str as its UTF-8 buffer, bytes as is).
#include <nanobind/stl/optional.h>
#include <nanobind/stl/pair.h>
#include <nanobind/stl/string_view.h>

#include "convert.h"
#include "loom/data/idx.h"
#include "loom/data/prefetcher.h"
#include "loom/data/tokenizer.h"

namespace loom::python {

namespace {

std::string_view view_of(nb::handle text, const char* who) {
  if (PyUnicode_Check(text.ptr())) {
    Py_ssize_t size = 0;
    const char* data = PyUnicode_AsUTF8AndSize(text.ptr(), &size);
    if (!data) {
      PyErr_Clear();
      fail(ErrorKind::Value, who, ": the text cannot be encoded as UTF-8 (lone surrogates?)");
    }
    return {data, static_cast<size_t>(size)};
  }
  if (PyBytes_Check(text.ptr())) return {PyBytes_AS_STRING(text.ptr()), static_cast<size_t>(PyBytes_GET_SIZE(text.ptr()))};
  fail(ErrorKind::Type, who, ": expected str or bytes, got ", nb::inst_name(text).c_str());
}

nb::list to_list(const std::vector<int32_t>& ids) {
  PyObject* list = PyList_New(static_cast<Py_ssize_t>(ids.size()));
  if (!list) throw nb::python_error();
  for (size_t i = 0; i < ids.size(); ++i) PyList_SET_ITEM(list, static_cast<Py_ssize_t>(i), PyLong_FromLong(ids[i]));
  return nb::steal<nb::list>(list);
}

template <class Tok>
void bind_common(nb::class_<Tok>& cls, const char* name) {
  std::string enc = std::string(name) + ".encode";
  cls.def("encode", [enc](const Tok& t, nb::handle text) {
        std::string_view v = view_of(text, enc.c_str());
        std::vector<int32_t> ids;
        {
          nb::gil_scoped_release release;
          ids = t.encode(v);
        }
        return to_list(ids);
      }, nb::arg("text"))
      .def("encode_tensor", [enc](const Tok& t, nb::handle text) {
        std::string_view v = view_of(text, enc.c_str());
        nb::gil_scoped_release release;
        return t.encode_tensor(v);
      }, nb::arg("text"))
      .def("decode_bytes", [](const Tok& t, const Tensor& ids) {
        std::string s;
        {
          nb::gil_scoped_release release;
          s = t.decode(ids);
        }
        return nb::bytes(s.data(), s.size());
      }, nb::arg("ids"))
      .def("decode_bytes", [](const Tok& t, const std::vector<int64_t>& ids) {
        std::string s;
        {
          nb::gil_scoped_release release;
          s = t.decode(ids);
        }
        return nb::bytes(s.data(), s.size());
      }, nb::arg("ids"))
      .def_prop_ro("vocab_size", &Tok::vocab_size)
      .def("to_json", &Tok::to_json)
      .def_static("from_json", [](const std::string& json) { return Tok::from_json(json); }, nb::arg("json"))
      .def("save", [](const Tok& t, const std::string& path) { t.save(path); }, nb::arg("path"))
      .def_static("load", [](const std::string& path) { return Tok::load(path); }, nb::arg("path"));
}

}  // namespace

void bind_data(nb::module_& root) {
  nb::module_ m = root.def_submodule("_data", "C++ data loading: IDX files, tokenizers, batch prefetch.");
  m.def("read_idx", [](const std::string& path) {
    nb::gil_scoped_release release;
    return data::read_idx(path);
  }, nb::arg("path"), "Reads an IDX file (plain or gzip'd) into a tensor of its dtype and shape.");
  m.def("write_idx", [](const std::string& path, const Tensor& t, bool gzip) {
    nb::gil_scoped_release release;
    data::write_idx(path, t, gzip);
  }, nb::arg("path"), nb::arg("tensor"), nb::arg("gzip") = false,
     "Writes a tensor as an IDX file, optionally gzip'd (atomically).");

  auto chr = nb::class_<data::CharTokenizer>(m, "CharTokenizer", "Character-level tokenizer (C++).");
  chr.def(nb::init<>())
      .def("train", [](data::CharTokenizer& t, nb::handle text, bool unk) {
        std::string_view v = view_of(text, "CharTokenizer.train");
        nb::gil_scoped_release release;
        t.train(v, unk);
      }, nb::arg("text"), nb::arg("unk") = false)
      .def_prop_ro("has_unk", &data::CharTokenizer::has_unk)
      .def_prop_ro("unk_id", &data::CharTokenizer::unk_id)
      .def_prop_ro("code_points", &data::CharTokenizer::code_points);
  bind_common(chr, "CharTokenizer");

  auto bpe = nb::class_<data::ByteLevelBPETokenizer>(m, "ByteLevelBPETokenizer", "Byte-level BPE tokenizer (C++).");
  bpe.def(nb::init<>())
      .def("train", [](data::ByteLevelBPETokenizer& t, nb::handle text, int64_t vocab_size, int64_t min_frequency) {
        std::string_view v = view_of(text, "ByteLevelBPETokenizer.train");
        nb::gil_scoped_release release;
        t.train(v, vocab_size, min_frequency);
      }, nb::arg("text"), nb::arg("vocab_size"), nb::arg("min_frequency") = 2)
      .def_prop_ro("merges", &data::ByteLevelBPETokenizer::merges)
      .def("token_bytes", [](const data::ByteLevelBPETokenizer& t, int64_t id) {
        const std::string& s = t.token_bytes(id);
        return nb::bytes(s.data(), s.size());
      }, nb::arg("id"));
  bind_common(bpe, "ByteLevelBPETokenizer");
  nb::class_<data::BatchPrefetcher>(m, "BatchPrefetcher",
      "A C++ thread that gathers batch rows (index_select on dim 0) into a bounded queue, grad mode off.")
      .def(nb::init<std::vector<Tensor>, std::vector<std::vector<int64_t>>, int64_t>(), nb::arg("tensors"),
           nb::arg("batches"), nb::arg("depth") = 2)
      .def("next", [](data::BatchPrefetcher& p) -> std::optional<std::vector<Tensor>> {
        std::vector<Tensor> out;
        bool ok;
        {
          nb::gil_scoped_release release;
          ok = p.next(out);
        }
        if (!ok) return std::nullopt;
        return out;
      }, "The next batch (a list of tensors), or None at the end; re-raises the worker's error.")
      .def("close", [](data::BatchPrefetcher& p) {
        nb::gil_scoped_release release;
        p.close();
      }, "Stops and joins the worker.")
      .def_prop_ro("remaining", &data::BatchPrefetcher::remaining)
      .def_prop_ro("regathered", &data::BatchPrefetcher::regathered,
                   "Batches gathered again by next() because the dataset was updated in place after the prefetch.");
  m.def("pretokenize", [](nb::handle text) {
    std::string_view v = view_of(text, "pretokenize");
    auto spans = data::pretokenize(v);
    nb::list out;
    for (auto [b, e] : spans) out.append(nb::bytes(v.data() + b, e - b));
    return out;
  }, nb::arg("text"), "GPT-2 style pre-tokens of the text's UTF-8 bytes, as a list of bytes.");
}

}  // namespace loom::python
