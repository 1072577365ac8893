// loom.Tensor: attributes, conversions and autograd methods (ops are bound in the family files).
#include <nanobind/stl/function.h>
#include <nanobind/stl/map.h>
#include <nanobind/stl/pair.h>
#include <nanobind/stl/shared_ptr.h>

#include "convert.h"
#include "loom/ops/device.h"
#include "loom/autograd/node.h"
#include "loom/backends/cpu/gemm/engine.h"
#include "loom/backends/cpu/simd/cpu_features.h"

namespace loom::python {

namespace {

nb::tuple to_tuple(const Shape& s) {
  nb::list out;
  for (int64_t v : s) out.append(v);
  return nb::tuple(out);
}

nb::object scalar_to_python(const Scalar& s) { return nb::cast(s); }

nb::object tolist_rec(const Tensor& t, size_t dim, int64_t offset) {
  if (dim == t.sizes().size()) {
    Tensor element = Tensor::make_view(t, {}, {}, offset);
    return scalar_to_python(element.item());
  }
  nb::list out;
  for (int64_t i = 0; i < t.sizes()[dim]; ++i) out.append(tolist_rec(t, dim + 1, offset + i * t.strides()[dim]));
  return out;
}

bool kwarg_flag(const nb::kwargs& kwargs, const char* name) {
  return kwargs.contains(name) && nb::cast<bool>(kwargs[name]);
}

// Tensor.to(device | dtype | tensor, non_blocking=, copy=): a tensor target means its dtype and device, as in PyTorch.
Tensor to_device_or_dtype(const Tensor& self, nb::handle target, bool non_blocking = false, bool copy = false) {
  if (nb::isinstance<DType>(target)) return copy ? clone(to_dtype(self, nb::cast<DType>(target))) : to_dtype(self, nb::cast<DType>(target));
  if (nb::isinstance<Tensor>(target)) {
    const Tensor& other = nb::cast<const Tensor&>(target);
    return to_device(to_dtype(self, other.dtype()), other.device(), non_blocking, copy);
  }
  Device device = nb::isinstance<Device>(target) ? nb::cast<Device>(target)
                                                 : Device(cast_arg<std::string>(target, "to", "device or dtype"));
  return to_device(self, device, non_blocking, copy);
}

// ---- pinned (page-locked) host memory: Tensor.pin_memory() / is_pinned() ----

// The pinned host allocator of a non-CPU device type's backend, or nullptr.
Allocator* pinned_allocator(DeviceType type) {
  return type != DeviceType::CPU && has_backend(type) ? backend_for(type).pinned_host_allocator() : nullptr;
}

// The device type whose pinned memory `device` names, or, with none given, the first loaded backend that is
// available and has pinned memory (PyTorch pins for "the current accelerator").
DeviceType pinning_device_type(const std::optional<Device>& device) {
  if (device) {
    LOOM_CHECK(pinned_allocator(device->type) != nullptr, Runtime, "pin_memory: device type '",
               device_type_name(device->type), "' has no pinned host memory");
    return device->type;
  }
  for (int d = 1; d < static_cast<int>(DeviceType::Any); ++d) {
    auto type = static_cast<DeviceType>(d);
    if (pinned_allocator(type) != nullptr && backend_for(type).is_available()) return type;
  }
  fail(ErrorKind::Runtime, "pin_memory: no loaded device backend has pinned host memory (pinned memory is host memory "
       "a device copies from asynchronously; load a backend with loom.backends.load)");
}

bool is_pinned(const Tensor& t, const std::optional<Device>& device) {
  if (!t.device().is_cpu() || t.storage()->allocator() == nullptr) return false;
  for (int d = 1; d < static_cast<int>(DeviceType::Any); ++d) {
    auto type = static_cast<DeviceType>(d);
    if (device && device->type != type) continue;
    if (Allocator* pinned = pinned_allocator(type); pinned == t.storage()->allocator()) return true;
  }
  return false;
}

// A contiguous copy of a CPU tensor in pinned memory (t itself when it is pinned already). The copy goes through
// copy_, so autograd sees it, as PyTorch's pin_memory.
Tensor pin_memory(const Tensor& t, const std::optional<Device>& device) {
  LOOM_CHECK(t.device().is_cpu(), Runtime, "pin_memory: cannot pin a tensor on ", t.device().str(),
             "; only CPU tensors can be pinned");
  DeviceType type = pinning_device_type(device);
  if (is_pinned(t, Device(type))) return t;
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = Storage::allocate_with(*pinned_allocator(type), static_cast<size_t>(t.numel()) * t.itemsize(), Device());
  impl->sizes = t.sizes();
  impl->strides = contiguous_strides(t.sizes());
  impl->dtype = t.dtype();
  Tensor out(std::move(impl));
  return copy_(out, t);
}

// Tensor.cuda(device=None) / the target of Tensor.to for an int: "cuda" (the current device) or "cuda:<index>".
Device cuda_device(nb::handle device) {
  if (device.is_none()) return Device(DeviceType::CUDA, Device::kCurrentIndex);
  if (PyLong_Check(device.ptr())) return Device(DeviceType::CUDA, nb::cast<int>(device));
  Device d = nb::isinstance<Device>(device) ? nb::cast<Device>(device) : Device(cast_arg<std::string>(device, "cuda", "device"));
  LOOM_CHECK(d.type == DeviceType::CUDA, Value, "cuda: invalid device '", d.str(), "', expected a CUDA device");
  return d;
}

}  // namespace

void bind_tensor(nb::module_& m, nb::class_<Tensor>& cls) {
  nb::class_<autograd::Node>(m, "Node", "An autograd graph node (tensor.grad_fn).")
      .def("name", &autograd::Node::name)
      .def("__repr__", [](const autograd::Node& n) { return "<" + n.name() + "Backward>"; })
      .def_prop_ro("next_functions", [](const autograd::Node& n) {
        nb::list out;
        for (const autograd::Edge& e : n.next_edges)
          out.append(nb::make_tuple(e.node ? nb::cast(e.node) : nb::none(), e.input_nr));
        return nb::tuple(out);
      });

  // Tensor(t): a new autograd leaf sharing t's data, so Python subclasses (nn.Parameter) can wrap a tensor.
  cls.def("__init__", [](Tensor* self, const Tensor& t) { new (self) Tensor(t.detach()); }, nb::arg("data"))
      .def("__deepcopy__", [](const Tensor& t, nb::handle) {
        // copy.deepcopy (used by nn modules): a new leaf with copied data, requires_grad and .grad, like torch.
        LOOM_CHECK(t.is_leaf(), Runtime,
                   "deepcopy: only tensors created explicitly by the user (graph leaves) can be deep-copied");
        Tensor out = clone(t.detach());
        if (t.requires_grad()) out.set_requires_grad(true);
        if (t.grad().defined()) out.set_grad(clone(t.grad().detach()));
        return out;
      }, nb::arg("memo"))
      .def_prop_ro("shape", [](const Tensor& t) { return to_tuple(t.sizes()); })
      .def_prop_ro("ndim", &Tensor::dim)
      .def_prop_ro("dtype", &Tensor::dtype)
      .def_prop_ro("device", &Tensor::device)
      .def_prop_ro("is_leaf", &Tensor::is_leaf)
      .def_prop_ro("grad_fn", &Tensor::grad_fn)
      .def_prop_ro("_version", &Tensor::version)
      .def_prop_ro("is_cuda", [](const Tensor& t) { return t.device().type == DeviceType::CUDA; })
      .def_prop_ro("is_cpu", [](const Tensor& t) { return t.device().is_cpu(); })
      .def_prop_rw("requires_grad", &Tensor::requires_grad,
                   [](Tensor& t, bool value) { t.set_requires_grad(value); })
      .def_prop_rw("grad", [](const Tensor& t) -> std::optional<Tensor> {
        Tensor g = t.grad();
        if (!g.defined()) return std::nullopt;
        return g;
      }, [](Tensor& t, std::optional<Tensor> g) { t.set_grad(g.value_or(Tensor())); }, nb::arg("value").none())
      .def_prop_rw("data", &Tensor::detach, [](Tensor& t, const Tensor& other) {
        // Swap in other's data (same as torch: the tensor keeps its identity and autograd flags).
        TensorImpl& impl = *t.impl();
        impl.storage = other.storage();
        impl.offset = other.offset();
        impl.sizes = other.sizes();
        impl.strides = other.strides();
        impl.dtype = other.dtype();
      })
      .def("size", [](const Tensor& t, std::optional<int64_t> dim) -> nb::object {
        if (dim) return nb::int_(t.size(*dim));
        return to_tuple(t.sizes());
      }, nb::arg("dim").none() = nb::none())
      .def("stride", [](const Tensor& t, std::optional<int64_t> dim) -> nb::object {
        if (dim) return nb::int_(t.stride(*dim));
        return to_tuple(t.strides());
      }, nb::arg("dim").none() = nb::none())
      .def("dim", &Tensor::dim)
      .def("numel", &Tensor::numel)
      .def("nelement", &Tensor::numel)
      .def("element_size", &Tensor::itemsize)
      .def("storage_offset", &Tensor::offset)
      .def("data_ptr", [](const Tensor& t) { return reinterpret_cast<uintptr_t>(t.data_ptr()); })
      .def("is_contiguous", &Tensor::is_contiguous)
      .def("is_floating_point", [](const Tensor& t) { return is_floating(t.dtype()); })
      .def("item", [](const Tensor& t) { return t.item(); })
      .def("tolist", [](const Tensor& t) -> nb::object {
        const Tensor host = t.to_host();
        return tolist_rec(host, 0, host.offset());
      })
      .def("__repr__", [](const Tensor& t) {
        // torch's suffixes: grad_fn for results of recorded ops, requires_grad for leaves that need grad.
        std::vector<std::string> suffixes;
        if (auto fn = t.grad_fn()) suffixes.push_back("grad_fn=<" + fn->name() + "Backward>");
        else if (t.requires_grad()) suffixes.push_back("requires_grad=True");
        return t.str(suffixes);
      })
      .def("__len__", [](const Tensor& t) {
        LOOM_CHECK(t.dim() > 0, Type, "len() of a 0-d tensor");
        return t.sizes()[0];
      })
      // Iterating a 0-d tensor raises (as in PyTorch) rather than yielding nothing, so that a 0-d tensor passed
      // where a list of ints is expected is never read as an empty list. Other tensors iterate over dim 0.
      .def("__iter__", [](nb::handle self) {
        LOOM_CHECK(nb::cast<const Tensor&>(self).dim() > 0, Type, "iteration over a 0-d tensor");
        return nb::steal(PySeqIter_New(self.ptr()));
      })
      .def("__bool__", [](const Tensor& t) {
        LOOM_CHECK(t.numel() == 1, Runtime, "Boolean value of Tensor with ", t.numel(), " elements is ambiguous");
        return t.item().to_bool();
      })
      .def("__float__", [](const Tensor& t) { return t.item().to_double(); })
      .def("__int__", [](const Tensor& t) { return t.item().to_int(); })
      .def("__index__", [](const Tensor& t) {
        LOOM_CHECK(t.numel() == 1 && !is_floating(t.dtype()), Type,
                   "only integer tensors of a single element can be converted to an index");
        return t.item().to_int();
      })
      .def("__hash__", [](const Tensor& t) { return reinterpret_cast<intptr_t>(t.impl().get()); })
      .def("backward", [](const Tensor& t, std::optional<Tensor> gradient, std::optional<bool> retain_graph,
                          bool create_graph) {
        t.backward(gradient.value_or(Tensor()), retain_graph.value_or(create_graph), create_graph);
      }, nb::arg("gradient").none() = nb::none(), nb::arg("retain_graph").none() = nb::none(),
         nb::arg("create_graph") = false)
      .def("detach", &Tensor::detach)
      .def("detach_", [](Tensor& t) -> Tensor& {
        t.impl()->autograd = nullptr;
        return t;
      }, nb::rv_policy::reference)
      .def("requires_grad_", [](Tensor& t, bool value) -> Tensor& { return t.set_requires_grad(value); },
           nb::arg("requires_grad") = true, nb::rv_policy::reference)
      .def("retain_grad", &Tensor::retain_grad)
      .def_prop_ro("retains_grad", &Tensor::retains_grad)
      .def("register_hook", [](const Tensor& t, nb::callable fn) {
        return t.register_hook([fn](const Tensor& g) -> Tensor {
          nb::object result = fn(g);
          if (result.is_none()) return Tensor();
          return nb::cast<Tensor>(result);
        });
      }, nb::arg("hook"))
      .def("_register_post_accumulate_grad_hook", [](const Tensor& t, nb::callable fn) {
        return autograd::register_post_accumulate_grad_hook(t, [fn](const Tensor& leaf) { fn(leaf); });
      }, nb::arg("hook"))
      .def("_remove_hook", &Tensor::remove_hook)
      .def("to", [](const Tensor& t, nb::handle target, nb::kwargs kwargs) {
        Tensor out = to_device_or_dtype(t, target, kwarg_flag(kwargs, "non_blocking"), kwarg_flag(kwargs, "copy"));
        if (kwargs.contains("dtype") && !kwargs["dtype"].is_none()) out = to_dtype(out, nb::cast<DType>(kwargs["dtype"]));
        return out;
      }, nb::arg("target"), nb::arg("kwargs"))
      .def("to", [](const Tensor& t, nb::handle device, nb::handle dtype, nb::kwargs kwargs) {
        // t.to(device, dtype): both positional, as in PyTorch.
        Tensor out = to_device_or_dtype(t, device, kwarg_flag(kwargs, "non_blocking"), kwarg_flag(kwargs, "copy"));
        return to_dtype(out, nb::cast<DType>(dtype));
      }, nb::arg("device"), nb::arg("dtype"), nb::arg("kwargs"))
      .def("to", [](const Tensor& t, nb::kwargs kwargs) {
        Tensor out = t;
        if (kwargs.contains("dtype") && !kwargs["dtype"].is_none()) out = to_dtype(out, nb::cast<DType>(kwargs["dtype"]));
        if (kwargs.contains("device") && !kwargs["device"].is_none())
          out = to_device_or_dtype(out, kwargs["device"], kwarg_flag(kwargs, "non_blocking"), false);
        if (kwarg_flag(kwargs, "copy") && out.is_same(t)) out = clone(t);
        return out;
      }, nb::arg("kwargs"))
      .def("type", [](const Tensor& t, DType dtype) { return to_dtype(t, dtype); }, nb::arg("dtype"))
      .def("type_as", [](const Tensor& t, const Tensor& other) { return to_dtype(t, other.dtype()); })
      .def("float", [](const Tensor& t) { return to_dtype(t, DType::Float32); })
      .def("double", [](const Tensor& t) { return to_dtype(t, DType::Float64); })
      .def("half", [](const Tensor& t) { return to_dtype(t, DType::Float16); })
      .def("bfloat16", [](const Tensor& t) { return to_dtype(t, DType::BFloat16); })
      .def("long", [](const Tensor& t) { return to_dtype(t, DType::Int64); })
      .def("int", [](const Tensor& t) { return to_dtype(t, DType::Int32); })
      .def("short", [](const Tensor& t) { return to_dtype(t, DType::Int16); })
      .def("char", [](const Tensor& t) { return to_dtype(t, DType::Int8); })
      .def("byte", [](const Tensor& t) { return to_dtype(t, DType::UInt8); })
      .def("bool", [](const Tensor& t) { return to_dtype(t, DType::Bool); })
      .def("cpu", [](const Tensor& t) { return to_device(t, Device()); })
      .def("cuda", [](const Tensor& t, nb::handle device, bool non_blocking) {
        return to_device(t, cuda_device(device), non_blocking);
      }, nb::arg("device").none() = nb::none(), nb::arg("non_blocking") = false)
      .def("get_device", [](const Tensor& t) { return t.device().is_cpu() ? -1 : t.device().index; },
           "The device index (-1 for the CPU), as in PyTorch.")
      .def("pin_memory", &pin_memory, nb::arg("device").none() = nb::none(),
           "A copy of this CPU tensor in pinned (page-locked) host memory of a loaded device backend, from which "
           "copies to that device with non_blocking=True can overlap with work.")
      .def("is_pinned", &is_pinned, nb::arg("device").none() = nb::none())
      .def("contiguous", &contiguous)
      .def("clone", &clone)
      .def("copy_", [](Tensor& t, const Tensor& src) -> Tensor& { return copy_(t, src); }, nb::arg("src"),
           nb::rv_policy::reference);
}

void bind_autograd(nb::module_& m) {
  m.def("is_grad_enabled", &grad_mode_enabled);
  m.def("set_grad_enabled", &set_grad_mode_enabled, nb::arg("mode"));
  m.def("_backward", [](const std::vector<Tensor>& tensors, const std::vector<std::optional<Tensor>>& grads,
                        bool retain_graph, bool create_graph) {
    std::vector<Tensor> g;
    for (const auto& x : grads) g.push_back(x.value_or(Tensor()));
    autograd::backward(tensors, g, retain_graph, create_graph);
  });
  m.def("_grad", [](const std::vector<Tensor>& outputs, const std::vector<Tensor>& inputs,
                    const std::vector<std::optional<Tensor>>& grads, bool retain_graph, bool create_graph,
                    bool allow_unused) {
    std::vector<Tensor> g;
    for (const auto& x : grads) g.push_back(x.value_or(Tensor()));
    std::vector<Tensor> result = autograd::grad(outputs, inputs, g, retain_graph, create_graph, allow_unused);
    nb::list out;
    for (const Tensor& r : result) out.append(r.defined() ? nb::cast(r) : nb::none());
    return nb::tuple(out);
  });
  m.def("manual_seed", &manual_seed, nb::arg("seed"));
  m.def("initial_seed", [] { return default_generator().seed(); });
  m.def("get_num_threads", &get_num_threads);
  m.def("set_num_threads", &set_num_threads, nb::arg("num_threads"));
  // The vector instruction set the CPU kernels use ("scalar", "avx2" or "avx512"); tests run kernels under each
  // one the CPU has.
  m.def("_get_cpu_capability", [] { return cpu::cpu_capability_name(); });
  m.def("_set_cpu_capability", &cpu::set_cpu_capability, nb::arg("name"));
  // The library behind CPU matrix products ("openblas" or "onednn", LOOM_GEMM at start-up) and whether
  // bfloat16 products run on bf16 instructions; tests and benchmarks run both engines.
  m.def("_get_gemm_engine", &cpu::gemm::engine_name);
  m.def("_set_gemm_engine", &cpu::gemm::set_engine, nb::arg("name"));
  m.def("_gemm_info", [] {
    nb::dict info;
    info["engine"] = cpu::gemm::engine_name();
    info["native_bf16"] = cpu::gemm::native_bf16();
    info["bf16_isa"] = cpu::gemm::bf16_isa();
    return info;
  });
  m.def("_detected_cpu_capability", [] { return cpu::cpu_capability_name(cpu::detected_cpu_capability()); });
  m.def("_cpu_features", [] {
    const cpu::CpuFeatures& f = cpu::cpu_features();
    return std::map<std::string, bool>{{"f16c", f.f16c}, {"avx512_bf16", f.avx512_bf16},
                                       {"avx512_vnni", f.avx512_vnni}, {"avx512_fp16", f.avx512_fp16},
                                       {"amx", f.amx}};
  });
  m.def("_op_names", [] { return Registry::instance().op_names(); });
}

}  // namespace loom::python
