// A coverage-guided fuzzer (libFuzzer) for the safetensors reader, loom::serialize::load_safetensors.
// Every input is written to a scratch file and loaded: the reader must either return tensors whose bytes can
// all be read, or raise a loom::Error. Anything else (a sanitizer report, another exception, a crash, a hang
// or more than -rss_limit_mb of memory) is a finding, saved by libFuzzer as a crash-* file.
//
// Built by `make fuzz-build` with clang (libFuzzer ships with it): this file and the reader's sources are
// compiled with -fsanitize=fuzzer,address,undefined and linked against the release libloom for the rest.
// Run: build/fuzz/safetensors_fuzzer NEW_CORPUS_DIR tests/fuzz/corpus/safetensors -dict=tests/fuzz/safetensors.dict
// (libFuzzer adds new inputs to the first directory only). `make fuzz-test` runs it for a minute.
#include <fcntl.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <string>

#include "loom/core/error.h"
#include "loom/serialize/safetensors.h"

namespace {

// One scratch file per process, in memory where /dev/shm exists.
const std::string& scratch_path() {
  static const std::string path = [] {
    const char* dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : (std::getenv("TMPDIR") ? std::getenv("TMPDIR") : "/tmp");
    return std::string(dir) + "/loom-safetensors-fuzz-" + std::to_string(getpid()) + ".safetensors";
  }();
  static const bool cleanup_registered = std::atexit([] { unlink(scratch_path().c_str()); }) == 0;
  (void)cleanup_registered;
  return path;
}

void write_file(const std::string& path, const uint8_t* data, size_t size) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (fd < 0) abort();
  for (size_t done = 0; done < size;) {
    ssize_t n = write(fd, data + done, size - done);
    if (n <= 0) abort();
    done += static_cast<size_t>(n);
  }
  close(fd);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string& path = scratch_path();
  write_file(path, data, size);
  try {
    auto contents = loom::serialize::load_safetensors(path);
    // Read every byte of every tensor, so a tensor whose storage is smaller than it claims shows up in ASan.
    volatile uint8_t sink = 0;
    for (const auto& [name, tensor] : contents.tensors) {
      const auto* bytes = static_cast<const uint8_t*>(tensor.data_ptr());
      size_t nbytes = static_cast<size_t>(tensor.numel()) * tensor.itemsize();
      for (size_t i = 0; i < nbytes; ++i) sink = sink ^ bytes[i];
      for (char c : name) sink = sink ^ static_cast<uint8_t>(c);
    }
    for (const auto& [key, value] : contents.metadata) sink = sink ^ static_cast<uint8_t>(key.size() + value.size());
  } catch (const loom::Error&) {
    // A rejected file: the expected outcome for most inputs.
  }
  return 0;
}
