// Tests for the IDX reader and the Fashion-MNIST loader on small files written here (plain and
// gzipped): exact round trips, a clear flexnn::Error for every kind of corruption, and, when the
// real Fashion-MNIST is installed, both splits with their known sizes, class counts and statistics.
#include <fmt/format.h>
#include <unistd.h>
#include <zlib.h>

#include <atomic>
#include <catch2/catch.hpp>

#include "temp_dir.hpp"
#include <chrono>
#include <cmath>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "datasets/fashion_mnist.hpp"
#include "datasets/idx.hpp"
#include "engine/error.hpp"

namespace fs = std::filesystem;
using namespace flexnn::datasets;
using Catch::Contains;
using Bytes = std::vector<uint8_t>;

namespace {

// A fresh directory under the system temp dir, removed with everything in it at scope exit.
using flexnn::testing::TempDir;

void put_be32(Bytes& out, uint32_t value) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<uint8_t>(value >> shift));
}

Bytes idx_images(uint32_t count, uint32_t rows, uint32_t cols, const Bytes& pixels, uint32_t magic = 2051) {
  Bytes out;
  for (uint32_t field : {magic, count, rows, cols}) put_be32(out, field);
  out.insert(out.end(), pixels.begin(), pixels.end());
  return out;
}

Bytes idx_labels(const Bytes& labels, uint32_t magic = 2049) {
  Bytes out;
  put_be32(out, magic);
  put_be32(out, static_cast<uint32_t>(labels.size()));
  out.insert(out.end(), labels.begin(), labels.end());
  return out;
}

// Distinct, position-dependent bytes covering the whole 0..255 range.
Bytes pattern(size_t n, unsigned salt = 0) {
  Bytes out(n);
  for (size_t i = 0; i < n; ++i) out[i] = static_cast<uint8_t>(i * 37 + salt * 101 + i / 256);
  return out;
}

void write_plain(const fs::path& path, const Bytes& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  REQUIRE(out.good());
}

void write_gzip(const fs::path& path, const Bytes& bytes) {
  gzFile file = gzopen(path.c_str(), "wb");
  REQUIRE(file != nullptr);
  REQUIRE(gzwrite(file, bytes.data(), static_cast<unsigned>(bytes.size())) == static_cast<int>(bytes.size()));
  REQUIRE(gzclose(file) == Z_OK);
}

Bytes read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(in), {});
}

enum class Format { Plain, Gzip };

// Writes `bytes` to dir/name, gzipped or not (the reader must not rely on the file name).
fs::path write_idx(const fs::path& dir, const std::string& name, const Bytes& bytes, Format format) {
  const fs::path path = dir / name;
  if (format == Format::Gzip) {
    write_gzip(path, bytes);
    REQUIRE(read_file(path).at(0) == 0x1f);
  } else {
    write_plain(path, bytes);
  }
  return path;
}

// A small Fashion-MNIST-like split in `dir`: `count` 3x4 images, labels i % 10.
void write_split(const fs::path& dir, const std::string& prefix, uint32_t count, Format format, unsigned salt) {
  Bytes labels(count);
  for (uint32_t i = 0; i < count; ++i) labels[i] = static_cast<uint8_t>((i * 7 + salt) % 10);
  const std::string suffix = format == Format::Gzip ? ".gz" : "";
  write_idx(dir, prefix + "-images-idx3-ubyte" + suffix, idx_images(count, 3, 4, pattern(count * 12, salt)), format);
  write_idx(dir, prefix + "-labels-idx1-ubyte" + suffix, idx_labels(labels), format);
}

}  // namespace

TEST_CASE("IDX images and labels round-trip from plain and gzipped files", "[datasets][idx]") {
  TempDir dir;
  const Format format = GENERATE(Format::Plain, Format::Gzip);
  const Bytes pixels = pattern(7 * 5 * 3);
  const Bytes labels = pattern(7, 1);
  const IdxImages images = read_idx_images(write_idx(dir.path(), "images", idx_images(7, 5, 3, pixels), format));
  CHECK(images.count == 7);
  CHECK(images.rows == 5);
  CHECK(images.cols == 3);
  CHECK(images.pixels == pixels);
  CHECK(read_idx_labels(write_idx(dir.path(), "labels", idx_labels(labels), format)) == labels);
}

