// The data a model trains and is evaluated on, chosen by data set name (fmnist, cifar10,
// imagenette, folder) as `flexnn train --data` and the presets name it: the model's config
// adapted to the data set, each split opened and sized for the model's input (Fashion-MNIST and
// CIFAR-10 in memory; Imagenette and image folders streamed from disk, so memory does not grow
// with the data set), the paper's augmentation per data set, and the check that the data fits
// the model's input, and a class-balanced subset of an in-memory split.
#pragma once

#include "datasets/image_dataset.hpp"
#include "datasets/image_source.hpp"
#include "models/registry.hpp"

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace flexnn::cli {

struct DataOptions {
  std::string name;            // fmnist, cifar10, imagenette or folder
  std::filesystem::path dir;   // where it is
  bool skip_bad = false;       // imagenette, folder: count and skip unreadable files instead of failing
};

// `config` completed for training on data set `data`: a model whose config names the data set it
// is built for (vgg16's "dataset", which sets its input size) gets `data` there, unless the config
// already says, or `data` is an image folder (which is resized to the model's input).
models::Config config_for_data(models::Config config, const std::string& data);

// The paper's training augmentation: a random horizontal flip with probability 0.5 for CIFAR-10
// and Imagenette (Supporting Information, "VGG16 Networks"); none for Fashion-MNIST and folders.
float default_hflip(std::string_view data);

// Split "train" or "test" of the data set, sized for a model that takes `spec`'s input: Imagenette
// resized (shorter side max(256, size)) and cropped to the model's size, at a random position for
// training and centred for testing, in RGB; a folder resized (shorter side) and centre-cropped to
// the model's size, in the model's channels. skip_bad is an error for the in-memory data sets.
std::unique_ptr<datasets::ImageSource> open_split(const DataOptions& data, const models::ModelSpec& spec,
                                                  std::string_view split);

// Throws flexnn::Error naming the model, the data set and both shapes unless the examples of
// `source` (the first readable one is looked at) have the model's channels, height and width.
void check_data_fits(const datasets::ImageSource& source, const models::Config& config, std::string_view data);

// Whether the data set is held in memory (fmnist, cifar10) rather than streamed from disk.
bool held_in_memory(std::string_view data);

// `per_class` examples of each class of an in-memory source (drawn by `seed`), owned; nullopt for
// 0. Throws, naming `option` and the data set, when the source streams its images from disk.
std::optional<datasets::ImageDatasetSource> balanced_subset(const datasets::ImageSource& source, int64_t per_class,
                                                            uint64_t seed, const std::string& data,
                                                            const char* option);

}  // namespace flexnn::cli
