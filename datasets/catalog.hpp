// The data sets by name, as configs and the CLI refer to them: "fmnist", "cifar10", "imagenette"
// and "folder" (an image folder, e.g. an out-of-distribution set); where each is installed by
// default, and one call to load or open any of them.
#pragma once

#include "datasets/image_dataset.hpp"
#include "datasets/image_folder.hpp"
#include "datasets/image_source.hpp"

#include <filesystem>
#include <memory>
#include <string_view>

namespace flexnn::datasets {

// The default directory of a data set: "fmnist" /usr/share/datasets/fashion-mnist, "cifar10"
// /usr/share/datasets/cifar10, "imagenette" /usr/share/datasets/imagenette. "folder" has none.
std::filesystem::path default_data_dir(std::string_view name);

// Split "train" or "test" of the named data set in `dir`, in memory as bytes. "folder": the class
// folders in dir/<split> if that directory exists, else in dir itself, read with `folder` (all
// images must come out one size: set crop, or resize and crop). "imagenette" is not held in
// memory: use open_dataset. A missing directory is an error saying which files it should hold.
ImageDataset load_dataset(std::string_view name, const std::filesystem::path& dir, std::string_view split,
                          const ImageFolderOptions& folder = {});

// Split "train" or "test" ("val" too, for imagenette) as an ImageSource for a DataLoader.
// "imagenette" and "folder" stream their files from disk, read with `folder` (for imagenette crop 0
// means 224, resize 0 means max(256, crop); set random_crop for training); "fmnist" and "cifar10"
// are loaded into memory and owned by the source (`folder` unused).
std::unique_ptr<ImageSource> open_dataset(std::string_view name, const std::filesystem::path& dir,
                                          std::string_view split, const ImageFolderOptions& folder = {});

}  // namespace flexnn::datasets
