// AtomicFileWriter: writes a file under a temporary name in the target's directory and renames it over the
// target only once everything is on disk, so a crash or an error mid-write never leaves a partial file under
// the real name (readers see either the old file or the new one, never a mix).
#pragma once
#include <cstddef>
#include <string>

namespace loom::serialize {

// Usage:
//   AtomicFileWriter out("ckpt.safetensors");   // creates ".ckpt.safetensors.tmp-<pid>-<random>" next to it
//   out.write(bytes, n); ...                      // raises RuntimeError naming the file on any write error
//   out.commit();                                 // fsync(file), rename over the target, fsync(directory)
// Creating a writer first removes temporaries of the same target abandoned by killed writers (dead pid, or a pid
// reused after the file was written; untouched for at least a minute). See docs/checkpoints.md.
// If the writer is destroyed without commit() (an exception unwound past it), the temporary file is closed and
// removed and the target is left untouched. Errors are loom::Error (Runtime) whose message starts with `caller`
// and names the target path and the OS error.
class AtomicFileWriter {
 public:
  explicit AtomicFileWriter(std::string path, std::string caller = "save");
  ~AtomicFileWriter();
  AtomicFileWriter(const AtomicFileWriter&) = delete;
  AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;

  // Writes all n bytes (retrying partial writes and EINTR).
  void write(const void* data, size_t n);
  // Makes the new contents durable and visible under the target name. Can be called once.
  void commit();

  const std::string& path() const { return path_; }
  const std::string& temp_path() const { return temp_path_; }

 private:
  [[noreturn]] void fail_errno(const char* what, int error) const;
  void discard() noexcept;

  std::string path_;
  std::string caller_;
  std::string temp_path_;
  int fd_ = -1;
  bool committed_ = false;
};

}  // namespace loom::serialize
