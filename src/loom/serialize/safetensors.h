// Reading and writing tensors in the safetensors format (https://github.com/huggingface/safetensors), the
// format loom.save / loom.load use for checkpoints. Files are interchangeable with the `safetensors` library and
// with safetensors.torch / safetensors.numpy.
//
// Layout:  [8 bytes: N, little-endian u64] [N bytes: JSON header, space-padded to a multiple of 8]
//          [data buffer: each tensor's bytes, row-major, little-endian, back to back]
// Header:  {"__metadata__": {"key": "value", ...},            (optional; string -> string)
//           "name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}, ...}
// Offsets are relative to the start of the data buffer.
#pragma once
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "loom/core/tensor.h"

namespace loom::serialize {

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;
using Metadata = std::map<std::string, std::string>;

struct SafetensorsContents {
  NamedTensors tensors;  // in the order of their data in the file
  Metadata metadata;     // the header's "__metadata__" (empty when absent)
};

// The largest header the loader accepts (the reference library's limit, 100 MB).
inline constexpr uint64_t kMaxSafetensorsHeaderBytes = 100'000'000;

// The safetensors dtype string of a loom dtype: "F32", "F64", "F16", "BF16", "I64", "I32", "I16", "I8", "U8", "BOOL".
const char* safetensors_dtype_name(DType dtype);

// Writes `tensors` and `metadata` to `path` atomically (temporary file in the same directory, fsync, rename).
// Tensors are laid out as the reference library does: by dtype, widest alignment first, then by name, so every
// tensor's data is aligned to its itemsize and the file is byte-for-byte what safetensors.torch.save_file
// writes for the same dict (with at most one metadata key: the reference writes several in hash order; loom
// sorts them). Tensors on any device are written (from a host copy); non-contiguous tensors are written
// contiguously; tensors that share storage are written as separate copies; autograd state is not saved.
// Raises ValueError for duplicate or reserved ("__metadata__") names, undefined tensors, non-UTF-8 strings or a
// header over kMaxSafetensorsHeaderBytes (such a file could not be loaded),
// and RuntimeError naming the file for I/O errors (the old file at `path`, if any, is left untouched).
void save_safetensors(const std::string& path, const NamedTensors& tensors, const Metadata& metadata = {});

// Reads a safetensors file. The whole header is validated before any tensor data is read: header length (at
// most kMaxSafetensorsHeaderBytes and within the file), UTF-8 and JSON syntax, an object at the top, no duplicate
// keys, string-only metadata, known dtype strings, non-negative shapes whose byte size does not overflow and
// equals end - begin, and data offsets that cover the data buffer exactly, in order, without gaps or overlaps
// (the reference library's rules). Any violation raises ValueError naming the file and the problem; I/O errors
// raise RuntimeError. The data is copied into tensors the caller owns (no mapping stays open).
// BOOL bytes other than 0/1 are read as true.
SafetensorsContents load_safetensors(const std::string& path);

}  // namespace loom::serialize
