// Loading a Fashion-MNIST split: finds its two IDX files (gzipped or plain), reads them and checks
// that they agree (as many labels as images, every label a class).
#include "datasets/fashion_mnist.hpp"

#include "datasets/idx.hpp"
#include "engine/error.hpp"

#include <string>

namespace flexnn::datasets {
namespace {

namespace fs = std::filesystem;

// dir/name.gz if it exists, else dir/name.
fs::path find_file(const fs::path& dir, const std::string& name) {
  const fs::path gz = dir / (name + ".gz");
  const fs::path plain = dir / name;
  if (fs::is_regular_file(gz)) return gz;
  FLEXNN_CHECK(fs::is_regular_file(plain), "Fashion-MNIST: neither {} nor {} exists", gz.string(), plain.string());
  return plain;
}

}  // namespace

ImageDataset load_fashion_mnist(const fs::path& dir, std::string_view split) {
  FLEXNN_CHECK(split == "train" || split == "test", "Fashion-MNIST: unknown split \"{}\", expected \"train\" or \"test\"",
               split);
  const std::string prefix = split == "train" ? "train" : "t10k";
  const std::string images_name = prefix + "-images-idx3-ubyte";
  const std::string labels_name = prefix + "-labels-idx1-ubyte";
  FLEXNN_CHECK(fs::is_directory(dir), "Fashion-MNIST: directory {} does not exist (looked for {}[.gz] and {}[.gz] in it)",
               dir.string(), images_name, labels_name);
  const fs::path images_path = find_file(dir, images_name);
  const fs::path labels_path = find_file(dir, labels_name);

  IdxImages images = read_idx_images(images_path);
  const std::vector<uint8_t> labels = read_idx_labels(labels_path);
  FLEXNN_CHECK(static_cast<int64_t>(labels.size()) == images.count, "Fashion-MNIST: {} holds {} images but {} holds {} labels",
               images_path.string(), images.count, labels_path.string(), labels.size());

  ImageDataset dataset;
  dataset.labels.resize(labels.size());
  for (size_t i = 0; i < labels.size(); ++i) {
    FLEXNN_CHECK(labels[i] < kFashionMnistClasses.size(), "{}: label {} of example {} (byte {}) is outside [0, {})",
                 labels_path.string(), labels[i], i, 8 + i, kFashionMnistClasses.size());
    dataset.labels[i] = labels[i];
  }
  dataset.pixels = std::move(images.pixels);
  dataset.channels = 1;
  dataset.height = images.rows;
  dataset.width = images.cols;
  dataset.class_names.assign(kFashionMnistClasses.begin(), kFashionMnistClasses.end());
  return dataset;
}

}  // namespace flexnn::datasets
