// The emulated CUDA runtime: device queries, memory and copies checked against the device-memory
// registry, streams and events (registries of live handles), and the per-thread last error.
#include "kernels/cuda/emu/runtime.hpp"

#include <chrono>
#include <cstring>
#include <mutex>
#include <new>
#include <unordered_set>
#include <utility>

#include "engine/error.hpp"
#include "kernels/cuda/emu/device_memory.hpp"

struct CUstream_st {
  unsigned int flags;
};

struct CUevent_st {
  unsigned int flags;
  bool recorded = false;
  std::chrono::steady_clock::time_point time{};
};

namespace flexnn::emu {
namespace {

thread_local cudaError_t last_error = cudaSuccess;
thread_local std::string last_detail;

// Live handles (streams, events, pinned host allocations) of one kind, for validation.
template <typename T>
class HandleSet {
 public:
  void insert(T handle) {
    std::lock_guard lock(mutex_);
    handles_.insert(handle);
  }
  bool erase(T handle) {
    std::lock_guard lock(mutex_);
    return handles_.erase(handle) == 1;
  }
  bool contains(T handle) {
    std::lock_guard lock(mutex_);
    return handles_.count(handle) == 1;
  }

 private:
  std::mutex mutex_;
  std::unordered_set<T> handles_;
};

HandleSet<cudaStream_t>& streams() {
  static HandleSet<cudaStream_t> instance;
  return instance;
}
HandleSet<cudaEvent_t>& events() {
  static HandleSet<cudaEvent_t> instance;
  return instance;
}
HandleSet<void*>& pinned_allocations() {
  static HandleSet<void*> instance;
  return instance;
}

constexpr std::size_t kPinnedAlignment = 256;

cudaError_t invalid_device(int device) {
  return record_error(cudaErrorInvalidDevice,
                      fmt::format("device {} does not exist: the emulator has one device, 0", device));
}

cudaError_t check_stream(cudaStream_t stream, const char* call) {
  if (is_live_stream(stream)) return cudaSuccess;
  return record_error(cudaErrorInvalidResourceHandle,
                      fmt::format("{}: stream {} is not a live stream", call, static_cast<const void*>(stream)));
}

cudaError_t check_event(cudaEvent_t event, const char* call) {
  if (event != nullptr && events().contains(event)) return cudaSuccess;
  return record_error(cudaErrorInvalidResourceHandle,
                      fmt::format("{}: event {} is not a live event", call, static_cast<const void*>(event)));
}

// A pointer that a copy claims is device memory must lie in one allocation; one it claims is host
// memory must not overlap device memory (a swapped direction is undefined behaviour in CUDA).
cudaError_t check_side(const void* pointer, std::size_t count, bool device, const char* role, const char* call) {
  if (device) {
    if (auto problem = device_range_problem(pointer, count)) {
      return record_error(cudaErrorInvalidValue,
                          fmt::format("{}: the {} is claimed to be device memory, but {}", call, role, *problem));
    }
  } else if (overlaps_device_memory(pointer, count)) {
    return record_error(cudaErrorInvalidValue,
                        fmt::format("{}: the {} {} (+{} bytes) is claimed to be host memory, but lies in a cudaMalloc "
                                    "allocation",
                                    call, role, pointer, count));
  }
  return cudaSuccess;
}

cudaError_t copy(void* dst, const void* src, std::size_t count, cudaMemcpyKind kind, const char* call) {
  if (count == 0) return cudaSuccess;
  bool dst_device = false, src_device = false;
  switch (kind) {
    case cudaMemcpyHostToHost: break;
    case cudaMemcpyHostToDevice: dst_device = true; break;
    case cudaMemcpyDeviceToHost: src_device = true; break;
    case cudaMemcpyDeviceToDevice: dst_device = src_device = true; break;
    case cudaMemcpyDefault: std::memmove(dst, src, count); return cudaSuccess;
    default:
      return record_error(cudaErrorInvalidMemcpyDirection,
                          fmt::format("{}: {} is not a cudaMemcpyKind", call, static_cast<int>(kind)));
  }
  if (const cudaError_t error = check_side(dst, count, dst_device, "destination", call)) return error;
  if (const cudaError_t error = check_side(src, count, src_device, "source", call)) return error;
  std::memmove(dst, src, count);
  return cudaSuccess;
}

cudaError_t set(void* devPtr, int value, std::size_t count, const char* call) {
  if (count == 0) return cudaSuccess;
  if (const cudaError_t error = check_side(devPtr, count, true, "destination", call)) return error;
  std::memset(devPtr, value, count);
  return cudaSuccess;
}

cudaError_t null_argument(const char* call, const char* argument) {
  return record_error(cudaErrorInvalidValue, fmt::format("{}: {} is null", call, argument));
}

}  // namespace

const std::string& last_error_detail() { return last_detail; }

cudaError_t record_error(cudaError_t error, std::string detail) {
  last_error = error;
  last_detail = std::move(detail);
  return error;
}

void set_last_error_detail(std::string detail) { last_detail = std::move(detail); }

bool is_live_stream(cudaStream_t stream) {
  return stream == nullptr || stream == cudaStreamLegacy || stream == cudaStreamPerThread || streams().contains(stream);
}

}  // namespace flexnn::emu

