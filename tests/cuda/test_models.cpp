// The paper's other networks on the CUDA device: VGG16 (single and all flexible), the Conv2D
// surrogate and HMAX give the CPU's outputs and loss gradients on the device, through the same ops.
#include "engine/flexnn.hpp"
#include "models/registry.hpp"
#include "parity.hpp"

#include <catch2/catch.hpp>

using namespace flexnn;

namespace {

// The model built twice from one seed, one copy moved to CUDA; eval-mode outputs and the input
// gradient of the loss on both devices.
void require_model_parity(const models::Config& config, const Shape& input, testing::Tolerance tol) {
  manual_seed(21);
  const auto on_cpu = models::build_model(config);
  manual_seed(21);
  const auto on_cuda = models::build_model(config);
  on_cuda->to(kCUDA);
  on_cpu->eval();
  on_cuda->eval();
  Generator data(4);
  const Tensor x = Tensor::rand(input, data);
  const Tensor labels = Tensor::from_indices({3, 7}, {2});
  testing::require_parity(
      [&](const std::vector<Tensor>& in) {
        nn::Module& model = in[0].device().is_cuda() ? *on_cuda : *on_cpu;
        return ops::cross_entropy(model(in[0]), in[1]);
      },
      {x, labels}, tol, tol, {true, false});
}

}  // namespace

TEST_CASE("VGG16 and the Conv2D surrogate on CUDA match the CPU", "[cuda][models]") {
  // Convolutions summed in another order through 13 layers and batch norms: 1e-4.
  const testing::Tolerance tol{1e-4f, 1e-4f};
  for (const char* flex : {"single", "all"}) {
    CAPTURE(flex);
    require_model_parity({{"model", "vgg16"}, {"flex", flex}}, {2, 3, 32, 32}, tol);
  }
  require_model_parity({{"model", "conv2d-surrogate"}}, {2, 3, 32, 32}, tol);
}

TEST_CASE("HMAX on CUDA matches the CPU", "[cuda][models]") {
  require_model_parity({{"model", "hmax"}, {"variant", "flexible"}, {"prototypes", 8}}, {2, 1, 28, 28},
                       {1e-4f, 1e-4f});
}
