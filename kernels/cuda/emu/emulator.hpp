// The CPU emulation of CUDA, whole: what kernels/cuda/cuda_compat.cuh includes in place of
// <cuda_runtime.h> and <cublas_v2.h> when the backend is built by the C++ compiler
// (FLEXNN_CUDA_EMULATED). See shared/EMULATOR.md for the execution model.
#pragma once

#include "kernels/cuda/emu/builtin_variables.hpp"
#include "kernels/cuda/emu/cublas.hpp"
#include "kernels/cuda/emu/device_builtins.hpp"
#include "kernels/cuda/emu/device_memory.hpp"
#include "kernels/cuda/emu/launch.hpp"
#include "kernels/cuda/emu/runtime.hpp"
#include "kernels/cuda/emu/vector_types.hpp"
