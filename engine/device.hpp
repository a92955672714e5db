// Where a tensor's storage lives. The CPU now; the CUDA backend adds its device type later.
#pragma once

#include <string>

namespace flexnn {

enum class DeviceType { CPU };

struct Device {
  DeviceType type = DeviceType::CPU;
  int index = 0;
  bool operator==(const Device&) const = default;
  std::string str() const { return "cpu"; }
};

inline constexpr Device kCPU{};

}  // namespace flexnn
