// The loader's prefetch protocol: next() hands the worker the index of the following batch and
// returns the one already prepared; start_epoch() waits for the worker to go idle before it
// replaces the order the worker reads. Everything the two threads share sits behind one mutex.
#include "datasets/data_loader.hpp"

#include "engine/generator.hpp"

#include <algorithm>
#include <numeric>
#include <span>
#include <utility>

namespace flexnn::datasets {

DataLoader::DataLoader(const ImageDataset& dataset, DataLoaderOptions options)
    : dataset_(dataset), options_(options) {
  FLEXNN_CHECK(options_.batch_size > 0, "DataLoader: batch_size must be positive, got {}", options_.batch_size);
  FLEXNN_CHECK(static_cast<int64_t>(dataset_.pixels.size()) == dataset_.size() * dataset_.image_bytes(),
               "DataLoader: the dataset holds {} pixel bytes, expected {} images x {} x {} x {}", dataset_.pixels.size(),
               dataset_.size(), dataset_.channels, dataset_.height, dataset_.width);
  worker_ = std::thread(&DataLoader::work, this);
}

DataLoader::~DataLoader() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  changed_.notify_all();
  worker_.join();
}

int64_t DataLoader::num_batches() const {
  const int64_t n = dataset_.size();
  const int64_t b = options_.batch_size;
  return options_.drop_last ? n / b : (n + b - 1) / b;
}

void DataLoader::start_epoch(int64_t epoch) {
  FLEXNN_CHECK(epoch >= 0, "DataLoader::start_epoch: epoch must be >= 0, got {}", epoch);
  std::vector<int64_t> order;
  if (options_.shuffle) {
    Generator generator;
    generator.set_state(options_.seed, static_cast<uint64_t>(epoch) << 32);
    order = generator.permutation(dataset_.size());
  } else {
    order.resize(dataset_.size());
    std::iota(order.begin(), order.end(), 0);
  }
  {
    std::unique_lock lock(mutex_);
    changed_.wait(lock, [this] { return requested_ < 0; });
    order_ = std::move(order);
    ready_.reset();
    error_ = nullptr;
    next_batch_ = 0;
    started_ = true;
    if (num_batches() > 0) requested_ = 0;
  }
  changed_.notify_all();
}

std::optional<LabelledImages> DataLoader::next() {
  FLEXNN_CHECK(started_, "DataLoader::next: call start_epoch(epoch) before the first batch");
  if (next_batch_ >= num_batches()) return std::nullopt;
  std::optional<LabelledImages> batch;
  std::exception_ptr error;
  {
    std::unique_lock lock(mutex_);
    changed_.wait(lock, [this] { return requested_ < 0; });
    batch = std::exchange(ready_, std::nullopt);
    error = std::exchange(error_, nullptr);
    if (++next_batch_ < num_batches()) requested_ = next_batch_;
  }
  changed_.notify_all();
  if (error) std::rethrow_exception(error);
  return batch;
}

void DataLoader::work() {
  std::unique_lock lock(mutex_);
  while (true) {
    changed_.wait(lock, [this] { return stopping_ || requested_ >= 0; });
    if (stopping_) return;
    const int64_t begin = requested_ * options_.batch_size;
    const auto indices = std::span(order_).subspan(begin, std::min(options_.batch_size, dataset_.size() - begin));
    lock.unlock();
    std::optional<LabelledImages> batch;
    std::exception_ptr error;
    try {
      batch = take(dataset_, indices);
    } catch (...) {
      error = std::current_exception();
    }
    lock.lock();
    ready_ = std::move(batch);
    error_ = error;
    requested_ = -1;
    changed_.notify_all();
  }
}

}  // namespace flexnn::datasets
