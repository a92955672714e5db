// nn modules (names, modes, initialisation), SGD and StepLR against hand computations, and
// checkpoints (bit-exact round trip, mismatches named, the module untouched on failure).
#include "engine/flexnn.hpp"
#include "engine/io/safetensors.hpp"
#include "models/small_cnn.hpp"

#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

using namespace flexnn;

namespace {

struct Net : nn::Module {
  Net() {
    features = register_module("features", std::make_shared<nn::Sequential>(std::initializer_list<std::shared_ptr<nn::Module>>{
                                               std::make_shared<nn::Conv2d>(1, 4, 3), std::make_shared<nn::BatchNorm2d>(4),
                                               std::make_shared<nn::ReLU>(), std::make_shared<nn::Conv2d>(4, 2, 1)}));
    fc1 = register_module("fc1", std::make_shared<nn::Linear>(2 * 4 * 4, 3));
  }
  Tensor forward(const Tensor& x) override { return (*fc1)(features->forward(x).flatten(1)); }
  std::shared_ptr<nn::Sequential> features;
  std::shared_ptr<nn::Linear> fc1;
};

std::filesystem::path temp_path(const std::string& name) {
  auto dir = std::filesystem::temp_directory_path() / "flexnn-test-nn";
  std::filesystem::create_directories(dir);
  return dir / name;
}

}  // namespace

TEST_CASE("modules name parameters and buffers as PyTorch does", "[nn]") {
  Net net;
  std::vector<std::string> names;
  for (auto& [name, t] : net.state()) names.push_back(name);
  CHECK(names == std::vector<std::string>{"features.0.weight", "features.0.bias", "features.1.weight", "features.1.bias",
                                          "features.1.running_mean", "features.1.running_var",
                                          "features.1.num_batches_tracked", "features.3.weight", "features.3.bias",
                                          "fc1.weight", "fc1.bias"});
  CHECK(net.parameters().size() == 8);
  for (const Tensor& p : net.parameters()) CHECK(p.requires_grad());
  CHECK(net.named_buffers().size() == 3);
  net.eval();
  CHECK_FALSE(net.features->named_children()[1].second->is_training());
  net.train();
  CHECK(net.features->named_children()[1].second->is_training());
  Tensor y = net(Tensor::zeros({2, 1, 6, 6}));
  CHECK(y.shape() == Shape{2, 3});
  CHECK(net.features->named_children()[1].second->state().back().second.data<int64_t>()[0] == 1);
  CHECK_THROWS_WITH(net(Tensor::zeros({2, 2, 6, 6})), Catch::Contains("conv2d"));
}

TEST_CASE("default initialisation is U(-1/sqrt(fan_in), 1/sqrt(fan_in))", "[nn]") {
  manual_seed(3);
  nn::Conv2d conv(16, 32, 3);
  nn::Linear linear(400, 50);
  for (auto [t, fan_in] : {std::pair{conv.weight, 144}, {conv.bias, 144}, {linear.weight, 400}, {linear.bias, 400}}) {
    const double bound = 1 / std::sqrt(static_cast<double>(fan_in));
    float lo = 1, hi = -1;
    for (float v : t.to_vector()) lo = std::min(lo, v), hi = std::max(hi, v);
    CHECK(lo >= -bound);
    CHECK(hi <= bound);
    if (t.numel() > 1000) {  // a uniform sample fills its range
      CHECK(lo < -0.95 * bound);
      CHECK(hi > 0.95 * bound);
    }
  }
  manual_seed(3);
  nn::Conv2d again(16, 32, 3);
  CHECK(again.weight.to_vector() == conv.weight.to_vector());
}

