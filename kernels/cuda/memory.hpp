// The CUDA backend's device memory and device queries, callable from plain C++ (the engine never
// includes CUDA headers): raw allocation for the caching allocator, copies between host and device,
// and whether a device exists. Implemented in memory.cu, which is compiled by nvcc for a GPU or as
// C++ against the CPU emulation of CUDA (kernels/cuda/emu).
#pragma once

#include <cstddef>
#include <string>

namespace flexnn::cuda {

// True when the backend is the CPU emulation of CUDA rather than a real GPU.
bool is_emulated();
// Devices the runtime reports (0 when no driver or GPU is present; 1 on the emulator).
int device_count();
// The device's name, e.g. "NVIDIA H200" or "flexnn CUDA emulator".
std::string device_name(int device);

// Raw device memory on the current device: nullptr when the device is out of memory.
void* device_malloc(std::size_t bytes);
void device_free(void* ptr);
// Free and total bytes of device memory.
void memory_info(std::size_t& free_bytes, std::size_t& total_bytes);

// Copies ordered on the backend's stream; copies to the host wait for the stream.
void copy_host_to_device(void* dst, const void* src, std::size_t bytes);
void copy_device_to_host(void* dst, const void* src, std::size_t bytes);
void copy_device_to_device(void* dst, const void* src, std::size_t bytes);
void set_zero(void* ptr, std::size_t bytes);
// p[0, n) = value.
void fill(float* p, long long n, float value);
// Waits until every operation issued so far has finished.
void synchronize();

}  // namespace flexnn::cuda
