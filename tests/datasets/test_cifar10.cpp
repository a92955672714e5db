// Tests for the CIFAR-10 binary reader on batch files written here in the real record format:
// exact round trips of labels and R, G, B planes across the five training files, class names
// from batches.meta.txt or the standard ones, a clear flexnn::Error (file, byte offset) for every
// kind of damage, a full-size file through the catalogue, and the paper's small-data subset of
// 100 examples per class (CIFAR-10 / 50).
#include <fmt/format.h>

#include <catch2/catch.hpp>

#include <algorithm>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "datasets/catalog.hpp"
#include "datasets/cifar10.hpp"
#include "engine/error.hpp"
#include "engine/generator.hpp"
#include "image_files.hpp"
#include "temp_dir.hpp"

namespace fs = std::filesystem;
using namespace flexnn;
using namespace flexnn::datasets;
using Catch::Contains;
using flexnn::testing::TempDir;
using flexnn::testing::write_bytes;

namespace {

// The byte of plane c, row y, column x of record r in file f: distinct across files and records.
uint8_t pixel_byte(int f, int r, int c, int y, int x) { return static_cast<uint8_t>(f * 41 + r * 17 + c * 85 + y * 7 + x * 3); }

// A batch file of `labels.size()` records; record r's pixels from pixel_byte(f, r, ...).
std::string batch_bytes(int f, const std::vector<uint8_t>& labels) {
  std::string bytes;
  for (size_t r = 0; r < labels.size(); ++r) {
    bytes.push_back(static_cast<char>(labels[r]));
    for (int c = 0; c < 3; ++c) {
      for (int y = 0; y < 32; ++y) {
        for (int x = 0; x < 32; ++x) bytes.push_back(static_cast<char>(pixel_byte(f, static_cast<int>(r), c, y, x)));
      }
    }
  }
  return bytes;
}

std::vector<uint8_t> file_labels(int f, int records) {
  std::vector<uint8_t> labels;
  for (int r = 0; r < records; ++r) labels.push_back(static_cast<uint8_t>((f * 3 + r * 7) % 10));
  return labels;
}

// Five training files and a test file of `records` records each; file 0 is the test batch.
void write_cifar(const fs::path& dir, int records) {
  write_bytes(dir / "test_batch.bin", batch_bytes(0, file_labels(0, records)));
  for (int f = 1; f <= 5; ++f) write_bytes(dir / fmt::format("data_batch_{}.bin", f), batch_bytes(f, file_labels(f, records)));
}

}  // namespace

TEST_CASE("CIFAR-10 records load as labels and R, G, B planes, in file order", "[datasets][cifar10]") {
  TempDir dir("cifar");
  write_cifar(dir.path(), 3);
  const ImageDataset train = load_cifar10(dir.path(), "train", 3);
  REQUIRE(train.size() == 15);
  CHECK(train.channels == 3);
  CHECK(train.height == 32);
  CHECK(train.width == 32);
  REQUIRE(train.pixels.size() == 15 * 3072u);
  for (int f = 1; f <= 5; ++f) {
    for (int r = 0; r < 3; ++r) {
      const int64_t i = (f - 1) * 3 + r;
      CHECK(train.labels[i] == file_labels(f, 3)[r]);
      for (int c = 0; c < 3; ++c) {
        for (int y = 0; y < 32; y += 5) {
          for (int x = 0; x < 32; x += 3) {
            REQUIRE(train.pixels[i * 3072 + c * 1024 + y * 32 + x] == pixel_byte(f, r, c, y, x));
          }
        }
      }
    }
  }
  const ImageDataset test = load_cifar10(dir.path(), "test", 3);
  REQUIRE(test.size() == 3);
  CHECK(test.labels == std::vector<int64_t>{0, 7, 4});
  CHECK(test.pixels[2 * 3072 + 1024 + 31 * 32 + 31] == pixel_byte(0, 2, 1, 31, 31));
  CHECK(test.class_names == std::vector<std::string>(kCifar10Classes.begin(), kCifar10Classes.end()));

  // One plane per colour: a record whose planes are constant gives those values per channel.
  std::string record(1, '\x09');
  record += std::string(1024, '\xc8') + std::string(1024, '\x64') + std::string(1024, '\x32');
  write_bytes(dir.path() / "test_batch.bin", record);
  const LabelledImages batch = take(load_cifar10(dir.path(), "test", 1), std::vector<int64_t>{0});
  const std::vector<float> values = batch.images.to_vector();
  CHECK(batch.labels.data<int64_t>()[0] == 9);
  CHECK(values[5] == 200.0f / 255.0f);
  CHECK(values[1024 + 700] == 100.0f / 255.0f);
  CHECK(values[2048 + 1023] == 50.0f / 255.0f);
}

