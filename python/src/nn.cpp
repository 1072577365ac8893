// nn ops: convolution, unfold/fold, pooling, normalisation, dropout, attention (torch.nn.functional names).
#include "convert.h"
#include "loom/ops/nn.h"

namespace loom::python {

namespace {

// An int or a sequence of ints (PyTorch's `int | tuple[int, ...]` arguments).
Pair int_or_ints(nb::handle value, const char* op, const char* name) {
  if (PyBool_Check(value.ptr())) fail(ErrorKind::Type, op, ": ", name, " must be an int or a tuple of ints, got bool");
  return int_list_arg(value, op, name);
}

// None -> {} (meaning "the default"), else int_or_ints.
Pair optional_ints(nb::handle value, const char* op, const char* name) {
  if (value.is_none()) return {};
  Pair out = int_or_ints(value, op, name);
  return out;
}

ConvPadding conv_padding(nb::handle value, const char* op) {
  if (PyUnicode_Check(value.ptr())) return {{0}, nb::cast<std::string>(value)};
  return {int_or_ints(value, op, "padding"), ""};
}

Tensor opt(const std::optional<Tensor>& t) { return t.value_or(Tensor()); }

int64_t single(const Pair& p, const char* op, const char* name) {
  LOOM_CHECK(p.size() == 1, Value, op, ": ", name, " must be a single int (or a 1-tuple), got ", p.size(), " values");
  return p[0];
}

}  // namespace

void bind_nn(nb::module_& m, nb::class_<Tensor>&) {
  m.def(
      "conv2d",
      [](const Tensor& input, const Tensor& weight, const std::optional<Tensor>& bias, nb::handle stride,
         nb::handle padding, nb::handle dilation, int64_t groups) {
        return conv2d(input, weight, opt(bias), int_or_ints(stride, "conv2d", "stride"),
                      conv_padding(padding, "conv2d"), int_or_ints(dilation, "conv2d", "dilation"), groups);
      },
      nb::arg("input"), nb::arg("weight"), nb::arg("bias").none() = nb::none(), nb::arg("stride") = 1,
      nb::arg("padding") = 0, nb::arg("dilation") = 1, nb::arg("groups") = 1,
      "2-D convolution over (N, C, H, W) or (C, H, W); padding may be an int, a pair, 'same' or 'valid'.");
  m.def(
      "conv1d",
      [](const Tensor& input, const Tensor& weight, const std::optional<Tensor>& bias, nb::handle stride,
         nb::handle padding, nb::handle dilation, int64_t groups) {
        ConvPadding pad = conv_padding(padding, "conv1d");
        if (pad.mode.empty()) pad.sizes = {single(pad.sizes, "conv1d", "padding")};
        return conv1d(input, weight, opt(bias), single(int_or_ints(stride, "conv1d", "stride"), "conv1d", "stride"),
                      pad, single(int_or_ints(dilation, "conv1d", "dilation"), "conv1d", "dilation"), groups);
      },
      nb::arg("input"), nb::arg("weight"), nb::arg("bias").none() = nb::none(), nb::arg("stride") = 1,
      nb::arg("padding") = 0, nb::arg("dilation") = 1, nb::arg("groups") = 1,
      "1-D convolution over (N, C, L) or (C, L).");
  m.def(
      "conv_transpose2d",
      [](const Tensor& input, const Tensor& weight, const std::optional<Tensor>& bias, nb::handle stride,
         nb::handle padding, nb::handle output_padding, int64_t groups, nb::handle dilation) {
        const char* op = "conv_transpose2d";
        return conv_transpose2d(input, weight, opt(bias), int_or_ints(stride, op, "stride"),
                                int_or_ints(padding, op, "padding"), int_or_ints(output_padding, op, "output_padding"),
                                groups, int_or_ints(dilation, op, "dilation"));
      },
      nb::arg("input"), nb::arg("weight"), nb::arg("bias").none() = nb::none(), nb::arg("stride") = 1,
      nb::arg("padding") = 0, nb::arg("output_padding") = 0, nb::arg("groups") = 1, nb::arg("dilation") = 1,
      "Transposed 2-D convolution (the adjoint of conv2d); weight (C_in, C_out/groups, kH, kW).");
  m.def(
      "conv_transpose1d",
      [](const Tensor& input, const Tensor& weight, const std::optional<Tensor>& bias, nb::handle stride,
         nb::handle padding, nb::handle output_padding, int64_t groups, nb::handle dilation) {
        const char* op = "conv_transpose1d";
        return conv_transpose1d(input, weight, opt(bias), single(int_or_ints(stride, op, "stride"), op, "stride"),
                                single(int_or_ints(padding, op, "padding"), op, "padding"),
                                single(int_or_ints(output_padding, op, "output_padding"), op, "output_padding"), groups,
                                single(int_or_ints(dilation, op, "dilation"), op, "dilation"));
      },
      nb::arg("input"), nb::arg("weight"), nb::arg("bias").none() = nb::none(), nb::arg("stride") = 1,
      nb::arg("padding") = 0, nb::arg("output_padding") = 0, nb::arg("groups") = 1, nb::arg("dilation") = 1,
      "Transposed 1-D convolution; weight (C_in, C_out/groups, kL).");
  // Private: F.unfold / F.fold (Tensor.unfold is a different op in PyTorch).
  m.def(
      "_nn_unfold",
      [](const Tensor& input, nb::handle kernel_size, nb::handle dilation, nb::handle padding, nb::handle stride) {
        return unfold(input, int_or_ints(kernel_size, "unfold", "kernel_size"),
                      int_or_ints(dilation, "unfold", "dilation"), int_or_ints(padding, "unfold", "padding"),
                      int_or_ints(stride, "unfold", "stride"));
      },
      nb::arg("input"), nb::arg("kernel_size"), nb::arg("dilation") = 1, nb::arg("padding") = 0,
      nb::arg("stride") = 1);
  m.def(
      "_nn_fold",
      [](const Tensor& input, nb::handle output_size, nb::handle kernel_size, nb::handle dilation, nb::handle padding,
         nb::handle stride) {
        return fold(input, int_or_ints(output_size, "fold", "output_size"),
                    int_or_ints(kernel_size, "fold", "kernel_size"), int_or_ints(dilation, "fold", "dilation"),
                    int_or_ints(padding, "fold", "padding"), int_or_ints(stride, "fold", "stride"));
      },
      nb::arg("input"), nb::arg("output_size"), nb::arg("kernel_size"), nb::arg("dilation") = 1,
      nb::arg("padding") = 0, nb::arg("stride") = 1);

  m.def(
      "max_pool2d_with_indices",
      [](const Tensor& input, nb::handle kernel_size, nb::handle stride, nb::handle padding, nb::handle dilation,
         bool ceil_mode) {
        auto [values, indices] = max_pool2d_with_indices(
            input, int_or_ints(kernel_size, "max_pool2d", "kernel_size"), optional_ints(stride, "max_pool2d", "stride"),
            int_or_ints(padding, "max_pool2d", "padding"), int_or_ints(dilation, "max_pool2d", "dilation"), ceil_mode);
        return nb::make_tuple(values, indices);
      },
      nb::arg("input"), nb::arg("kernel_size"), nb::arg("stride").none() = nb::none(), nb::arg("padding") = 0,
      nb::arg("dilation") = 1, nb::arg("ceil_mode") = false);
  m.def(
      "max_pool2d",
      [](const Tensor& input, nb::handle kernel_size, nb::handle stride, nb::handle padding, nb::handle dilation,
         bool ceil_mode) {
        return max_pool2d(input, int_or_ints(kernel_size, "max_pool2d", "kernel_size"),
                          optional_ints(stride, "max_pool2d", "stride"), int_or_ints(padding, "max_pool2d", "padding"),
                          int_or_ints(dilation, "max_pool2d", "dilation"), ceil_mode);
      },
      nb::arg("input"), nb::arg("kernel_size"), nb::arg("stride").none() = nb::none(), nb::arg("padding") = 0,
      nb::arg("dilation") = 1, nb::arg("ceil_mode") = false);
  m.def(
      "avg_pool2d",
      [](const Tensor& input, nb::handle kernel_size, nb::handle stride, nb::handle padding, bool ceil_mode,
         bool count_include_pad, std::optional<int64_t> divisor_override) {
        return avg_pool2d(input, int_or_ints(kernel_size, "avg_pool2d", "kernel_size"),
                          optional_ints(stride, "avg_pool2d", "stride"), int_or_ints(padding, "avg_pool2d", "padding"),
                          ceil_mode, count_include_pad, divisor_override);
      },
      nb::arg("input"), nb::arg("kernel_size"), nb::arg("stride").none() = nb::none(), nb::arg("padding") = 0,
      nb::arg("ceil_mode") = false, nb::arg("count_include_pad") = true,
      nb::arg("divisor_override").none() = nb::none());
  m.def(
      "adaptive_avg_pool2d",
      [](const Tensor& input, nb::handle output_size) {
        std::vector<std::optional<int64_t>> sizes;
        const char* op = "adaptive_avg_pool2d";
        if (std::optional<int64_t> size = int_arg(output_size, op, "output_size")) {
          sizes.push_back(size);
        } else {
          LOOM_CHECK(PySequence_Check(output_size.ptr()), Type, op,
                     ": output_size must be an int or a tuple of ints or None");
          for (nb::handle item : nb::borrow<nb::sequence>(output_size)) {
            std::optional<int64_t> size = item.is_none() ? std::nullopt : int_arg(item, op, "output_size");
            LOOM_CHECK(item.is_none() || size, Type, op, ": output_size must contain ints or None, got '",
                       nb::inst_name(item).c_str(), "'");
            sizes.push_back(size);
          }
        }
        return adaptive_avg_pool2d(input, sizes);
      },
      nb::arg("input"), nb::arg("output_size"));

  m.def(
      "max_pool1d_with_indices",
      [](const Tensor& input, int64_t kernel_size, std::optional<int64_t> stride, int64_t padding, int64_t dilation,
         bool ceil_mode) {
        auto [values, indices] = max_pool1d_with_indices(input, kernel_size, stride, padding, dilation, ceil_mode);
        return nb::make_tuple(values, indices);
      },
      nb::arg("input"), nb::arg("kernel_size"), nb::arg("stride").none() = nb::none(), nb::arg("padding") = 0,
      nb::arg("dilation") = 1, nb::arg("ceil_mode") = false);
  m.def(
      "max_pool1d",
      [](const Tensor& input, int64_t kernel_size, std::optional<int64_t> stride, int64_t padding, int64_t dilation,
         bool ceil_mode) {
        return max_pool1d_with_indices(input, kernel_size, stride, padding, dilation, ceil_mode).first;
      },
      nb::arg("input"), nb::arg("kernel_size"), nb::arg("stride").none() = nb::none(), nb::arg("padding") = 0,
      nb::arg("dilation") = 1, nb::arg("ceil_mode") = false);
  m.def("avg_pool1d", &avg_pool1d, nb::arg("input"), nb::arg("kernel_size"), nb::arg("stride").none() = nb::none(),
        nb::arg("padding") = 0, nb::arg("ceil_mode") = false, nb::arg("count_include_pad") = true);
  m.def("adaptive_avg_pool1d", &adaptive_avg_pool1d, nb::arg("input"), nb::arg("output_size"));

  m.def(
      "layer_norm",
      [](const Tensor& input, nb::handle normalized_shape, const std::optional<Tensor>& weight,
         const std::optional<Tensor>& bias, double eps) {
        return layer_norm(input, int_or_ints(normalized_shape, "layer_norm", "normalized_shape"), opt(weight),
                          opt(bias), eps);
      },
      nb::arg("input"), nb::arg("normalized_shape"), nb::arg("weight").none() = nb::none(),
      nb::arg("bias").none() = nb::none(), nb::arg("eps") = 1e-5);
  m.def(
      "rms_norm",
      [](const Tensor& input, nb::handle normalized_shape, const std::optional<Tensor>& weight,
         std::optional<double> eps) {
        return rms_norm(input, int_or_ints(normalized_shape, "rms_norm", "normalized_shape"), opt(weight), eps);
      },
      nb::arg("input"), nb::arg("normalized_shape"), nb::arg("weight").none() = nb::none(),
      nb::arg("eps").none() = nb::none());
  m.def(
      "group_norm",
      [](const Tensor& input, int64_t num_groups, const std::optional<Tensor>& weight,
         const std::optional<Tensor>& bias, double eps) {
        return group_norm(input, num_groups, opt(weight), opt(bias), eps);
      },
      nb::arg("input"), nb::arg("num_groups"), nb::arg("weight").none() = nb::none(),
      nb::arg("bias").none() = nb::none(), nb::arg("eps") = 1e-5);
  // batch_norm / instance_norm are private: torch.batch_norm and torch.instance_norm take their arguments in
  // another order than the F.* functions, so only F.batch_norm / F.instance_norm are public.
  m.def(
      "_nn_instance_norm",
      [](const Tensor& input, const std::optional<Tensor>& running_mean, const std::optional<Tensor>& running_var,
         const std::optional<Tensor>& weight, const std::optional<Tensor>& bias, bool use_input_stats, double,
         double eps) {
        LOOM_CHECK(!running_mean && !running_var && use_input_stats, NotImplemented,
                   "instance_norm: running statistics (running_mean/running_var, use_input_stats=False) are not "
                   "supported");
        return instance_norm(input, opt(weight), opt(bias), eps);
      },
      nb::arg("input"), nb::arg("running_mean").none() = nb::none(), nb::arg("running_var").none() = nb::none(),
      nb::arg("weight").none() = nb::none(), nb::arg("bias").none() = nb::none(), nb::arg("use_input_stats") = true,
      nb::arg("momentum") = 0.1, nb::arg("eps") = 1e-5);
  m.def(
      "_nn_batch_norm",
      [](const Tensor& input, const std::optional<Tensor>& running_mean, const std::optional<Tensor>& running_var,
         const std::optional<Tensor>& weight, const std::optional<Tensor>& bias, bool training, double momentum,
         double eps) {
        return batch_norm(input, opt(running_mean), opt(running_var), opt(weight), opt(bias), training, momentum, eps);
      },
      nb::arg("input"), nb::arg("running_mean").none(), nb::arg("running_var").none(),
      nb::arg("weight").none() = nb::none(), nb::arg("bias").none() = nb::none(), nb::arg("training") = false,
      nb::arg("momentum") = 0.1, nb::arg("eps") = 1e-5);

  m.def(
      "dropout", [](const Tensor& input, double p, bool train) { return dropout(input, p, train); },
      nb::arg("input"), nb::arg("p") = 0.5, nb::arg("train") = true);

  m.def(
      "scaled_dot_product_attention",
      [](const Tensor& query, const Tensor& key, const Tensor& value, const std::optional<Tensor>& attn_mask,
         double dropout_p, bool is_causal, std::optional<double> scale, bool enable_gqa) {
        return scaled_dot_product_attention(query, key, value, opt(attn_mask), dropout_p, is_causal, scale,
                                            enable_gqa);
      },
      nb::arg("query"), nb::arg("key"), nb::arg("value"), nb::arg("attn_mask").none() = nb::none(),
      nb::arg("dropout_p") = 0.0, nb::arg("is_causal") = false, nb::kw_only(), nb::arg("scale").none() = nb::none(),
      nb::arg("enable_gqa") = false,
      "softmax(query @ key^T * scale + mask) @ value, as torch.nn.functional.scaled_dot_product_attention.");
}

}  // namespace loom::python
