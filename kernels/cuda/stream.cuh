// The CUDA backend's execution context, for .cu files: one stream per process on the current
// device, on which every kernel, copy and cuBLAS call is issued (so work is ordered without host
// synchronisation), and one cuBLAS handle bound to it.
#pragma once

#include "kernels/cuda/cuda_compat.cuh"

namespace flexnn::cuda {

cudaStream_t stream();
cublasHandle_t blas();

// Blocks of `threads` covering n elements, capped so huge element counts use grid-stride loops.
inline unsigned blocks_for(long long n, unsigned threads = 256) {
  const long long blocks = (n + threads - 1) / threads;
  return static_cast<unsigned>(blocks < 1 ? 1 : (blocks > 65535LL * 16 ? 65535LL * 16 : blocks));
}

}  // namespace flexnn::cuda
