// IDX files (the MNIST / Fashion-MNIST format): read into a tensor, write from one. Plain or gzip'd.
#pragma once
#include <string>

#include "loom/core/tensor.h"

namespace loom::data {

// Reads an IDX file: magic 0x00 0x00 <dtype code> <ndim>, then ndim big-endian uint32 sizes, then the values
// big-endian. Type codes: 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64.
// The file may be gzip'd (detected by its magic bytes 1f 8b, not by the name). Returns a contiguous CPU tensor
// of that shape and dtype. A missing, truncated or malformed file (bad magic, unknown type code, sizes that do
// not match the payload, trailing bytes, absurd sizes) raises ValueError naming the file and the problem; a
// missing file under /usr/share/datasets/fashion-mnist also names the Debian package that provides it.
// Never reads out of bounds: the payload is read in chunks and sizes are checked before any copy.
Tensor read_idx(const std::string& path);

// Writes `t` (uint8, int8, int16, int32, float32 or float64; at most 255 dims, each below 2^32) as an
// IDX file, gzip'd when `gzip` is true, atomically (temporary file + rename).
void write_idx(const std::string& path, const Tensor& t, bool gzip = false);

}  // namespace loom::data
