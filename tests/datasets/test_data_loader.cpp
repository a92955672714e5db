// Tests for ImageDataset's operations (take, subset, balanced_indices) and the DataLoader: every
// example exactly once per epoch, batch sizes, an order that depends only on (seed, epoch) whatever
// ran before, clean restarts and destruction with a batch in flight, and errors on misuse.
#include <fmt/format.h>

#include <catch2/catch.hpp>

#include <algorithm>
#include <numeric>
#include <set>
#include <vector>

#include "datasets/data_loader.hpp"
#include "datasets/image_dataset.hpp"
#include "engine/error.hpp"
#include "engine/generator.hpp"

using namespace flexnn;
using namespace flexnn::datasets;
using Catch::Contains;

namespace {

// `n` images of 2x3x4 whose bytes encode (example, position); labels from `label_of`.
template <typename LabelOf>
ImageDataset make_dataset(int64_t n, int64_t classes, LabelOf label_of) {
  ImageDataset dataset;
  dataset.channels = 2;
  dataset.height = 3;
  dataset.width = 4;
  dataset.pixels.resize(n * 24);
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < 24; ++j) dataset.pixels[i * 24 + j] = static_cast<uint8_t>(i * 29 + j * 11);
    dataset.labels.push_back(label_of(i));
  }
  for (int64_t c = 0; c < classes; ++c) dataset.class_names.push_back(fmt::format("c{}", c));
  return dataset;
}

// A dataset whose label is the example's index, so batches show which examples they hold.
ImageDataset make_indexed(int64_t n) {
  return make_dataset(n, n, [](int64_t i) { return i; });
}

std::vector<int64_t> labels_of(const LabelledImages& batch) {
  const int64_t* labels = batch.labels.data<int64_t>();
  return {labels, labels + batch.labels.numel()};
}

// The examples of one epoch, in order, checking each batch's images against its labels.
std::vector<int64_t> run_epoch(DataLoader& loader, const ImageDataset& dataset, int64_t epoch,
                               std::vector<int64_t>* sizes = nullptr) {
  loader.start_epoch(epoch);
  std::vector<int64_t> seen;
  while (auto batch = loader.next()) {
    const std::vector<int64_t> labels = labels_of(*batch);
    REQUIRE(batch->images.shape() == Shape{static_cast<int64_t>(labels.size()), 2, 3, 4});
    const std::vector<float> images = batch->images.to_vector();
    for (size_t b = 0; b < labels.size(); ++b) {
      for (int64_t j = 0; j < 24; ++j) {
        REQUIRE(images[b * 24 + j] == static_cast<float>(dataset.pixels[labels[b] * 24 + j]) / 255.0f);
      }
    }
    if (sizes != nullptr) sizes->push_back(static_cast<int64_t>(labels.size()));
    seen.insert(seen.end(), labels.begin(), labels.end());
  }
  CHECK_FALSE(loader.next().has_value());  // stays finished
  return seen;
}

std::vector<int64_t> iota(int64_t n) {
  std::vector<int64_t> values(n);
  std::iota(values.begin(), values.end(), 0);
  return values;
}

}  // namespace

TEST_CASE("take converts bytes to floats equal to byte / 255", "[datasets][image_dataset]") {
  ImageDataset dataset = make_dataset(12, 3, [](int64_t i) { return i % 3; });
  for (size_t k = 0; k < 256; ++k) dataset.pixels[k] = static_cast<uint8_t>(k);  // every byte value
  const std::vector<int64_t> indices{11, 0, 5, 0, 10, 1, 2, 3, 4, 6, 7, 8, 9};
  const LabelledImages batch = take(dataset, indices);
  REQUIRE(batch.images.shape() == Shape{13, 2, 3, 4});
  REQUIRE(batch.labels.shape() == Shape{13});
  const std::vector<float> images = batch.images.to_vector();
  for (size_t b = 0; b < indices.size(); ++b) {
    CHECK(batch.labels.data<int64_t>()[b] == indices[b] % 3);
    for (int64_t j = 0; j < 24; ++j) {
      const uint8_t byte = dataset.pixels[indices[b] * 24 + j];
      REQUIRE(images[b * 24 + j] == static_cast<float>(byte) / 255.0f);
      REQUIRE(images[b * 24 + j] >= 0.0f);
      REQUIRE(images[b * 24 + j] <= 1.0f);
    }
  }
  // The end points are exact; 51 / 255 rounds to 0.2f. Batch row 1 is example 0 (bytes 0..23),
  // row 6 is example 2 (bytes 48..71), and byte 255 is byte 15 of example 10.
  CHECK(images[24] == 0.0f);
  CHECK(images[6 * 24 + 3] == 0.2f);
  CHECK(take(dataset, std::vector<int64_t>{10}).images.to_vector()[15] == 1.0f);  // byte 255 = 10*24+15
  CHECK(take(dataset, std::vector<int64_t>{}).images.shape() == Shape{0, 2, 3, 4});
  CHECK_THROWS_WITH(take(dataset, std::vector<int64_t>{3, 12}), Contains("take: index 12 is outside the dataset's [0, 12)"));
  CHECK_THROWS_AS(take(dataset, std::vector<int64_t>{-1}), flexnn::Error);
}

