// Temporary file + fsync + rename + directory fsync (POSIX).
#include "loom/serialize/atomic_file.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <optional>
#include <random>
#include <sstream>

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

// The writer's pid in a temporary name of `prefix` (".<base>.tmp-"), which is followed by exactly
// "<pid>-<16 hex digits><decimal counter>" (random_suffix()); nullopt for any other name.
std::optional<pid_t> temp_writer_pid(const std::string& name, const std::string& prefix) {
  if (name.size() <= prefix.size() || name.compare(0, prefix.size(), prefix) != 0) return std::nullopt;
  size_t i = prefix.size(), digits = 0;
  long long pid = 0;
  for (; i < name.size() && std::isdigit(static_cast<unsigned char>(name[i])) && digits < 10; ++i, ++digits)
    pid = pid * 10 + (name[i] - '0');
  if (digits == 0 || pid <= 0 || i >= name.size() || name[i++] != '-') return std::nullopt;
  size_t hex = 0;
  for (; hex < 16 && i < name.size() && std::isxdigit(static_cast<unsigned char>(name[i])); ++i, ++hex) {
  }
  if (hex != 16 || i == name.size()) return std::nullopt;
  for (; i < name.size(); ++i)
    if (!std::isdigit(static_cast<unsigned char>(name[i]))) return std::nullopt;
  return static_cast<pid_t>(pid);
}

// When process `pid` started (Linux: /proc/<pid>/stat field 22, in clock ticks after boot, plus the boot time);
// nullopt where that cannot be read.
std::optional<double> process_start_time(pid_t pid) {
  std::ifstream stat_file("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(stat_file, line)) return std::nullopt;
  size_t name_end = line.rfind(')');  // the command name (field 2) may contain spaces and parentheses
  if (name_end == std::string::npos) return std::nullopt;
  std::istringstream fields(line.substr(name_end + 1));
  std::string field;
  for (int i = 3; i <= 22 && fields >> field; ++i) {
    if (i < 22) continue;
    std::ifstream boot("/proc/stat");
    std::string key;
    long long boot_time = -1;
    while (boot >> key)
      if (key == "btime" && boot >> boot_time) break;
    long ticks = ::sysconf(_SC_CLK_TCK);
    if (boot_time < 0 || ticks <= 0) return std::nullopt;
    return static_cast<double>(boot_time) + std::stod(field) / static_cast<double>(ticks);
  }
  return std::nullopt;
}

// Whether the temporary file written by `pid`, last modified at `modified`, is abandoned: its writer is dead, or
// the pid now belongs to a process that started after the file was last written (pid reuse, e.g. a restarted
// container where the trainer gets the same pid again).
bool writer_is_gone(pid_t pid, double modified) {
  if (::kill(pid, 0) == -1 && errno == ESRCH) return true;
  std::optional<double> started = process_start_time(pid);
  return started && *started > modified + 1.0;  // 1 s: btime and the tick count are coarse
}

// Removes temporaries of `base` in `directory` left by writers that were killed mid-write (a crash cannot run
// the destructor that would delete them), so a job killed again and again does not fill its directory. Only
// names of exactly our pattern are touched, and only those untouched for a minute: a writer on another host
// sharing the directory has a pid that means nothing here, but it keeps its file's mtime fresh. Best effort:
// every error is ignored.
void remove_stale_temporaries(const std::string& directory, const std::string& base) {
  constexpr double kMinimumAgeSeconds = 60.0;
  const std::string prefix = "." + base + ".tmp-";
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator(directory, error)) {
    std::string name = entry.path().filename().string();
    std::optional<pid_t> pid = temp_writer_pid(name, prefix);
    if (!pid) continue;
    struct stat info;
    if (::lstat(entry.path().c_str(), &info) != 0 || !S_ISREG(info.st_mode)) continue;
    double modified = static_cast<double>(info.st_mtim.tv_sec) + 1e-9 * static_cast<double>(info.st_mtim.tv_nsec);
    if (static_cast<double>(std::time(nullptr)) - modified < kMinimumAgeSeconds) continue;
    if (writer_is_gone(*pid, modified)) ::unlink(entry.path().c_str());
  }
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
  remove_stale_temporaries(directory, base);
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
