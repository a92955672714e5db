// Tests of the hmax model: the Gabor bank against values computed independently (Python, from
// pytorch_hmax's formula), S1 and S2 against direct loops, finite-difference gradients of both,
// every stage's shape and the parameters of each variant, prototype imprinting, a short training
// run per variant, checkpoints and config errors.
#include <catch2/catch.hpp>

#include <cmath>
#include <functional>
#include <map>
#include <numeric>

#include "engine/flexnn.hpp"
#include "gradcheck.hpp"
#include "models/hmax.hpp"
#include "models/registry.hpp"
#include "temp_dir.hpp"
#include "test_helpers.hpp"

namespace flexnn {
namespace {

using models::Hmax;
using models::HmaxOptions;
using models::HmaxVariant;
using testing::error_message;

// A small model: 2 patch sizes (one even, one odd), 3 prototypes each.
HmaxOptions small_options(HmaxVariant variant) {
  HmaxOptions o;
  o.variant = variant;
  o.patch_sizes = {2, 3};
  o.prototypes = 3;
  return o;
}

const std::vector<HmaxVariant> kVariants{HmaxVariant::baseline, HmaxVariant::conv, HmaxVariant::flexible};

std::map<std::string, Shape> parameter_shapes(const nn::Module& m) {
  std::map<std::string, Shape> out;
  for (const auto& [name, t] : m.named_parameters()) out[name] = t.shape();
  return out;
}

std::shared_ptr<Hmax> build(const nlohmann::json& config, Generator& gen) {
  return std::make_shared<Hmax>(models::hmax_options_from_config(config), gen);
}

int64_t parameter_count(const nn::Module& m) {
  int64_t n = 0;
  for (const auto& [name, t] : m.named_parameters()) n += t.numel();
  return n;
}

// Images of bars: vertical for class 0, horizontal for class 1, at varying positions, in [0, 1].
std::pair<Tensor, Tensor> bar_images(int64_t n) {
  std::vector<float> pixels(static_cast<size_t>(n * 28 * 28), 0.0f);
  std::vector<int64_t> labels;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t label = i % 2, at = 6 + (i * 5) % 16;
    labels.push_back(label);
    for (int64_t r = 4; r < 24; ++r)
      for (int64_t w = 0; w < 3; ++w) {
        const int64_t row = label == 0 ? r : at + w, col = label == 0 ? at + w : r;
        pixels[(i * 28 + row) * 28 + col] = 1.0f;
      }
  }
  return {Tensor::from_vector(pixels, {n, 1, 28, 28}), Tensor::from_indices(labels, {n})};
}

}  // namespace

TEST_CASE("hmax S1 scales and Gabor filters match pytorch_hmax", "[models][hmax]") {
  const auto scales = models::s1_scales();
  for (int64_t i = 0; i < models::kS1Scales; ++i) {
    CHECK(scales[i].size == 7 + 2 * i);
    CHECK(scales[i].wavelength == Approx(4.0 - 0.05 * i).margin(1e-12));
  }
  CHECK(scales.back().size == 37);
  CHECK(scales.back().wavelength == Approx(3.25).margin(1e-12));

  // Every filter: zero mean, unit norm, and constant (the masked value, -mean/norm) outside the circle.
  for (const auto& scale : scales)
    for (double orientation : models::kGaborOrientations) {
      const std::vector<double> g = models::gabor_filter(scale.size, scale.wavelength, orientation);
      REQUIRE(g.size() == static_cast<size_t>(scale.size * scale.size));
      CHECK(std::accumulate(g.begin(), g.end(), 0.0) == Approx(0.0).margin(1e-12));
      CHECK(std::inner_product(g.begin(), g.end(), g.begin(), 0.0) == Approx(1.0).epsilon(1e-12));
      const double corner = g[0];
      CHECK(g[scale.size - 1] == Approx(corner).margin(1e-15));
      CHECK(g[g.size() - 1] == Approx(corner).margin(1e-15));
    }

  // Entries computed by an independent Python implementation of pytorch_hmax's gabor_filter.
  struct Entry {
    int64_t size;
    double wavelength, orientation;
    int64_t row, col;
    double value;
  };
  const std::vector<Entry> entries{
      {7, 4.0, 90, 3, 3, 0.28462658867988966},     {7, 4.0, 90, 3, 5, 0.2782722032341968},
      {7, 4.0, 90, 0, 3, 0.10298944901616278},     {7, 4.0, 90, 0, 0, 0.004668450137346786},
      {7, 4.0, 90, 5, 1, -0.18633553405960349},    {7, 4.0, 0, 3, 5, -0.19077155850558702},
      {7, 4.0, 0, 1, 2, -0.052452519669867886},    {7, 4.0, -45, 2, 4, 0.29066643409362525},
      {7, 4.0, -45, 4, 4, -0.18098866452676832},   {21, 3.65, 45, 10, 10, 0.09485304689262854},
      {21, 3.65, 45, 4, 13, -0.06140630024265512}, {21, 3.65, 45, 0, 0, 0.00516804153854015},
      {37, 3.25, 0, 18, 18, 0.05159992442292018},  {37, 3.25, 0, 18, 25, -0.013304914146528133},
      {37, 3.25, 0, 30, 12, -0.0011263735092044832}};
  for (const Entry& e : entries) {
    CAPTURE(e.size, e.orientation, e.row, e.col);
    const std::vector<double> g = models::gabor_filter(e.size, e.wavelength, e.orientation);
    CHECK(g[e.row * e.size + e.col] == Approx(e.value).epsilon(1e-12).margin(1e-15));
  }

  // The module holds the four orientations in channel order, as float.
  const models::GaborS1 s1(scales[2], 28);
  REQUIRE(s1.gabor.shape() == Shape{4, 1, 11, 11});
  const std::vector<float> bank = s1.gabor.to_vector();
  for (size_t o = 0; o < models::kGaborOrientations.size(); ++o) {
    const std::vector<double> g = models::gabor_filter(11, 3.9, models::kGaborOrientations[o]);
    for (size_t i = 0; i < g.size(); ++i) CHECK(bank[o * g.size() + i] == static_cast<float>(g[i]));
  }
}

