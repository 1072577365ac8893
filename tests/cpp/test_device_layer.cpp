// The device layer from C++: device-type names, a backend registered in-process (host memory behind a device
// type, synchronous), cross-device copies, kernel lookup and masking, the CPU fallback, guards and streams, autograd
// across devices, and the loader's errors. The out-of-tree, asynchronous example backend is tested from Python.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "loom/backends/plugin.h"
#include "loom/loom.h"

namespace {

using loom::Device;
using loom::DeviceType;
using loom::Tensor;

// Host memory presented as two devices of type "hostdev". Copies are memcpy; there is one stream per device.
class HostDeviceBackend final : public loom::DeviceBackend {
 public:
  class HostAllocator final : public loom::Allocator {
   public:
    void* allocate(size_t nbytes, int) override {
      ++live;
      return std::malloc(nbytes ? nbytes : 1);
    }
    void deallocate(void* p, size_t, int) override {
      --live;
      std::free(p);
    }
    int live = 0;
  };

  bool is_available() const override { return true; }
  int device_count() const override { return 2; }
  int current_device() const override { return current; }
  void set_device(int index) override {
    current = index;
    ++set_device_calls;
  }
  loom::Stream create_stream(int index, int) override { return {Device(type, index), ++next_stream}; }
  void destroy_stream(const loom::Stream&) override {}
  void synchronize_stream(const loom::Stream&) override {}
  bool query_stream(const loom::Stream&) override { return true; }
  void synchronize_device(int) override {}
  loom::EventHandle create_event(int, bool) override { return new int(0); }
  void destroy_event(loom::EventHandle e) override { delete static_cast<int*>(e); }
  void record_event(loom::EventHandle, const loom::Stream&) override {}
  void stream_wait_event(const loom::Stream&, loom::EventHandle) override {}
  void synchronize_event(loom::EventHandle) override {}
  bool query_event(loom::EventHandle) override { return true; }
  double elapsed_ms(loom::EventHandle, loom::EventHandle) override { return 0.0; }
  loom::Allocator& allocator() override { return alloc; }
  void copy(void* dst, Device, const void* src, Device, size_t n, const loom::Stream& stream, bool) override {
    last_copy_stream = stream;
    std::memcpy(dst, src, n);
  }
  void memset(void* dst, int byte, size_t n, const loom::Stream&) override { std::memset(dst, byte, n); }
  loom::DeviceMemoryStats memory_stats(int) override { return {}; }

