// The CPU emulation of CUDA, its host side: device memory and copies checked against the allocation
// registry, the emulated memory limit, device queries, streams and events, the error-check macros,
// and cuBLAS SGEMM (plain and strided-batched) against column-major loops for every transpose pair.
#include <catch2/catch.hpp>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <thread>
#include <vector>

#include "kernels/cuda/cuda_compat.cuh"
#include "test_helpers.hpp"

using flexnn::testing::error_message;

namespace {

// Restores the emulated device size when a test that changes it ends.
class MemoryLimitGuard {
 public:
  MemoryLimitGuard() : saved_(flexnn::emu::device_memory_limit()) {}
  ~MemoryLimitGuard() { flexnn::emu::set_device_memory_limit(saved_); }
  MemoryLimitGuard(const MemoryLimitGuard&) = delete;
  MemoryLimitGuard& operator=(const MemoryLimitGuard&) = delete;

 private:
  std::size_t saved_;
};

// Column-major reference: C = alpha op(A) op(B) + beta C.
void reference_gemm(bool ta, bool tb, int m, int n, int k, float alpha, const float* a, int lda, const float* b,
                    int ldb, float beta, float* c, int ldc) {
  for (int j = 0; j < n; ++j) {
    for (int i = 0; i < m; ++i) {
      double sum = 0.0;
      for (int p = 0; p < k; ++p) {
        const float av = ta ? a[p + i * lda] : a[i + p * lda];
        const float bv = tb ? b[j + p * ldb] : b[p + j * ldb];
        sum += static_cast<double>(av) * bv;
      }
      float& out = c[i + j * ldc];
      out = static_cast<float>(alpha * sum + (beta == 0.0f ? 0.0 : static_cast<double>(beta) * out));
    }
  }
}

std::vector<float> values(std::size_t n, int seed) {
  std::vector<float> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<float>((static_cast<int>(i) * 29 + seed) % 17 - 8) / 8.0f;
  return v;
}

float* to_device(const std::vector<float>& host) {
  float* device = nullptr;
  FLEXNN_CUDA_CHECK(cudaMalloc(&device, host.size() * sizeof(float)));
  FLEXNN_CUDA_CHECK(cudaMemcpy(device, host.data(), host.size() * sizeof(float), cudaMemcpyHostToDevice));
  return device;
}

std::vector<float> to_host(const float* device, std::size_t n) {
  std::vector<float> host(n);
  FLEXNN_CUDA_CHECK(cudaMemcpy(host.data(), device, n * sizeof(float), cudaMemcpyDeviceToHost));
  return host;
}

}  // namespace

TEST_CASE("device memory: aligned, poisoned, and copies and sets round-trip", "[cuda][emulator]") {
  const std::size_t n = 1000;
  float* a = nullptr;
  float* b = nullptr;
  REQUIRE(cudaMalloc(&a, n * sizeof(float)) == cudaSuccess);
  REQUIRE(cudaMalloc(&b, n * sizeof(float)) == cudaSuccess);
  CHECK(reinterpret_cast<std::uintptr_t>(a) % 256 == 0);
  CHECK(reinterpret_cast<std::uintptr_t>(b) % 256 == 0);
  std::vector<float> host = to_host(a, n);
  CHECK(std::isnan(host[0]));  // fresh device memory is not zero: reads of unwritten memory show
  CHECK(std::isnan(host[n - 1]));

  const std::vector<float> source = values(n, 1);
  REQUIRE(cudaMemcpy(a, source.data(), n * sizeof(float), cudaMemcpyHostToDevice) == cudaSuccess);
  REQUIRE(cudaMemset(a + 10, 0, 5 * sizeof(float)) == cudaSuccess);
  REQUIRE(cudaMemcpyAsync(b, a, n * sizeof(float), cudaMemcpyDeviceToDevice, 0) == cudaSuccess);
  REQUIRE(cudaMemsetAsync(b + n - 1, 0x3f, 1, 0) == cudaSuccess);  // one byte of the last float
  REQUIRE(cudaMemcpy(host.data(), b, n * sizeof(float), cudaMemcpyDeviceToHost) == cudaSuccess);
  std::vector<float> expected = source;
  for (int i = 10; i < 15; ++i) expected[static_cast<std::size_t>(i)] = 0.0f;
  std::memset(&expected[n - 1], 0x3f, 1);
  CHECK(flexnn::testing::bit_identical(host, expected));

  std::vector<float> copy(n);
  REQUIRE(cudaMemcpy(copy.data(), host.data(), n * sizeof(float), cudaMemcpyHostToHost) == cudaSuccess);
  REQUIRE(cudaMemcpy(copy.data(), a, n * sizeof(float), cudaMemcpyDefault) == cudaSuccess);
  CHECK(copy[10] == 0.0f);
  CHECK(copy[20] == source[20]);
  float* none = reinterpret_cast<float*>(1);
  REQUIRE(cudaMalloc(&none, 0) == cudaSuccess);
  CHECK(none == nullptr);
  CHECK(cudaFree(a) == cudaSuccess);
  CHECK(cudaFree(b) == cudaSuccess);
  CHECK(cudaFree(nullptr) == cudaSuccess);
}

