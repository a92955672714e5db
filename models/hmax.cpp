// hmax's config, construction, stages and prototype imprinting.
#include "models/hmax.hpp"

#include "models/config_value.hpp"

#include "engine/autograd/node.hpp"
#include "engine/ops.hpp"
#include "kernels/cpu/pool2d.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>

namespace flexnn::models {
namespace {

constexpr std::array<std::pair<HmaxVariant, std::string_view>, 3> kVariants{
    {{HmaxVariant::baseline, "baseline"}, {HmaxVariant::conv, "conv"}, {HmaxVariant::flexible, "flexible"}}};

void check_images(const Tensor& x) {
  FLEXNN_CHECK(x.dim() == 4 && x.size(1) == 1 && x.size(2) == Hmax::kImageSize && x.size(3) == Hmax::kImageSize,
               "hmax: expected grayscale images [N, 1, {}, {}], found {}", Hmax::kImageSize, Hmax::kImageSize,
               shape_str(x.shape()));
}

// The element-wise maximum of two tensors of the same shape.
Tensor maximum(const Tensor& a, const Tensor& b) {
  Shape stacked = a.shape();
  stacked.insert(stacked.begin() + 1, 1);
  return ops::max(ops::concat({a.reshape(stacked), b.reshape(stacked)}, 1), 1).values;
}

}  // namespace

HmaxVariant parse_hmax_variant(std::string_view name) {
  for (const auto& [variant, variant_name] : kVariants)
    if (variant_name == name) return variant;
  fail("unknown hmax variant '{}': expected one of baseline, conv, flexible", name);
}

std::string_view hmax_variant_name(HmaxVariant variant) { return kVariants[static_cast<size_t>(variant)].second; }

nlohmann::json hmax_defaults() {
  const HmaxOptions o;
  return {{"model", "hmax"},
          {"variant", hmax_variant_name(o.variant)},
          {"patch_sizes", o.patch_sizes},
          {"prototypes", o.prototypes},
          {"sigma", o.sigma},
          {"flexible_s2", o.flexible_s2},
          {"flex", nn::flex_mode_name(o.flex)},
          {"sharpness", o.sharpness},
          {"threshold_mean", 0.5},  // doubles, so that the JSON reads 0.5 and 0.1, not their float roundings
          {"threshold_std", 0.1},
          {"freeze_threshold", o.freeze_threshold},
          {"imprint", o.imprint},
          {"mean", {0.0}},
          {"std", {1.0}}};
}

HmaxOptions hmax_options_from_config(const nlohmann::json& c) {
  HmaxOptions o;
  o.variant = parse_hmax_variant(config_value<std::string>(c, "variant"));
  o.patch_sizes = config_value<std::vector<int64_t>>(c, "patch_sizes");
  const nlohmann::json& sizes = c.at("patch_sizes");
  const auto whole = [](const nlohmann::json& s) { return s.is_number_integer(); };
  FLEXNN_CHECK(!o.patch_sizes.empty() && std::ranges::all_of(sizes, whole) &&
                   std::ranges::all_of(o.patch_sizes, [](int64_t s) { return s > 0; }),
               "hmax config: \"patch_sizes\" must be a non-empty list of positive whole sizes, found {}", sizes.dump());
  o.prototypes = config_value<int64_t>(c, "prototypes");
  FLEXNN_CHECK(c.at("prototypes").is_number_integer() && o.prototypes > 0,
               "hmax config: \"prototypes\" must be a positive whole number, found {}", c.at("prototypes").dump());
  o.sigma = config_value<float>(c, "sigma");
  FLEXNN_CHECK(o.sigma > 0 && std::isfinite(o.sigma), "hmax config: \"sigma\" must be positive, found {}", o.sigma);
  o.flexible_s2 = config_value<bool>(c, "flexible_s2");
  o.flex = nn::parse_flex_mode(config_value<std::string>(c, "flex"));
  FLEXNN_CHECK(o.flex == nn::FlexMode::standard || o.flex == nn::FlexMode::reverse,
               "hmax config: \"flex\" must be standard or reverse, found {} (the variant chooses between baseline, "
               "conv and flexible)",
               nn::flex_mode_name(o.flex));
  o.sharpness = config_value<float>(c, "sharpness");
  FLEXNN_CHECK(o.sharpness > 0 && std::isfinite(o.sharpness), "hmax config: \"sharpness\" must be positive, found {}",
               o.sharpness);
  o.threshold_mean = config_value<float>(c, "threshold_mean");
  o.threshold_std = config_value<float>(c, "threshold_std");
  FLEXNN_CHECK(o.threshold_std >= 0, "hmax config: \"threshold_std\" must not be negative, found {}",
               o.threshold_std);
  o.freeze_threshold = config_value<bool>(c, "freeze_threshold");
  o.imprint = config_value<bool>(c, "imprint");
  o.mean = config_value<std::vector<float>>(c, "mean");
  o.std = config_value<std::vector<float>>(c, "std");
  FLEXNN_CHECK(o.mean.size() == 1 && o.std.size() == 1,
               "hmax config: expects grayscale input, so 1 mean and 1 std, found {} and {}", o.mean.size(),
               o.std.size());
  FLEXNN_CHECK(o.std[0] > 0 && std::isfinite(o.std[0]), "hmax config: \"std\" must be positive, found {}", o.std[0]);
  return o;
}

Hmax::Hmax(const HmaxOptions& o, Generator& gen)
    : normalize(register_module("normalize", std::make_shared<nn::Normalize>(o.mean, o.std))), options_(o) {
  for (const GaborScale& scale : s1_scales())
    s1_units.push_back(
        register_module(fmt::format("s1_{:02d}", scale.size), std::make_shared<GaborS1>(scale, kImageSize)));

  std::vector<std::string> band_names;
  for (int64_t b = 0; b < kBands; ++b) {
    const int64_t k = c1_pool_size(b);
    band_names.push_back(fmt::format("c1_{:02d}", k));
    band_sizes_.push_back(cpu::pool_output_size(kImageSize, k, k / 2, k / 2, false));
    if (o.variant == HmaxVariant::baseline) continue;
    const nn::FlexibleConv2dOptions layer{.in_channels = kOrientations,
                                          .out_channels = kOrientations,
                                          .kernel = k,
                                          .stride = k / 2,
                                          .padding = k / 2,
                                          .pool = {k, k / 2, k / 2},
                                          .input_size = kImageSize,
                                          .mode = o.variant == HmaxVariant::conv ? nn::FlexMode::none : o.flex,
                                          .sharpness = o.sharpness,
                                          .threshold_mean = o.threshold_mean,
                                          .threshold_std = o.threshold_std,
                                          .freeze_threshold = o.freeze_threshold};
    c1_units.push_back(register_module(band_names.back(), std::make_shared<nn::FlexibleConv2d>(layer, gen)));
  }

  const bool flexible_s2 = o.variant == HmaxVariant::flexible && o.flexible_s2;
  const S2Flex flex{.mode = flexible_s2 ? o.flex : nn::FlexMode::none,
                    .sharpness = o.sharpness,
                    .threshold_mean = o.threshold_mean,
                    .threshold_std = o.threshold_std,
                    .freeze_threshold = o.freeze_threshold};
  for (size_t j = 0; j < o.patch_sizes.size(); ++j)
    s2_units.push_back(register_module(fmt::format("s2_{}", j),
                                       std::make_shared<HmaxS2>(o.patch_sizes[j], o.prototypes, band_names,
                                                                band_sizes_, o.sigma, flex, gen)));
  const int64_t features = static_cast<int64_t>(o.patch_sizes.size()) * o.prototypes;
  fc = register_module("fc", std::make_shared<nn::Linear>(features, kClasses, true, gen));
}

std::vector<Tensor> Hmax::s1(const Tensor& x) {
  check_images(x);
  std::vector<Tensor> out;
  for (const auto& unit : s1_units) out.push_back(unit->forward(x));
  return out;
}

std::vector<Tensor> Hmax::c1(const std::vector<Tensor>& s1) {
  FLEXNN_CHECK(s1.size() == 2 * kBands, "hmax C1: expected {} S1 maps, found {}", 2 * kBands, s1.size());
  std::vector<Tensor> out;
  for (int64_t b = 0; b < kBands; ++b) {
    const Tensor scales = maximum(s1[2 * b], s1[2 * b + 1]);
    const int64_t k = c1_pool_size(b);
    out.push_back(c1_units.empty() ? ops::max_pool2d(scales, k, k / 2, k / 2) : c1_units[b]->forward(scales));
  }
  return out;
}

Tensor Hmax::c2(const std::vector<Tensor>& c1) {
  std::vector<Tensor> features;
  for (const auto& unit : s2_units) features.push_back(unit->c2(c1));
  return ops::concat(features, 1);
}

Tensor Hmax::forward(const Tensor& x) {
  check_images(x);
  return fc->forward(c2(c1(s1(normalize->forward(x)))));
}

void imprint_prototypes(Hmax& model, const Tensor& images, Generator& gen) {
  check_images(images);
  NoGradGuard no_grad;
  const std::vector<Tensor> bands = model.c1(model.s1(model.normalize->forward(images)));
  const int64_t n = images.size(0), channels = kOrientations;
  FLEXNN_CHECK(n > 0, "imprint_prototypes: no images given");
  std::vector<std::vector<float>> maps;  // host copies of the C1 bands
  for (const Tensor& band : bands) maps.push_back(band.to_vector());
  // A uniform draw u in [0, 1) as an index below `count`.
  const auto pick = [](float u, int64_t count) {
    return std::min(static_cast<int64_t>(u * static_cast<float>(count)), count - 1);
  };
  for (const auto& unit : model.s2_units) {
    const int64_t size = unit->patch_size, pad = size / 2, prototypes = unit->weight.size(0);
    const std::vector<float> u = gen.uniform(4 * prototypes);
    std::vector<float> values(static_cast<size_t>(prototypes * channels * size * size), 0.0f);
    for (int64_t p = 0; p < prototypes; ++p) {
      const int64_t image = pick(u[4 * p], n), b = pick(u[4 * p + 1], Hmax::kBands);
      const int64_t h = model.band_sizes()[b], out = h + 2 * pad - size + 1;
      const int64_t top = pick(u[4 * p + 2], out) - pad, left = pick(u[4 * p + 3], out) - pad;
      for (int64_t c = 0; c < channels; ++c)
        for (int64_t i = 0; i < size; ++i)
          for (int64_t j = 0; j < size; ++j) {
            const int64_t row = top + i, col = left + j;
            if (row < 0 || row >= h || col < 0 || col >= h) continue;
            values[((p * channels + c) * size + i) * size + j] = maps[b][((image * channels + c) * h + row) * h + col];
          }
    }
    unit->weight.copy_(Tensor::from_vector(values, unit->weight.shape()));
  }
}

}  // namespace flexnn::models