TEST_CASE("IDX reading handles data larger than its read chunks", "[datasets][idx]") {
  TempDir dir;
  const Format format = GENERATE(Format::Plain, Format::Gzip);
  const Bytes pixels = pattern(size_t{1100} * 128 * 128);  // 18 MB: more than one 16 MiB chunk
  const IdxImages images = read_idx_images(write_idx(dir.path(), "big", idx_images(1100, 128, 128, pixels), format));
  CHECK(images.count == 1100);
  CHECK(images.pixels == pixels);
}

TEST_CASE("Corrupt IDX files give an error naming the file and the problem", "[datasets][idx][errors]") {
  TempDir dir;
  const Format format = GENERATE(Format::Plain, Format::Gzip);
  const Bytes pixels = pattern(4 * 3 * 5);  // 60 bytes
  const std::string path_text = (dir.path() / "bad").string();
  auto write = [&](const Bytes& bytes) { return write_idx(dir.path(), "bad", bytes, format); };

  SECTION("bad magic: a label file read as images, and the other way round") {
    CHECK_THROWS_AS(read_idx_images(write(idx_labels({1, 2, 3}))), flexnn::Error);
    CHECK_THROWS_WITH(read_idx_images(write(idx_labels({1, 2, 3}))),
                      Contains(path_text) && Contains("not an IDX image file") && Contains("magic number 2049") &&
                          Contains("expected 2051"));
    CHECK_THROWS_WITH(read_idx_labels(write(idx_images(4, 3, 5, pixels))),
                      Contains("not an IDX label file") && Contains("magic number 2051") && Contains("expected 2049"));
    CHECK_THROWS_WITH(read_idx_images(write(idx_images(4, 3, 5, pixels, 0x08030000))),
                      Contains("magic number 134414336 (0x08030000)"));
  }
  SECTION("truncated data") {
    Bytes bytes = idx_images(4, 3, 5, pixels);
    bytes.resize(bytes.size() - 7);
    CHECK_THROWS_WITH(read_idx_images(write(bytes)),
                      Contains(path_text) && Contains("truncated IDX data") &&
                          Contains("expected 60 bytes after the 16-byte header") && Contains("found 53"));
    Bytes labels = idx_labels({1, 2, 3, 4, 5});
    labels.resize(labels.size() - 2);
    CHECK_THROWS_WITH(read_idx_labels(write(labels)),
                      Contains("expected 5 bytes after the 8-byte header") && Contains("found 3"));
  }
  SECTION("truncated header") {
    const Bytes bytes = idx_images(4, 3, 5, pixels);
    CHECK_THROWS_WITH(read_idx_images(write(Bytes(bytes.begin(), bytes.begin() + 10))),
                      Contains(path_text) && Contains("truncated IDX image header: expected 16 bytes, found 10"));
    CHECK_THROWS_WITH(read_idx_labels(write(Bytes{0, 0, 8})),
                      Contains("truncated IDX label header: expected 8 bytes, found 3"));
    CHECK_THROWS_WITH(read_idx_labels(write(Bytes{})), Contains("expected 8 bytes, found 0"));
  }
  SECTION("trailing bytes") {
    Bytes bytes = idx_images(4, 3, 5, pixels);
    bytes.insert(bytes.end(), {9, 9, 9});
    CHECK_THROWS_WITH(read_idx_images(write(bytes)),
                      Contains(path_text) && Contains("3 unexpected trailing bytes from byte 76"));
    Bytes labels = idx_labels({1, 2});
    labels.push_back(0);
    CHECK_THROWS_WITH(read_idx_labels(write(labels)), Contains("1 unexpected trailing bytes from byte 10"));
  }
  SECTION("dimensions that are zero or implausible") {
    CHECK_THROWS_WITH(read_idx_images(write(idx_images(4, 0, 5, {}))),
                      Contains("row count 0 at byte 8 is outside [1, 16384]"));
    CHECK_THROWS_WITH(read_idx_images(write(idx_images(4, 3, 100000, pixels))),
                      Contains("column count 100000 at byte 12 is outside [1, 16384]"));
    CHECK_THROWS_WITH(read_idx_images(write(idx_images(0x80000000u, 3, 5, pixels))),
                      Contains("image count 2147483648 at byte 4 is outside"));
    Bytes no_labels = idx_labels({});
    CHECK_THROWS_WITH(read_idx_labels(write(no_labels)), Contains("label count 0 at byte 4 is outside"));
  }
  SECTION("a header promising far more data than the file holds fails fast, without allocating it") {
    CHECK_THROWS_WITH(read_idx_images(write(idx_images(2000000000, 16384, 16384, pixels))),
                      Contains("more than the 17179869184 allowed"));
    CHECK_THROWS_WITH(read_idx_images(write(idx_images(1000, 2048, 2048, pixels))),
                      Contains("expected 4194304000 bytes") && Contains("found 60"));
  }
}

