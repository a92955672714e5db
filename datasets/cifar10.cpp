// Loading a CIFAR-10 split: each batch file's size is checked before it is read (so a truncated or
// padded file is named, with where it goes wrong, without reading it), then its records are split
// into labels and pixel planes.
#include "datasets/cifar10.hpp"

#include "engine/error.hpp"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <string>
#include <system_error>

namespace flexnn::datasets {
namespace {

namespace fs = std::filesystem;

constexpr int64_t kPixelBytes = kCifar10RecordBytes - 1;
constexpr int64_t kClasses = static_cast<int64_t>(kCifar10Classes.size());

// Appends the `records` records of one batch file to `dataset`.
void read_batch(const fs::path& path, int64_t records, ImageDataset& dataset) {
  const std::string name = path.string();
  std::error_code error;
  const uintmax_t size = fs::file_size(path, error);
  FLEXNN_CHECK(!error, "CIFAR-10: cannot read {}: {}", name, error.message());
  const auto expected = static_cast<uintmax_t>(records * kCifar10RecordBytes);
  if (size < expected) {
    const uintmax_t whole = size / kCifar10RecordBytes, rest = size % kCifar10RecordBytes;
    fail("CIFAR-10: {} is truncated: {} bytes, expected {} ({} records of {} bytes); it holds {} whole records{}", name,
         size, expected, records, kCifar10RecordBytes, whole,
         rest == 0 ? std::string()
                   : fmt::format(", then {} bytes of record {} from byte {}", rest, whole, whole * kCifar10RecordBytes));
  }
  FLEXNN_CHECK(size == expected, "CIFAR-10: {} has {} unexpected bytes from byte {}: expected {} records of {} bytes",
               name, size - expected, expected, records, kCifar10RecordBytes);

  std::ifstream in(path, std::ios::binary);
  FLEXNN_CHECK(in.is_open(), "CIFAR-10: cannot open {}: {}", name, std::strerror(errno));
  std::vector<uint8_t> bytes(expected);
  in.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(expected));
  FLEXNN_CHECK(in.gcount() == static_cast<std::streamsize>(expected), "CIFAR-10: {}: cannot read after byte {}", name,
               in.gcount());

  const int64_t base = dataset.size();
  dataset.labels.resize(base + records);
  dataset.pixels.resize((base + records) * kPixelBytes);
  for (int64_t r = 0; r < records; ++r) {
    const uint8_t* record = bytes.data() + r * kCifar10RecordBytes;
    FLEXNN_CHECK(record[0] < kClasses, "CIFAR-10: {}: label {} of record {} (byte {}) is outside [0, {})", name,
                 record[0], r, r * kCifar10RecordBytes, kClasses);
    dataset.labels[base + r] = record[0];
    std::copy_n(record + 1, kPixelBytes, dataset.pixels.data() + (base + r) * kPixelBytes);
  }
}

// Ten names, one a line; blank lines and trailing white space (a \r included) ignored.
std::vector<std::string> read_class_names(const fs::path& path) {
  std::ifstream in(path);
  FLEXNN_CHECK(in.is_open(), "CIFAR-10: cannot open {}: {}", path.string(), std::strerror(errno));
  std::vector<std::string> names;
  for (std::string line; std::getline(in, line);) {
    line.erase(line.find_last_not_of(" \t\r\n") + 1);
    if (!line.empty()) names.push_back(line);
  }
  FLEXNN_CHECK(static_cast<int64_t>(names.size()) == kClasses,
               "CIFAR-10: {} holds {} class names, expected {} (one a line)", path.string(), names.size(), kClasses);
  return names;
}

}  // namespace

ImageDataset load_cifar10(const fs::path& dir, std::string_view split, int64_t records_per_file) {
  FLEXNN_CHECK(split == "train" || split == "test", "CIFAR-10: unknown split \"{}\", expected \"train\" or \"test\"",
               split);
  FLEXNN_CHECK(records_per_file >= 1, "CIFAR-10: records_per_file must be positive, got {}", records_per_file);
  std::vector<std::string> files;
  if (split == "train") {
    for (int k = 1; k <= 5; ++k) files.push_back("data_batch_" + std::to_string(k) + ".bin");
  } else {
    files.push_back("test_batch.bin");
  }
  FLEXNN_CHECK(fs::is_directory(dir),
               "CIFAR-10: directory {} does not exist (expected data_batch_1.bin ... data_batch_5.bin and "
               "test_batch.bin in it, the binary version)",
               dir.string());
  for (const std::string& file : files) {
    FLEXNN_CHECK(fs::is_regular_file(dir / file), "CIFAR-10: {} does not exist (expected data_batch_1.bin ... "
                 "data_batch_5.bin and test_batch.bin in {})", (dir / file).string(), dir.string());
  }

  ImageDataset dataset;
  dataset.channels = 3;
  dataset.height = 32;
  dataset.width = 32;
  dataset.labels.reserve(files.size() * records_per_file);
  dataset.pixels.reserve(files.size() * records_per_file * kPixelBytes);
  for (const std::string& file : files) read_batch(dir / file, records_per_file, dataset);
  const fs::path meta = dir / "batches.meta.txt";
  if (fs::exists(meta)) {
    dataset.class_names = read_class_names(meta);
  } else {
    dataset.class_names.assign(kCifar10Classes.begin(), kCifar10Classes.end());
  }
  return dataset;
}

}  // namespace flexnn::datasets