TEST_CASE("hmax S1 is |filter response| / local energy, zero on blank windows, scale invariant", "[models][hmax]") {
  Generator gen(5);
  const models::GaborScale scale{9, 3.95};
  models::GaborS1 s1(scale, 12);
  Tensor x = Tensor::rand({2, 1, 12, 12}, gen);
  float* px = x.data<float>();
  for (int64_t r = 0; r < 12; ++r)  // a blank corner: windows centred at (0..1, 0..1) of image 1 see zeros only
    for (int64_t c = 0; c < 12; ++c)
      if (r < 6 && c < 6) px[144 + r * 12 + c] = 0.0f;
  const Tensor y = s1(x);
  REQUIRE(y.shape() == Shape{2, 4, 12, 12});
  const std::vector<float> out = y.to_vector();
  std::vector<double> g[4];
  for (int o = 0; o < 4; ++o) g[o] = models::gabor_filter(9, 3.95, models::kGaborOrientations[o]);
  for (int64_t n = 0; n < 2; ++n)
    for (int o = 0; o < 4; ++o)
      for (int64_t r = 0; r < 12; ++r)
        for (int64_t c = 0; c < 12; ++c) {
          double response = 0, energy = 0;
          for (int64_t i = 0; i < 9; ++i)
            for (int64_t j = 0; j < 9; ++j) {
              const int64_t rr = r - 4 + i, cc = c - 4 + j;
              if (rr < 0 || rr >= 12 || cc < 0 || cc >= 12) continue;
              const double v = px[(n * 12 + rr) * 12 + cc];
              response += g[o][i * 9 + j] * v;
              energy += v * v;
            }
          const double expected = energy > 0 ? std::abs(response) / std::sqrt(energy) : 0.0;
          CAPTURE(n, o, r, c);
          CHECK(out[((n * 4 + o) * 12 + r) * 12 + c] == Approx(expected).epsilon(1e-4).margin(1e-6));
        }
  CHECK(out[((1 * 4 + 0) * 12 + 0) * 12 + 0] == 0.0f);  // blank window: 0, not NaN
  const std::vector<float> scaled = s1(x * 255.0f).to_vector();  // pytorch_hmax's x 255 changes nothing
  for (size_t i = 0; i < out.size(); ++i) CHECK(scaled[i] == Approx(out[i]).epsilon(1e-5).margin(1e-6));
}

TEST_CASE("hmax S1's normalised response has the gradient of finite differences", "[models][hmax]") {
  Generator gen(6);
  models::GaborS1 s1({7, 4.0}, 8);
  Tensor x = Tensor::rand({1, 1, 8, 8}, gen, 0.2f, 1.0f).requires_grad_();
  testing::check_gradients([&](const std::vector<Tensor>& in) { return s1(in[0]); }, {x},
                           {.eps = 1e-3, .atol = 2e-3, .rtol = 1e-2});
}