using flexnn::emu::record_error;

cudaError_t cudaGetDeviceCount(int* count) {
  if (count == nullptr) return flexnn::emu::null_argument("cudaGetDeviceCount", "count");
  *count = 1;
  return cudaSuccess;
}

cudaError_t cudaSetDevice(int device) { return device == 0 ? cudaSuccess : flexnn::emu::invalid_device(device); }

cudaError_t cudaGetDevice(int* device) {
  if (device == nullptr) return flexnn::emu::null_argument("cudaGetDevice", "device");
  *device = 0;
  return cudaSuccess;
}

cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int device) {
  if (prop == nullptr) return flexnn::emu::null_argument("cudaGetDeviceProperties", "prop");
  if (device != 0) return flexnn::emu::invalid_device(device);
  *prop = cudaDeviceProp{};
  std::strncpy(prop->name, "flexnn CUDA emulator", sizeof(prop->name) - 1);
  prop->totalGlobalMem = flexnn::emu::device_memory_limit();
  prop->sharedMemPerBlock = flexnn::emu::kSharedMemoryPerBlock;
  prop->regsPerBlock = 65536;
  prop->warpSize = 32;
  prop->maxThreadsPerBlock = 1024;
  prop->maxThreadsDim[0] = 1024;
  prop->maxThreadsDim[1] = 1024;
  prop->maxThreadsDim[2] = 64;
  prop->maxGridSize[0] = 2147483647;
  prop->maxGridSize[1] = 65535;
  prop->maxGridSize[2] = 65535;
  prop->totalConstMem = 65536;
  prop->major = 9;
  prop->minor = 0;
  prop->multiProcessorCount = 4;
  prop->memoryBusWidth = 5120;
  prop->l2CacheSize = 50 * 1024 * 1024;
  prop->maxThreadsPerMultiProcessor = 2048;
  prop->sharedMemPerMultiprocessor = 228 * 1024;
  prop->regsPerMultiprocessor = 65536;
  prop->sharedMemPerBlockOptin = flexnn::emu::kSharedMemoryPerBlockOptin;
  prop->maxBlocksPerMultiProcessor = 32;
  return cudaSuccess;
}

cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int device) {
  if (value == nullptr) return flexnn::emu::null_argument("cudaDeviceGetAttribute", "value");
  cudaDeviceProp prop;
  if (const cudaError_t error = cudaGetDeviceProperties(&prop, device)) return error;
  switch (attr) {
    case cudaDevAttrMaxThreadsPerBlock: *value = prop.maxThreadsPerBlock; break;
    case cudaDevAttrMaxBlockDimX: *value = prop.maxThreadsDim[0]; break;
    case cudaDevAttrMaxBlockDimY: *value = prop.maxThreadsDim[1]; break;
    case cudaDevAttrMaxBlockDimZ: *value = prop.maxThreadsDim[2]; break;
    case cudaDevAttrMaxGridDimX: *value = prop.maxGridSize[0]; break;
    case cudaDevAttrMaxGridDimY: *value = prop.maxGridSize[1]; break;
    case cudaDevAttrMaxGridDimZ: *value = prop.maxGridSize[2]; break;
    case cudaDevAttrMaxSharedMemoryPerBlock: *value = static_cast<int>(prop.sharedMemPerBlock); break;
    case cudaDevAttrWarpSize: *value = prop.warpSize; break;
    case cudaDevAttrMultiProcessorCount: *value = prop.multiProcessorCount; break;
    case cudaDevAttrL2CacheSize: *value = prop.l2CacheSize; break;
    case cudaDevAttrMaxThreadsPerMultiProcessor: *value = prop.maxThreadsPerMultiProcessor; break;
    case cudaDevAttrComputeCapabilityMajor: *value = prop.major; break;
    case cudaDevAttrComputeCapabilityMinor: *value = prop.minor; break;
    case cudaDevAttrMaxSharedMemoryPerMultiprocessor: *value = static_cast<int>(prop.sharedMemPerMultiprocessor); break;
    case cudaDevAttrMaxSharedMemoryPerBlockOptin: *value = static_cast<int>(prop.sharedMemPerBlockOptin); break;
    default:
      return record_error(cudaErrorInvalidValue,
                          fmt::format("cudaDeviceGetAttribute: attribute {} is not emulated", static_cast<int>(attr)));
  }
  return cudaSuccess;
}

