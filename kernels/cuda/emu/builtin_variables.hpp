// CUDA's built-in variables for the emulator. Every CUDA thread runs as a fiber on the launching OS
// thread, and the scheduler stores the resumed thread's values here before each switch, so these
// are plain thread_locals (one set per OS thread that launches kernels).
#pragma once

#include "kernels/cuda/emu/vector_types.hpp"

inline thread_local uint3 threadIdx{};
inline thread_local uint3 blockIdx{};
inline thread_local dim3 blockDim{};
inline thread_local dim3 gridDim{};
inline constexpr int warpSize = 32;
