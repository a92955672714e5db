// Imagenette (fast.ai's ten easy ImageNet classes; imagenette2: 9469 train, 3925 val images of
// varying size): where it is installed by default, its classes, and its split as an ImageFolder
// streamed from disk, resized and cropped.
#pragma once

#include "datasets/image_folder.hpp"

#include <array>
#include <filesystem>
#include <memory>
#include <string_view>

namespace flexnn::datasets {

inline constexpr const char* kImagenetteDir = "/usr/share/datasets/imagenette";

// The class folders (ImageNet wnids), in label order, and their names.
inline constexpr std::array<const char*, 10> kImagenetteWnids = {
    "n01440764", "n02102040", "n02979186", "n03000684", "n03028079",
    "n03394916", "n03417042", "n03425413", "n03445777", "n03888257"};
inline constexpr std::array<const char*, 10> kImagenetteNames = {
    "tench", "English springer", "cassette player", "chain saw", "church",
    "French horn", "garbage truck", "gas pump", "golf ball", "parachute"};

// ImageNet's per-channel (R, G, B) mean and standard deviation, the normalisation the paper's
// authors used for Imagenette (flexnn's models normalise inside the model, so it is optional).
inline constexpr std::array<float, 3> kImageNetMean = {0.485f, 0.456f, 0.406f};
inline constexpr std::array<float, 3> kImageNetStd = {0.229f, 0.224f, 0.225f};

inline constexpr int64_t kImagenetteCrop = 224;    // torchvision's Resize(256) + CenterCrop(224);
inline constexpr int64_t kImagenetteResize = 256;  // the paper cropped to 254 (crop = 254)

// Split "train" or "val" ("test" is taken as "val") of the Imagenette in `dir`: the folder
// dir/<split>/<wnid>/*.JPEG, every wnid of kImagenetteWnids required, labels in that order.
// `options` says how images become examples; its `classes` must be empty (the wnids are fixed).
// crop 0 means kImagenetteCrop and resize 0 means max(kImagenetteResize, crop); set random_crop
// for training.
std::unique_ptr<ImageFolder> open_imagenette(const std::filesystem::path& dir, std::string_view split,
                                             ImageFolderOptions options = {});

}  // namespace flexnn::datasets