cudaError_t cudaDeviceSynchronize() { return cudaSuccess; }

cudaError_t cudaGetLastError() { return std::exchange(flexnn::emu::last_error, cudaSuccess); }

cudaError_t cudaPeekAtLastError() { return flexnn::emu::last_error; }

const char* cudaGetErrorName(cudaError_t error) {
  switch (error) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInitializationError: return "cudaErrorInitializationError";
    case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
    case cudaErrorInvalidDevicePointer: return "cudaErrorInvalidDevicePointer";
    case cudaErrorInvalidMemcpyDirection: return "cudaErrorInvalidMemcpyDirection";
    case cudaErrorInvalidDeviceFunction: return "cudaErrorInvalidDeviceFunction";
    case cudaErrorNoDevice: return "cudaErrorNoDevice";
    case cudaErrorInvalidDevice: return "cudaErrorInvalidDevice";
    case cudaErrorInvalidResourceHandle: return "cudaErrorInvalidResourceHandle";
    case cudaErrorNotReady: return "cudaErrorNotReady";
    case cudaErrorIllegalAddress: return "cudaErrorIllegalAddress";
    case cudaErrorLaunchFailure: return "cudaErrorLaunchFailure";
    case cudaErrorUnknown: return "cudaErrorUnknown";
  }
  return "unrecognized error code";
}

const char* cudaGetErrorString(cudaError_t error) {
  switch (error) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInitializationError: return "initialization error";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInvalidDevicePointer: return "invalid device pointer";
    case cudaErrorInvalidMemcpyDirection: return "invalid copy direction for memcpy";
    case cudaErrorInvalidDeviceFunction: return "invalid device function";
    case cudaErrorNoDevice: return "no CUDA-capable device is detected";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorInvalidResourceHandle: return "invalid resource handle";
    case cudaErrorNotReady: return "device not ready";
    case cudaErrorIllegalAddress: return "an illegal memory access was encountered";
    case cudaErrorLaunchFailure: return "unspecified launch failure";
    case cudaErrorUnknown: return "unknown error";
  }
  return "unrecognized error code";
}

cudaError_t cudaMalloc(void** devPtr, size_t size) {
  if (devPtr == nullptr) return flexnn::emu::null_argument("cudaMalloc", "devPtr");
  *devPtr = nullptr;
  if (size == 0) return cudaSuccess;
  *devPtr = flexnn::emu::allocate_device_memory(size);
  if (*devPtr != nullptr) return cudaSuccess;
  const std::size_t limit = flexnn::emu::device_memory_limit(), used = flexnn::emu::device_memory_used();
  return record_error(cudaErrorMemoryAllocation,
                      fmt::format("cudaMalloc of {} bytes: the emulated device has {} of {} bytes free", size,
                                  limit > used ? limit - used : 0, limit));
}

cudaError_t cudaFree(void* devPtr) {
  if (devPtr == nullptr || flexnn::emu::free_device_memory(devPtr)) return cudaSuccess;
  return record_error(cudaErrorInvalidValue,
                      fmt::format("cudaFree: {} is not the start of a live cudaMalloc allocation", devPtr));
}

cudaError_t cudaMallocHost(void** ptr, size_t size) {
  if (ptr == nullptr) return flexnn::emu::null_argument("cudaMallocHost", "ptr");
  *ptr = ::operator new (size == 0 ? 1 : size, std::align_val_t{flexnn::emu::kPinnedAlignment}, std::nothrow);
  if (*ptr == nullptr) {
    return record_error(cudaErrorMemoryAllocation, fmt::format("cudaMallocHost of {} bytes failed", size));
  }
  flexnn::emu::pinned_allocations().insert(*ptr);
  return cudaSuccess;
}

cudaError_t cudaFreeHost(void* ptr) {
  if (ptr == nullptr) return cudaSuccess;
  if (!flexnn::emu::pinned_allocations().erase(ptr)) {
    return record_error(cudaErrorInvalidValue,
                        fmt::format("cudaFreeHost: {} is not a live cudaMallocHost allocation", ptr));
  }
  ::operator delete (ptr, std::align_val_t{flexnn::emu::kPinnedAlignment});
  return cudaSuccess;
}

cudaError_t cudaMemGetInfo(size_t* free, size_t* total) {
  if (free == nullptr || total == nullptr) return flexnn::emu::null_argument("cudaMemGetInfo", "free or total");
  *total = flexnn::emu::device_memory_limit();
  const std::size_t used = flexnn::emu::device_memory_used();
  *free = *total > used ? *total - used : 0;
  return cudaSuccess;
}

