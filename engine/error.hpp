// flexnn::Error, the one exception type the library throws on bad input or misuse, and the
// FLEXNN_CHECK macro that builds its message (what was expected, what was found, where).
#pragma once

#include <fmt/format.h>

#include <stdexcept>
#include <string>

namespace flexnn {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Throws flexnn::Error with a fmt-formatted message.
template <typename... Args>
[[noreturn]] void fail(fmt::format_string<Args...> format, Args&&... args) {
  throw Error(fmt::format(format, std::forward<Args>(args)...));
}

}  // namespace flexnn

// FLEXNN_CHECK(condition, "format", args...): throws flexnn::Error when the condition is false.
#define FLEXNN_CHECK(condition, ...)      \
  do {                                    \
    if (!(condition)) {                   \
      ::flexnn::fail(__VA_ARGS__);        \
    }                                     \
  } while (false)
