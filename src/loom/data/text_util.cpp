// Whole-file reads and atomic writes for tokenizer files.
#include "loom/data/text_util.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "loom/core/error.h"

namespace loom::data::detail {

std::string read_file(const std::string& path, const char* who) {
  std::error_code ec;
  LOOM_CHECK(std::filesystem::exists(path, ec), Value, who, ": '", path, "': no such file");
  LOOM_CHECK(!std::filesystem::is_directory(path, ec), Value, who, ": '", path, "': is a directory");
  std::ifstream in(path, std::ios::binary);
  LOOM_CHECK(in.good(), Value, who, ": '", path, "': cannot open: ", std::strerror(errno));
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_file_atomic(const std::string& path, const std::string& content, const char* who) {
  std::string tmp = path + ".tmp." + std::to_string(::getpid());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    LOOM_CHECK(out.good(), Runtime, who, ": cannot open '", tmp, "' for writing: ", std::strerror(errno));
    out.write(content.data(), static_cast<std::streamsize>(content.size()));
    out.flush();
    if (!out.good()) {
      std::error_code ec;
      std::filesystem::remove(tmp, ec);
      fail(ErrorKind::Runtime, who, ": writing '", tmp, "' failed: ", std::strerror(errno));
    }
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::filesystem::remove(tmp, ec);
    fail(ErrorKind::Runtime, who, ": cannot rename '", tmp, "' to '", path, "': ", ec.message());
  }
}

}  // namespace loom::data::detail