TEST_CASE("CIFAR-10 class names come from batches.meta.txt when present", "[datasets][cifar10]") {
  TempDir dir("cifar_meta");
  write_cifar(dir.path(), 1);
  const std::vector<std::string> names{"a0", "b 1", "c2", "d3", "e4", "f5", "g6", "h7", "i8", "j9"};
  std::string meta;
  for (const std::string& name : names) meta += name + " \r\n";
  write_bytes(dir.path() / "batches.meta.txt", meta + "\n\n");
  CHECK(load_cifar10(dir.path(), "test", 1).class_names == names);

  write_bytes(dir.path() / "batches.meta.txt", "a\nb\nc\n");
  CHECK_THROWS_WITH(load_cifar10(dir.path(), "test", 1),
                    Contains("batches.meta.txt holds 3 class names, expected 10 (one a line)"));
}

TEST_CASE("CIFAR-10 damage is a flexnn::Error naming the file and byte offset", "[datasets][cifar10][errors]") {
  TempDir dir("cifar_bad");
  write_cifar(dir.path(), 3);
  const fs::path third = dir.path() / "data_batch_3.bin";
  const std::string good = batch_bytes(3, file_labels(3, 3));

  SECTION("a short file") {
    write_bytes(third, good.substr(0, good.size() - 10));
    CHECK_THROWS_WITH(load_cifar10(dir.path(), "train", 3),
                      Contains(third.string()) && Contains("truncated: 9209 bytes, expected 9219 (3 records of 3073 bytes)") &&
                          Contains("holds 2 whole records, then 3063 bytes of record 2 from byte 6146"));
    write_bytes(third, good.substr(0, 3073));
    CHECK_THROWS_WITH(load_cifar10(dir.path(), "train", 3), Contains("holds 1 whole records") && !Contains("then"));
    write_bytes(third, "");
    CHECK_THROWS_WITH(load_cifar10(dir.path(), "train", 3), Contains("truncated: 0 bytes"));
  }
  SECTION("a long file, and the real size of 10000 records expected by default") {
    write_bytes(third, good + "xy");
    CHECK_THROWS_WITH(load_cifar10(dir.path(), "train", 3),
                      Contains(third.string()) && Contains("has 2 unexpected bytes from byte 9219"));
    CHECK_THROWS_WITH(load_cifar10(dir.path(), "test"), Contains("expected 30730000 (10000 records of 3073 bytes)"));
  }
  SECTION("a label outside [0, 10)") {
    std::string bad = good;
    bad[3073] = 10;
    write_bytes(third, bad);
    CHECK_THROWS_AS(load_cifar10(dir.path(), "train", 3), flexnn::Error);
    CHECK_THROWS_WITH(load_cifar10(dir.path(), "train", 3),
                      Contains(third.string()) && Contains("label 10 of record 1 (byte 3073) is outside [0, 10)"));
    bad[3073] = 3;
    bad[2 * 3073] = static_cast<char>(255);
    write_bytes(third, bad);
    CHECK_THROWS_WITH(load_cifar10(dir.path(), "train", 3), Contains("label 255 of record 2 (byte 6146)"));
  }
  SECTION("a missing file, a missing directory, a bad split") {
    fs::remove(dir.path() / "data_batch_4.bin");
    CHECK_THROWS_WITH(load_cifar10(dir.path(), "train", 3),
                      Contains("data_batch_4.bin does not exist") && Contains("test_batch.bin"));
    CHECK(load_cifar10(dir.path(), "test", 3).size() == 3);  // the test split needs only its file
    CHECK_THROWS_WITH(load_cifar10(dir.path() / "nowhere", "test", 3),
                      Contains("nowhere does not exist") && Contains("data_batch_1.bin"));
    CHECK_THROWS_WITH(load_cifar10(dir.path(), "val", 3), Contains("unknown split \"val\""));
  }
}