TEST_CASE("copies check that claimed device pointers are device memory and host ones are not", "[cuda][emulator]") {
  float* device = nullptr;
  FLEXNN_CUDA_CHECK(cudaMalloc(&device, 64 * sizeof(float)));
  std::vector<float> host(128, 1.0f);
  (void)cudaGetLastError();

  // A host pointer passed as the device source.
  CHECK(cudaMemcpy(host.data(), host.data() + 64, 64 * sizeof(float), cudaMemcpyDeviceToHost) == cudaErrorInvalidValue);
  CHECK(cudaGetLastError() == cudaErrorInvalidValue);
  CHECK(cudaGetLastError() == cudaSuccess);  // reading the last error resets it
  const std::string unregistered = error_message([&] {
    FLEXNN_CUDA_CHECK(cudaMemcpy(host.data(), host.data() + 64, 64 * sizeof(float), cudaMemcpyDeviceToHost));
  });
  CHECK_THAT(unregistered, Catch::Contains("cudaMemcpy(host.data(), host.data() + 64") &&
                               Catch::Contains("cudaErrorInvalidValue") && Catch::Contains("invalid argument") &&
                               Catch::Contains("source is claimed to be device memory") &&
                               Catch::Contains("not inside any live cudaMalloc allocation"));
  // Past the end of an allocation, and an interior pointer that fits.
  CHECK_THAT(error_message([&] {
               FLEXNN_CUDA_CHECK(cudaMemcpy(device + 60, host.data(), 8 * sizeof(float), cudaMemcpyHostToDevice));
             }),
             Catch::Contains("runs 16 bytes past the end of the 256-byte allocation"));
  CHECK(cudaMemcpy(device + 56, host.data(), 8 * sizeof(float), cudaMemcpyHostToDevice) == cudaSuccess);
  // A device pointer passed as host memory (a swapped direction).
  CHECK_THAT(error_message([&] {
               FLEXNN_CUDA_CHECK(cudaMemcpy(device, device + 32, 16 * sizeof(float), cudaMemcpyHostToDevice));
             }),
             Catch::Contains("source") && Catch::Contains("claimed to be host memory, but lies in a cudaMalloc"));
  CHECK(cudaMemset(host.data(), 0, 16) == cudaErrorInvalidValue);
  CHECK(cudaMemcpy(host.data(), device, 4, static_cast<cudaMemcpyKind>(7)) == cudaErrorInvalidMemcpyDirection);
  CHECK(cudaMemcpy(host.data(), nullptr, 0, cudaMemcpyDeviceToHost) == cudaSuccess);  // nothing to copy
  CHECK(host[0] == 1.0f);                                                             // no failed call wrote anything
  // Frees need the start of a live allocation.
  CHECK(cudaFree(device + 1) == cudaErrorInvalidValue);
  CHECK(cudaFree(device) == cudaSuccess);
  CHECK(cudaFree(device) == cudaErrorInvalidValue);
  CHECK(cudaMemcpy(host.data(), device, 4, cudaMemcpyDeviceToHost) == cudaErrorInvalidValue);  // freed
}

