#include "runtime.h"

#include <cuda_runtime_api.h>

#include <mutex>

#include "caching_allocator.h"
#include "cuda_check.h"
#include "device_guard.h"
#include "launch.h"

namespace loom_cuda {

int device_count() {
  static const int count = [] {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
      (void)cudaGetLastError();  // no driver, no device: not an error for loom, just no CUDA
      return 0;
    }
    return n;
  }();
  return count;
}

void check_launch(const char* op) { check(cudaGetLastError(), op); }

namespace {

cudaStream_t as_stream(const loom::Stream& s) { return reinterpret_cast<cudaStream_t>(s.id); }
cudaEvent_t as_event(loom::EventHandle e) { return static_cast<cudaEvent_t>(e); }

class CudaBackend final : public loom::DeviceBackend {
 public:
  CudaBackend() : allocator_(device_count()) {}

  bool is_available() const override { return device_count() > 0; }
  int device_count() const override { return loom_cuda::device_count(); }
  int current_device() const override {
    if (device_count() == 0) return 0;
    int device = 0;
    check(cudaGetDevice(&device), "cudaGetDevice");
    return device;
  }
  void set_device(int index) override {
    check_index(index);
    check(cudaSetDevice(index), "cudaSetDevice");
  }

  loom::Stream create_stream(int index, int priority) override {
    check_index(index);
    DeviceGuard guard(index);
    // CUDA priorities: lower numbers run first, in [greatest, least]; loom's (like PyTorch's) negative means higher.
    int least = 0, greatest = 0;
    check(cudaDeviceGetStreamPriorityRange(&least, &greatest), "cudaDeviceGetStreamPriorityRange");
    const int cuda_priority = std::max(greatest, std::min(least, priority));
    cudaStream_t stream = nullptr;
    check(cudaStreamCreateWithPriority(&stream, cudaStreamNonBlocking, cuda_priority), "cudaStreamCreate");
    return loom::Stream{loom::Device(loom::DeviceType::CUDA, index), reinterpret_cast<uint64_t>(stream)};
  }
  void destroy_stream(const loom::Stream& s) override {
    if (s.id != 0) check(cudaStreamDestroy(as_stream(s)), "cudaStreamDestroy");
  }
  void synchronize_stream(const loom::Stream& s) override {
    DeviceGuard guard(s.device.index);
    check(cudaStreamSynchronize(as_stream(s)), "cudaStreamSynchronize");
  }
  bool query_stream(const loom::Stream& s) override {
    DeviceGuard guard(s.device.index);
    return ready(cudaStreamQuery(as_stream(s)), "cudaStreamQuery");
  }
  void synchronize_device(int index) override {
    check_index(index);
    DeviceGuard guard(index);
    check(cudaDeviceSynchronize(), "cudaDeviceSynchronize");
  }

  loom::EventHandle create_event(int index, bool timing) override {
    check_index(index);
    DeviceGuard guard(index);
    cudaEvent_t event = nullptr;
    check(cudaEventCreateWithFlags(&event, timing ? cudaEventDefault : cudaEventDisableTiming), "cudaEventCreate");
    return event;
  }
  void destroy_event(loom::EventHandle e) override { check(cudaEventDestroy(as_event(e)), "cudaEventDestroy"); }
  void record_event(loom::EventHandle e, const loom::Stream& s) override {
    DeviceGuard guard(s.device.index);
    check(cudaEventRecord(as_event(e), as_stream(s)), "cudaEventRecord");
  }
  void stream_wait_event(const loom::Stream& s, loom::EventHandle e) override {
    DeviceGuard guard(s.device.index);
    check(cudaStreamWaitEvent(as_stream(s), as_event(e), 0), "cudaStreamWaitEvent");
  }
  void synchronize_event(loom::EventHandle e) override { check(cudaEventSynchronize(as_event(e)), "cudaEventSynchronize"); }
  bool query_event(loom::EventHandle e) override { return ready(cudaEventQuery(as_event(e)), "cudaEventQuery"); }
  double elapsed_ms(loom::EventHandle a, loom::EventHandle b) override {
    float ms = 0;
    check(cudaEventElapsedTime(&ms, as_event(a), as_event(b)), "cudaEventElapsedTime (both events must be recorded, "
                                                                "done, and created with enable_timing=True)");
    return ms;
  }

  loom::Allocator& allocator() override { return allocator_; }
  loom::Allocator* pinned_host_allocator() override { return &pinned_; }

  void copy(void* dst, loom::Device dst_device, const void* src, loom::Device src_device, size_t nbytes,
            const loom::Stream& stream, bool non_blocking) override {
    if (nbytes == 0) return;
    DeviceGuard guard(stream.device.index);
    cudaStream_t s = as_stream(stream);
    if (!dst_device.is_cpu() && !src_device.is_cpu()) {
      if (dst_device.index == src_device.index)
        check(cudaMemcpyAsync(dst, src, nbytes, cudaMemcpyDeviceToDevice, s), "cudaMemcpyAsync (device to device)");
      else
        check(cudaMemcpyPeerAsync(dst, dst_device.index, src, src_device.index, nbytes, s), "cudaMemcpyPeerAsync");
      return;  // ordered on the stream; nothing on the host to protect
    }
    const bool to_host = dst_device.is_cpu();
    const void* host = to_host ? dst : src;
    check(cudaMemcpyAsync(dst, src, nbytes, to_host ? cudaMemcpyDeviceToHost : cudaMemcpyHostToDevice, s),
          to_host ? "cudaMemcpyAsync (device to host)" : "cudaMemcpyAsync (host to device)");
    if (!(non_blocking && pinned_.owns(host))) check(cudaStreamSynchronize(s), "cudaStreamSynchronize (copy)");
  }
  void memset(void* dst, int byte, size_t nbytes, const loom::Stream& stream) override {
    if (nbytes == 0) return;
    DeviceGuard guard(stream.device.index);
    check(cudaMemsetAsync(dst, byte, nbytes, as_stream(stream)), "cudaMemsetAsync");
  }
  loom::DeviceMemoryStats memory_stats(int index) override {
    check_index(index);
    return allocator_.stats(index);
  }
  void reset_peak_memory_stats(int index) override {
    check_index(index);
    allocator_.reset_peak(index);
  }

 private:
  void check_index(int index) const {
    LOOM_CHECK(device_count() > 0, Runtime, "cuda: no CUDA device is available (no GPU, or no NVIDIA driver)");
    LOOM_CHECK(index >= 0 && index < device_count(), Value, "cuda: device index ", index, " is out of range (",
               device_count(), " device(s))");
  }
  // cudaErrorNotReady is an answer, not an error.
  static bool ready(cudaError_t status, const char* what) {
    if (status == cudaErrorNotReady) return false;
    check(status, what);
    return true;
  }

  CachingAllocator allocator_;
  PinnedAllocator pinned_;
};

}  // namespace

std::unique_ptr<loom::DeviceBackend> make_backend() { return std::make_unique<CudaBackend>(); }

}  // namespace loom_cuda
