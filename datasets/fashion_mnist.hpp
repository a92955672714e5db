// Fashion-MNIST (Zalando's 28x28 grey clothing images, 10 classes; 60000 train, 10000 test):
// where it is installed, its class names and normalisation constants, and its loader.
#pragma once

#include "datasets/image_dataset.hpp"

#include <array>
#include <filesystem>
#include <string_view>

namespace flexnn::datasets {

inline constexpr const char* kFashionMnistDir = "/usr/share/datasets/fashion-mnist";

inline constexpr std::array<const char*, 10> kFashionMnistClasses = {
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"};

// Mean and standard deviation of the training pixels in [0, 1], for input normalisation.
inline constexpr float kFashionMnistMean = 0.2860f;
inline constexpr float kFashionMnistStd = 0.3530f;

// Loads split "train" (train-images-idx3-ubyte, train-labels-idx1-ubyte) or "test"
// (t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte) from `dir`, preferring each file's .gz.
// Images are [N, 1, rows, cols] bytes; labels are checked to be in [0, 10).
ImageDataset load_fashion_mnist(const std::filesystem::path& dir, std::string_view split);

}  // namespace flexnn::datasets
