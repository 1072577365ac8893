// Errors: one exception type carrying a kind that maps onto a Python exception class.
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>

namespace loom {

// Each kind maps to one Python exception (see python/src/errors.cpp):
// Value -> ValueError, Type -> TypeError, Index -> IndexError,
// NotImplemented -> NotImplementedError, Runtime -> RuntimeError.
enum class ErrorKind { Value, Type, Index, NotImplemented, Runtime };

class Error : public std::runtime_error {
 public:
  Error(ErrorKind kind, const std::string& message) : std::runtime_error(message), kind_(kind) {}
  ErrorKind kind() const { return kind_; }

 private:
  ErrorKind kind_;
};

namespace detail {
template <class... Parts>
std::string concat(const Parts&... parts) {
  std::ostringstream out;
  (out << ... << parts);
  return out.str();
}
}  // namespace detail

template <class... Parts>
[[noreturn]] void fail(ErrorKind kind, const Parts&... parts) {
  throw Error(kind, detail::concat(parts...));
}

}  // namespace loom

// LOOM_CHECK(cond, Kind, "op: message ", value, ...) raises loom::Error of that kind when cond is false.
#define LOOM_CHECK(cond, kind, ...)                          \
  do {                                                       \
    if (!(cond)) ::loom::fail(::loom::ErrorKind::kind, __VA_ARGS__); \
  } while (0)
