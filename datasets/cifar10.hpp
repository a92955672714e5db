// CIFAR-10 (Krizhevsky's 32x32 colour images, 10 classes; 50000 train, 10000 test), binary
// version: where it is installed by default, its class names and normalisation constants, and
// its loader.
#pragma once

#include "datasets/image_dataset.hpp"

#include <array>
#include <filesystem>
#include <string_view>

namespace flexnn::datasets {

inline constexpr const char* kCifar10Dir = "/usr/share/datasets/cifar10";

// The names batches.meta.txt holds, used when it is absent.
inline constexpr std::array<const char*, 10> kCifar10Classes = {
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"};

// A record: the label byte, then 1024 red, 1024 green and 1024 blue bytes, each plane row-major.
inline constexpr int64_t kCifar10RecordBytes = 1 + 3 * 32 * 32;
inline constexpr int64_t kCifar10RecordsPerFile = 10000;

// Per-channel (R, G, B) mean and standard deviation of the training pixels in [0, 1], for the
// optional input normalisation (flexnn's models normalise inside the model).
inline constexpr std::array<float, 3> kCifar10Mean = {0.4914f, 0.4822f, 0.4465f};
inline constexpr std::array<float, 3> kCifar10Std = {0.2470f, 0.2435f, 0.2616f};

// Loads split "train" (data_batch_1.bin ... data_batch_5.bin, in that order) or "test"
// (test_batch.bin) from `dir` as [N, 3, 32, 32] bytes. Each file must hold exactly
// `records_per_file` records (10000 in the real data set; tests write smaller files); every label
// must be in [0, 10). Class names come from dir/batches.meta.txt (ten non-empty lines) when it
// exists, else kCifar10Classes. Errors name the file and the byte offset.
ImageDataset load_cifar10(const std::filesystem::path& dir, std::string_view split,
                          int64_t records_per_file = kCifar10RecordsPerFile);

}  // namespace flexnn::datasets
