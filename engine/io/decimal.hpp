// The shortest decimal that reads back as a given float, as a double: 0.1f becomes 0.1, not
// 0.10000000149011612, so JSON written from floats shows the numbers a user wrote.
#pragma once

#include <fmt/core.h>

#include <string>

namespace flexnn {

inline double shortest_decimal(float v) { return std::stod(fmt::format("{}", v)); }

}  // namespace flexnn
