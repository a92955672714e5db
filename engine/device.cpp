// Device names, parsing and the default device.
#include "engine/device.hpp"

#include "engine/error.hpp"
#include "kernels/cuda/memory.hpp"

namespace flexnn {

std::string Device::str() const {
  if (type == DeviceType::CPU) return "cpu";
  return index == 0 ? "cuda" : fmt::format("cuda:{}", index);
}

bool cuda_available() { return cuda::device_count() > 0; }

bool gpu_available() { return !cuda::is_emulated() && cuda_available(); }

Device default_device() { return gpu_available() ? kCUDA : kCPU; }

Device parse_device(const std::string& text) {
  if (text == "cpu") return kCPU;
  if (text == "cuda" || text == "cuda:0") {
    FLEXNN_CHECK(cuda_available(), "device '{}': no CUDA device is available (found {} devices)", text,
                 cuda::device_count());
    return kCUDA;
  }
  fail("device: expected 'cpu', 'cuda' or 'cuda:0', found '{}'", text);
}

}  // namespace flexnn
