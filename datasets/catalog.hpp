// The data sets by name, as configs and the CLI refer to them: where each is installed by
// default, and one loader call for any of them.
#pragma once

#include "datasets/image_dataset.hpp"

#include <filesystem>
#include <string_view>

namespace flexnn::datasets {

// The default directory of a data set ("fmnist": /usr/share/datasets/fashion-mnist).
std::filesystem::path default_data_dir(std::string_view name);
// Loads split "train" or "test" of the named data set from `dir`.
ImageDataset load_dataset(std::string_view name, const std::filesystem::path& dir, std::string_view split);

}  // namespace flexnn::datasets
