// The CUDA runtime behind loom's device layer (loom::DeviceBackend, core/backend.h), on the CUDA runtime API.
//
// - Devices: cudaGetDeviceCount, read once. Any error there (no driver: cudaErrorInsufficientDriver, no GPU:
//   cudaErrorNoDevice, a broken installation) means 0 devices and is_available() false, never an exception.
// - Streams: a loom stream id is the cudaStream_t handle. Id 0 is CUDA's legacy default stream, as PyTorch's
//   default stream: it synchronises with the other blocking streams, so code that never creates a stream runs in
//   order without events. Streams from create_stream are cudaStreamNonBlocking (they do not wait for stream 0),
//   as PyTorch's side streams; order them with events.
// - Copies: cudaMemcpyAsync on the given stream. A copy involving host memory is waited for unless non_blocking and
//   the host side is pinned memory from this backend (pageable memory may be freed the moment copy returns).
#pragma once
#include <memory>

#include "loom/core/backend.h"

namespace loom_cuda {

class CachingAllocator;

// The number of CUDA devices (0 when there is no usable driver or GPU).
int device_count();

std::unique_ptr<loom::DeviceBackend> make_backend();

// The cudaStream_t of a loom stream.
inline void* stream_handle(const loom::Stream& stream) { return reinterpret_cast<void*>(stream.id); }

}  // namespace loom_cuda