TEST_CASE("Damaged gzip streams give a flexnn::Error", "[datasets][idx][errors]") {
  TempDir dir;
  const Bytes pixels = pattern(50 * 20 * 20);
  const fs::path path = write_idx(dir.path(), "images.gz", idx_images(50, 20, 20, pixels), Format::Gzip);
  const Bytes gz = read_file(path);
  SECTION("cut short") {
    write_plain(path, Bytes(gz.begin(), gz.begin() + static_cast<std::ptrdiff_t>(gz.size() / 2)));
    CHECK_THROWS_WITH(read_idx_images(path), Contains(path.string()) && Contains("truncated IDX data") &&
                                                 Contains("in the decompressed stream") && Contains("expected 20000"));
  }
  SECTION("corrupted bytes") {
    Bytes damaged = gz;
    for (size_t i = 20; i < damaged.size() / 2; ++i) damaged[i] ^= 0x5a;
    write_plain(path, damaged);
    CHECK_THROWS_AS(read_idx_images(path), flexnn::Error);
    CHECK_THROWS_WITH(read_idx_images(path), Contains(path.string() + ": cannot read after byte") &&
                                                 Contains("in the decompressed stream: "));
  }
}

TEST_CASE("A missing IDX file is named in the error", "[datasets][idx][errors]") {
  TempDir dir;
  const fs::path missing = dir.path() / "nothing-here";
  CHECK_THROWS_WITH(read_idx_images(missing),
                    Contains("cannot open IDX file") && Contains(missing.string()) && Contains("No such file"));
  CHECK_THROWS_WITH(read_idx_labels(missing), Contains(missing.string()));
}

TEST_CASE("load_fashion_mnist reads both splits, gzipped or plain", "[datasets][fashion_mnist]") {
  TempDir dir;
  write_split(dir.path(), "train", 13, Format::Gzip, 0);
  write_split(dir.path(), "t10k", 6, Format::Plain, 1);

  const ImageDataset train = load_fashion_mnist(dir.path(), "train");
  CHECK(train.size() == 13);
  CHECK(train.channels == 1);
  CHECK(train.height == 3);
  CHECK(train.width == 4);
  CHECK(train.pixels == pattern(13 * 12, 0));
  for (int64_t i = 0; i < 13; ++i) CHECK(train.labels[i] == (i * 7) % 10);
  REQUIRE(train.num_classes() == 10);
  CHECK(train.class_names.front() == "T-shirt/top");
  CHECK(train.class_names[9] == "Ankle boot");

  const ImageDataset test = load_fashion_mnist(dir.path(), "test");
  CHECK(test.size() == 6);
  CHECK(test.pixels == pattern(6 * 12, 1));
  for (int64_t i = 0; i < 6; ++i) CHECK(test.labels[i] == (i * 7 + 1) % 10);
}

TEST_CASE("load_fashion_mnist prefers the .gz file over the plain one", "[datasets][fashion_mnist]") {
  TempDir dir;
  write_split(dir.path(), "train", 5, Format::Gzip, 2);
  write_split(dir.path(), "train", 7, Format::Plain, 3);
  const ImageDataset train = load_fashion_mnist(dir.path(), "train");
  CHECK(train.size() == 5);
  CHECK(train.pixels == pattern(5 * 12, 2));
}