TEST_CASE("hmax S2 is the gaussian of the Euclidean distance to each prototype", "[models][hmax]") {
  Generator gen(7);
  for (int64_t size : {2, 3, 4, 6}) {  // 2 and 3 through im2col, 4 and 6 through the Toeplitz product
    CAPTURE(size);
    const int64_t h = 4, p = 3, pad = size / 2, out = h + 2 * pad - size + 1;
    Tensor w = Tensor::rand({p, 4, size, size}, gen, 0.0f, 0.6f);
    models::HmaxS2Band band(w, h, 1.5f, {}, gen);
    const Tensor c1 = Tensor::rand({2, 4, h, h}, gen, 0.0f, 0.6f);
    const Tensor s2 = band(c1);
    REQUIRE(s2.shape() == Shape{2, p, out, out});
    const std::vector<float> y = s2.to_vector(), x = c1.to_vector(), wv = w.to_vector();
    for (int64_t n = 0; n < 2; ++n)
      for (int64_t k = 0; k < p; ++k)
        for (int64_t r = 0; r < out; ++r)
          for (int64_t c = 0; c < out; ++c) {
            double d = 0;  // zero padding counts as C1 values of 0
            for (int64_t ch = 0; ch < 4; ++ch)
              for (int64_t i = 0; i < size; ++i)
                for (int64_t j = 0; j < size; ++j) {
                  const int64_t rr = r - pad + i, cc = c - pad + j;
                  const bool inside = rr >= 0 && rr < h && cc >= 0 && cc < h;
                  const double v = inside ? x[((n * 4 + ch) * h + rr) * h + cc] : 0.0;
                  const double diff = v - wv[((k * 4 + ch) * size + i) * size + j];
                  d += diff * diff;
                }
            CHECK(y[((n * p + k) * out + r) * out + c] == Approx(std::exp(-d / (2 * 1.5 * 1.5))).epsilon(1e-4));
          }
  }
}

TEST_CASE("hmax S2's distance and gaussian have the gradients of finite differences", "[models][hmax]") {
  Generator gen(8);
  Tensor c1 = Tensor::rand({2, 4, 3, 3}, gen, 0.0f, 0.5f).requires_grad_();
  // Size 2 on a 3x3 map goes through im2col, size 4 through the Toeplitz product.
  for (int64_t size : {2, 4}) {
    CAPTURE(size);
    Tensor w = Tensor::rand({2, 4, size, size}, gen, 0.0f, 0.5f).requires_grad_();
    models::HmaxS2Band band(w, 3, 1.0f, {}, gen);
    testing::check_gradients([&](const std::vector<Tensor>& in) { return band(in[0]); }, {c1, w});
    testing::check_gradients([&](const std::vector<Tensor>& in) { return band.maxima(in[0]); }, {c1, w});
  }
  Tensor w = Tensor::rand({2, 4, 2, 2}, gen, 0.0f, 0.5f).requires_grad_();
  models::HmaxS2Band flexible(w, 3, 1.0f, {.mode = nn::FlexMode::standard, .sharpness = 5.0f}, gen);
  REQUIRE(flexible.threshold.shape() == Shape{2, 4, 4});
  testing::check_gradients([&](const std::vector<Tensor>& in) { return flexible(in[0]); },
                           {c1, w, flexible.threshold});
}

