// Subsets, class-balanced picks and byte-to-float batches of an ImageDataset, the dataset as an
// ImageSource, and any ImageSource read into memory.
#include "datasets/image_dataset.hpp"

#include "engine/generator.hpp"
#include "kernels/cpu/parallel.hpp"

#include <algorithm>
#include <cmath>

namespace flexnn::datasets {
namespace {

void check_index(const ImageDataset& dataset, int64_t index, const char* what) {
  FLEXNN_CHECK(index >= 0 && index < dataset.size(), "{}: index {} is outside the dataset's [0, {})", what, index,
               dataset.size());
}

// bytes / 255, the one conversion from stored bytes to model input.
void bytes_to_unit(const uint8_t* src, int64_t n, float* dst) {
  for (int64_t j = 0; j < n; ++j) dst[j] = static_cast<float>(src[j]) / 255.0f;  // vectorises
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
    bytes_to_unit(dataset.pixels.data() + indices[i] * per_image, per_image, images + i * per_image);
    labels[i] = dataset.labels[indices[i]];
  }
  return result;
}

ImageDatasetSource::ImageDatasetSource(const ImageDataset& dataset) : dataset_(dataset) { check_pixels(); }

ImageDatasetSource::ImageDatasetSource(ImageDataset&& dataset)
    : owned_(std::make_unique<const ImageDataset>(std::move(dataset))), dataset_(*owned_) {
  check_pixels();
}

void ImageDatasetSource::check_pixels() const {
  FLEXNN_CHECK(static_cast<int64_t>(dataset_.pixels.size()) == dataset_.size() * dataset_.image_bytes(),
               "ImageDataset: the dataset holds {} pixel bytes, expected {} images x {} x {} x {}",
               dataset_.pixels.size(), dataset_.size(), dataset_.channels, dataset_.height, dataset_.width);
}

int64_t ImageDatasetSource::label(int64_t index) const {
  check_index(dataset_, index, "ImageDatasetSource::label");
  return dataset_.labels[index];
}

bool ImageDatasetSource::load(int64_t index, ExampleRandom&, Image& out) const {
  check_index(dataset_, index, "ImageDatasetSource::load");
  out.reshape(dataset_.channels, dataset_.height, dataset_.width);
  const int64_t per_image = dataset_.image_bytes();
  bytes_to_unit(dataset_.pixels.data() + index * per_image, per_image, out.pixels.data());
  return true;
}

ImageDataset to_dataset(const ImageSource& source) {
  const int64_t n = source.size();
  ImageDataset result;
  result.class_names = source.class_names();
  // The first example that loads sets the shape; the rest load in parallel straight into place.
  Image image;
  int64_t first = 0;
  while (first < n) {
    ExampleRandom random(0, 0, first);
    if (source.load(first, random, image)) break;
    ++first;
  }
  if (first == n) return result;
  result.channels = image.channels;
  result.height = image.height;
  result.width = image.width;
  const int64_t per_image = result.image_bytes();
  result.pixels.resize(n * per_image);
  std::vector<char> kept(n, 0);
  const auto store = [&](int64_t i, const Image& loaded) {
    FLEXNN_CHECK(loaded.same_shape(image), "to_dataset: example {} is {}x{}x{} but example {} is {}x{}x{}: every "
                 "example must have one shape (give the source a crop size)", i, loaded.channels, loaded.height,
                 loaded.width, first, image.channels, image.height, image.width);
    uint8_t* dst = result.pixels.data() + i * per_image;
    for (int64_t j = 0; j < per_image; ++j) {
      dst[j] = static_cast<uint8_t>(std::lround(std::clamp(loaded.pixels[j], 0.0f, 1.0f) * 255.0f));
    }
    kept[i] = 1;
  };
  store(first, image);
  cpu::parallel_for(first + 1, n, 1, [&](int64_t begin, int64_t end) {
    Image loaded;
    for (int64_t i = begin; i < end; ++i) {
      ExampleRandom random(0, 0, i);
      if (source.load(i, random, loaded)) store(i, loaded);
    }
  });
  // Labels, and the skipped examples' gaps closed.
  int64_t count = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (!kept[i]) continue;
    if (count != i) std::copy_n(result.pixels.data() + i * per_image, per_image, result.pixels.data() + count * per_image);
    result.labels.push_back(source.label(i));
    ++count;
  }
  result.pixels.resize(count * per_image);
  return result;
}

}  // namespace flexnn::datasets
