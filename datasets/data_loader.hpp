// DataLoader: the batches of an ImageSource (an in-memory ImageDataset, or an ImageFolder decoding
// files on the fly), epoch by epoch, as float32 tensors. The order of epoch e depends only on
// (seed, e), and each example's randomness (a transform's, a source's random crop) only on
// (seed, e, example index), so a run resumed at epoch e sees exactly the batches an uninterrupted
// run would, whatever the number of worker threads. A background thread prepares the next batch
// (its examples loaded and transformed by `workers` threads) while the caller trains on the
// current one; only the batch in preparation is held, so memory does not grow with the data set.
#pragma once

#include "datasets/image_dataset.hpp"
#include "datasets/image_source.hpp"
#include "datasets/transforms.hpp"

#include <condition_variable>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

namespace flexnn::datasets {

struct DataLoaderOptions {
  int64_t batch_size = 100;
  bool shuffle = true;  // else each epoch runs in dataset order
  uint64_t seed = 0;
  bool drop_last = false;  // drop the final batch when it is smaller than batch_size
  // Applied to each example after it is loaded (augmentation, resizing, normalisation), with the
  // example's ExampleRandom(seed, epoch, index). Empty: none.
  Transform transform = {};
  int64_t workers = 1;  // threads that load and transform a batch's examples
};

// Not itself thread-safe: call its methods from one thread.
class DataLoader {
 public:
  // Keeps a reference to `dataset`, which must outlive the loader and stay unchanged while it exists.
  DataLoader(const ImageDataset& dataset, DataLoaderOptions options);
  // Keeps a reference to `source`, which must outlive the loader.
  DataLoader(const ImageSource& source, DataLoaderOptions options);
  ~DataLoader();
  DataLoader(const DataLoader&) = delete;
  DataLoader& operator=(const DataLoader&) = delete;

  int64_t num_batches() const;

  // Begins epoch `epoch` (>= 0), abandoning whatever is left of the current one. With shuffle,
  // its order is Generator with state (seed, epoch << 32), permutation(size()).
  void start_epoch(int64_t epoch);
  // The epoch's next batch (images [B, C, H, W], in [0, 1] unless a transform normalises; labels
  // [B]), or nullopt at its end. A batch lacks the examples its source skipped as unreadable, so
  // it may be smaller than batch_size. Every example of a batch must have one shape. Throws if no
  // epoch was started, and rethrows an error of loading or transforming (the first example's, in
  // batch order, when several fail).
  std::optional<LabelledImages> next();

 private:
  void start_worker();
  void work();
  LabelledImages prepare(std::span<const int64_t> indices, int64_t epoch);

  std::unique_ptr<const ImageSource> owned_;  // the ImageDataset's view, when built from one
  const ImageSource& source_;
  const DataLoaderOptions options_;
  std::vector<int64_t> order_;  // written only while the worker is idle
  int64_t epoch_ = 0;           // likewise
  int64_t next_batch_ = 0;      // the batch next() returns
  bool started_ = false;
  std::vector<Image> slots_;  // the worker's per-example images, reused batch after batch

  // Shared with the worker.
  std::mutex mutex_;
  std::condition_variable changed_;
  int64_t requested_ = -1;  // the batch the worker is to prepare, -1 when idle
  std::optional<LabelledImages> ready_;
  std::exception_ptr error_;
  bool stopping_ = false;
  std::thread worker_;  // last, so it starts after everything it uses
};

}  // namespace flexnn::datasets
