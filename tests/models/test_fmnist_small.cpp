// Tests of fmnist-small and the model registry: parameter names and shapes per mode, the forward
// against the same network composed by hand, config validation, and checkpoints that rebuild the
// model from their metadata alone.
#include <catch2/catch.hpp>

#include <filesystem>

#include "engine/flexnn.hpp"
#include "models/fmnist_small.hpp"
#include "models/registry.hpp"
#include "test_helpers.hpp"

namespace flexnn {
namespace {

using testing::error_message;

std::vector<std::string> names(const nn::NamedTensors& tensors) {
  std::vector<std::string> out;
  for (const auto& [name, t] : tensors) out.push_back(name);
  return out;
}

std::filesystem::path temp_dir(const std::string& name) {
  const auto dir = std::filesystem::temp_directory_path() / ("flexnn_test_models_" + name);
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

}  // namespace

TEST_CASE("fmnist-small has the paper's layers and PyTorch-style names in every mode", "[models]") {
  const std::vector<std::string> with_threshold = {"flex.threshold", "flex.conv.weight", "flex.conv.bias",
                                                   "fc1.weight",     "fc1.bias",         "fc2.weight",
                                                   "fc2.bias",       "out.weight",       "out.bias"};
  std::vector<std::string> without = with_threshold;
  without.erase(without.begin());
  for (const char* flex : {"standard", "uniform", "reverse"}) {
    CAPTURE(flex);
    const auto model = models::build_model({{"model", "fmnist-small"}, {"flex", flex}});
    CHECK(names(model->state()) == with_threshold);
  }
  for (const char* flex : {"none", "random"}) {
    CAPTURE(flex);
    CHECK(names(models::build_model({{"model", "fmnist-small"}, {"flex", flex}})->state()) == without);
  }
  const auto model = models::build_model({{"model", "fmnist-small"}});
  std::map<std::string, Shape> shapes;
  for (const auto& [name, t] : model->state()) shapes[name] = t.shape();
  CHECK(shapes["flex.threshold"] == Shape{12, 24, 24});
  CHECK(shapes["flex.conv.weight"] == Shape{12, 1, 5, 5});
  CHECK(shapes["fc1.weight"] == Shape{120, 6912});
  CHECK(shapes["fc2.weight"] == Shape{60, 120});
  CHECK(shapes["out.weight"] == Shape{10, 60});
}

TEST_CASE("fmnist-small's forward is Normalize, flexible layer, ReLU and three linear layers", "[models]") {
  Generator gen(3);
  models::FmnistSmall model({}, gen);
  const Tensor x = Tensor::rand({4, 1, 28, 28}, gen);
  NoGradGuard no_grad;
  const Tensor normalised = (x - 0.2860f) / 0.3530f;
  const Tensor c = ops::conv2d(normalised, model.flex->conv->weight, model.flex->conv->bias);
  const Tensor m = ops::max_pool2d(normalised, 5, 1);
  const Tensor z = (model.flex->threshold - m) * 50.0f;
  Tensor h = ops::relu(ops::sigmoid(z) * m + ops::sigmoid(-z) * c).flatten(1);
  h = ops::relu(ops::linear(h, model.fc1->weight, model.fc1->bias));
  h = ops::relu(ops::linear(h, model.fc2->weight, model.fc2->bias));
  const std::vector<float> expected = ops::linear(h, model.out->weight, model.out->bias).to_vector();
  const std::vector<float> got = model(x).to_vector();
  REQUIRE(got.size() == 40);
  for (size_t i = 0; i < got.size(); ++i) CHECK(got[i] == Approx(expected[i]).epsilon(1e-4).margin(1e-5));
}

TEST_CASE("model configs are completed with defaults and checked", "[models]") {
  const models::Config full = models::complete_config({{"model", "fmnist-small"}, {"flex", "random"}});
  CHECK(full["flex"] == "random");
  CHECK(full["sharpness"] == 50.0);
  CHECK(full["mean"][0].get<double>() == Approx(0.2860));
  CHECK(models::model_spec(full).classes == 10);
  CHECK_THAT(error_message([] { models::complete_config({{"model", "resnet"}}); }),
             Catch::Contains("resnet") && Catch::Contains("fmnist-small"));
  CHECK_THAT(error_message([] { models::complete_config({{"model", "fmnist-small"}, {"sharpnes", 3}}); }),
             Catch::Contains("sharpnes") && Catch::Contains("sharpness"));
  CHECK_THAT(error_message([] { models::complete_config({{"model", "fmnist-small"}, {"flex", "often"}}); }),
             Catch::Contains("often"));
  CHECK_THAT(error_message([] { models::complete_config({{"model", "fmnist-small"}, {"sharpness", "steep"}}); }),
             Catch::Contains("sharpness") && Catch::Contains("steep"));
  CHECK_THAT(error_message([] { models::complete_config({{"flex", "none"}}); }), Catch::Contains("\"model\""));
}

TEST_CASE("a model checkpoint rebuilds the model from its metadata alone", "[models]") {
  const auto dir = temp_dir("roundtrip");
  Generator gen(4);
  const models::Config config = {{"model", "fmnist-small"}, {"flex", "reverse"}, {"sharpness", 20}};
  const auto model = models::build_model(config, gen);
  models::save_model(dir / "m.safetensors", *model, config, {{"epoch", "3"}});
  Generator other(99);
  const models::LoadedModel loaded = models::load_model(dir / "m.safetensors", other);
  CHECK(loaded.config == models::complete_config(config));
  CHECK(loaded.metadata.at("epoch") == "3");
  const nn::NamedTensors a = model->state(), b = loaded.model->state();
  REQUIRE(a.size() == b.size());
  for (size_t i = 0; i < a.size(); ++i) CHECK(testing::bit_identical(a[i].second.to_vector(), b[i].second.to_vector()));
  auto flex = models::flexible_layers(*loaded.model);
  REQUIRE(flex.size() == 1);
  CHECK(flex[0]->options().mode == nn::FlexMode::reverse);
  CHECK(flex[0]->options().sharpness == 20.0f);

  save_checkpoint(*model, dir / "bare.safetensors");  // no config
  CHECK_THAT(error_message([&] { models::load_model(dir / "bare.safetensors"); }),
             Catch::Contains("flexnn.config") && Catch::Contains("bare.safetensors"));
  const auto uniform = models::build_model({{"model", "fmnist-small"}, {"flex", "uniform"}});
  save_checkpoint(*uniform, dir / "mismatch.safetensors", {{models::kConfigKey, R"({"model":"fmnist-small","flex":"none"})"}});
  CHECK_THAT(error_message([&] { models::load_model(dir / "mismatch.safetensors"); }),
             Catch::Contains("flex.threshold"));
  std::filesystem::remove_all(dir);
}

}  // namespace flexnn
