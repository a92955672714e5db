// Tests for the DataLoader over ImageSources and with per-example transforms: a folder streamed
// from disk gives exactly the batches of its in-memory copy (augmentation included), whatever the
// number of worker threads; each example's augmentation depends only on (seed, epoch, index), so
// batch size, threads and resumption do not change it; no decoded images are kept by default;
// errors from loading and transforming reach the caller, and skipped files shrink their batch.
#include <fmt/format.h>

#include <catch2/catch.hpp>

#include <map>
#include <set>
#include <vector>

#include "datasets/data_loader.hpp"
#include "datasets/image_folder.hpp"
#include "datasets/transforms.hpp"
#include "engine/error.hpp"
#include "image_files.hpp"
#include "temp_dir.hpp"

namespace fs = std::filesystem;
using namespace flexnn;
using namespace flexnn::datasets;
using namespace flexnn::testing;
using Catch::Contains;

namespace {

struct Batch {
  std::vector<float> images;
  std::vector<int64_t> labels;
  Shape shape;
  bool operator==(const Batch&) const = default;
};

std::vector<Batch> run_epoch(DataLoader& loader, int64_t epoch) {
  loader.start_epoch(epoch);
  std::vector<Batch> batches;
  while (auto batch = loader.next()) {
    const int64_t* labels = batch->labels.data<int64_t>();
    batches.push_back({batch->images.to_vector(), {labels, labels + batch->labels.numel()}, batch->images.shape()});
  }
  return batches;
}

// A folder of `n` 10x12 PNGs spread over three classes.
void write_folder(const fs::path& root, int n) {
  for (int i = 0; i < n; ++i) {
    write_png(root / fmt::format("class{}", i % 3) / fmt::format("{:03}.png", i), pattern_pixels(10, 12, 3, i));
  }
}

// `n` 3x6x6 images whose label is their index, so a batch shows which examples it holds.
ImageDataset indexed_dataset(int64_t n) {
  ImageDataset dataset;
  dataset.channels = 3;
  dataset.height = 6;
  dataset.width = 6;
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < 108; ++j) dataset.pixels.push_back(static_cast<uint8_t>(i * 31 + j * 7));
    dataset.labels.push_back(i);
    dataset.class_names.push_back(fmt::format("c{}", i));
  }
  return dataset;
}

// Each example's image in one epoch, by index (the label).
std::map<int64_t, std::vector<float>> by_index(const std::vector<Batch>& batches) {
  std::map<int64_t, std::vector<float>> images;
  for (const Batch& batch : batches) {
    const size_t per = batch.images.size() / batch.labels.size();
    for (size_t b = 0; b < batch.labels.size(); ++b) {
      images[batch.labels[b]].assign(batch.images.begin() + b * per, batch.images.begin() + (b + 1) * per);
    }
  }
  return images;
}

Transform augment() { return transforms::compose({transforms::random_crop(6, 2), transforms::random_horizontal_flip()}); }

}  // namespace

TEST_CASE("a streamed folder gives the batches of its in-memory copy", "[datasets][data_loader][streaming]") {
  TempDir dir("stream");
  write_folder(dir.path(), 23);
  const ImageFolder folder(dir.path(), {.crop = 8});
  const ImageDataset memory = to_dataset(folder);
  REQUIRE(memory.size() == 23);
  REQUIRE(memory.height == 8);

  const DataLoaderOptions options{.batch_size = 5, .shuffle = true, .seed = 7, .transform = augment()};
  DataLoader streamed(folder, {.batch_size = 5, .seed = 7, .transform = augment(), .workers = 3});
  DataLoader in_memory(memory, options);
  CHECK(streamed.num_batches() == 5);
  std::vector<Batch> first;
  for (int64_t epoch : {0, 1, 0}) {
    const std::vector<Batch> a = run_epoch(streamed, epoch);
    const std::vector<Batch> b = run_epoch(in_memory, epoch);
    REQUIRE(a.size() == 5);
    CHECK(a.back().labels.size() == 3);
    CHECK(a.front().shape == Shape{5, 3, 6, 6});
    CHECK(a == b);
    if (first.empty()) {
      first = a;
    } else if (epoch == 0) {
      CHECK(a == first);
    } else {
      CHECK(a != first);
    }
  }
  CHECK(folder.cached_bytes() == 0);  // nothing decoded is kept by default
}