TEST_CASE("hmax_s2 and hmax_s2_max equal their composition from element-wise ops", "[models][hmax]") {
  Generator gen(16);
  const Tensor cross = Tensor::randn({3, 5, 4, 4}, gen).requires_grad_();
  const Tensor patch = Tensor::rand({3, 1, 4, 4}, gen, 1.0f, 3.0f).requires_grad_();
  const Tensor weight = Tensor::rand({5}, gen, 0.0f, 2.0f).requires_grad_();
  const float sigma = 1.7f;
  const auto composed = [&] {
    return ops::exp((patch - 2.0f * cross + weight.reshape({1, 5, 1, 1})) * (-1.0f / (2 * sigma * sigma)));
  };
  const auto gradients = [&](const Tensor& out, const Tensor& r) {
    for (Tensor t : {cross, patch, weight}) t.set_grad(Tensor());
    ops::sum(out * r).backward();
    return std::vector<std::vector<float>>{cross.grad().to_vector(), patch.grad().to_vector(),
                                           weight.grad().to_vector()};
  };
  const auto close = [](const std::vector<float>& a, const std::vector<float>& b) {
    REQUIRE(a.size() == b.size());
    for (size_t i = 0; i < a.size(); ++i) CHECK(a[i] == Approx(b[i]).epsilon(1e-5).margin(1e-6));
  };
  const Tensor r_map = Tensor::randn({3, 5, 4, 4}, gen), r_max = Tensor::randn({3, 5}, gen);
  const Tensor fused = ops::hmax_s2(cross, patch, weight, sigma), reference = composed();
  close(fused.to_vector(), reference.to_vector());
  const auto fused_grads = gradients(fused, r_map), reference_grads = gradients(reference, r_map);
  for (size_t k = 0; k < 3; ++k) close(fused_grads[k], reference_grads[k]);

  const Tensor fused_max = ops::hmax_s2_max(cross, patch, weight, sigma);
  const Tensor reference_max = ops::max(composed().flatten(2), 2).values;
  close(fused_max.to_vector(), reference_max.to_vector());
  const auto max_grads = gradients(fused_max, r_max), reference_max_grads = gradients(reference_max, r_max);
  for (size_t k = 0; k < 3; ++k) close(max_grads[k], reference_max_grads[k]);

  CHECK_THAT(error_message([&] { ops::hmax_s2(cross, patch.reshape({3, 4, 4}), weight, sigma); }),
             Catch::Contains("hmax_s2") && Catch::Contains("[3, 1, 4, 4]") && Catch::Contains("[3, 4, 4]"));
  CHECK_THAT(error_message([&] { ops::hmax_s2_max(cross, patch, Tensor::zeros({4}), sigma); }),
             Catch::Contains("hmax_s2_max") && Catch::Contains("[5]") && Catch::Contains("[4]"));
  CHECK_THAT(error_message([&] { ops::hmax_s2(cross, patch, weight, 0.0f); }), Catch::Contains("sigma"));
}

TEST_CASE("conv2d_toeplitz equals conv2d, gradients included, for any thread count", "[models][hmax]") {
  struct Case {
    Shape x, w;
    ops::Size2 stride, padding;
  };
  const std::vector<Case> cases{{{3, 4, 3, 3}, {5, 4, 8, 8}, 1, 4},
                                {{2, 4, 5, 4}, {3, 4, 6, 7}, 1, {2, 3}},
                                {{2, 2, 6, 6}, {3, 2, 3, 3}, 2, 1},
                                {{1, 1, 4, 4}, {2, 1, 4, 4}, 1, 0}};
  Generator gen(17);
  for (const Case& c : cases) {
    CAPTURE(shape_str(c.x), shape_str(c.w));
    Tensor x = Tensor::randn(c.x, gen).requires_grad_(), w = Tensor::randn(c.w, gen).requires_grad_();
    const Tensor expected = ops::conv2d(x, w, {}, c.stride, c.padding);
    const Tensor r = Tensor::randn(expected.shape(), gen);
    ops::sum(expected * r).backward();
    const std::vector<float> dx = x.grad().to_vector(), dw = w.grad().to_vector();
    std::vector<std::vector<float>> runs;
    testing::with_one_then_two_threads([&](int) {
      x.set_grad(Tensor());
      w.set_grad(Tensor());
      const Tensor y = ops::conv2d_toeplitz(x, w, c.stride, c.padding);
      REQUIRE(y.shape() == expected.shape());
      ops::sum(y * r).backward();
      runs.push_back(y.to_vector());
      runs.push_back(x.grad().to_vector());
      runs.push_back(w.grad().to_vector());
    });
    const std::vector<std::vector<float>> want{expected.to_vector(), dx, dw};
    for (size_t k = 0; k < 3; ++k) {
      CHECK(testing::bit_identical(runs[k], runs[k + 3]));
      REQUIRE(runs[k].size() == want[k].size());
      for (size_t i = 0; i < want[k].size(); ++i) CHECK(runs[k][i] == Approx(want[k][i]).epsilon(1e-4).margin(1e-4));
    }
  }
  CHECK_THAT(error_message([] { ops::conv2d_toeplitz(Tensor::zeros({1, 3, 4, 4}), Tensor::zeros({2, 4, 3, 3})); }),
             Catch::Contains("conv2d_toeplitz") && Catch::Contains("3 channels"));
}