cudaError_t cudaMemcpy(void* dst, const void* src, size_t count, cudaMemcpyKind kind) {
  return flexnn::emu::copy(dst, src, count, kind, "cudaMemcpy");
}

cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t count, cudaMemcpyKind kind, cudaStream_t stream) {
  if (const cudaError_t error = flexnn::emu::check_stream(stream, "cudaMemcpyAsync")) return error;
  return flexnn::emu::copy(dst, src, count, kind, "cudaMemcpyAsync");
}

cudaError_t cudaMemset(void* devPtr, int value, size_t count) {
  return flexnn::emu::set(devPtr, value, count, "cudaMemset");
}

cudaError_t cudaMemsetAsync(void* devPtr, int value, size_t count, cudaStream_t stream) {
  if (const cudaError_t error = flexnn::emu::check_stream(stream, "cudaMemsetAsync")) return error;
  return flexnn::emu::set(devPtr, value, count, "cudaMemsetAsync");
}

cudaError_t cudaStreamCreate(cudaStream_t* pStream) { return cudaStreamCreateWithFlags(pStream, cudaStreamDefault); }

cudaError_t cudaStreamCreateWithFlags(cudaStream_t* pStream, unsigned int flags) {
  if (pStream == nullptr) return flexnn::emu::null_argument("cudaStreamCreate", "pStream");
  *pStream = new CUstream_st{flags};
  flexnn::emu::streams().insert(*pStream);
  return cudaSuccess;
}

cudaError_t cudaStreamDestroy(cudaStream_t stream) {
  if (stream == nullptr || !flexnn::emu::streams().erase(stream)) {
    return record_error(
        cudaErrorInvalidResourceHandle,
        fmt::format("cudaStreamDestroy: {} is not a live cudaStreamCreate stream", static_cast<const void*>(stream)));
  }
  delete stream;
  return cudaSuccess;
}

cudaError_t cudaStreamSynchronize(cudaStream_t stream) {
  return flexnn::emu::check_stream(stream, "cudaStreamSynchronize");
}

cudaError_t cudaStreamQuery(cudaStream_t stream) { return flexnn::emu::check_stream(stream, "cudaStreamQuery"); }

cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t event, unsigned int) {
  if (const cudaError_t error = flexnn::emu::check_stream(stream, "cudaStreamWaitEvent")) return error;
  return flexnn::emu::check_event(event, "cudaStreamWaitEvent");
}

cudaError_t cudaEventCreate(cudaEvent_t* event) { return cudaEventCreateWithFlags(event, cudaEventDefault); }

cudaError_t cudaEventCreateWithFlags(cudaEvent_t* event, unsigned int flags) {
  if (event == nullptr) return flexnn::emu::null_argument("cudaEventCreate", "event");
  *event = new CUevent_st{flags};
  flexnn::emu::events().insert(*event);
  return cudaSuccess;
}

cudaError_t cudaEventDestroy(cudaEvent_t event) {
  if (event == nullptr || !flexnn::emu::events().erase(event)) {
    return record_error(cudaErrorInvalidResourceHandle,
                        fmt::format("cudaEventDestroy: {} is not a live event", static_cast<const void*>(event)));
  }
  delete event;
  return cudaSuccess;
}

cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream) {
  if (const cudaError_t error = flexnn::emu::check_event(event, "cudaEventRecord")) return error;
  if (const cudaError_t error = flexnn::emu::check_stream(stream, "cudaEventRecord")) return error;
  event->recorded = true;
  event->time = std::chrono::steady_clock::now();
  return cudaSuccess;
}

cudaError_t cudaEventSynchronize(cudaEvent_t event) { return flexnn::emu::check_event(event, "cudaEventSynchronize"); }

cudaError_t cudaEventQuery(cudaEvent_t event) { return flexnn::emu::check_event(event, "cudaEventQuery"); }

cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end) {
  if (ms == nullptr) return flexnn::emu::null_argument("cudaEventElapsedTime", "ms");
  if (const cudaError_t error = flexnn::emu::check_event(start, "cudaEventElapsedTime")) return error;
  if (const cudaError_t error = flexnn::emu::check_event(end, "cudaEventElapsedTime")) return error;
  if (!start->recorded || !end->recorded || ((start->flags | end->flags) & cudaEventDisableTiming)) {
    return record_error(cudaErrorInvalidResourceHandle,
                        "cudaEventElapsedTime: both events must have been recorded and created with timing");
  }
  *ms = std::chrono::duration<float, std::milli>(end->time - start->time).count();
  return cudaSuccess;
}
