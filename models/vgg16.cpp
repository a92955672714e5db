// vgg16's construction from the Supporting Information's layer list, its option checks and forward.
#include "models/vgg16.hpp"

#include <fmt/format.h>

namespace flexnn::models {
namespace {

constexpr float kBatchNormEps = 1e-5f, kBatchNormMomentum = 0.1f;
constexpr int64_t kMinImageSize = 18;  // 18 - 2 = 16, halved four times: 1

constexpr std::array<std::pair<Vgg16Flex, std::string_view>, 3> kFlexNames{
    {{Vgg16Flex::none, "none"}, {Vgg16Flex::single, "single"}, {Vgg16Flex::all, "all"}}};

// Blocks 2 to 5: their convolutions' output channels and their closing Dropout2d.
struct PooledBlock {
  std::vector<int64_t> channels;
  float dropout;
};
const std::array<PooledBlock, 4>& pooled_blocks() {
  static const std::array<PooledBlock, 4> blocks{{{{128, 128}, 0.4f},
                                                  {{256, 256, 256}, 0.4f},
                                                  {{512, 512, 512}, 0.4f},
                                                  {{512, 512, 512}, 0.5f}}};
  return blocks;
}

// A 3x3 convolution on `size` x `size` maps as a flexible layer: padding 1 and a 3x3 stride-1
// padding-1 max-pool keep the shape (block 1's unpadded layer overrides padding and pool). The
// pool takes the input when the channels map one to one, else the convolution's output.
nn::FlexibleConv2dOptions flexible_options(const Vgg16Options& o, int64_t in, int64_t out, int64_t size) {
  return {.in_channels = in,
          .out_channels = out,
          .kernel = 3,
          .padding = 1,
          .pool = {3, 1, 1},
          .pool_source = in == out || in == 1 ? nn::PoolSource::input : nn::PoolSource::conv_output,
          .input_size = size,
          .mode = o.mode,
          .sharpness = o.sharpness,
          .threshold_mean = o.threshold_mean,
          .threshold_std = o.threshold_std,
          .uniform_threshold = o.uniform_threshold,
          .freeze_threshold = o.freeze_threshold};
}

}  // namespace

Vgg16Flex parse_vgg16_flex(std::string_view name) {
  for (const auto& [flex, flex_name] : kFlexNames)
    if (flex_name == name) return flex;
  fail("vgg16: unknown flex '{}': expected one of none, single, all", name);
}

std::string_view vgg16_flex_name(Vgg16Flex flex) { return kFlexNames[static_cast<size_t>(flex)].second; }

void validate(const Vgg16Options& o) {
  FLEXNN_CHECK(o.mode != nn::FlexMode::none,
               "vgg16: flex_mode none is not a gate of flexible layers; the baseline network is flex none");
  FLEXNN_CHECK(o.image_size >= kMinImageSize,
               "vgg16: image_size must be at least {} (block 5 would end with empty maps), found {}", kMinImageSize,
               o.image_size);
  FLEXNN_CHECK(o.mean.size() == 3 && o.std.size() == 3,
               "vgg16: expects RGB input, so 3 means and 3 stds, found {} and {}", o.mean.size(), o.std.size());
}

Vgg16::Vgg16(const Vgg16Options& o, Generator& gen) : options_(o) {
  validate(o);
  normalize = register_module("normalize", std::make_shared<nn::Normalize>(o.mean, o.std));
  const bool all = o.flex == Vgg16Flex::all;
  int64_t size = o.image_size;
  // Convolution (or flexible layer) → BatchNorm2d → ReLU, shape-keeping.
  const auto add_unit = [&](nn::Sequential& block, int64_t in, int64_t out) {
    if (all)
      block.push_back(std::make_shared<nn::FlexibleConv2d>(flexible_options(o, in, out, size), gen));
    else
      block.push_back(std::make_shared<nn::Conv2d>(in, out, 3, 1, 1, true, gen));
    block.push_back(std::make_shared<nn::BatchNorm2d>(out, kBatchNormEps, kBatchNormMomentum));
    block.push_back(std::make_shared<nn::ReLU>());
  };

  auto block1 = std::make_shared<nn::Sequential>();
  add_unit(*block1, 3, 64);
  nn::FlexibleConv2dOptions flex = flexible_options(o, 64, 64, size);
  flex.padding = 0;
  flex.pool = {3, 1, 0};
  if (o.flex == Vgg16Flex::none) flex.mode = nn::FlexMode::none;
  block1->push_back(std::make_shared<nn::FlexibleConv2d>(flex, gen));
  size -= 2;
  block1->push_back(std::make_shared<nn::BatchNorm2d>(64, kBatchNormEps, kBatchNormMomentum));
  block1->push_back(std::make_shared<nn::ReLU>());
  block1->push_back(std::make_shared<nn::Dropout2d>(0.3f, gen));
  blocks[0] = register_module("block1", block1);

  int64_t in = 64;
  for (size_t b = 0; b < pooled_blocks().size(); ++b) {
    auto block = std::make_shared<nn::Sequential>();
    for (const int64_t out : pooled_blocks()[b].channels) {
      add_unit(*block, in, out);
      in = out;
    }
    block->push_back(std::make_shared<nn::MaxPool2d>(2, 2));
    size /= 2;
    block->push_back(std::make_shared<nn::Dropout2d>(pooled_blocks()[b].dropout, gen));
    blocks[b + 1] = register_module(fmt::format("block{}", b + 2), block);
  }
  feature_size_ = size;

  fc = register_module("fc", std::make_shared<nn::Sequential>(std::initializer_list<std::shared_ptr<nn::Module>>{
                                 std::make_shared<nn::Linear>(in, 100, true, gen),
                                 std::make_shared<nn::Dropout>(0.5f, gen),
                                 std::make_shared<nn::BatchNorm1d>(100, kBatchNormEps, kBatchNormMomentum),
                                 std::make_shared<nn::ReLU>(),
                                 std::make_shared<nn::Dropout>(0.5f, gen),
                                 std::make_shared<nn::Linear>(100, kClasses, true, gen),
                             }));
}

Tensor Vgg16::forward(const Tensor& x) {
  const int64_t s = options_.image_size;
  FLEXNN_CHECK(x.dim() == 4 && x.size(1) == 3 && x.size(2) == s && x.size(3) == s,
               "vgg16: built for [N, 3, {}, {}] inputs (image_size {}), found {}", s, s, s, shape_str(x.shape()));
  Tensor h = normalize->forward(x);
  for (const auto& block : blocks) h = block->forward(h);
  // Adaptive average pooling to 1x1 where block 5 ends with larger maps.
  h = feature_size_ > 1 ? ops::mean(h, {2, 3}) : h.flatten(1);
  return fc->forward(h);
}

}  // namespace flexnn::models