  DeviceType type = DeviceType::CPU;
  HostAllocator alloc;
  int current = 0;
  int set_device_calls = 0;
  uint64_t next_stream = 0;
  loom::Stream last_copy_stream;
};

// The kernels of hostdev: "add" only, by running the CPU kernel on the same (host) memory viewed as CPU tensors.
Tensor as_cpu(const Tensor& t) {
  auto impl = std::make_shared<loom::TensorImpl>(*t.impl());
  impl->storage = loom::Storage::wrap(t.storage()->data(), t.storage()->nbytes(), Device(), nullptr);
  impl->autograd = nullptr;
  impl->view_base = nullptr;
  return Tensor(impl);
}

int g_kernel_device_index = -1;
loom::Stream g_kernel_stream;

std::vector<Tensor> hostdev_kernel(const loom::KernelContext& ctx) {
  g_kernel_device_index = loom::backend_for(ctx.device.type).current_device();
  g_kernel_stream = ctx.stream;
  std::vector<Tensor> cpu_inputs;
  for (const Tensor& t : ctx.inputs) cpu_inputs.push_back(t.device().is_cpu() ? t : as_cpu(t));
  loom::Attrs attrs = ctx.attrs;
  if (attrs.has("device")) attrs.set("device", Device());  // factories: fill host memory
  std::vector<Tensor> results = loom::dispatch(*ctx.op, cpu_inputs, attrs);
  if (ctx.op->mutates_inputs) return ctx.outputs.empty() ? std::vector<Tensor>{} : std::vector<Tensor>{ctx.inputs[0]};
  std::vector<Tensor> outputs;
  for (size_t i = 0; i < results.size(); ++i) {
    Tensor out = ctx.alloc(i);
    loom::dispatch(loom::Registry::instance().op("copy"), {as_cpu(out), results[i]});
    outputs.push_back(out);
  }
  return outputs;
}

HostDeviceBackend* g_backend = nullptr;

DeviceType hostdev() {
  static DeviceType type = [] {
    DeviceType t = loom::register_device_type("hostdev");
    auto backend = std::make_unique<HostDeviceBackend>();
    backend->type = t;
    g_backend = backend.get();
    loom::register_backend(t, std::move(backend));
    for (const char* op : {"copy", "fill", "full", "add", "mul", "sum", "neg"})
      loom::Registry::instance().set_kernel(op, t, hostdev_kernel);
    return t;
  }();
  return type;
}

std::vector<std::string> g_warnings;
void capture_warning(const std::string& message) { g_warnings.push_back(message); }

TEST(DeviceTypes, NamesAreCheckedAndStable) {
  DeviceType t = hostdev();
  EXPECT_EQ(std::string(loom::device_type_name(t)), "hostdev");
  EXPECT_EQ(loom::register_device_type("hostdev"), t);  // a second registration returns the same slot
  EXPECT_EQ(loom::register_device_type("cuda"), DeviceType::CUDA);
  EXPECT_THROW(loom::register_device_type("cpu"), loom::Error);
  EXPECT_THROW(loom::register_device_type("Bad-Name"), loom::Error);
  EXPECT_THROW(loom::register_device_type("nn"), loom::Error);
  EXPECT_EQ(Device("hostdev:1"), Device(t, 1));
  EXPECT_EQ(Device("hostdev").index, Device::kCurrentIndex);
  EXPECT_EQ(Device("cpu:3"), Device());  // one host device, as PyTorch's tensors on "cpu:3" end up on "cpu"
  EXPECT_THROW(Device("nosuchdev:0"), loom::Error);
  EXPECT_THROW(loom::resolve_device_index(Device(t, 2)), loom::Error);  // hostdev has 2 devices
}

TEST(DeviceLayer, TensorsMoveBitForBitAndKeepDevices) {
  DeviceType t = hostdev();
  Tensor x = loom::reshape(loom::arange(loom::Scalar(0.0), loom::Scalar(12.0)), {3, 4});
  Tensor xt = loom::transpose(x, 0, 1);  // non-contiguous source
  Tensor on = loom::to_device(xt, Device(t, 1));
  EXPECT_EQ(on.device(), Device(t, 1));
  EXPECT_TRUE(on.is_contiguous());
  Tensor back = loom::to_device(on, Device());
  ASSERT_TRUE(back.device().is_cpu());
  Tensor expected = loom::contiguous(xt);
  EXPECT_EQ(std::memcmp(back.data_ptr(), expected.data_ptr(), 12 * sizeof(float)), 0);
  EXPECT_TRUE(loom::to_device(on, Device(t, 1)).is_same(on));  // already there: the same tensor
  EXPECT_THROW(on.item(), loom::Error);  // 12 elements
}

TEST(DeviceLayer, ItemAndPrintingCopyToTheHost) {
  DeviceType t = hostdev();
  Tensor one = loom::to_device(loom::full({}, loom::Scalar(2.5)), Device(t, 0));
  EXPECT_EQ(one.item().to_double(), 2.5);
  EXPECT_EQ(one.str(), "tensor(2.5000, device='hostdev:0')");
}

TEST(DeviceLayer, CrossDeviceCopyAndMismatchErrors) {
  DeviceType t = hostdev();
  Tensor dst = loom::to_device(loom::zeros({2, 3}), Device(t, 0));
  Tensor src = loom::ones({3});  // broadcast from the host
  loom::copy_(dst, src);
  EXPECT_EQ(loom::sum(loom::to_device(dst, Device())).item().to_double(), 6.0);
  try {
    loom::add(dst, loom::ones({2, 3}));
    FAIL() << "adding tensors on two devices must raise";
  } catch (const loom::Error& e) {
    EXPECT_NE(std::string(e.what()).find("hostdev:0"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("cpu"), std::string::npos) << e.what();
  }
}

TEST(DeviceLayer, KernelsRunUnderTheDeviceGuardOnTheCurrentStream) {
  DeviceType t = hostdev();
  Tensor a = loom::to_device(loom::ones({4}), Device(t, 1));
  g_backend->set_device(0);
  loom::Stream side = g_backend->create_stream(1, 0);
  {
    loom::StreamGuard stream_guard(side);
    Tensor b = loom::add(a, a);
    EXPECT_EQ(g_kernel_device_index, 1);  // made current for the kernel
    EXPECT_EQ(g_kernel_stream, side);
    EXPECT_EQ(b.device(), Device(t, 1));
  }
  EXPECT_EQ(g_backend->current_device(), 0);  // and restored
  EXPECT_EQ(loom::current_stream(Device(t, 1)).id, 0u);
}

TEST(DeviceLayer, NumbersStayOnTheHost) {
  DeviceType t = hostdev();
  Tensor a = loom::to_device(loom::ones({4}), Device(t, 0));
  Tensor b = loom::mul(a, loom::wrapped_scalar(loom::Scalar(3.0), Device()));
  EXPECT_EQ(b.device(), Device(t, 0));
  EXPECT_EQ(loom::sum(loom::to_device(b, Device())).item().to_double(), 12.0);
}

TEST(DeviceLayer, MissingKernelsNameTheOpAndTheFallbackRunsOnTheCpu) {
  DeviceType t = hostdev();
  Tensor a = loom::to_device(loom::full({3}, loom::Scalar(4.0)), Device(t, 0));
  try {
    loom::sqrt(a);
    FAIL() << "hostdev has no sqrt kernel";
  } catch (const loom::Error& e) {
    EXPECT_EQ(e.kind(), loom::ErrorKind::NotImplemented);
    EXPECT_NE(std::string(e.what()).find("sqrt"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("hostdev"), std::string::npos) << e.what();
  }
  loom::set_warning_handler(capture_warning);
  loom::Registry::instance().set_cpu_fallback(t, true);
  g_warnings.clear();
  Tensor r = loom::sqrt(a);
  loom::sqrt(a);
  loom::Registry::instance().set_cpu_fallback(t, false);
  loom::set_warning_handler(nullptr);
  EXPECT_EQ(r.device(), Device(t, 0));
  EXPECT_EQ(loom::sum(loom::to_device(r, Device())).item().to_double(), 6.0);
  ASSERT_EQ(g_warnings.size(), 1u) << "one warning per op";
  EXPECT_NE(g_warnings[0].find("sqrt"), std::string::npos);
}

TEST(DeviceLayer, HasKernelFollowsRegistrationAndMasking) {
  DeviceType t = hostdev();
  const loom::OpDef& add = loom::Registry::instance().op("add");
  EXPECT_TRUE(loom::has_kernel(add, Device(t, 0)));
  EXPECT_FALSE(loom::has_kernel(loom::Registry::instance().op("sqrt"), Device(t, 0)));
  EXPECT_TRUE(loom::has_kernel(loom::Registry::instance().op("view"), Device(t, 0)));  // device-independent
  loom::Registry::instance().set_kernel_masked("add", DeviceType::CPU, true);
  EXPECT_FALSE(loom::has_kernel(add, Device()));
  loom::Registry::instance().set_kernel_masked("add", DeviceType::CPU, false);
  EXPECT_TRUE(loom::has_kernel(add, Device()));
}

TEST(DeviceLayer, GradientsFlowBackAcrossDevices) {
  DeviceType t = hostdev();
  Tensor x = loom::full({3}, loom::Scalar(2.0));
  x.set_requires_grad(true);
  Tensor on = loom::to_device(x, Device(t, 0));
  Tensor s = loom::full({}, loom::Scalar(5.0));  // a 0-d CPU tensor joining a device op
  s.set_requires_grad(true);
  Tensor loss = loom::sum(loom::mul(on, s));
  loss.backward();
  ASSERT_TRUE(x.grad().defined());
  EXPECT_TRUE(x.grad().device().is_cpu());
  EXPECT_EQ(loom::sum(x.grad()).item().to_double(), 15.0);
  EXPECT_TRUE(s.grad().device().is_cpu());  // moved back to its input's device, as PyTorch's engine does
  EXPECT_EQ(s.grad().item().to_double(), 6.0);
  Tensor leaf = loom::to_device(loom::ones({2}), Device(t, 0));
  leaf.set_requires_grad(true);
  EXPECT_THROW(leaf.set_grad(loom::ones({2})), loom::Error);  // a grad on another device
}

TEST(DeviceLayer, ModuleMovesItsParameters) {
  DeviceType t = hostdev();
  loom::Registry::instance().set_cpu_fallback(t, true);
  loom::set_warning_handler(capture_warning);
  auto linear = std::make_shared<loom::nn::Linear>(4, 2);
  Tensor weight = linear->named_parameters().at(0).second;
  linear->to(Device(t, 1));
  EXPECT_EQ(weight.device(), Device(t, 1));  // the same parameter object, moved in place
  loom::Registry::instance().set_cpu_fallback(t, false);
  loom::set_warning_handler(nullptr);
}

TEST(Loader, RefusesWhatIsNotAPlugin) {
  try {
    loom::load_backend("/nonexistent/libnothing.so");
    FAIL();
  } catch (const loom::Error& e) {
    EXPECT_NE(std::string(e.what()).find("cannot load"), std::string::npos) << e.what();
  }
  try {
    loom::load_backend("libz.so.1");  // a real library without loom's entry points
    FAIL();
  } catch (const loom::Error& e) {
    EXPECT_NE(std::string(e.what()).find("not a loom backend"), std::string::npos) << e.what();
  }
}

TEST(Loader, AbiInfoDescribesThisBuild) {
  LoomAbiInfo info = loom::loom_abi_info();
  EXPECT_EQ(info.abi_version, static_cast<uint32_t>(LOOM_BACKEND_ABI_VERSION));
  EXPECT_EQ(info.sizeof_tensor_impl, sizeof(loom::TensorImpl));
  EXPECT_EQ(info.num_device_types, static_cast<uint32_t>(loom::kNumDeviceTypes));
}

}  // namespace
