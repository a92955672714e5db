// ImageDataset: a labelled image set held as bytes ([N, C, H, W] uint8, a quarter of the memory of
// float32), with the operations on it that stay in bytes (subset, a class-balanced pick) and
// take(), which turns a batch of examples into the float32 tensors a model consumes;
// ImageDatasetSource, which serves it to the DataLoader as an ImageSource; and to_dataset(), which
// reads any ImageSource into memory as bytes.
#pragma once

#include "datasets/image_source.hpp"
#include "datasets/labelled_images.hpp"

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace flexnn::datasets {

struct ImageDataset {
  std::vector<uint8_t> pixels;  // [N, C, H, W], row-major
  std::vector<int64_t> labels;  // [N], each in [0, num_classes())
  int64_t channels = 0;
  int64_t height = 0;
  int64_t width = 0;
  std::vector<std::string> class_names;

  int64_t size() const { return static_cast<int64_t>(labels.size()); }
  int64_t num_classes() const { return static_cast<int64_t>(class_names.size()); }
  int64_t image_bytes() const { return channels * height * width; }
};

// The examples at `indices`, in that order (repeats allowed), as a new dataset.
ImageDataset subset(const ImageDataset& dataset, std::span<const int64_t> indices);

// `per_class` examples of each class, the first of that class in the permutation
// Generator(seed).permutation(size()), returned in ascending index order. Throws if a class has
// fewer than `per_class` examples.
std::vector<int64_t> balanced_indices(const ImageDataset& dataset, int64_t per_class, uint64_t seed);

// The examples at `indices`, in that order: images [B, C, H, W] float32 equal to byte / 255 (in
// [0, 1], not normalised), labels [B] int64.
LabelledImages take(const ImageDataset& dataset, std::span<const int64_t> indices);

// An ImageDataset as an ImageSource: example i is its bytes / 255, with no randomness. Built from
// an lvalue it keeps a reference (the dataset must outlive it, unchanged); built from an rvalue it
// owns the dataset. Throws if the pixel bytes do not match size() x channels x height x width.
class ImageDatasetSource final : public ImageSource {
 public:
  explicit ImageDatasetSource(const ImageDataset& dataset);
  explicit ImageDatasetSource(ImageDataset&& dataset);

  const ImageDataset& dataset() const { return dataset_; }
  int64_t size() const override { return dataset_.size(); }
  int64_t label(int64_t index) const override;
  const std::vector<std::string>& class_names() const override { return dataset_.class_names; }
  bool load(int64_t index, ExampleRandom& random, Image& out) const override;

 private:
  void check_pixels() const;

  std::unique_ptr<const ImageDataset> owned_;
  const ImageDataset& dataset_;
};

// Every example of `source` (as its load() gives it with ExampleRandom(0, 0, i), so a random crop
// is reproducible) in memory as bytes round(255 * value), in index order; examples the source
// skips are left out. All examples must have one shape. Loads on cpu::parallel_for's threads.
ImageDataset to_dataset(const ImageSource& source);

}  // namespace flexnn::datasets