TEST_CASE("hmax's ops give the CPU's values and gradients on the CUDA backend", "[models][hmax]") {
  if (!cuda_available()) {
    WARN("no CUDA backend device (real or emulated): skipped");
    return;
  }
  Generator gen(18);
  const Tensor x = Tensor::rand({2, 4, 3, 3}, gen), w = Tensor::rand({3, 4, 6, 6}, gen);
  const Tensor cross = Tensor::randn({2, 3, 4, 4}, gen), patch = Tensor::rand({2, 1, 4, 4}, gen, 1.0f, 2.0f);
  const Tensor weight_sq = Tensor::rand({3}, gen);
  using Op = std::function<Tensor(const std::vector<Tensor>&)>;
  const std::vector<std::pair<Op, std::vector<Tensor>>> cases{
      {[](const std::vector<Tensor>& t) { return ops::conv2d_toeplitz(t[0], t[1], 1, 3); }, {x, w}},
      {[](const std::vector<Tensor>& t) { return ops::hmax_s2(t[0], t[1], t[2], 1.3f); }, {cross, patch, weight_sq}},
      {[](const std::vector<Tensor>& t) { return ops::hmax_s2_max(t[0], t[1], t[2], 1.3f); },
       {cross, patch, weight_sq}}};
  for (size_t c = 0; c < cases.size(); ++c) {
    CAPTURE(c);
    std::vector<std::vector<float>> results[2];
    for (Device device : {kCPU, kCUDA}) {
      std::vector<Tensor> inputs;
      for (const Tensor& t : cases[c].second) inputs.push_back(t.to(device).detach().requires_grad_());
      const Tensor y = cases[c].first(inputs);
      CHECK(y.device() == device);
      ops::sum(y * y).backward();
      auto& r = results[device.is_cuda() ? 1 : 0];
      r.push_back(y.to(kCPU).to_vector());
      for (const Tensor& t : inputs) r.push_back(t.grad().to(kCPU).to_vector());
    }
    for (size_t k = 0; k < results[0].size(); ++k) {
      REQUIRE(results[0][k].size() == results[1][k].size());
      for (size_t i = 0; i < results[0][k].size(); ++i)
        CHECK(results[1][k][i] == Approx(results[0][k][i]).epsilon(1e-4).margin(1e-5));
    }
  }
}

TEST_CASE("hmax stage shapes in every variant", "[models][hmax]") {
  Generator gen(9);
  const Tensor x = Tensor::rand({2, 1, 28, 28}, gen);
  for (HmaxVariant variant : kVariants) {
    CAPTURE(models::hmax_variant_name(variant));
    Hmax model(small_options(variant), gen);
    CHECK(model.band_sizes() == std::vector<int64_t>{8, 6, 5, 5, 4, 4, 3, 3});
    NoGradGuard no_grad;
    const std::vector<Tensor> s1 = model.s1(x);
    REQUIRE(s1.size() == 16);
    for (const Tensor& t : s1) CHECK(t.shape() == Shape{2, 4, 28, 28});
    const std::vector<Tensor> c1 = model.c1(s1);
    REQUIRE(c1.size() == 8);
    for (size_t b = 0; b < 8; ++b) CHECK(c1[b].shape() == Shape{2, 4, model.band_sizes()[b], model.band_sizes()[b]});
    for (const auto& unit : model.s2_units)
      for (size_t b = 0; b < 8; ++b) {
        const int64_t h = model.band_sizes()[b], size = unit->patch_size;
        const int64_t side = size % 2 == 0 ? h + 1 : h;
        CHECK(unit->bands[b]->forward(c1[b]).shape() == Shape{2, 3, side, side});
      }
    CHECK(model.c2(c1).shape() == Shape{2, 6});
    CHECK(model(x).shape() == Shape{2, 10});
  }
  // The paper's sizes: 8 patch sizes x 400 prototypes = 3200 C2 features.
  Hmax full(HmaxOptions{}, gen);
  NoGradGuard no_grad;
  CHECK(full.c2(full.c1(full.s1(x))).shape() == Shape{2, 3200});
}

