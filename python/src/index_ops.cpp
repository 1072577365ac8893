// Index-family functions and Tensor methods: cat/stack, index_select/add/copy/fill, gather/scatter, masked ops,
// nonzero, flip/roll/repeat/tril/triu, pad, one_hot, embedding.
#include "convert.h"
#include "loom/ops/index.h"

namespace loom::python {

namespace {

// A Python number, or a 0-d / one-element tensor, as a Scalar.
Scalar scalar_arg(nb::handle value, const char* op) {
  if (nb::isinstance<Tensor>(value)) {
    const Tensor& t = nb::cast<const Tensor&>(value);
    LOOM_CHECK(t.dim() == 0, Value, op, ": value must be a number or a 0-d tensor, got a tensor of shape ",
               shape_str(t.sizes()));
    return t.item();
  }
  Scalar s;
  if (!nb::try_cast<Scalar>(value, s))
    fail(ErrorKind::Type, op, ": expected a number for the value, got '", nb::inst_name(value).c_str(), "'");
  return s;
}

std::vector<Tensor> tensor_list(nb::handle seq, const char* op) {
  LOOM_CHECK(!nb::isinstance<Tensor>(seq), Type, op, ": expected a sequence of tensors, got a single tensor");
  std::vector<Tensor> out;
  if (!nb::try_cast<std::vector<Tensor>>(seq, out))
    fail(ErrorKind::Type, op, ": expected a sequence of tensors, got '", nb::inst_name(seq).c_str(), "'");
  return out;
}

// Ints given as f(1, 2), f((1, 2)) or f([1, 2]).
std::vector<int64_t> int_list(nb::handle value, const char* op) { return int_list_arg(value, op, "dims"); }

Tensor scatter_any(const Tensor& self, int64_t dim, const Tensor& index, nb::handle src, nb::handle value,
                   std::optional<std::string> reduce) {
  LOOM_CHECK(!reduce || *reduce == "add", NotImplemented, "scatter: reduce='", reduce.value_or(""),
             "' is not supported (only 'add')");
  Tensor source;
  if (!src.is_none() && nb::isinstance<Tensor>(src)) {
    source = nb::cast<const Tensor&>(src);
  } else {
    nb::handle v = src.is_none() ? value : src;
    LOOM_CHECK(!v.is_none(), Type, "scatter: expected either src (a tensor) or value (a number)");
    Scalar number = scalar_arg(v, "scatter");
    if (!reduce) return scatter(self, dim, index, number);
    source = expand(full({}, number, self.dtype(), self.device()), index.sizes());
  }
  return reduce ? scatter_add(self, dim, index, source) : scatter(self, dim, index, source);
}

Tensor masked_fill_any(const Tensor& self, const Tensor& mask, nb::handle value) {
  if (nb::isinstance<Tensor>(value)) return masked_fill(self, mask, nb::cast<const Tensor&>(value));
  return masked_fill(self, mask, scalar_arg(value, "masked_fill"));
}

nb::object nonzero_any(const Tensor& self, bool as_tuple) {
  if (!as_tuple) return nb::cast(nonzero(self));
  nb::list out;
  for (const Tensor& t : nonzero_tuple(self)) out.append(nb::cast(t));
  return nb::tuple(out);
}

Tensor roll_any(const Tensor& self, nb::handle shifts, nb::handle dims) {
  std::vector<int64_t> d = dims.is_none() ? std::vector<int64_t>{} : int_list(dims, "roll");
  return roll(self, int_list(shifts, "roll"), d);
}

Tensor pad_any(const Tensor& self, const std::vector<int64_t>& pads, const std::string& mode, std::optional<double> value) {
  LOOM_CHECK(mode == "constant", NotImplemented, "pad: mode '", mode, "' is not supported yet (only 'constant')");
  return pad(self, pads, value.value_or(0.0));
}

}  // namespace

void bind_index_ops(nb::module_& m, nb::class_<Tensor>& cls) {
  auto cat_fn = [](nb::handle tensors, int64_t dim) { return cat(tensor_list(tensors, "cat"), dim); };
  for (const char* name : {"cat", "concat", "concatenate"})
    m.def(name, cat_fn, nb::arg("tensors"), nb::arg("dim") = 0);
  m.def("stack", [](nb::handle tensors, int64_t dim) { return stack(tensor_list(tensors, "stack"), dim); },
        nb::arg("tensors"), nb::arg("dim") = 0);

  m.def("hstack", [](nb::handle tensors) { return hstack(tensor_list(tensors, "hstack")); }, nb::arg("tensors"));
  m.def("vstack", [](nb::handle tensors) { return vstack(tensor_list(tensors, "vstack")); }, nb::arg("tensors"));
  m.def("meshgrid", [](nb::args tensors, const std::string& indexing) {
    std::vector<Tensor> in;
    if (tensors.size() == 1 && !nb::isinstance<Tensor>(tensors[0])) in = tensor_list(tensors[0], "meshgrid");
    else
      for (nb::handle h : tensors) in.push_back(cast_arg<Tensor>(h, "meshgrid", "tensors"));
    return meshgrid(in, indexing);
  }, nb::arg("tensors"), nb::kw_only(), nb::arg("indexing") = "ij");

  m.def("index_select", &index_select, nb::arg("input"), nb::arg("dim"), nb::arg("index"));
  cls.def("index_select", &index_select, nb::arg("dim"), nb::arg("index"));
  m.def("index_add", &index_add, nb::arg("input"), nb::arg("dim"), nb::arg("index"), nb::arg("source"), nb::kw_only(),
        nb::arg("alpha") = Scalar(int64_t(1)));
  cls.def("index_add", &index_add, nb::arg("dim"), nb::arg("index"), nb::arg("source"), nb::kw_only(),
          nb::arg("alpha") = Scalar(int64_t(1)));
  cls.def("index_add_", [](Tensor& t, int64_t dim, const Tensor& index, const Tensor& source, Scalar alpha) -> Tensor& {
    return index_add_(t, dim, index, source, alpha);
  }, nb::arg("dim"), nb::arg("index"), nb::arg("source"), nb::kw_only(), nb::arg("alpha") = Scalar(int64_t(1)),
     nb::rv_policy::reference);
  m.def("index_copy", &index_copy, nb::arg("input"), nb::arg("dim"), nb::arg("index"), nb::arg("source"));
  cls.def("index_copy", &index_copy, nb::arg("dim"), nb::arg("index"), nb::arg("source"));
  cls.def("index_copy_", [](Tensor& t, int64_t dim, const Tensor& index, const Tensor& source) -> Tensor& {
    return index_copy_(t, dim, index, source);
  }, nb::arg("dim"), nb::arg("index"), nb::arg("source"), nb::rv_policy::reference);
  auto index_fill_fn = [](const Tensor& t, int64_t dim, const Tensor& index, nb::handle value) {
    return index_fill(t, dim, index, scalar_arg(value, "index_fill"));
  };
  m.def("index_fill", index_fill_fn, nb::arg("input"), nb::arg("dim"), nb::arg("index"), nb::arg("value"));
  cls.def("index_fill", index_fill_fn, nb::arg("dim"), nb::arg("index"), nb::arg("value"));
  cls.def("index_fill_", [](Tensor& t, int64_t dim, const Tensor& index, nb::handle value) -> Tensor& {
    return index_fill_(t, dim, index, scalar_arg(value, "index_fill_"));
  }, nb::arg("dim"), nb::arg("index"), nb::arg("value"), nb::rv_policy::reference);

  m.def("gather", &gather, nb::arg("input"), nb::arg("dim"), nb::arg("index"));
  cls.def("gather", &gather, nb::arg("dim"), nb::arg("index"));
  m.def("scatter", &scatter_any, nb::arg("input"), nb::arg("dim"), nb::arg("index"), nb::arg("src").none() = nb::none(),
        nb::kw_only(), nb::arg("value").none() = nb::none(), nb::arg("reduce").none() = nb::none());
  cls.def("scatter", &scatter_any, nb::arg("dim"), nb::arg("index"), nb::arg("src").none() = nb::none(), nb::kw_only(),
          nb::arg("value").none() = nb::none(), nb::arg("reduce").none() = nb::none());
  cls.def("scatter_", [](Tensor& t, int64_t dim, const Tensor& index, nb::handle src, nb::handle value,
                         std::optional<std::string> reduce) -> Tensor& {
    return detail::commit_inplace(t, scatter_any(t, dim, index, src, value, reduce), "scatter_");
  }, nb::arg("dim"), nb::arg("index"), nb::arg("src").none() = nb::none(), nb::kw_only(),
     nb::arg("value").none() = nb::none(), nb::arg("reduce").none() = nb::none(), nb::rv_policy::reference);
  m.def("scatter_add", &scatter_add, nb::arg("input"), nb::arg("dim"), nb::arg("index"), nb::arg("src"));
  cls.def("scatter_add", &scatter_add, nb::arg("dim"), nb::arg("index"), nb::arg("src"));
  cls.def("scatter_add_", [](Tensor& t, int64_t dim, const Tensor& index, const Tensor& src) -> Tensor& {
    return scatter_add_(t, dim, index, src);
  }, nb::arg("dim"), nb::arg("index"), nb::arg("src"), nb::rv_policy::reference);

  m.def("masked_fill", &masked_fill_any, nb::arg("input"), nb::arg("mask"), nb::arg("value"));
  cls.def("masked_fill", &masked_fill_any, nb::arg("mask"), nb::arg("value"));
  cls.def("masked_fill_", [](Tensor& t, const Tensor& mask, nb::handle value) -> Tensor& {
    if (nb::isinstance<Tensor>(value)) return masked_fill_(t, mask, nb::cast<const Tensor&>(value));
    return masked_fill_(t, mask, scalar_arg(value, "masked_fill_"));
  }, nb::arg("mask"), nb::arg("value"), nb::rv_policy::reference);
  m.def("masked_select", &masked_select, nb::arg("input"), nb::arg("mask"));
  cls.def("masked_select", &masked_select, nb::arg("mask"));
  m.def("nonzero", &nonzero_any, nb::arg("input"), nb::kw_only(), nb::arg("as_tuple") = false);
  cls.def("nonzero", &nonzero_any, nb::kw_only(), nb::arg("as_tuple") = false);
  m.def("argwhere", &nonzero, nb::arg("input"));
  cls.def("argwhere", &nonzero);

  m.def("flip", [](const Tensor& t, nb::handle dims) { return flip(t, int_list(dims, "flip")); }, nb::arg("input"),
        nb::arg("dims"));
  cls.def("flip", [](const Tensor& t, nb::args dims) { return flip(t, shape_from_args(dims, "flip")); },
          nb::arg("dims"));
  m.def("fliplr", [](const Tensor& t) { return flip(t, {1}); }, nb::arg("input"));
  m.def("flipud", [](const Tensor& t) { return flip(t, {0}); }, nb::arg("input"));
  m.def("roll", &roll_any, nb::arg("input"), nb::arg("shifts"), nb::arg("dims").none() = nb::none());
  cls.def("roll", &roll_any, nb::arg("shifts"), nb::arg("dims").none() = nb::none());
  cls.def("repeat", [](const Tensor& t, nb::args sizes) { return repeat(t, shape_from_args(sizes, "repeat")); },
          nb::arg("sizes"));
  m.def("tile", [](const Tensor& t, nb::handle dims) { return tile(t, int_list(dims, "tile")); }, nb::arg("input"),
        nb::arg("dims"));
  cls.def("tile", [](const Tensor& t, nb::args dims) { return tile(t, shape_from_args(dims, "tile")); },
          nb::arg("dims"));
  m.def("tril", &tril, nb::arg("input"), nb::arg("diagonal") = 0);
  cls.def("tril", &tril, nb::arg("diagonal") = 0);
  m.def("triu", &triu, nb::arg("input"), nb::arg("diagonal") = 0);
  cls.def("triu", &triu, nb::arg("diagonal") = 0);
  cls.def("tril_", [](Tensor& t, int64_t diagonal) -> Tensor& {
    return detail::commit_inplace(t, tril(t, diagonal), "tril_");
  }, nb::arg("diagonal") = 0, nb::rv_policy::reference);
  cls.def("triu_", [](Tensor& t, int64_t diagonal) -> Tensor& {
    return detail::commit_inplace(t, triu(t, diagonal), "triu_");
  }, nb::arg("diagonal") = 0, nb::rv_policy::reference);

  m.def("pad", &pad_any, nb::arg("input"), nb::arg("pad"), nb::arg("mode") = "constant",
        nb::arg("value").none() = nb::none(),
        "Constant padding with torch.nn.functional.pad's pad order (last dim first); negative pads crop.");
  m.def("one_hot", &one_hot, nb::arg("tensor"), nb::arg("num_classes") = -1,
        "torch.nn.functional.one_hot: int64 tensor of shape input.shape + (num_classes,).");
  m.def("embedding", [](const Tensor& input, const Tensor& weight, std::optional<int64_t> padding_idx) {
    return embedding(weight, input, padding_idx);
  }, nb::arg("input"), nb::arg("weight"), nb::arg("padding_idx").none() = nb::none(),
        "torch.nn.functional.embedding(input, weight, padding_idx): rows of weight picked by input.");
}

}  // namespace loom::python
