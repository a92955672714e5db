// Where a tensor's storage lives: the CPU, or a CUDA device (a real GPU, or the CPU emulation of
// CUDA that the backend is also built against; to the engine both are CUDA devices).
#pragma once

#include <string>

namespace flexnn {

enum class DeviceType { CPU, CUDA };

struct Device {
  DeviceType type = DeviceType::CPU;
  int index = 0;
  bool operator==(const Device&) const = default;
  bool is_cuda() const { return type == DeviceType::CUDA; }
  // "cpu" or "cuda" ("cuda:1" for another device).
  std::string str() const;
};

inline constexpr Device kCPU{};
inline constexpr Device kCUDA{DeviceType::CUDA, 0};

// "cpu", "cuda" or "cuda:0"; a CUDA device must exist (real or emulated). Throws flexnn::Error
// naming the accepted forms otherwise.
Device parse_device(const std::string& text);
// Whether the CUDA backend has a device, and whether it is a real GPU (not the emulator).
bool cuda_available();
bool gpu_available();
// A real GPU when there is one, else the CPU (the emulator is never chosen by default: it is for
// testing the backend, and far slower than the CPU kernels).
Device default_device();

}  // namespace flexnn
