// Tests of conv2d-surrogate, the paper's black-box source model: names and parameter count from the
// Supporting Information's layer list, the forward against the list composed from primitive ops,
// config defaults and errors, a short training run and the checkpoint round trip.
#include <catch2/catch.hpp>

#include <filesystem>
#include <map>

#include "engine/flexnn.hpp"
#include "models/conv2d_surrogate.hpp"
#include "models/registry.hpp"
#include "test_helpers.hpp"

namespace flexnn {
namespace {

using testing::error_message;

// The Supporting Information's "Conv2d Model": (name, in, out) of its convolutions (3x3, padding 1)
// and linear layers.
struct Layer {
  std::string name;
  int64_t in, out;
  bool conv;
};
const std::vector<Layer> kLayers = {{"conv1", 3, 64, true},        {"conv2", 64, 64, true},
                                    {"conv3", 64, 128, true},      {"conv4", 128, 128, true},
                                    {"fc1", 128 * 8 * 8, 256, false}, {"fc2", 256, 10, false}};

}  // namespace

TEST_CASE("conv2d-surrogate has the Supporting Information's layers, names and parameter count", "[models][surrogate]") {
  Generator gen(1);
  const auto model = models::build_model({{"model", "conv2d-surrogate"}}, gen);
  std::vector<std::string> want_names;
  std::map<std::string, Shape> want_shapes;
  int64_t want_count = 0;
  for (const Layer& l : kLayers) {
    const Shape weight = l.conv ? Shape{l.out, l.in, 3, 3} : Shape{l.out, l.in};
    want_names.insert(want_names.end(), {l.name + ".weight", l.name + ".bias"});
    want_shapes[l.name + ".weight"] = weight;
    want_shapes[l.name + ".bias"] = Shape{l.out};
    want_count += shape_numel(weight) + l.out;
  }
  std::vector<std::string> got_names;
  int64_t got_count = 0;
  for (const auto& [name, t] : model->state()) {
    got_names.push_back(name);
    got_count += t.numel();
    CHECK(t.shape() == want_shapes[name]);
  }
  CHECK(got_names == want_names);
  CHECK(got_count == want_count);
  CHECK(want_count == 2'360'138);  // torch's count for the same layer list
  CHECK(models::flexible_layers(*model).empty());
  const Tensor logits = (*model)(Tensor::rand({4, 3, 32, 32}, gen));
  CHECK(logits.shape() == Shape{4, 10});
}

TEST_CASE("conv2d-surrogate's forward is the layer list composed from primitive ops", "[models][surrogate]") {
  Generator gen(2);
  models::Conv2dSurrogate model({}, gen);
  const Tensor x = Tensor::rand({3, 3, 32, 32}, gen);
  std::map<std::string, Tensor> p;
  for (const auto& [name, t] : model.state()) p[name] = t;
  NoGradGuard no_grad;
  const Tensor mean = Tensor::from_vector({0.485f, 0.456f, 0.406f}, {3, 1, 1});
  const Tensor std = Tensor::from_vector({0.229f, 0.224f, 0.225f}, {3, 1, 1});
  Tensor h = (x - mean) / std;
  for (const Layer& l : kLayers) {
    if (l.name == "fc1") h = h.flatten(1);
    h = l.conv ? ops::conv2d(h, p[l.name + ".weight"], p[l.name + ".bias"], 1, 1)
               : ops::linear(h, p[l.name + ".weight"], p[l.name + ".bias"]);
    if (l.name != "fc2") h = ops::relu(h);
    if (l.name == "conv2" || l.name == "conv4") h = ops::max_pool2d(h, 2, 2);
  }
  const std::vector<float> want = h.to_vector(), got = model(x).to_vector();
  REQUIRE(got.size() == 30);
  for (size_t i = 0; i < got.size(); ++i) CHECK(got[i] == Approx(want[i]).epsilon(1e-4).margin(1e-5));
}

TEST_CASE("conv2d-surrogate configs and inputs are checked", "[models][surrogate]") {
  const models::Config full = models::complete_config({{"model", "conv2d-surrogate"}});
  CHECK(full["mean"].size() == 3);
  const models::ModelSpec spec = models::model_spec(full);
  CHECK((spec.dataset == "cifar10" && spec.channels == 3 && spec.height == 32 && spec.width == 32 &&
         spec.classes == 10));
  CHECK_THAT(error_message([] { models::complete_config({{"model", "conv2d-surrogate"}, {"flex", "single"}}); }),
             Catch::Contains("flex") && Catch::Contains("conv2d-surrogate"));
  CHECK_THAT(error_message([] { models::build_model({{"model", "conv2d-surrogate"}, {"std", {0.2, 0.2}}}); }),
             Catch::Contains("3 means and 3 stds"));
  models::Conv2dSurrogate model({});
  CHECK_THAT(error_message([&] { model(Tensor::zeros({1, 3, 28, 28})); }),
             Catch::Contains("[N, 3, 32, 32]") && Catch::Contains("[1, 3, 28, 28]"));
}

TEST_CASE("a few SGD steps on a fixed batch lower conv2d-surrogate's loss", "[models][surrogate][training]") {
  Generator gen(3);
  const auto model = models::build_model({{"model", "conv2d-surrogate"}}, gen);
  const Tensor x = Tensor::rand({8, 3, 32, 32}, gen);
  const Tensor y = Tensor::from_indices({0, 1, 2, 3, 4, 5, 6, 7}, {8});
  // No batch norm: from PyTorch's initialisation the logits start near zero and the loss near ln 10.
  optim::SGD sgd(model->parameters(), {.lr = 0.05f, .momentum = 0.9f});
  const auto step = [&] {
    sgd.zero_grad();
    Tensor loss = ops::cross_entropy((*model)(x), y);
    loss.backward();
    sgd.step();
    return loss.item();
  };
  const float first = step();
  for (int i = 0; i < 8; ++i) step();
  CHECK(step() < 0.9f * first);
}

TEST_CASE("a conv2d-surrogate checkpoint rebuilds the same network from its metadata alone", "[models][surrogate]") {
  const auto dir = std::filesystem::temp_directory_path() / "flexnn_test_conv2d_surrogate";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  Generator gen(4);
  const models::Config config = {{"model", "conv2d-surrogate"}, {"mean", {0.5, 0.5, 0.5}}};
  const auto model = models::build_model(config, gen);
  models::save_model(dir / "s.safetensors", *model, config);
  Generator other(99);
  const models::LoadedModel loaded = models::load_model(dir / "s.safetensors", other);
  CHECK(loaded.config == models::complete_config(config));
  const nn::NamedTensors a = model->state(), b = loaded.model->state();
  REQUIRE(a.size() == b.size());
  for (size_t i = 0; i < a.size(); ++i) CHECK(testing::bit_identical(a[i].second.to_vector(), b[i].second.to_vector()));
  const Tensor x = Tensor::rand({2, 3, 32, 32}, gen);
  NoGradGuard no_grad;
  CHECK(testing::bit_identical((*model)(x).to_vector(), (*loaded.model)(x).to_vector()));
  std::filesystem::remove_all(dir);
}

}  // namespace flexnn
