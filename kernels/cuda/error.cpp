// The CUDA backend's errors are flexnn::Error, like the rest of the library's.
#include "kernels/cuda/error.hpp"

#include "engine/error.hpp"

namespace flexnn::cuda {

void raise_error(const std::string& message) { throw Error(message); }

}  // namespace flexnn::cuda
