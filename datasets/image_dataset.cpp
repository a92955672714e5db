// Subsets, class-balanced picks and byte-to-float batches of an ImageDataset.
#include "datasets/image_dataset.hpp"

#include "engine/generator.hpp"

#include <algorithm>

namespace flexnn::datasets {
namespace {

void check_index(const ImageDataset& dataset, int64_t index, const char* what) {
  FLEXNN_CHECK(index >= 0 && index < dataset.size(), "{}: index {} is outside the dataset's [0, {})", what, index,
               dataset.size());
}

}  // namespace

ImageDataset subset(const ImageDataset& dataset, std::span<const int64_t> indices) {
  ImageDataset result{{}, {}, dataset.channels, dataset.height, dataset.width, dataset.class_names};
  const int64_t per_image = dataset.image_bytes();
  result.pixels.resize(indices.size() * per_image);
  result.labels.resize(indices.size());
  for (size_t i = 0; i < indices.size(); ++i) {
    check_index(dataset, indices[i], "subset");
    std::copy_n(dataset.pixels.data() + indices[i] * per_image, per_image, result.pixels.data() + i * per_image);
    result.labels[i] = dataset.labels[indices[i]];
  }
  return result;
}

std::vector<int64_t> balanced_indices(const ImageDataset& dataset, int64_t per_class, uint64_t seed) {
  FLEXNN_CHECK(per_class >= 0, "balanced_indices: per_class must be >= 0, got {}", per_class);
  const int64_t classes = dataset.num_classes();
  std::vector<int64_t> taken(classes, 0);
  std::vector<int64_t> picked;
  picked.reserve(classes * per_class);
  for (const int64_t index : Generator(seed).permutation(dataset.size())) {
    const int64_t label = dataset.labels[index];
    FLEXNN_CHECK(label >= 0 && label < classes, "balanced_indices: label {} of example {} is outside [0, {})", label,
                 index, classes);
    if (taken[label] < per_class) {
      ++taken[label];
      picked.push_back(index);
    }
  }
  for (int64_t c = 0; c < classes; ++c) {
    FLEXNN_CHECK(taken[c] == per_class, "balanced_indices: class {} ({}) has {} examples, fewer than the {} asked for",
                 c, dataset.class_names[c], taken[c], per_class);
  }
  std::sort(picked.begin(), picked.end());
  return picked;
}

LabelledImages take(const ImageDataset& dataset, std::span<const int64_t> indices) {
  const auto batch = static_cast<int64_t>(indices.size());
  LabelledImages result{Tensor::empty({batch, dataset.channels, dataset.height, dataset.width}),
                        Tensor::empty({batch}, DType::Int64)};
  const int64_t per_image = dataset.image_bytes();
  float* images = result.images.data<float>();
  int64_t* labels = result.labels.data<int64_t>();
  for (int64_t i = 0; i < batch; ++i) {
    check_index(dataset, indices[i], "take");
    const uint8_t* src = dataset.pixels.data() + indices[i] * per_image;
    float* dst = images + i * per_image;
    for (int64_t j = 0; j < per_image; ++j) dst[j] = static_cast<float>(src[j]) / 255.0f;  // vectorises
    labels[i] = dataset.labels[indices[i]];
  }
  return result;
}

}  // namespace flexnn::datasets