TEST_CASE("subset copies the chosen examples in order", "[datasets][image_dataset]") {
  const ImageDataset dataset = make_dataset(9, 4, [](int64_t i) { return (i * 3) % 4; });
  const std::vector<int64_t> indices{8, 2, 2, 0};
  const ImageDataset part = subset(dataset, indices);
  REQUIRE(part.size() == 4);
  CHECK(part.channels == 2);
  CHECK(part.height == 3);
  CHECK(part.width == 4);
  CHECK(part.class_names == dataset.class_names);
  REQUIRE(part.pixels.size() == 4 * 24u);
  for (size_t k = 0; k < indices.size(); ++k) {
    CHECK(part.labels[k] == dataset.labels[indices[k]]);
    CHECK(std::equal(part.pixels.begin() + k * 24, part.pixels.begin() + (k + 1) * 24,
                     dataset.pixels.begin() + indices[k] * 24));
  }
  CHECK_THROWS_WITH(subset(dataset, std::vector<int64_t>{9}), Contains("subset: index 9 is outside"));
}

TEST_CASE("balanced_indices picks K of each class, deterministically by seed", "[datasets][image_dataset]") {
  // Unequal classes: class c has 5 + 3c examples.
  std::vector<int64_t> labels;
  for (int64_t c = 0; c < 4; ++c) labels.insert(labels.end(), 5 + 3 * c, c);
  std::reverse(labels.begin(), labels.end());
  const ImageDataset dataset = make_dataset(static_cast<int64_t>(labels.size()), 4, [&](int64_t i) { return labels[i]; });

  const std::vector<int64_t> picked = balanced_indices(dataset, 5, 7);
  REQUIRE(picked.size() == 20);
  CHECK(std::is_sorted(picked.begin(), picked.end()));
  CHECK(std::set<int64_t>(picked.begin(), picked.end()).size() == 20);
  std::vector<int64_t> per_class(4, 0);
  for (const int64_t i : picked) ++per_class[dataset.labels[i]];
  CHECK(per_class == std::vector<int64_t>{5, 5, 5, 5});

  CHECK(balanced_indices(dataset, 5, 7) == picked);
  const std::vector<int64_t> other = balanced_indices(dataset, 3, 8);
  CHECK(other.size() == 12);
  CHECK(balanced_indices(dataset, 3, 7) != other);  // the seed decides which examples
  CHECK(balanced_indices(dataset, 0, 7).empty());

  CHECK_THROWS_WITH(balanced_indices(dataset, 6, 7),
                    Contains("class 0 (c0) has 5 examples, fewer than the 6 asked for"));
  CHECK_THROWS_WITH(balanced_indices(dataset, -1, 7), Contains("per_class must be >= 0, got -1"));
  ImageDataset bad = dataset;
  bad.labels[3] = 4;
  CHECK_THROWS_WITH(balanced_indices(bad, 1, 7), Contains("label 4 of example 3 is outside [0, 4)"));
}

