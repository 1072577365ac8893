// Temporary file + fsync + rename + directory fsync (POSIX).
#include "loom/serialize/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <random>

#include "loom/core/error.h"

namespace loom::serialize {

namespace {

std::string random_suffix() {
  static std::atomic<uint64_t> counter{0};
  thread_local std::mt19937_64 engine{std::random_device{}()};
  char buffer[64];
  std::snprintf(buffer, sizeof(buffer), "%ld-%016llx%llu", static_cast<long>(::getpid()),
                static_cast<unsigned long long>(engine()), static_cast<unsigned long long>(counter++));
  return buffer;
}

std::string parent_directory(const std::string& path) {
  std::filesystem::path parent = std::filesystem::path(path).parent_path();
  return parent.empty() ? std::string(".") : parent.string();
}

}  // namespace

AtomicFileWriter::AtomicFileWriter(std::string path, std::string caller)
    : path_(std::move(path)), caller_(std::move(caller)) {
  LOOM_CHECK(!path_.empty(), Value, caller_, ": the file name is empty");
  std::filesystem::path target(path_);
  LOOM_CHECK(target.has_filename(), Value, caller_, ": '", path_, "' names a directory, not a file");
  std::string directory = parent_directory(path_);
  std::string base = target.filename().string();
  // Keep the temporary name within NAME_MAX (255) even for long target names.
  if (base.size() > 180) base.resize(180);
  for (int attempt = 0; attempt < 16; ++attempt) {
    temp_path_ = directory + "/." + base + ".tmp-" + random_suffix();
    fd_ = ::open(temp_path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd_ >= 0) return;
    if (errno != EEXIST) break;
  }
  int error = errno;
  temp_path_.clear();
  fail(ErrorKind::Runtime, caller_, ": cannot write '", path_, "': could not create a temporary file in '", directory,
       "': ", std::strerror(error));
}

AtomicFileWriter::~AtomicFileWriter() {
  if (!committed_) discard();
}

void AtomicFileWriter::discard() noexcept {
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
  if (!temp_path_.empty()) {
    ::unlink(temp_path_.c_str());
    temp_path_.clear();
  }
}

void AtomicFileWriter::fail_errno(const char* what, int error) const {
  fail(ErrorKind::Runtime, caller_, ": cannot write '", path_, "': ", what, ": ", std::strerror(error));
}

void AtomicFileWriter::write(const void* data, size_t n) {
  LOOM_CHECK(fd_ >= 0 && !committed_, Runtime, caller_, ": '", path_, "': write after commit");
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    size_t chunk = std::min<size_t>(n, size_t(1) << 30);
    ssize_t written = ::write(fd_, p, chunk);
    if (written < 0) {
      if (errno == EINTR) continue;
      fail_errno("write failed", errno);
    }
    if (written == 0) fail_errno("write made no progress", EIO);
    p += written;
    n -= static_cast<size_t>(written);
  }
}

void AtomicFileWriter::commit() {
  LOOM_CHECK(fd_ >= 0 && !committed_, Runtime, caller_, ": '", path_, "': commit called twice");
  if (::fsync(fd_) != 0) fail_errno("fsync failed", errno);
  int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) fail_errno("close failed", errno);
  if (::rename(temp_path_.c_str(), path_.c_str()) != 0) fail_errno("rename of the temporary file failed", errno);
  temp_path_.clear();
  committed_ = true;
  // Make the rename itself durable. A failure here cannot be undone (the new file is already in place), and the
  // data is written, so it is not reported.
  int directory_fd = ::open(parent_directory(path_).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (directory_fd >= 0) {
    ::fsync(directory_fd);
    ::close(directory_fd);
  }
}

}  // namespace loom::serialize
