// ImageSource: what the DataLoader reads examples from. An in-memory ImageDataset is one (through
// ImageDatasetSource); an ImageFolder, which decodes image files on demand so that memory does not
// grow with the data set, is another.
#pragma once

#include "datasets/example_random.hpp"
#include "datasets/image.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace flexnn::datasets {

class ImageSource {
 public:
  virtual ~ImageSource() = default;

  virtual int64_t size() const = 0;
  // The label of example `index`, in [0, num_classes()); known without loading the example.
  virtual int64_t label(int64_t index) const = 0;
  virtual const std::vector<std::string>& class_names() const = 0;
  int64_t num_classes() const { return static_cast<int64_t>(class_names().size()); }

  // Writes example `index` to `out` (reshaped to the example's size) with values in [0, 1],
  // drawing whatever randomness it needs (a training-time random crop) from `random`. Returns false
  // when the example cannot be read and the source was told to skip such examples; throws
  // flexnn::Error otherwise. Safe to call from several threads at once.
  virtual bool load(int64_t index, ExampleRandom& random, Image& out) const = 0;
};

}  // namespace flexnn::datasets
