// Loss functions, bound in loom._C._losses; loom.nn.functional wraps them with torch's signatures.
#include "convert.h"

namespace loom::python {

namespace {

Tensor optional_tensor(const std::optional<Tensor>& t) { return t ? *t : Tensor(); }

}  // namespace

void bind_loss(nb::module_& m, nb::class_<Tensor>& cls) {
  nb::module_ losses = m.def_submodule("_losses", "Loss functions; use loom.nn.functional.");
  losses.def("cross_entropy", [](const Tensor& input, const Tensor& target, std::optional<Tensor> weight,
                                 int64_t ignore_index, const std::string& reduction, double label_smoothing) {
    return cross_entropy(input, target, optional_tensor(weight), ignore_index, reduction, label_smoothing);
  }, nb::arg("input"), nb::arg("target"), nb::arg("weight").none() = nb::none(), nb::arg("ignore_index") = -100,
     nb::arg("reduction") = "mean", nb::arg("label_smoothing") = 0.0);
  losses.def("nll_loss", [](const Tensor& input, const Tensor& target, std::optional<Tensor> weight,
                            int64_t ignore_index, const std::string& reduction) {
    return nll_loss(input, target, optional_tensor(weight), ignore_index, reduction);
  }, nb::arg("input"), nb::arg("target"), nb::arg("weight").none() = nb::none(), nb::arg("ignore_index") = -100,
     nb::arg("reduction") = "mean");
  losses.def("mse_loss", [](const Tensor& input, const Tensor& target, const std::string& reduction,
                            std::optional<Tensor> weight) {
    return mse_loss(input, target, reduction, optional_tensor(weight));
  }, nb::arg("input"), nb::arg("target"), nb::arg("reduction") = "mean", nb::arg("weight").none() = nb::none());
  losses.def("l1_loss", [](const Tensor& input, const Tensor& target, const std::string& reduction,
                           std::optional<Tensor> weight) {
    return l1_loss(input, target, reduction, optional_tensor(weight));
  }, nb::arg("input"), nb::arg("target"), nb::arg("reduction") = "mean", nb::arg("weight").none() = nb::none());
  losses.def("smooth_l1_loss", &smooth_l1_loss, nb::arg("input"), nb::arg("target"), nb::arg("reduction") = "mean",
             nb::arg("beta") = 1.0);
  losses.def("huber_loss", [](const Tensor& input, const Tensor& target, const std::string& reduction, double delta,
                              std::optional<Tensor> weight) {
    return huber_loss(input, target, reduction, delta, optional_tensor(weight));
  }, nb::arg("input"), nb::arg("target"), nb::arg("reduction") = "mean", nb::arg("delta") = 1.0,
     nb::arg("weight").none() = nb::none());
  losses.def("binary_cross_entropy", [](const Tensor& input, const Tensor& target, std::optional<Tensor> weight,
                                        const std::string& reduction) {
    return binary_cross_entropy(input, target, optional_tensor(weight), reduction);
  }, nb::arg("input"), nb::arg("target"), nb::arg("weight").none() = nb::none(), nb::arg("reduction") = "mean");
  losses.def("binary_cross_entropy_with_logits", [](const Tensor& input, const Tensor& target,
                                                    std::optional<Tensor> weight, const std::string& reduction,
                                                    std::optional<Tensor> pos_weight) {
    return binary_cross_entropy_with_logits(input, target, optional_tensor(weight), reduction,
                                            optional_tensor(pos_weight));
  }, nb::arg("input"), nb::arg("target"), nb::arg("weight").none() = nb::none(), nb::arg("reduction") = "mean",
     nb::arg("pos_weight").none() = nb::none());
  losses.def("poisson_nll_loss", &poisson_nll_loss, nb::arg("input"), nb::arg("target"), nb::arg("log_input") = true,
             nb::arg("full") = false, nb::arg("eps") = 1e-8, nb::arg("reduction") = "mean");
  losses.def("gaussian_nll_loss", [](const Tensor& input, const Tensor& target, nb::handle var, bool full, double eps,
                                     const std::string& reduction) {
    Tensor v = nb::isinstance<Tensor>(var) ? nb::cast<Tensor>(var)
                                           : full_like(input, cast_arg<Scalar>(var, "gaussian_nll_loss", "var"));
    return gaussian_nll_loss(input, target, v, full, eps, reduction);
  }, nb::arg("input"), nb::arg("target"), nb::arg("var"), nb::arg("full") = false, nb::arg("eps") = 1e-6,
     nb::arg("reduction") = "mean");
  losses.def("margin_ranking_loss", &margin_ranking_loss, nb::arg("input1"), nb::arg("input2"), nb::arg("target"),
             nb::arg("margin") = 0.0, nb::arg("reduction") = "mean");
  losses.def("hinge_embedding_loss", &hinge_embedding_loss, nb::arg("input"), nb::arg("target"),
             nb::arg("margin") = 1.0, nb::arg("reduction") = "mean");
  losses.def("soft_margin_loss", &soft_margin_loss, nb::arg("input"), nb::arg("target"), nb::arg("reduction") = "mean");
  losses.def("multilabel_soft_margin_loss", [](const Tensor& input, const Tensor& target, std::optional<Tensor> weight,
                                               const std::string& reduction) {
    return multilabel_soft_margin_loss(input, target, optional_tensor(weight), reduction);
  }, nb::arg("input"), nb::arg("target"), nb::arg("weight").none() = nb::none(), nb::arg("reduction") = "mean");
  losses.def("cosine_embedding_loss", &cosine_embedding_loss, nb::arg("input1"), nb::arg("input2"), nb::arg("target"),
             nb::arg("margin") = 0.0, nb::arg("reduction") = "mean");
  losses.def("triplet_margin_loss", &triplet_margin_loss, nb::arg("anchor"), nb::arg("positive"), nb::arg("negative"),
             nb::arg("margin") = 1.0, nb::arg("p") = 2.0, nb::arg("eps") = 1e-6, nb::arg("swap") = false,
             nb::arg("reduction") = "mean");
  losses.def("kl_div", &kl_div, nb::arg("input"), nb::arg("target"), nb::arg("reduction") = "mean",
             nb::arg("log_target") = false);
}

}  // namespace loom::python