TEST_CASE("SGD follows torch.optim.SGD with momentum, weight decay and groups", "[optim]") {
  Tensor a = Tensor::from_vector({1.0f, -2.0f}, {2}).requires_grad_();
  Tensor b = Tensor::from_vector({0.5f}, {1}).requires_grad_();
  optim::SGD sgd({{{a}, {0.1f, 0.9f, 0.01f}}, {{b}, {0.2f, 0.0f, 0.0f}}});
  std::vector<double> pa{1.0, -2.0}, buf{0, 0};
  double pb = 0.5;
  for (int step = 0; step < 3; ++step) {
    sgd.zero_grad();
    ops::sum(ops::mul(ops::mul(a, a), 3.0f) + ops::mul(b, 2.0f)).backward();  // grads 6a, 4
    for (int i = 0; i < 2; ++i) {
      const double d = 6 * pa[i] + 0.01 * pa[i];
      buf[i] = step == 0 ? d : 0.9 * buf[i] + d;
      pa[i] -= 0.1 * buf[i];
    }
    pb -= 0.2 * 4;  // b is broadcast over a's two elements
    sgd.step();
  }
  CHECK(a.to_vector()[0] == Approx(pa[0]).epsilon(1e-5));
  CHECK(a.to_vector()[1] == Approx(pa[1]).epsilon(1e-5));
  CHECK(b.item() == Approx(pb).epsilon(1e-6));
  optim::StepLR schedule(sgd, 2, 0.5f);
  schedule.step();
  CHECK(sgd.param_groups()[0].options.lr == Approx(0.1f));
  schedule.step();
  CHECK(sgd.param_groups()[0].options.lr == Approx(0.05f));
  CHECK(sgd.param_groups()[1].options.lr == Approx(0.1f));
  schedule.set_epoch(6);
  CHECK(sgd.param_groups()[1].options.lr == Approx(0.025f));
  CHECK_THROWS_AS(optim::SGD({a}, {-1.0f}), Error);
}

TEST_CASE("checkpoints round-trip bit for bit and name every mismatch", "[checkpoint]") {
  manual_seed(1);
  Net source;
  source(Tensor::rand({4, 1, 6, 6}, default_generator()));  // moves the running statistics
  const auto path = temp_path("net.safetensors");
  save_checkpoint(source, path, {{"flexnn.config", R"({"model":"test"})"}});

  manual_seed(2);
  Net target;
  const Metadata meta = load_checkpoint(target, path);
  CHECK(meta.at("flexnn.config") == R"({"model":"test"})");
  const auto s = source.state(), t = target.state();
  REQUIRE(s.size() == t.size());
  for (size_t i = 0; i < s.size(); ++i) {
    REQUIRE(s[i].second.nbytes() == t[i].second.nbytes());
    CHECK(std::memcmp(s[i].second.raw_data(), t[i].second.raw_data(), s[i].second.nbytes()) == 0);
  }

  manual_seed(3);
  Net untouched;
  const std::vector<float> before = untouched.fc1->weight.to_vector();
  auto state = source.state();
  SECTION("missing tensor") {
    state.erase(state.begin() + 2);
    save_tensors(path, state);
    CHECK_THROWS_WITH(load_checkpoint(untouched, path), Catch::Contains("'features.1.weight' is missing"));
  }
  SECTION("extra tensor") {
    state.emplace_back("fc2.weight", Tensor::zeros({1}));
    save_tensors(path, state);
    CHECK_THROWS_WITH(load_checkpoint(untouched, path), Catch::Contains("'fc2.weight' is not part of the model"));
  }
  SECTION("wrong shape") {
    state.back().second = Tensor::zeros({4});
    save_tensors(path, state);
    CHECK_THROWS_WITH(load_checkpoint(untouched, path),
                      Catch::Contains("'fc1.bias'") && Catch::Contains("[4]") && Catch::Contains("[3]"));
  }
  SECTION("wrong dtype") {
    state[6].second = Tensor::zeros({});
    save_tensors(path, state);
    CHECK_THROWS_WITH(load_checkpoint(untouched, path),
                      Catch::Contains("num_batches_tracked") && Catch::Contains("float32") && Catch::Contains("int64"));
  }
  SECTION("unsupported file dtype") {
    const uint16_t half = 0;
    safetensors::write(path, {{"fc1.bias", safetensors::DType::F16, {1}, reinterpret_cast<const std::byte*>(&half), 2}},
                       {});
    CHECK_THROWS_WITH(load_checkpoint(untouched, path), Catch::Contains("'fc1.bias' has dtype F16"));
  }
  SECTION("truncated file") {
    std::filesystem::resize_file(path, std::filesystem::file_size(path) - 3);
    CHECK_THROWS_AS(load_checkpoint(untouched, path), Error);
  }
  SECTION("missing file") {
    CHECK_THROWS_AS(load_checkpoint(untouched, temp_path("does-not-exist.safetensors")), Error);
  }
  CHECK(untouched.fc1->weight.to_vector() == before);
  std::filesystem::remove(path);
}