TEST_CASE("allocations beyond the emulated device size fail with cudaErrorMemoryAllocation", "[cuda][emulator]") {
  MemoryLimitGuard guard;
  const std::size_t used = flexnn::emu::device_memory_used();
  flexnn::emu::set_device_memory_limit(used + (1 << 20));
  std::size_t free_bytes = 0, total = 0;
  REQUIRE(cudaMemGetInfo(&free_bytes, &total) == cudaSuccess);
  CHECK(total == used + (1 << 20));
  CHECK(free_bytes == (1 << 20));

  void* a = nullptr;
  REQUIRE(cudaMalloc(&a, 700 * 1024) == cudaSuccess);
  REQUIRE(cudaMemGetInfo(&free_bytes, &total) == cudaSuccess);
  CHECK(free_bytes == (1 << 20) - 700 * 1024);
  void* b = reinterpret_cast<void*>(1);
  CHECK(cudaMalloc(&b, 400 * 1024) == cudaErrorMemoryAllocation);
  CHECK(b == nullptr);
  CHECK_THAT(error_message([&] { FLEXNN_CUDA_CHECK(cudaMalloc(&b, 400 * 1024)); }),
             Catch::Contains("cudaErrorMemoryAllocation") && Catch::Contains("out of memory") &&
                 Catch::Contains("409600 bytes"));
  REQUIRE(cudaFree(a) == cudaSuccess);
  REQUIRE(cudaMalloc(&b, 400 * 1024) == cudaSuccess);  // fits once the first is freed
  REQUIRE(cudaFree(b) == cudaSuccess);
  cudaDeviceProp prop;
  REQUIRE(cudaGetDeviceProperties(&prop, 0) == cudaSuccess);
  CHECK(prop.totalGlobalMem == used + (1 << 20));
}

TEST_CASE("the emulated device reports fixed sm_90-like properties", "[cuda][emulator]") {
  int count = 0, device = -1;
  REQUIRE(cudaGetDeviceCount(&count) == cudaSuccess);
  CHECK(count == 1);
  CHECK(cudaSetDevice(0) == cudaSuccess);
  CHECK(cudaSetDevice(1) == cudaErrorInvalidDevice);
  CHECK(cudaGetDevice(&device) == cudaSuccess);
  CHECK(device == 0);
  cudaDeviceProp prop;
  REQUIRE(cudaGetDeviceProperties(&prop, 0) == cudaSuccess);
  CHECK(std::string(prop.name) == "flexnn CUDA emulator");
  CHECK(prop.major == 9);
  CHECK(prop.minor == 0);
  CHECK(prop.warpSize == 32);
  CHECK(prop.maxThreadsPerBlock == 1024);
  CHECK(prop.sharedMemPerBlock == 48 * 1024);
  CHECK(prop.multiProcessorCount == 4);
  CHECK(prop.maxGridSize[1] == 65535);
  CHECK(cudaGetDeviceProperties(&prop, 2) == cudaErrorInvalidDevice);
  int value = 0;
  REQUIRE(cudaDeviceGetAttribute(&value, cudaDevAttrMaxSharedMemoryPerBlock, 0) == cudaSuccess);
  CHECK(value == 48 * 1024);
  REQUIRE(cudaDeviceGetAttribute(&value, cudaDevAttrMultiProcessorCount, 0) == cudaSuccess);
  CHECK(value == 4);
  CHECK(cudaDeviceSynchronize() == cudaSuccess);
}

TEST_CASE("streams and events: live handles, host time between records", "[cuda][emulator]") {
  cudaStream_t stream = nullptr;
  cudaEvent_t start = nullptr, stop = nullptr, untimed = nullptr;
  REQUIRE(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking) == cudaSuccess);
  REQUIRE(cudaEventCreate(&start) == cudaSuccess);
  REQUIRE(cudaEventCreate(&stop) == cudaSuccess);
  REQUIRE(cudaEventCreateWithFlags(&untimed, cudaEventDisableTiming) == cudaSuccess);
  float ms = -1.0f;
  CHECK(cudaEventElapsedTime(&ms, start, stop) == cudaErrorInvalidResourceHandle);  // not recorded yet
  REQUIRE(cudaEventRecord(start, stream) == cudaSuccess);
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  REQUIRE(cudaEventRecord(stop, stream) == cudaSuccess);
  REQUIRE(cudaEventRecord(untimed, stream) == cudaSuccess);
  REQUIRE(cudaEventSynchronize(stop) == cudaSuccess);
  CHECK(cudaEventQuery(stop) == cudaSuccess);
  REQUIRE(cudaEventElapsedTime(&ms, start, stop) == cudaSuccess);
  CHECK(ms >= 29.0f);
  CHECK(ms < 1000.0f);
  CHECK(cudaEventElapsedTime(&ms, start, untimed) == cudaErrorInvalidResourceHandle);
  CHECK(cudaStreamWaitEvent(stream, stop, 0) == cudaSuccess);
  CHECK(cudaStreamQuery(stream) == cudaSuccess);
  CHECK(cudaStreamSynchronize(stream) == cudaSuccess);
  CHECK(cudaStreamSynchronize(cudaStreamPerThread) == cudaSuccess);

  REQUIRE(cudaStreamDestroy(stream) == cudaSuccess);
  CHECK(cudaStreamDestroy(stream) == cudaErrorInvalidResourceHandle);
  CHECK(cudaStreamSynchronize(stream) == cudaErrorInvalidResourceHandle);
  float host = 0.0f;
  float* device = nullptr;
  FLEXNN_CUDA_CHECK(cudaMalloc(&device, sizeof(float)));
  CHECK_THAT(error_message([&] {
               FLEXNN_CUDA_CHECK(cudaMemcpyAsync(&host, device, sizeof(float), cudaMemcpyDeviceToHost, stream));
             }),
             Catch::Contains("cudaErrorInvalidResourceHandle") && Catch::Contains("is not a live stream"));
  CHECK(cudaFree(device) == cudaSuccess);
  for (cudaEvent_t event : {start, stop, untimed}) CHECK(cudaEventDestroy(event) == cudaSuccess);
  CHECK(cudaEventRecord(start, 0) == cudaErrorInvalidResourceHandle);
}

