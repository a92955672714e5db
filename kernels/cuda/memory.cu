// Device memory, copies, device queries and the backend's stream and cuBLAS handle.
#include "kernels/cuda/memory.hpp"
#include "kernels/cuda/stream.cuh"

namespace flexnn::cuda {

namespace {

// Lazily created on first use; never destroyed (tensors freed during static destruction may still
// issue work on it).
struct Context {
  cudaStream_t stream = nullptr;
  cublasHandle_t blas = nullptr;
  Context() {
    FLEXNN_CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
    FLEXNN_CUBLAS_CHECK(cublasCreate(&blas));
    FLEXNN_CUBLAS_CHECK(cublasSetStream(blas, stream));
  }
};

Context& context() {
  static Context* instance = new Context();
  return *instance;
}

__global__ void fill_kernel(float* p, long long n, float value) {
  for (long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<long long>(gridDim.x) * blockDim.x)
    p[i] = value;
}

}  // namespace

cudaStream_t stream() { return context().stream; }
cublasHandle_t blas() { return context().blas; }

bool is_emulated() {
#if defined(FLEXNN_CUDA_EMULATED)
  return true;
#else
  return false;
#endif
}

int device_count() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    (void)cudaGetLastError();  // no driver or no device: not an error, just none
    return 0;
  }
  return count;
}

std::string device_name(int device) {
  cudaDeviceProp properties{};
  FLEXNN_CUDA_CHECK(cudaGetDeviceProperties(&properties, device));
  return properties.name;
}

void* device_malloc(std::size_t bytes) {
  void* ptr = nullptr;
  if (cudaMalloc(&ptr, bytes) != cudaSuccess) {
    (void)cudaGetLastError();
    return nullptr;
  }
  return ptr;
}

void device_free(void* ptr) { FLEXNN_CUDA_CHECK(cudaFree(ptr)); }

void memory_info(std::size_t& free_bytes, std::size_t& total_bytes) {
  FLEXNN_CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total_bytes));
}

void copy_host_to_device(void* dst, const void* src, std::size_t bytes) {
  if (bytes == 0) return;
  // Synchronous: the host buffer may be reused as soon as this returns.
  FLEXNN_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, stream()));
  FLEXNN_CUDA_CHECK(cudaStreamSynchronize(stream()));
}

void copy_device_to_host(void* dst, const void* src, std::size_t bytes) {
  if (bytes == 0) return;
  FLEXNN_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, stream()));
  FLEXNN_CUDA_CHECK(cudaStreamSynchronize(stream()));
}

void copy_device_to_device(void* dst, const void* src, std::size_t bytes) {
  if (bytes == 0) return;
  FLEXNN_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, stream()));
}

void set_zero(void* ptr, std::size_t bytes) {
  if (bytes == 0) return;
  FLEXNN_CUDA_CHECK(cudaMemsetAsync(ptr, 0, bytes, stream()));
}

void fill(float* p, long long n, float value) {
  if (n > 0) FLEXNN_LAUNCH(fill_kernel, dim3(blocks_for(n)), dim3(256), 0, stream(), p, n, value);
}

void synchronize() { FLEXNN_CUDA_CHECK(cudaStreamSynchronize(stream())); }

}  // namespace flexnn::cuda