TEST_CASE("augmentation depends only on (seed, epoch, index)", "[datasets][data_loader][streaming]") {
  const ImageDataset dataset = indexed_dataset(40);
  DataLoader reference(dataset, {.batch_size = 4, .seed = 3, .transform = augment()});
  const auto epoch2 = by_index(run_epoch(reference, 2));
  REQUIRE(epoch2.size() == 40);

  // Other batch sizes, threads and histories; shuffled or not.
  DataLoader other(dataset, {.batch_size = 7, .seed = 3, .transform = augment(), .workers = 4});
  run_epoch(other, 0);
  other.start_epoch(1);
  REQUIRE(other.next().has_value());
  CHECK(by_index(run_epoch(other, 2)) == epoch2);
  DataLoader ordered(dataset, {.batch_size = 40, .shuffle = false, .seed = 3, .transform = augment(), .workers = 2});
  CHECK(by_index(run_epoch(ordered, 2)) == epoch2);

  // Exactly the transform applied to the example with ExampleRandom(seed, epoch, index).
  const ImageDatasetSource source(dataset);
  for (const int64_t index : {0, 17, 39}) {
    Image image;
    ExampleRandom random(3, 2, index);
    REQUIRE(source.load(index, random, image));
    augment()(image, random);
    CHECK(epoch2.at(index) == image.pixels);
  }

  // Another epoch or seed augments differently.
  CHECK(by_index(run_epoch(reference, 3)) != epoch2);
  DataLoader reseeded(dataset, {.batch_size = 4, .seed = 4, .transform = augment()});
  CHECK(by_index(run_epoch(reseeded, 2)) != epoch2);
}

TEST_CASE("a source's random crop is reproducible through the loader", "[datasets][data_loader][streaming]") {
  TempDir dir("stream_crop");
  write_folder(dir.path(), 9);
  const ImageFolder folder(dir.path(), {.resize = 9, .crop = 7, .random_crop = true});
  DataLoader one(folder, {.batch_size = 4, .seed = 5});
  DataLoader many(folder, {.batch_size = 3, .seed = 5, .workers = 3});
  const std::vector<Batch> a = run_epoch(one, 4);
  const std::vector<Batch> b = run_epoch(many, 4);
  std::vector<float> all_a, all_b;
  for (const Batch& batch : a) all_a.insert(all_a.end(), batch.images.begin(), batch.images.end());
  for (const Batch& batch : b) all_b.insert(all_b.end(), batch.images.begin(), batch.images.end());
  CHECK(all_a == all_b);
  CHECK(run_epoch(one, 4) == a);
  CHECK(run_epoch(one, 5) != a);
}

TEST_CASE("the loader reports load and transform errors, and skipped files shrink their batch",
          "[datasets][data_loader][streaming][errors]") {
  TempDir dir("stream_bad");
  write_folder(dir.path(), 6);
  const fs::path bad = dir.path() / "class1" / "004.png";
  write_bytes(bad, "not a png");

  SECTION("a bad file is an error naming it, raised by next()") {
    const ImageFolder folder(dir.path());
    DataLoader loader(folder, {.batch_size = 6, .shuffle = false, .workers = 2});
    loader.start_epoch(0);
    CHECK_THROWS_WITH(loader.next(), Contains(bad.string()) && Contains("not an image"));
    CHECK_FALSE(loader.next().has_value());
  }
  SECTION("with skip_bad the batch holds the other examples") {
    const ImageFolder folder(dir.path(), {.skip_bad = true});
    DataLoader loader(folder, {.batch_size = 4, .shuffle = false, .workers = 2});
    const std::vector<Batch> batches = run_epoch(loader, 0);
    REQUIRE(batches.size() == 2);
    CHECK(batches[0].labels == std::vector<int64_t>{0, 0, 1});  // class1/004.png (index 3) skipped
    CHECK(batches[0].shape == Shape{3, 3, 10, 12});
    CHECK(batches[1].labels == std::vector<int64_t>{2, 2});
    CHECK(folder.bad_files() == std::vector<fs::path>{bad});
  }
  SECTION("examples of different shapes in one batch") {
    write_png(dir.path() / "class1" / "004.png", pattern_pixels(11, 12, 3));
    const ImageFolder folder(dir.path());
    DataLoader loader(folder, {.batch_size = 6, .shuffle = false});
    loader.start_epoch(0);
    CHECK_THROWS_WITH(loader.next(), Contains("example 3 is 3x11x12 but example 0 of the same batch is 3x10x12"));
  }
  SECTION("a transform that throws; bad options") {
    const ImageFolder folder(dir.path(), {.skip_bad = true});
    DataLoader loader(folder, {.batch_size = 2, .transform = transforms::random_crop(20), .workers = 3});
    loader.start_epoch(0);
    CHECK_THROWS_WITH(loader.next(), Contains("smaller than the 20x20 crop"));
    CHECK_THROWS_WITH(DataLoader(folder, {.workers = 0}), Contains("workers must be >= 1, got 0"));
    CHECK_THROWS_WITH(loader.start_epoch(int64_t{1} << 32), Contains("epoch must be <= 4294967295"));
  }
}