TEST_CASE("hmax's parameters: names, shapes and counts per variant", "[models][hmax]") {
  const std::vector<int64_t> bands{8, 6, 5, 5, 4, 4, 3, 3};
  const std::vector<int64_t> sizes{2, 4, 6, 8, 10, 12, 14, 16};
  // Counted from the layer list: prototypes, classifier; C1 convolutions; C1 and S2 thresholds.
  int64_t prototypes = 0, s2_units = 0, c1_convs = 0, c1_units = 0;
  for (int64_t s : sizes) prototypes += 400 * 4 * s * s;
  for (int64_t h : bands) s2_units += static_cast<int64_t>(sizes.size()) * 400 * (h + 1) * (h + 1);
  for (int64_t b = 0; b < 8; ++b) c1_convs += 4 * 4 * (8 + 2 * b) * (8 + 2 * b) + 4;
  for (int64_t h : bands) c1_units += 4 * h * h;
  const int64_t fc = 3200 * 10 + 10;

  Generator gen(10);
  const auto baseline = build(models::hmax_defaults(), gen);
  auto shapes = parameter_shapes(*baseline);
  CHECK(shapes.size() == 8 + 2);
  CHECK(shapes["s2_0.weight"] == Shape{400, 4, 2, 2});
  CHECK(shapes["s2_7.weight"] == Shape{400, 4, 16, 16});
  CHECK(shapes["fc.weight"] == Shape{10, 3200});
  CHECK(parameter_count(*baseline) == prototypes + fc);
  CHECK(baseline->state().size() == shapes.size());  // S1's filters are constants, not state

  auto config = models::hmax_defaults();
  config["variant"] = "conv";
  const auto conv = build(config, gen);
  shapes = parameter_shapes(*conv);
  CHECK(shapes.size() == 10 + 16);
  CHECK(shapes["c1_08.conv.weight"] == Shape{4, 4, 8, 8});
  CHECK(shapes["c1_22.conv.bias"] == Shape{4});
  CHECK(shapes.count("c1_08.threshold") == 0);
  CHECK(parameter_count(*conv) == prototypes + fc + c1_convs);

  config["variant"] = "flexible";
  const auto flexible = build(config, gen);
  shapes = parameter_shapes(*flexible);
  CHECK(shapes.size() == 10 + 16 + 8 + 64);
  CHECK(shapes["c1_08.threshold"] == Shape{4, 8, 8});
  CHECK(shapes["c1_22.threshold"] == Shape{4, 3, 3});
  CHECK(shapes["s2_0.c1_08.threshold"] == Shape{400, 9, 9});
  CHECK(shapes["s2_7.c1_22.threshold"] == Shape{400, 4, 4});
  CHECK(parameter_count(*flexible) == prototypes + fc + c1_convs + c1_units + s2_units);
  CHECK(models::flexible_layers(*flexible).size() == 8);  // the C1 layers

  config["flexible_s2"] = false;  // the authors' code: only C1 flexible
  CHECK(parameter_count(*build(config, gen)) == prototypes + fc + c1_convs + c1_units);
  config["flexible_s2"] = true;
  config["freeze_threshold"] = true;  // thresholds become saved buffers
  const auto frozen = build(config, gen);
  CHECK(parameter_count(*frozen) == prototypes + fc + c1_convs);
  CHECK(frozen->state().size() == 10 + 16 + 8 + 64);
}

TEST_CASE("hmax's flexible C1 is the flexible layer over the max of two S1 scales", "[models][hmax]") {
  Generator gen(11);
  Hmax model(small_options(HmaxVariant::flexible), gen);
  const Tensor x = Tensor::rand({2, 1, 28, 28}, gen);
  NoGradGuard no_grad;
  const std::vector<Tensor> s1 = model.s1(x);
  const std::vector<Tensor> c1 = model.c1(s1);
  // Band 3: S1 scales 6 and 7 (sizes 19, 21), window 14, stride 7, padding 7.
  const std::vector<float> a = s1[6].to_vector(), b = s1[7].to_vector();
  std::vector<float> m(a.size());
  for (size_t i = 0; i < a.size(); ++i) m[i] = std::max(a[i], b[i]);
  const Tensor scales = Tensor::from_vector(m, s1[6].shape());
  const nn::FlexibleConv2d& layer = *model.c1_units[3];
  const Tensor pool = ops::max_pool2d(scales, 14, 7, 7);
  const Tensor conv = ops::conv2d(scales, layer.conv->weight, layer.conv->bias, 7, 7);
  const Tensor z = (layer.threshold - pool) * 50.0f;
  const std::vector<float> expected = (ops::sigmoid(z) * pool + ops::sigmoid(-z) * conv).to_vector();
  const std::vector<float> got = c1[3].to_vector();
  REQUIRE(got.size() == expected.size());
  for (size_t i = 0; i < got.size(); ++i) CHECK(got[i] == Approx(expected[i]).epsilon(1e-5).margin(1e-6));
}

