// DataLoader: the batches of an ImageDataset, epoch by epoch, as float32 tensors. The order of
// epoch e depends only on (seed, e), so a run resumed at epoch e sees exactly the batches an
// uninterrupted run would. One worker thread converts the next batch while the caller trains on
// the current one.
#pragma once

#include "datasets/image_dataset.hpp"

#include <condition_variable>
#include <exception>
#include <mutex>
#include <optional>
#include <thread>

namespace flexnn::datasets {

struct DataLoaderOptions {
  int64_t batch_size = 100;
  bool shuffle = true;  // else each epoch runs in dataset order
  uint64_t seed = 0;
  bool drop_last = false;  // drop the final batch when it is smaller than batch_size
};

// Not itself thread-safe: call its methods from one thread.
class DataLoader {
 public:
  // Keeps a reference to `dataset`, which must outlive the loader and stay unchanged while it exists.
  DataLoader(const ImageDataset& dataset, DataLoaderOptions options);
  ~DataLoader();
  DataLoader(const DataLoader&) = delete;
  DataLoader& operator=(const DataLoader&) = delete;

  int64_t num_batches() const;

  // Begins epoch `epoch` (>= 0), abandoning whatever is left of the current one. With shuffle,
  // its order is Generator with state (seed, epoch << 32), permutation(size()).
  void start_epoch(int64_t epoch);
  // The epoch's next batch (images [B, C, H, W] in [0, 1], labels [B]), or nullopt at its end.
  // Throws if no epoch was started.
  std::optional<LabelledImages> next();

 private:
  void work();

  const ImageDataset& dataset_;
  const DataLoaderOptions options_;
  std::vector<int64_t> order_;  // written only while the worker is idle
  int64_t next_batch_ = 0;      // the batch next() returns
  bool started_ = false;

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