TEST_CASE("DataLoader yields every example exactly once per epoch in batches", "[datasets][data_loader]") {
  const ImageDataset dataset = make_indexed(23);
  SECTION("partial last batch kept") {
    DataLoader loader(dataset, {.batch_size = 5, .shuffle = true, .seed = 3});
    CHECK(loader.num_batches() == 5);
    for (int64_t epoch = 0; epoch < 3; ++epoch) {
      std::vector<int64_t> sizes;
      std::vector<int64_t> seen = run_epoch(loader, dataset, epoch, &sizes);
      CHECK(sizes == std::vector<int64_t>{5, 5, 5, 5, 3});
      std::sort(seen.begin(), seen.end());
      CHECK(seen == iota(23));
    }
  }
  SECTION("drop_last") {
    DataLoader loader(dataset, {.batch_size = 5, .shuffle = true, .seed = 3, .drop_last = true});
    CHECK(loader.num_batches() == 4);
    std::vector<int64_t> sizes;
    const std::vector<int64_t> seen = run_epoch(loader, dataset, 0, &sizes);
    CHECK(sizes == std::vector<int64_t>{5, 5, 5, 5});
    CHECK(std::set<int64_t>(seen.begin(), seen.end()).size() == 20);
  }
  SECTION("a batch larger than the dataset") {
    DataLoader keep(dataset, {.batch_size = 100});
    CHECK(keep.num_batches() == 1);
    CHECK(run_epoch(keep, dataset, 0).size() == 23);
    DataLoader drop(dataset, {.batch_size = 100, .drop_last = true});
    CHECK(drop.num_batches() == 0);
    CHECK(run_epoch(drop, dataset, 0).empty());
  }
  SECTION("without shuffle, in dataset order every epoch") {
    DataLoader loader(dataset, {.batch_size = 4, .shuffle = false});
    CHECK(run_epoch(loader, dataset, 0) == iota(23));
    CHECK(run_epoch(loader, dataset, 5) == iota(23));
  }
}

TEST_CASE("DataLoader order depends only on (seed, epoch)", "[datasets][data_loader]") {
  const ImageDataset dataset = make_indexed(50);
  const DataLoaderOptions options{.batch_size = 8, .shuffle = true, .seed = 11};

  // Epoch 3 straight away, as a resumed run would start it.
  DataLoader resumed(dataset, options);
  const std::vector<int64_t> epoch3 = run_epoch(resumed, dataset, 3);

  // The same epoch after other epochs, one of them abandoned half-way, in another loader.
  DataLoader full(dataset, options);
  const std::vector<int64_t> epoch0 = run_epoch(full, dataset, 0);
  full.start_epoch(1);
  REQUIRE(full.next().has_value());
  const std::vector<int64_t> epoch2 = run_epoch(full, dataset, 2);
  CHECK(run_epoch(full, dataset, 3) == epoch3);
  CHECK(run_epoch(full, dataset, 0) == epoch0);

  // The documented order: Philox state (seed, epoch << 32).
  Generator generator;
  generator.set_state(11, uint64_t{3} << 32);
  CHECK(epoch3 == generator.permutation(50));

  CHECK(epoch0 != epoch2);
  CHECK(epoch2 != epoch3);
  CHECK(epoch0 != iota(50));
  DataLoader other_seed(dataset, {.batch_size = 8, .shuffle = true, .seed = 12});
  CHECK(run_epoch(other_seed, dataset, 3) != epoch3);
}

TEST_CASE("DataLoader restarts and destruction mid-epoch are clean", "[datasets][data_loader]") {
  const ImageDataset dataset = make_indexed(200);
  const DataLoaderOptions options{.batch_size = 7, .seed = 5};
  DataLoader reference(dataset, options);
  const std::vector<int64_t> epoch1 = run_epoch(reference, dataset, 1);

  SECTION("restarting the same epoch gives it from its first batch") {
    DataLoader loader(dataset, options);
    for (int restarts = 0; restarts < 20; ++restarts) {
      loader.start_epoch(1);
      for (int k = 0; k < restarts % 4; ++k) REQUIRE(loader.next().has_value());
    }
    CHECK(run_epoch(loader, dataset, 1) == epoch1);
  }
  SECTION("destroying a loader with a batch in flight") {
    for (int round = 0; round < 50; ++round) {
      DataLoader loader(dataset, options);
      loader.start_epoch(1);
      if (round % 2 == 0) {
        const auto batch = loader.next();
        REQUIRE(batch.has_value());
        CHECK(labels_of(*batch) == std::vector<int64_t>(epoch1.begin(), epoch1.begin() + 7));
      }
    }
  }
  SECTION("a loader that never started an epoch") {
    DataLoader loader(dataset, options);
    CHECK_THROWS_WITH(loader.next(), Contains("call start_epoch(epoch) before the first batch"));
  }
}

TEST_CASE("DataLoader rejects bad options and inconsistent datasets", "[datasets][data_loader][errors]") {
  const ImageDataset dataset = make_indexed(10);
  CHECK_THROWS_WITH(DataLoader(dataset, {.batch_size = 0}), Contains("batch_size must be positive, got 0"));
  DataLoader loader(dataset, {});
  CHECK_THROWS_WITH(loader.start_epoch(-1), Contains("epoch must be >= 0, got -1"));
  ImageDataset broken = dataset;
  broken.pixels.pop_back();
  CHECK_THROWS_WITH(DataLoader(broken, {}), Contains("holds 239 pixel bytes, expected 10 images x 2 x 3 x 4"));
}