TEST_CASE("cublasSgemm matches column-major loops for every transpose pair", "[cuda][emulator][cublas]") {
  cublasHandle_t handle = nullptr;
  REQUIRE(cublasCreate(&handle) == CUBLAS_STATUS_SUCCESS);
  cudaStream_t stream = nullptr;
  REQUIRE(cudaStreamCreate(&stream) == cudaSuccess);
  FLEXNN_CUBLAS_CHECK(cublasSetStream(handle, stream));
  FLEXNN_CUBLAS_CHECK(cublasSetMathMode(handle, CUBLAS_TF32_TENSOR_OP_MATH));
  cublasMath_t mode = CUBLAS_DEFAULT_MATH;
  FLEXNN_CUBLAS_CHECK(cublasGetMathMode(handle, &mode));
  CHECK(mode == CUBLAS_TF32_TENSOR_OP_MATH);
  const int m = 7, n = 5, k = 9;
  for (const bool ta : {false, true}) {
    for (const bool tb : {false, true}) {
      // Leading dimensions larger than the stored rows, so a wrong stride reads the padding.
      const int lda = (ta ? k : m) + 3, ldb = (tb ? n : k) + 2, ldc = m + 4;
      const std::vector<float> a = values(static_cast<std::size_t>(lda * (ta ? m : k)), 1);
      const std::vector<float> b = values(static_cast<std::size_t>(ldb * (tb ? k : n)), 2);
      std::vector<float> c = values(static_cast<std::size_t>(ldc * n), 3);
      float* da = to_device(a);
      float* db = to_device(b);
      float* dc = to_device(c);
      const float alpha = 1.5f, beta = -0.5f;
      FLEXNN_CUBLAS_CHECK(cublasSgemm(handle, ta ? CUBLAS_OP_T : CUBLAS_OP_N, tb ? CUBLAS_OP_T : CUBLAS_OP_N, m, n, k,
                                      &alpha, da, lda, db, ldb, &beta, dc, ldc));
      const std::vector<float> got = to_host(dc, c.size());
      reference_gemm(ta, tb, m, n, k, alpha, a.data(), lda, b.data(), ldb, beta, c.data(), ldc);
      for (std::size_t i = 0; i < c.size(); ++i) {
        INFO("transa " << ta << " transb " << tb << " element " << i);
        REQUIRE(got[i] == Approx(c[i]).margin(1e-5));
      }
      for (float* p : {da, db, dc}) REQUIRE(cudaFree(p) == cudaSuccess);
    }
  }
  REQUIRE(cudaStreamDestroy(stream) == cudaSuccess);
  REQUIRE(cublasDestroy(handle) == CUBLAS_STATUS_SUCCESS);
}

