// Tests of vgg16 and of the flexible layer's pool-of-the-convolution's-output option it uses: names,
// parameter counts and the forward of every flex placement against the Supporting Information's layer
// list as written out here (not the model's code), the adaptive average pool of larger inputs, config
// defaults and errors, a short training run and the checkpoint round trip; the option's forward
// against Eq. 1 composed from primitive ops and its gradients against finite differences.
#include <catch2/catch.hpp>

#include <cstring>
#include <filesystem>
#include <map>

#include "engine/flexnn.hpp"
#include "gradcheck.hpp"
#include "models/registry.hpp"
#include "models/vgg16.hpp"
#include "test_helpers.hpp"

namespace flexnn {
namespace {

using testing::error_message;

// The Supporting Information's "Single Layer Baseline/Flexible VGG16", block by block: C a 3x3
// convolution with padding 1, F block 1's flexible layer (3x3, unpadded; pool 3x3 stride 1 of its
// input), B BatchNorm2d, R ReLU, M MaxPool2d(2, 2), D Dropout2d; then the classifier: L Linear, d
// Dropout, N BatchNorm1d.
struct Layer {
  char kind;
  int64_t in = 0, out = 0;
};
const std::vector<std::vector<Layer>> kBlocks = {
    {{'C', 3, 64}, {'B', 64}, {'R'}, {'F', 64, 64}, {'B', 64}, {'R'}, {'D'}},
    {{'C', 64, 128}, {'B', 128}, {'R'}, {'C', 128, 128}, {'B', 128}, {'R'}, {'M'}, {'D'}},
    {{'C', 128, 256}, {'B', 256}, {'R'}, {'C', 256, 256}, {'B', 256}, {'R'}, {'C', 256, 256}, {'B', 256}, {'R'},
     {'M'}, {'D'}},
    {{'C', 256, 512}, {'B', 512}, {'R'}, {'C', 512, 512}, {'B', 512}, {'R'}, {'C', 512, 512}, {'B', 512}, {'R'},
     {'M'}, {'D'}},
    {{'C', 512, 512}, {'B', 512}, {'R'}, {'C', 512, 512}, {'B', 512}, {'R'}, {'C', 512, 512}, {'B', 512}, {'R'},
     {'M'}, {'D'}},
};
const std::vector<Layer> kClassifier = {{'L', 512, 100}, {'d'}, {'N', 100}, {'R'}, {'d'}, {'L', 100, 10}};

struct Expected {
  std::vector<std::string> names;  // parameters, in registration order
  int64_t parameters = 0;
  int flexible = 0;  // layers with a pool branch
};

// What the layer list gives for `flex` on size x size inputs.
Expected expected(const std::string& flex, int64_t size) {
  Expected e;
  int64_t s = size;
  for (size_t b = 0; b < kBlocks.size(); ++b) {
    for (size_t i = 0; i < kBlocks[b].size(); ++i) {
      const Layer& l = kBlocks[b][i];
      const std::string prefix = "block" + std::to_string(b + 1) + "." + std::to_string(i) + ".";
      const int64_t conv = l.out * l.in * 9 + l.out;
      const bool flexible = (l.kind == 'F' && flex != "none") || (l.kind == 'C' && flex == "all");
      const int64_t out_size = l.kind == 'F' ? s - 2 : s;
      if (flexible) {
        e.names.push_back(prefix + "threshold");
        e.parameters += l.out * out_size * out_size;
        ++e.flexible;
      }
      if (l.kind == 'F' || flexible) {
        e.names.insert(e.names.end(), {prefix + "conv.weight", prefix + "conv.bias"});
        e.parameters += conv;
      } else if (l.kind == 'C' || l.kind == 'B') {
        e.names.insert(e.names.end(), {prefix + "weight", prefix + "bias"});
        e.parameters += l.kind == 'C' ? conv : 2 * l.in;
      }
      s = l.kind == 'M' ? s / 2 : out_size;
    }
  }
  for (size_t i = 0; i < kClassifier.size(); ++i) {
    const Layer& l = kClassifier[i];
    if (l.kind != 'L' && l.kind != 'N') continue;
    e.names.insert(e.names.end(), {"fc." + std::to_string(i) + ".weight", "fc." + std::to_string(i) + ".bias"});
    e.parameters += l.kind == 'L' ? l.out * l.in + l.out : 2 * l.in;
  }
  return e;
}

std::vector<std::string> names(const nn::NamedTensors& tensors) {
  std::vector<std::string> out;
  for (const auto& [name, t] : tensors) out.push_back(name);
  return out;
}

int64_t count(const nn::NamedTensors& tensors) {
  int64_t n = 0;
  for (const auto& [name, t] : tensors) n += t.numel();
  return n;
}

// Eq. 1 from primitive ops: pool where m is below T.
Tensor blend(const Tensor& c, const Tensor& m, const Tensor& t, float sharpness) {
  const Tensor z = (t - m) * sharpness;
  return ops::sigmoid(z) * m + ops::sigmoid(-z) * c;
}

// The evaluation-mode forward of the layer list with the model's tensors, composed from primitive
// ops: the reference the model is checked against.
Tensor reference_forward(nn::Module& model, const Tensor& images, const std::string& flex) {
  std::map<std::string, Tensor> p;
  for (const auto& [name, t] : model.state()) p[name] = t;
  const Tensor mean = Tensor::from_vector({0.485f, 0.456f, 0.406f}, {3, 1, 1});
  const Tensor std = Tensor::from_vector({0.229f, 0.224f, 0.225f}, {3, 1, 1});
  Tensor h = (images - mean) / std;
  for (size_t b = 0; b < kBlocks.size(); ++b) {
    for (size_t i = 0; i < kBlocks[b].size(); ++i) {
      const Layer& l = kBlocks[b][i];
      const std::string k = "block" + std::to_string(b + 1) + "." + std::to_string(i) + ".";
      if (l.kind == 'F') {
        const Tensor c = ops::conv2d(h, p[k + "conv.weight"], p[k + "conv.bias"], 1, 0);
        h = flex == "none" ? c : blend(c, ops::max_pool2d(h, 3, 1, 0), p[k + "threshold"], 50.0f);
      } else if (l.kind == 'C' && flex == "all") {
        const Tensor c = ops::conv2d(h, p[k + "conv.weight"], p[k + "conv.bias"], 1, 1);
        const Tensor m = ops::max_pool2d(l.in == l.out ? h : c, 3, 1, 1);
        h = blend(c, m, p[k + "threshold"], 50.0f);
      } else if (l.kind == 'C') {
        h = ops::conv2d(h, p[k + "weight"], p[k + "bias"], 1, 1);
      } else if (l.kind == 'B') {
        h = ops::batch_norm(h, p[k + "running_mean"], p[k + "running_var"], p[k + "weight"], p[k + "bias"], false);
      } else if (l.kind == 'R') {
        h = ops::relu(h);
      } else if (l.kind == 'M') {
        h = ops::max_pool2d(h, 2, 2);
      }
    }
  }
  h = ops::mean(h, {2, 3});  // adaptive average pooling to 1x1 (the identity on 1x1 maps)
  for (size_t i = 0; i < kClassifier.size(); ++i) {
    const Layer& l = kClassifier[i];
    const std::string k = "fc." + std::to_string(i) + ".";
    if (l.kind == 'L') h = ops::linear(h, p[k + "weight"], p[k + "bias"]);
    if (l.kind == 'N')
      h = ops::batch_norm(h, p[k + "running_mean"], p[k + "running_var"], p[k + "weight"], p[k + "bias"], false);
    if (l.kind == 'R') h = ops::relu(h);
  }
  return h;
}

// Same dtype, shape and bytes (float parameters and the int64 num_batches_tracked alike).
bool same_bytes(const Tensor& a, const Tensor& b) {
  return a.dtype() == b.dtype() && a.shape() == b.shape() &&
         std::memcmp(a.raw_data(), b.raw_data(), a.nbytes()) == 0;
}

std::filesystem::path temp_dir(const std::string& name) {
  const auto dir = std::filesystem::temp_directory_path() / ("flexnn_test_vgg16_" + name);
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

}  // namespace

TEST_CASE("vgg16 has the Supporting Information's layers, names and parameter counts in every placement",
          "[models][vgg16]") {
  for (const char* flex : {"none", "single", "all"}) {
    CAPTURE(flex);
    Generator gen(1);
    const auto model = models::build_model({{"model", "vgg16"}, {"flex", flex}}, gen);
    const Expected e = expected(flex, 32);
    CHECK(names(model->named_parameters()) == e.names);
    CHECK(count(model->named_parameters()) == e.parameters);
    // Every BatchNorm keeps its running statistics, as torch's state_dict does.
    CHECK(model->named_buffers().size() == 3 * (13 + 1));
    const auto layers = models::flexible_layers(*model);
    int pooling = 0;
    for (const nn::FlexibleConv2d* layer : layers) pooling += layer->options().mode != nn::FlexMode::none;
    CHECK(pooling == e.flexible);
    CHECK(layers.size() == (std::string(flex) == "all" ? 13u : 1u));
  }
  // The layer list's count for the baseline is torch's for the authors' VGG16() (network_definitions.py):
  // the 13 convolutions (14 714 688), 14 batch norms (8 648) and the two linear layers (52 310).
  CHECK(expected("none", 32).parameters == 14'775'646);
  CHECK(expected("single", 32).parameters - expected("none", 32).parameters == 64 * 30 * 30);
}

TEST_CASE("vgg16 all: shape-keeping flexible layers, pooling the convolution's output where channels change",
          "[models][vgg16]") {
  Generator gen(2);
  const auto model = models::build_model({{"model", "vgg16"}, {"flex", "all"}}, gen);
  const auto layers = models::flexible_layers(*model);
  REQUIRE(layers.size() == 13);
  int of_conv_output = 0;
  for (size_t i = 0; i < layers.size(); ++i) {
    const nn::FlexibleConv2dOptions& o = layers[i]->options();
    CAPTURE(i, o.in_channels, o.out_channels);
    const bool changes = o.in_channels != o.out_channels;
    CHECK((o.pool_source == nn::PoolSource::conv_output) == changes);
    of_conv_output += changes;
    CHECK(o.mode == nn::FlexMode::standard);
    if (i == 1) {  // block 1's second layer exactly as in single
      CHECK((o.padding.h == 0 && o.pool.kernel.h == 3 && o.pool.padding.h == 0));
      CHECK(layers[i]->output_size().h == 30);
    } else {
      CHECK((o.padding.h == 1 && o.pool.kernel.h == 3 && o.pool.stride.h == 1 && o.pool.padding.h == 1));
      CHECK(layers[i]->output_size().h == o.input_size.h);
    }
  }
  CHECK(of_conv_output == 4);  // 3->64, 64->128, 128->256, 256->512
}

TEST_CASE("vgg16's forward is the layer list composed from primitive ops, for every placement and larger inputs",
          "[models][vgg16]") {
  struct Case {
    std::string flex;
    int64_t size;
  };
  for (const Case& k : {Case{"none", 32}, Case{"single", 32}, Case{"all", 32}, Case{"single", 40}}) {
    CAPTURE(k.flex, k.size);
    Generator gen(3);
    models::Config config = {{"model", "vgg16"}, {"flex", k.flex}, {"image_size", k.size}};
    const auto model = models::build_model(config, gen);
    const Tensor x = Tensor::rand({3, 3, k.size, k.size}, gen);
    NoGradGuard no_grad;
    (*model)(x);  // a training-mode forward moves the running statistics off their initial values
    model->eval();
    const std::vector<float> got = (*model)(x).to_vector();
    const std::vector<float> want = reference_forward(*model, x, k.flex).to_vector();
    REQUIRE(got.size() == 30);
    for (size_t i = 0; i < got.size(); ++i) CHECK(got[i] == Approx(want[i]).epsilon(1e-3).margin(1e-4));
  }
  Generator gen(4);
  models::Vgg16 larger({.image_size = 40}, gen);
  CHECK(larger.feature_size() == 2);  // 40 -> 38 -> 19 -> 9 -> 4 -> 2, then averaged
  CHECK(models::Vgg16({}, gen).feature_size() == 1);
}

TEST_CASE("vgg16 configs: defaults follow the data set, and bad values are named", "[models][vgg16]") {
  const models::Config cifar = models::complete_config({{"model", "vgg16"}});
  CHECK(cifar["flex"] == "single");
  CHECK(cifar["flex_mode"] == "standard");
  CHECK(cifar["image_size"] == 32);
  const models::ModelSpec spec = models::model_spec(cifar);
  CHECK((spec.dataset == "cifar10" && spec.channels == 3 && spec.height == 32 && spec.width == 32 &&
         spec.classes == 10));
  const models::Config imagenette = models::complete_config({{"model", "vgg16"}, {"dataset", "imagenette"}});
  CHECK(imagenette["image_size"] == 224);
  CHECK(models::model_spec(imagenette).height == 224);
  CHECK(models::model_spec({{"model", "vgg16"}, {"dataset", "imagenette"}, {"image_size", 254}}).width == 254);
  const auto message = [](models::Config config) {
    config["model"] = "vgg16";
    return error_message([&] { models::complete_config(config); });
  };
  CHECK_THAT(message({{"flex", "standard"}}), Catch::Contains("standard") && Catch::Contains("none, single, all"));
  CHECK_THAT(message({{"flex_mode", "none"}}), Catch::Contains("flex_mode") && Catch::Contains("flex none"));
  CHECK_THAT(message({{"flex_mode", "sometimes"}}), Catch::Contains("sometimes"));
  CHECK_THAT(message({{"dataset", "mnist"}}), Catch::Contains("mnist") && Catch::Contains("imagenette"));
  CHECK_THAT(message({{"image_size", 17}}), Catch::Contains("image_size") && Catch::Contains("17"));
  CHECK_THAT(message({{"image_size", 32.5}}), Catch::Contains("image_size") && Catch::Contains("integer"));
  CHECK_THAT(message({{"mean", {0.5}}}), Catch::Contains("3 means"));
  CHECK_THAT(message({{"layers", 19}}), Catch::Contains("layers") && Catch::Contains("flex_mode"));
  Generator gen(5);
  models::Vgg16 model({}, gen);
  CHECK_THAT(error_message([&] { model(Tensor::zeros({1, 3, 28, 28})); }),
             Catch::Contains("[N, 3, 32, 32]") && Catch::Contains("[1, 3, 28, 28]"));
}

TEST_CASE("a few SGD steps on a fixed batch lower vgg16's loss in every placement", "[models][vgg16][training]") {
  for (const char* flex : {"none", "single", "all"}) {
    CAPTURE(flex);
    Generator gen(6);
    const auto model = models::build_model({{"model", "vgg16"}, {"flex", flex}}, gen);
    const Tensor x = Tensor::rand({4, 3, 32, 32}, gen);
    const Tensor y = Tensor::from_indices({0, 3, 5, 9}, {4});
    optim::SGD sgd(model->parameters(), {.lr = 0.02f, .momentum = 0.9f});
    // The same dropout masks at every step, so that the loss measures the weights alone.
    const uint64_t offset = gen.offset();
    const auto step = [&] {
      gen.set_state(gen.seed(), offset);
      sgd.zero_grad();
      Tensor loss = ops::cross_entropy((*model)(x), y);
      loss.backward();
      sgd.step();
      return loss.item();
    };
    const float first = step();
    step();
    const float last = step();
    CHECK(last < 0.8f * first);
  }
}

TEST_CASE("a vgg16 checkpoint rebuilds the same network from its metadata alone", "[models][vgg16]") {
  const auto dir = temp_dir("roundtrip");
  for (const char* flex : {"single", "all"}) {
    CAPTURE(flex);
    Generator gen(7);
    const models::Config config = {{"model", "vgg16"}, {"flex", flex}, {"flex_mode", "reverse"}, {"sharpness", 30}};
    const auto model = models::build_model(config, gen);
    const auto path = dir / (std::string(flex) + ".safetensors");
    models::save_model(path, *model, config);
    Generator other(99);
    const models::LoadedModel loaded = models::load_model(path, other);
    CHECK(loaded.config == models::complete_config(config));
    const nn::NamedTensors a = model->state(), b = loaded.model->state();
    REQUIRE(names(a) == names(b));
    for (size_t i = 0; i < a.size(); ++i) CHECK(same_bytes(a[i].second, b[i].second));
    const auto layers = models::flexible_layers(*loaded.model);
    CHECK(layers.size() == (std::string(flex) == "all" ? 13u : 1u));
    CHECK(layers.back()->options().mode == nn::FlexMode::reverse);
    CHECK(layers.back()->options().sharpness == 30.0f);
    model->eval();
    loaded.model->eval();
    const Tensor x = Tensor::rand({2, 3, 32, 32}, gen);
    NoGradGuard no_grad;
    CHECK(testing::bit_identical((*model)(x).to_vector(), (*loaded.model)(x).to_vector()));
  }
  std::filesystem::remove_all(dir);
}

TEST_CASE("FlexibleConv2d pooling its convolution's output is Eq. 1 on m = pool(c), for any channel counts",
          "[flexible][vgg16]") {
  Generator gen(8);
  for (nn::FlexMode mode : {nn::FlexMode::standard, nn::FlexMode::reverse}) {
    CAPTURE(nn::flex_mode_name(mode));
    nn::FlexibleConv2d layer({.in_channels = 3, .out_channels = 5, .kernel = 3, .padding = 1, .pool = {3, 1, 1},
                              .pool_source = nn::PoolSource::conv_output, .input_size = 6, .mode = mode,
                              .sharpness = 50.0f, .threshold_mean = 0.0f, .threshold_std = 1.0f},
                             gen);
    const Tensor x = Tensor::randn({2, 3, 6, 6}, gen);
    NoGradGuard no_grad;
    const Tensor c = ops::conv2d(x, layer.conv->weight, layer.conv->bias, 1, 1);
    const Tensor m = ops::max_pool2d(c, 3, 1, 1);
    const float direction = mode == nn::FlexMode::reverse ? -1.0f : 1.0f;
    const Tensor z = (layer.threshold - m) * (50.0f * direction);
    const std::vector<float> want = (ops::sigmoid(z) * m + ops::sigmoid(-z) * c).to_vector();
    const std::vector<float> got = layer(x).to_vector();
    REQUIRE(got.size() == 2u * 5 * 6 * 6);
    for (size_t i = 0; i < got.size(); ++i) CHECK(got[i] == Approx(want[i]).epsilon(1e-5).margin(1e-6));
  }
  // The random mode's mask picks one branch per unit.
  nn::FlexibleConv2d random({.in_channels = 2, .out_channels = 4, .kernel = 3, .padding = 1, .pool = {3, 1, 1},
                             .pool_source = nn::PoolSource::conv_output, .input_size = 5,
                             .mode = nn::FlexMode::random},
                            gen);
  const Tensor x = Tensor::randn({1, 2, 5, 5}, gen);
  NoGradGuard no_grad;
  const std::vector<float> c = ops::conv2d(x, random.conv->weight, random.conv->bias, 1, 1).to_vector();
  const std::vector<float> m = ops::max_pool2d(ops::conv2d(x, random.conv->weight, random.conv->bias, 1, 1), 3, 1, 1)
                                   .to_vector();
  const std::vector<float> f = random(x).to_vector();
  int pooled = 0;
  for (size_t i = 0; i < f.size(); ++i) {
    CHECK((f[i] == c[i] || f[i] == m[i]));
    pooled += f[i] == m[i] && m[i] != c[i];
  }
  CHECK(pooled > 0);
  CHECK(pooled < static_cast<int>(f.size()));
}

TEST_CASE("FlexibleConv2d pooling its convolution's output: gradients through both uses of c pass finite differences",
          "[flexible][vgg16]") {
  Generator gen(9);
  for (nn::FlexMode mode : {nn::FlexMode::standard, nn::FlexMode::reverse, nn::FlexMode::uniform}) {
    CAPTURE(nn::flex_mode_name(mode));
    const auto options = [&](int64_t in, int64_t kernel) {
      return nn::FlexibleConv2dOptions{.in_channels = in, .out_channels = 3, .kernel = kernel,
                                       .padding = kernel / 2, .pool = {3, 1, 1},
                                       .pool_source = nn::PoolSource::conv_output, .input_size = 5, .mode = mode,
                                       .sharpness = 4.0f, .threshold_mean = 0.0f, .threshold_std = 0.3f,
                                       .uniform_threshold = 0.1f};
    };
    // 3x3 over 2 channels: x, the bias and T. A weight moves every c at once, so within ±eps some
    // window's maximum would switch (a kink of the max, not an error); perturbing one x moves a few.
    nn::FlexibleConv2d layer(options(2, 3), gen);
    Tensor x = Tensor::randn({2, 2, 5, 5}, gen).requires_grad_();
    // (The uniform mode's T is a buffer, which check_gradients skips.)
    testing::check_gradients([&](const std::vector<Tensor>& in) { return layer(in[0]); },
                             {x, layer.conv->bias, layer.threshold});
    // 1x1 over 1 channel, on distinct inputs: every map is monotone in x, so its window maxima stay
    // where they are when a weight moves, and the weights are checked too.
    nn::FlexibleConv2d pointwise(options(1, 1), gen);
    std::vector<float> distinct(2 * 25);
    const std::vector<int64_t> order = gen.permutation(static_cast<int64_t>(distinct.size()));
    for (size_t i = 0; i < distinct.size(); ++i) distinct[i] = 0.05f * static_cast<float>(order[i] - 25);
    Tensor u = Tensor::from_vector(distinct, {2, 1, 5, 5}).requires_grad_();
    testing::check_gradients([&](const std::vector<Tensor>& in) { return pointwise(in[0]); },
                             {u, pointwise.conv->weight, pointwise.conv->bias, pointwise.threshold});
  }
}

TEST_CASE("FlexibleConv2d checks the pool against the convolution's output when it pools that", "[flexible][vgg16]") {
  nn::FlexibleConv2dOptions o{.in_channels = 2, .out_channels = 3, .kernel = 3, .padding = 1, .pool = {3, 1, 0},
                              .pool_source = nn::PoolSource::conv_output, .input_size = 8};
  CHECK_THAT(error_message([&] { nn::FlexibleConv2d layer(o); }),
             Catch::Contains("convolution's output") && Catch::Contains("8x8") && Catch::Contains("6x6"));
  o.pool = {3, 1, 1};
  nn::FlexibleConv2d layer(o);  // 2 -> 3 channels: allowed when the pool takes the convolution's output
  CHECK(layer(Tensor::zeros({1, 2, 8, 8})).shape() == Shape{1, 3, 8, 8});
  o.pool_source = nn::PoolSource::input;
  CHECK_THAT(error_message([&] { nn::FlexibleConv2d input_pool(o); }), Catch::Contains("conv_output"));
}

}  // namespace flexnn
