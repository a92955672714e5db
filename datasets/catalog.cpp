// The catalogue of data sets: Fashion-MNIST now; the others join it with their readers.
#include "datasets/catalog.hpp"

#include "datasets/fashion_mnist.hpp"
#include "engine/error.hpp"

namespace flexnn::datasets {

std::filesystem::path default_data_dir(std::string_view name) {
  if (name == "fmnist") return kFashionMnistDir;
  fail("unknown data set '{}': expected fmnist", name);
}

ImageDataset load_dataset(std::string_view name, const std::filesystem::path& dir, std::string_view split) {
  if (name == "fmnist") return load_fashion_mnist(dir, split);
  fail("unknown data set '{}': expected fmnist", name);
}

}  // namespace flexnn::datasets