TEST_CASE("imprinted prototypes are C1 patches: each matches its source exactly", "[models][hmax]") {
  Generator gen(12);
  for (HmaxVariant variant : {HmaxVariant::baseline, HmaxVariant::conv}) {
    CAPTURE(models::hmax_variant_name(variant));
    HmaxOptions o = small_options(variant);
    o.prototypes = 20;
    Hmax model(o, gen);
    const Tensor image = Tensor::rand({1, 1, 28, 28}, gen);
    const std::vector<float> before = model.s2_units[0]->weight.to_vector();
    models::imprint_prototypes(model, image, gen);
    CHECK(model.s2_units[0]->weight.to_vector() != before);
    // One image: every prototype is one of its C1 windows, so its C2 response is exp(0) = 1.
    NoGradGuard no_grad;
    for (float v : model.c2(model.c1(model.s1(image))).to_vector()) CHECK(v == Approx(1.0f).epsilon(1e-4));
    // Another image matches less well.
    const Tensor other = Tensor::rand({1, 1, 28, 28}, gen);
    const std::vector<float> c2 = model.c2(model.c1(model.s1(other))).to_vector();
    CHECK(*std::min_element(c2.begin(), c2.end()) < 0.99f);
  }
}

TEST_CASE("a few SGD steps lower hmax's loss in every variant", "[models][hmax]") {
  const auto [images, labels] = bar_images(12);
  for (HmaxVariant variant : kVariants) {
    CAPTURE(models::hmax_variant_name(variant));
    Generator gen(13);
    HmaxOptions o = small_options(variant);
    o.patch_sizes = {2, 4};
    o.prototypes = 4;
    Hmax model(o, gen);
    models::imprint_prototypes(model, images, gen);
    optim::SGD sgd(model.parameters(), {.lr = 0.05f, .momentum = 0.9f});
    const auto loss_now = [&] {
      NoGradGuard no_grad;
      return ops::cross_entropy(model(images), labels).item();
    };
    const float initial = loss_now();
    for (int step = 0; step < 8; ++step) {
      sgd.zero_grad();
      ops::cross_entropy(model(images), labels).backward();
      sgd.step();
    }
    const float trained = loss_now();
    CHECK(std::isfinite(trained));
    CHECK(trained < 0.8f * initial);
  }
}

TEST_CASE("hmax's outputs and gradients do not depend on the thread count", "[models][hmax]") {
  Generator gen(19);
  HmaxOptions o = small_options(HmaxVariant::flexible);
  o.patch_sizes = {2, 6};  // im2col on the larger bands, the Toeplitz product on the smaller
  Hmax model(o, gen);
  const auto [images, labels] = bar_images(4);
  std::vector<std::vector<float>> runs[2];
  testing::with_one_then_two_threads([&](int threads) {
    model.zero_grad();
    const Tensor logits = model(images);
    ops::cross_entropy(logits, labels).backward();
    runs[threads - 1].push_back(logits.to_vector());
    for (const Tensor& p : model.parameters()) runs[threads - 1].push_back(p.grad().to_vector());
  });
  REQUIRE(runs[0].size() == runs[1].size());
  for (size_t k = 0; k < runs[0].size(); ++k) CHECK(testing::bit_identical(runs[0][k], runs[1][k]));
}

TEST_CASE("an hmax checkpoint round trip restores every tensor and the outputs", "[models][hmax]") {
  testing::TempDir dir("hmax");
  Generator gen(14);
  Hmax model(small_options(HmaxVariant::flexible), gen);
  const Tensor x = Tensor::rand({2, 1, 28, 28}, gen);
  save_checkpoint(model, dir.path() / "hmax.safetensors", {{"note", "test"}});
  Generator other(99);
  Hmax loaded(small_options(HmaxVariant::flexible), other);
  CHECK(load_checkpoint(loaded, dir.path() / "hmax.safetensors").at("note") == "test");
  const nn::NamedTensors a = model.state(), b = loaded.state();
  REQUIRE(a.size() == b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    CHECK(a[i].first == b[i].first);
    CHECK(testing::bit_identical(a[i].second.to_vector(), b[i].second.to_vector()));
  }
  NoGradGuard no_grad;
  CHECK(testing::bit_identical(model(x).to_vector(), loaded(x).to_vector()));
  // A baseline checkpoint lacks the flexible model's tensors.
  Hmax baseline(small_options(HmaxVariant::baseline), gen);
  save_checkpoint(baseline, dir.path() / "baseline.safetensors");
  CHECK_THAT(error_message([&] { load_checkpoint(loaded, dir.path() / "baseline.safetensors"); }),
             Catch::Contains("c1_08"));
}

