// Random sampling: loom.rand/randn/randint/randperm/bernoulli, in-place uniform_/normal_/bernoulli_, Generator.
#include <nanobind/stl/vector.h>

#include "convert.h"

namespace loom::python {

namespace {

Tensor finish(Tensor t, bool requires_grad) {
  if (requires_grad) t.set_requires_grad(true);
  return t;
}

std::vector<int64_t> rng_state(const Generator& g) {
  return {static_cast<int64_t>(g.seed()), static_cast<int64_t>(g.offset())};
}

void set_rng_state(Generator& g, const std::vector<int64_t>& state) {
  LOOM_CHECK(state.size() == 2, Value, "set_rng_state: expected a state of 2 integers (seed, offset), got ", state.size());
  g.manual_seed(static_cast<uint64_t>(state[0]));
  g.set_offset(static_cast<uint64_t>(state[1]));
}

template <Tensor (*Sampler)(const Shape&, DType, Generator*, Device)>
void def_sampler(nb::module_& m, const char* name, const char* doc) {
  m.def(name, [name](nb::args size, std::optional<DType> dtype, Generator* generator, std::optional<Device> device,
                     bool requires_grad) {
    return finish(Sampler(shape_from_args(size, name), dtype.value_or(default_float_dtype()), generator,
                          device.value_or(Device())), requires_grad);
  }, nb::arg("size"), nb::kw_only(), nb::arg("dtype").none() = nb::none(), nb::arg("generator").none() = nb::none(),
     nb::arg("device").none() = nb::none(), nb::arg("requires_grad") = false, doc);
}

}  // namespace

void bind_random(nb::module_& m, nb::class_<Tensor>& cls) {
  nb::class_<Generator>(m, "Generator", "A Philox4x32-10 random stream (seed + counter offset).")
      .def(nb::init<>())
      .def("manual_seed", [](Generator& g, int64_t seed) -> Generator& {
        g.manual_seed(static_cast<uint64_t>(seed));
        return g;
      }, nb::arg("seed"), nb::rv_policy::reference)
      .def("initial_seed", &Generator::seed)
      .def("get_state", &rng_state)
      .def("set_state", &set_rng_state, nb::arg("state"));
  m.def("default_generator", [] { return &default_generator(); }, nb::rv_policy::reference);
  m.def("_device_generator", [](const Device& device) { return &default_generator(device); }, nb::arg("device"),
        nb::rv_policy::reference, "The default generator of a device (a backend's device: created on first use).");
  m.def("get_rng_state", [] { return rng_state(default_generator()); });
  m.def("set_rng_state", [](const std::vector<int64_t>& s) { set_rng_state(default_generator(), s); }, nb::arg("state"));
  m.def("_philox4x32", [](std::vector<uint32_t> counter, uint64_t key) {
    LOOM_CHECK(counter.size() == 4, Value, "_philox4x32: counter must have 4 words");
    auto out = philox4x32({counter[0], counter[1], counter[2], counter[3]}, key);
    return std::vector<uint32_t>(out.begin(), out.end());
  }, nb::arg("counter"), nb::arg("key"), "One Philox4x32-10 block (for testing the generator against known answers).");

  def_sampler<&loom::rand>(m, "rand", "Uniform samples on [0, 1).");
  def_sampler<&loom::randn>(m, "randn", "Standard normal samples.");
  m.def("randint", [](int64_t low, std::optional<int64_t> high, const Shape& size, std::optional<DType> dtype,
                      Generator* generator, std::optional<Device> device, bool requires_grad) {
    int64_t lo = high ? low : 0, hi = high ? *high : low;
    return finish(randint(lo, hi, size, dtype.value_or(DType::Int64), generator, device.value_or(Device())),
                  requires_grad);
  }, nb::arg("low"), nb::arg("high").none(), nb::arg("size"), nb::kw_only(), nb::arg("dtype").none() = nb::none(),
     nb::arg("generator").none() = nb::none(), nb::arg("device").none() = nb::none(), nb::arg("requires_grad") = false,
     "randint(low=0, high, size): integers uniform on [low, high).");
  m.def("randint", [](int64_t high, const Shape& size, std::optional<DType> dtype, Generator* generator,
                      std::optional<Device> device) {
    return randint(0, high, size, dtype.value_or(DType::Int64), generator, device.value_or(Device()));
  }, nb::arg("high"), nb::arg("size"), nb::kw_only(), nb::arg("dtype").none() = nb::none(),
     nb::arg("generator").none() = nb::none(), nb::arg("device").none() = nb::none());
  m.def("randperm", [](int64_t n, std::optional<DType> dtype, Generator* generator, std::optional<Device> device) {
    return randperm(n, dtype.value_or(DType::Int64), generator, device.value_or(Device()));
  }, nb::arg("n"), nb::kw_only(), nb::arg("dtype").none() = nb::none(), nb::arg("generator").none() = nb::none(),
     nb::arg("device").none() = nb::none());
  // The *_like samplers keep the input's device unless device= says otherwise.
  m.def("rand_like", [](const Tensor& t, std::optional<DType> dtype, Generator* g, std::optional<Device> device) {
    return rand(t.sizes(), dtype.value_or(t.dtype()), g, device.value_or(t.device()));
  }, nb::arg("input"), nb::kw_only(), nb::arg("dtype").none() = nb::none(), nb::arg("generator").none() = nb::none(),
     nb::arg("device").none() = nb::none());
  m.def("randn_like", [](const Tensor& t, std::optional<DType> dtype, Generator* g, std::optional<Device> device) {
    return randn(t.sizes(), dtype.value_or(t.dtype()), g, device.value_or(t.device()));
  }, nb::arg("input"), nb::kw_only(), nb::arg("dtype").none() = nb::none(), nb::arg("generator").none() = nb::none(),
     nb::arg("device").none() = nb::none());
  m.def("normal", [](double mean, double std, const Shape& size, std::optional<DType> dtype, Generator* g,
                     std::optional<Device> device) {
    return normal(size, mean, std, dtype.value_or(default_float_dtype()), g, device.value_or(Device()));
  }, nb::arg("mean"), nb::arg("std"), nb::arg("size"), nb::kw_only(), nb::arg("dtype").none() = nb::none(),
     nb::arg("generator").none() = nb::none(), nb::arg("device").none() = nb::none());
  m.def("bernoulli", [](const Tensor& p, Generator* g) { return bernoulli(p, g); }, nb::arg("input"), nb::kw_only(),
        nb::arg("generator").none() = nb::none());
  m.def("bernoulli", [](const Tensor& like, double p, Generator* g) { return bernoulli(like, p, g); },
        nb::arg("input"), nb::arg("p"), nb::kw_only(), nb::arg("generator").none() = nb::none());
  cls.def("uniform_", [](Tensor& t, double a, double b, Generator* g) -> Tensor& { return uniform_(t, a, b, g); },
          nb::arg("from") = 0.0, nb::arg("to") = 1.0, nb::kw_only(), nb::arg("generator").none() = nb::none(),
          nb::rv_policy::reference);
  cls.def("normal_", [](Tensor& t, double mean, double std, Generator* g) -> Tensor& { return normal_(t, mean, std, g); },
          nb::arg("mean") = 0.0, nb::arg("std") = 1.0, nb::kw_only(), nb::arg("generator").none() = nb::none(),
          nb::rv_policy::reference);
  cls.def("bernoulli_", [](Tensor& t, double p, Generator* g) -> Tensor& { return bernoulli_(t, p, g); },
          nb::arg("p") = 0.5, nb::kw_only(), nb::arg("generator").none() = nb::none(), nb::rv_policy::reference);
  cls.def("bernoulli", [](const Tensor& p, Generator* g) { return bernoulli(p, g); }, nb::kw_only(),
          nb::arg("generator").none() = nb::none());
}

}  // namespace loom::python