TEST_CASE("load_fashion_mnist reports bad splits, missing files and inconsistent files", "[datasets][fashion_mnist][errors]") {
  TempDir dir;
  const std::string dir_text = dir.path().string();
  SECTION("bad split name") {
    CHECK_THROWS_WITH(load_fashion_mnist(dir.path(), "validation"),
                      Contains("unknown split \"validation\"") && Contains("\"train\" or \"test\""));
  }
  SECTION("missing directory") {
    const fs::path missing = dir.path() / "absent";
    CHECK_THROWS_WITH(load_fashion_mnist(missing, "train"),
                      Contains(missing.string()) && Contains("does not exist") &&
                          Contains("train-images-idx3-ubyte[.gz]") && Contains("train-labels-idx1-ubyte[.gz]"));
  }
  SECTION("missing file") {
    write_split(dir.path(), "t10k", 4, Format::Gzip, 0);
    fs::remove(dir.path() / "t10k-labels-idx1-ubyte.gz");
    CHECK_THROWS_WITH(load_fashion_mnist(dir.path(), "test"),
                      Contains((dir.path() / "t10k-labels-idx1-ubyte.gz").string()) &&
                          Contains((dir.path() / "t10k-labels-idx1-ubyte").string() + " exists"));
    CHECK_THROWS_WITH(load_fashion_mnist(dir.path(), "train"), Contains("train-images-idx3-ubyte"));
  }
  SECTION("as many labels as images") {
    write_split(dir.path(), "train", 6, Format::Plain, 0);
    write_idx(dir.path(), "train-labels-idx1-ubyte", idx_labels({1, 2, 3, 4, 5}), Format::Plain);
    CHECK_THROWS_WITH(load_fashion_mnist(dir.path(), "train"),
                      Contains("train-images-idx3-ubyte holds 6 images") &&
                          Contains("train-labels-idx1-ubyte holds 5 labels"));
  }
  SECTION("labels in [0, 10)") {
    write_split(dir.path(), "train", 6, Format::Gzip, 0);
    write_idx(dir.path(), "train-labels-idx1-ubyte.gz", idx_labels({1, 2, 3, 10, 5, 6}), Format::Gzip);
    CHECK_THROWS_WITH(load_fashion_mnist(dir.path(), "train"),
                      Contains("train-labels-idx1-ubyte.gz: label 10 of example 3 (byte 11) is outside [0, 10)"));
  }
  SECTION("a corrupt file inside the split") {
    write_split(dir.path(), "train", 6, Format::Plain, 0);
    write_idx(dir.path(), "train-images-idx3-ubyte", idx_labels({1, 2}), Format::Plain);
    CHECK_THROWS_WITH(load_fashion_mnist(dir.path(), "train"),
                      Contains(dir_text) && Contains("not an IDX image file"));
  }
}

TEST_CASE("The installed Fashion-MNIST loads with its known sizes and statistics", "[datasets][fashion_mnist][real]") {
  if (!fs::is_directory(kFashionMnistDir)) {
    WARN("Fashion-MNIST is not installed in " << kFashionMnistDir << "; skipping");
    return;
  }
  const auto start = std::chrono::steady_clock::now();
  const ImageDataset train = load_fashion_mnist(kFashionMnistDir, "train");
  const ImageDataset test = load_fashion_mnist(kFashionMnistDir, "test");
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  WARN("loading both Fashion-MNIST splits took " << seconds << " s");
  CHECK(seconds < 3.0);

  for (const auto* split : {&train, &test}) {
    CHECK(split->channels == 1);
    CHECK(split->height == 28);
    CHECK(split->width == 28);
    CHECK(split->pixels.size() == static_cast<size_t>(split->size()) * 28 * 28);
    std::vector<int64_t> per_class(10, 0);
    for (const int64_t label : split->labels) ++per_class[label];
    for (const int64_t count : per_class) CHECK(count == split->size() / 10);  // both splits are balanced
  }
  CHECK(train.size() == 60000);
  CHECK(test.size() == 10000);

  // The normalisation constants are the training pixels' statistics.
  double sum = 0, sum_squares = 0;
  for (const uint8_t byte : train.pixels) {
    const double value = byte / 255.0;
    sum += value;
    sum_squares += value * value;
  }
  const double mean = sum / static_cast<double>(train.pixels.size());
  const double std = std::sqrt(sum_squares / static_cast<double>(train.pixels.size()) - mean * mean);
  CHECK(mean == Approx(kFashionMnistMean).margin(5e-5));
  CHECK(std == Approx(kFashionMnistStd).margin(5e-5));
}