TEST_CASE("hmax configs: defaults, values read, and clear errors", "[models][hmax]") {
  const nlohmann::json defaults = models::hmax_defaults();
  CHECK(defaults["model"] == "hmax");
  CHECK(defaults["variant"] == "baseline");
  CHECK(defaults["patch_sizes"] == nlohmann::json({2, 4, 6, 8, 10, 12, 14, 16}));
  CHECK(defaults["prototypes"] == 400);
  CHECK(defaults["threshold_std"].get<double>() == 0.1);
  nlohmann::json config = defaults;
  config["variant"] = "flexible";
  config["flex"] = "reverse";
  config["patch_sizes"] = {3, 5};
  config["sigma"] = 2.5;
  const HmaxOptions o = models::hmax_options_from_config(config);
  CHECK(o.variant == HmaxVariant::flexible);
  CHECK(o.flex == nn::FlexMode::reverse);
  CHECK(o.patch_sizes == std::vector<int64_t>{3, 5});
  CHECK(o.sigma == 2.5f);

  const auto error_for = [&](const char* key, const nlohmann::json& value) {
    nlohmann::json c = defaults;
    c[key] = value;
    return error_message([&] { models::hmax_options_from_config(c); });
  };
  CHECK_THAT(error_for("variant", "convolutional"),
             Catch::Contains("convolutional") && Catch::Contains("baseline, conv, flexible"));
  CHECK_THAT(error_for("patch_sizes", nlohmann::json::array()), Catch::Contains("patch_sizes"));
  CHECK_THAT(error_for("patch_sizes", {2, 0}), Catch::Contains("patch_sizes") && Catch::Contains("[2,0]"));
  CHECK_THAT(error_for("patch_sizes", "big"), Catch::Contains("patch_sizes") && Catch::Contains("wrong type"));
  CHECK_THAT(error_for("patch_sizes", {2, 4.5}), Catch::Contains("patch_sizes") && Catch::Contains("4.5"));
  CHECK_THAT(error_for("prototypes", 0), Catch::Contains("prototypes"));
  CHECK_THAT(error_for("prototypes", 12.5), Catch::Contains("prototypes") && Catch::Contains("12.5"));
  CHECK_THAT(error_for("sigma", -1), Catch::Contains("sigma"));
  CHECK_THAT(error_for("sigma", "wide"), Catch::Contains("sigma") && Catch::Contains("wide"));
  CHECK_THAT(error_for("flex", "random"), Catch::Contains("random") && Catch::Contains("standard or reverse"));
  CHECK_THAT(error_for("flex", "sometimes"), Catch::Contains("sometimes"));
  CHECK_THAT(error_for("sharpness", 0), Catch::Contains("sharpness"));
  CHECK_THAT(error_for("mean", {0.1, 0.2}), Catch::Contains("grayscale"));
  CHECK_THAT(error_for("std", {0.0}), Catch::Contains("\"std\""));
  nlohmann::json missing = defaults;
  missing.erase("sigma");
  CHECK_THAT(error_message([&] { models::hmax_options_from_config(missing); }),
             Catch::Contains("missing") && Catch::Contains("sigma"));

  Generator gen(15);
  Hmax model(small_options(HmaxVariant::baseline), gen);
  CHECK_THAT(error_message([&] { model(Tensor::zeros({1, 3, 28, 28})); }),
             Catch::Contains("[1, 3, 28, 28]") && Catch::Contains("grayscale"));
  CHECK_THAT(error_message([&] { model(Tensor::zeros({1, 1, 32, 32})); }), Catch::Contains("[1, 1, 32, 32]"));
  CHECK_THAT(error_message([&] { model.s2_units[0]->forward(Tensor::zeros({1, 4, 8, 8})); }),
             Catch::Contains("c2("));
  CHECK_THAT(error_message([&] { model.s2_units[0]->bands[0]->forward(Tensor::zeros({1, 4, 6, 6})); }),
             Catch::Contains("[N, 4, 8, 8]") && Catch::Contains("[1, 4, 6, 6]"));
}

}  // namespace flexnn