TEST_CASE("cublasSgemmStridedBatched and beta = 0 over NaN", "[cuda][emulator][cublas]") {
  cublasHandle_t handle = nullptr;
  FLEXNN_CUBLAS_CHECK(cublasCreate(&handle));
  const int m = 6, n = 4, k = 3, batches = 3;
  const int lda = k + 1, ldb = n, ldc = m + 2;  // A is op T (stored k x m), B is op T (stored n x k)
  const long long stride_a = lda * m + 5, stride_b = ldb * k + 3, stride_c = ldc * n + 7;
  const std::vector<float> a = values(static_cast<std::size_t>(stride_a * batches), 4);
  const std::vector<float> b = values(static_cast<std::size_t>(stride_b * batches), 5);
  std::vector<float> c(static_cast<std::size_t>(stride_c * batches), std::numeric_limits<float>::quiet_NaN());
  float* da = to_device(a);
  float* db = to_device(b);
  float* dc = to_device(c);
  const float alpha = 2.0f, beta = 0.0f;
  FLEXNN_CUBLAS_CHECK(cublasSgemmStridedBatched(handle, CUBLAS_OP_T, CUBLAS_OP_T, m, n, k, &alpha, da, lda, stride_a,
                                                db, ldb, stride_b, &beta, dc, ldc, stride_c, batches));
  const std::vector<float> got = to_host(dc, c.size());
  for (int batch = 0; batch < batches; ++batch) {
    std::vector<float> expected(c.begin() + batch * stride_c, c.begin() + (batch + 1) * stride_c);
    reference_gemm(true, true, m, n, k, alpha, a.data() + batch * stride_a, lda, b.data() + batch * stride_b, ldb, beta,
                   expected.data(), ldc);
    for (int j = 0; j < n; ++j) {
      for (int i = 0; i < ldc; ++i) {
        const float value = got[static_cast<std::size_t>(batch * stride_c + j * ldc + i)];
        INFO("batch " << batch << " row " << i << " column " << j);
        if (i < m) {
          REQUIRE(value == Approx(expected[static_cast<std::size_t>(j * ldc + i)]).margin(1e-5));
        } else {
          REQUIRE(std::isnan(value));  // the padding rows are not written
        }
      }
    }
  }
  for (float* p : {da, db, dc}) REQUIRE(cudaFree(p) == cudaSuccess);
  FLEXNN_CUBLAS_CHECK(cublasDestroy(handle));
}

TEST_CASE("cuBLAS rejects bad arguments, host matrices and dead handles", "[cuda][emulator][cublas]") {
  cublasHandle_t handle = nullptr;
  FLEXNN_CUBLAS_CHECK(cublasCreate(&handle));
  const int m = 4, n = 4, k = 4;
  std::vector<float> host(16, 1.0f);
  float* da = to_device(host);
  float* dc = to_device(host);
  const float alpha = 1.0f, beta = 0.0f;
  CHECK(cublasSgemm(handle, CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, &alpha, da, 3, da, 4, &beta, dc, 4) ==
        CUBLAS_STATUS_INVALID_VALUE);  // lda < m
  CHECK(cublasSgemm(handle, CUBLAS_OP_N, CUBLAS_OP_N, -1, n, k, &alpha, da, 4, da, 4, &beta, dc, 4) ==
        CUBLAS_STATUS_INVALID_VALUE);
  CHECK_THAT(error_message([&] {
               FLEXNN_CUBLAS_CHECK(
                   cublasSgemm(handle, CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, &alpha, host.data(), 4, da, 4, &beta, dc, 4));
             }),
             Catch::Contains("CUBLAS_STATUS_INVALID_VALUE") && Catch::Contains("matrix A") &&
                 Catch::Contains("not inside any live cudaMalloc allocation"));
  CHECK_THAT(
      error_message([&] {
        FLEXNN_CUBLAS_CHECK(cublasSgemmStridedBatched(handle, CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, &alpha, da, 4, 8, da,
                                                      4, 0, &beta, dc, 4, 0, 2));
      }),
      Catch::Contains("matrix A") && Catch::Contains("batch 1") && Catch::Contains("runs 32 bytes past the end"));
  CHECK(host == std::vector<float>(16, 1.0f));
  CHECK(to_host(dc, 16) == std::vector<float>(16, 1.0f));  // nothing was written
  FLEXNN_CUBLAS_CHECK(cublasDestroy(handle));
  CHECK(cublasSgemm(handle, CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, &alpha, da, 4, da, 4, &beta, dc, 4) ==
        CUBLAS_STATUS_NOT_INITIALIZED);
  CHECK(cublasDestroy(handle) == CUBLAS_STATUS_NOT_INITIALIZED);
  for (float* p : {da, dc}) REQUIRE(cudaFree(p) == cudaSuccess);
}