TEST_CASE("CIFAR-10 through the catalogue: a full-size file, and the missing-directory hint", "[datasets][cifar10]") {
  TempDir dir("cifar_full");
  std::vector<uint8_t> labels(kCifar10RecordsPerFile);
  for (size_t r = 0; r < labels.size(); ++r) labels[r] = static_cast<uint8_t>((r * r + 3) % 10);
  std::string bytes;
  bytes.reserve(labels.size() * kCifar10RecordBytes);
  for (size_t r = 0; r < labels.size(); ++r) {
    bytes.push_back(static_cast<char>(labels[r]));
    bytes.append(3072, static_cast<char>(r % 251));
  }
  REQUIRE(bytes.size() == 30730000u);
  flexnn::testing::write_bytes(dir.path() / "test_batch.bin", bytes);

  const ImageDataset test = load_dataset("cifar10", dir.path(), "test");
  REQUIRE(test.size() == 10000);
  CHECK(test.labels[9999] == labels[9999]);
  CHECK(test.pixels[9999 * 3072 + 3071] == 9999 % 251);
  const auto source = open_dataset("cifar10", dir.path(), "test");
  REQUIRE(source->size() == 10000);
  CHECK(source->label(1234) == labels[1234]);
  CHECK(source->num_classes() == 10);

  CHECK(default_data_dir("cifar10") == fs::path("/usr/share/datasets/cifar10"));
  CHECK_THROWS_WITH(load_dataset("cifar10", dir.path() / "missing", "train"),
                    Contains("directory " + (dir.path() / "missing").string() + " does not exist") &&
                        Contains("data_batch_1.bin ... data_batch_5.bin, test_batch.bin") &&
                        Contains("Point --data-dir at a copy"));
  CHECK_THROWS_WITH(load_dataset("cifar10", dir.path(), "train"), Contains("data_batch_1.bin does not exist"));
  CHECK_THROWS_WITH(load_dataset("cifar100", dir.path(), "train"),
                    Contains("unknown data set 'cifar100': expected fmnist, cifar10, imagenette or folder"));
}

TEST_CASE("balanced_indices gives the paper's small CIFAR-10 set: 100 per class, by seed", "[datasets][cifar10]") {
  // CIFAR-10's training labels: 5000 of each class, in a shuffled order.
  ImageDataset train;
  train.channels = 3;
  train.height = 32;
  train.width = 32;
  train.class_names.assign(kCifar10Classes.begin(), kCifar10Classes.end());
  for (int64_t i = 0; i < 50000; ++i) train.labels.push_back(i % 10);
  const std::vector<int64_t> shuffle = Generator(99).permutation(50000);
  std::vector<int64_t> shuffled(50000);
  for (int64_t i = 0; i < 50000; ++i) shuffled[i] = train.labels[shuffle[i]];
  train.labels = shuffled;

  const std::vector<int64_t> picked = balanced_indices(train, 50000 / 50 / 10, 3);
  REQUIRE(picked.size() == 1000);
  CHECK(std::set<int64_t>(picked.begin(), picked.end()).size() == 1000);
  std::map<int64_t, int64_t> per_class;
  for (const int64_t i : picked) ++per_class[train.labels[i]];
  for (int64_t c = 0; c < 10; ++c) CHECK(per_class[c] == 100);
  CHECK(balanced_indices(train, 100, 3) == picked);
  const std::vector<int64_t> other = balanced_indices(train, 100, 4);
  std::vector<int64_t> common;
  std::set_intersection(picked.begin(), picked.end(), other.begin(), other.end(), std::back_inserter(common));
  CHECK(common.size() < 100);  // another seed, mostly other examples (about 1000 * 1000 / 50000 = 20 shared)
  CHECK_THROWS_WITH(balanced_indices(train, 5001, 3), Contains("has 5000 examples, fewer than the 5001 asked for"));
}
