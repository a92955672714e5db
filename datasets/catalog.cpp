// The catalogue of data sets: each name's default directory, the files it is expected to hold
// (told when the directory is missing, with how to point at a copy), and its reader.
#include "datasets/catalog.hpp"

#include "datasets/cifar10.hpp"
#include "datasets/fashion_mnist.hpp"
#include "datasets/imagenette.hpp"
#include "engine/error.hpp"

namespace flexnn::datasets {
namespace {

namespace fs = std::filesystem;

constexpr const char* kKnown = "expected fmnist, cifar10, imagenette or folder";

// What the data set's directory holds.
const char* expected_files(std::string_view name) {
  if (name == "fmnist") {
    return "train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte, "
           "each plain or .gz";
  }
  if (name == "cifar10") {
    return "data_batch_1.bin ... data_batch_5.bin, test_batch.bin and optionally batches.meta.txt (the binary "
           "version, cifar-10-batches-bin)";
  }
  if (name == "imagenette") return "train/<wnid>/*.JPEG and val/<wnid>/*.JPEG (fast.ai's imagenette2)";
  if (name == "folder") return "<class>/*.png|jpg|jpeg, or <split>/<class>/*.png|jpg|jpeg";
  fail("unknown data set '{}': {}", name, kKnown);
}

void check_dir(std::string_view name, const fs::path& dir) {
  const char* files = expected_files(name);
  FLEXNN_CHECK(fs::is_directory(dir), "data set '{}': directory {} does not exist; it should hold {}. Point --data-dir "
               "at a copy", name, dir.string(), files);
}

// The folder data set's root for a split: dir/<split> when it exists.
fs::path folder_root(const fs::path& dir, std::string_view split) {
  const fs::path split_dir = dir / split;
  return fs::is_directory(split_dir) ? split_dir : dir;
}

}  // namespace

fs::path default_data_dir(std::string_view name) {
  if (name == "fmnist") return kFashionMnistDir;
  if (name == "cifar10") return kCifar10Dir;
  if (name == "imagenette") return kImagenetteDir;
  if (name == "folder") fail("data set 'folder' has no default directory: point --data-dir at the image folder");
  fail("unknown data set '{}': {}", name, kKnown);
}

ImageDataset load_dataset(std::string_view name, const fs::path& dir, std::string_view split,
                          const ImageFolderOptions& folder) {
  check_dir(name, dir);
  if (name == "fmnist") return load_fashion_mnist(dir, split);
  if (name == "cifar10") return load_cifar10(dir, split);
  if (name == "folder") return to_dataset(ImageFolder(folder_root(dir, split), folder));
  FLEXNN_CHECK(name != "imagenette", "data set 'imagenette' streams its images from disk: open it with open_dataset");
  fail("unknown data set '{}': {}", name, kKnown);
}

std::unique_ptr<ImageSource> open_dataset(std::string_view name, const fs::path& dir, std::string_view split,
                                          const ImageFolderOptions& folder) {
  check_dir(name, dir);
  if (name == "imagenette") return open_imagenette(dir, split, folder);
  if (name == "folder") return std::make_unique<ImageFolder>(folder_root(dir, split), folder);
  return std::make_unique<ImageDatasetSource>(load_dataset(name, dir, split));
}

}  // namespace flexnn::datasets
