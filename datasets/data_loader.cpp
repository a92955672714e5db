// The loader's prefetch protocol: next() hands the worker the index of the following batch and
// returns the one already prepared; start_epoch() waits for the worker to go idle before it
// replaces the order the worker reads. Everything the two threads share sits behind one mutex.
// The worker prepares a batch by loading and transforming its examples on `workers` threads, each
// into its own slot, then copying the slots into the batch tensors.
#include "datasets/data_loader.hpp"

#include "engine/generator.hpp"

#include <algorithm>
#include <atomic>
#include <functional>
#include <numeric>
#include <span>
#include <utility>

namespace flexnn::datasets {
namespace {

// Calls body(i) for every i in [0, n) on `threads` threads (the calling one among them), each
// taking the next index from a shared counter; then rethrows the exception of the lowest i that
// threw, if any, so which error surfaces does not depend on timing.
void for_each_example(int64_t n, int64_t threads, const std::function<void(int64_t)>& body) {
  std::vector<std::exception_ptr> errors(n);
  std::atomic<int64_t> next{0};
  const auto drain = [&] {
    for (int64_t i; (i = next.fetch_add(1)) < n;) {
      try {
        body(i);
      } catch (...) {
        errors[i] = std::current_exception();
      }
    }
  };
  {
    std::vector<std::jthread> helpers;
    for (int64_t t = 1; t < std::min(threads, n); ++t) helpers.emplace_back(drain);
    drain();
  }
  for (const std::exception_ptr& error : errors) {
    if (error) std::rethrow_exception(error);
  }
}

}  // namespace

DataLoader::DataLoader(const ImageDataset& dataset, DataLoaderOptions options)
    : owned_(std::make_unique<ImageDatasetSource>(dataset)), source_(*owned_), options_(std::move(options)) {
  start_worker();
}

DataLoader::DataLoader(const ImageSource& source, DataLoaderOptions options)
    : source_(source), options_(std::move(options)) {
  start_worker();
}

void DataLoader::start_worker() {
  FLEXNN_CHECK(options_.batch_size > 0, "DataLoader: batch_size must be positive, got {}", options_.batch_size);
  FLEXNN_CHECK(options_.workers >= 1, "DataLoader: workers must be >= 1, got {}", options_.workers);
  FLEXNN_CHECK(source_.size() <= ExampleRandom::kMaxIndex, "DataLoader: {} examples, more than the {} supported",
               source_.size(), ExampleRandom::kMaxIndex);
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
  const int64_t n = source_.size();
  const int64_t b = options_.batch_size;
  return options_.drop_last ? n / b : (n + b - 1) / b;
}

void DataLoader::start_epoch(int64_t epoch) {
  FLEXNN_CHECK(epoch >= 0, "DataLoader::start_epoch: epoch must be >= 0, got {}", epoch);
  FLEXNN_CHECK(epoch <= ExampleRandom::kMaxEpoch, "DataLoader::start_epoch: epoch must be <= {}, got {}",
               ExampleRandom::kMaxEpoch, epoch);
  std::vector<int64_t> order;
  if (options_.shuffle) {
    Generator generator;
    generator.set_state(options_.seed, static_cast<uint64_t>(epoch) << 32);
    order = generator.permutation(source_.size());
  } else {
    order.resize(source_.size());
    std::iota(order.begin(), order.end(), 0);
  }
  {
    std::unique_lock lock(mutex_);
    changed_.wait(lock, [this] { return requested_ < 0; });
    order_ = std::move(order);
    epoch_ = epoch;
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

LabelledImages DataLoader::prepare(std::span<const int64_t> indices, int64_t epoch) {
  const auto n = static_cast<int64_t>(indices.size());
  if (static_cast<int64_t>(slots_.size()) < n) slots_.resize(n);
  std::vector<char> kept(n, 0);
  for_each_example(n, options_.workers, [&](int64_t i) {
    ExampleRandom random(options_.seed, epoch, indices[i]);
    Image& image = slots_[i];
    if (!source_.load(indices[i], random, image)) return;
    if (options_.transform) options_.transform(image, random);
    kept[i] = 1;
  });
  std::vector<int64_t> rows;  // batch positions of the examples kept
  for (int64_t i = 0; i < n; ++i) {
    if (kept[i]) rows.push_back(i);
  }
  const auto count = static_cast<int64_t>(rows.size());
  if (count == 0) return {Tensor::empty({0, 0, 0, 0}), Tensor::empty({0}, DType::Int64)};
  const Image& first = slots_[rows[0]];
  for (const int64_t row : rows) {
    const Image& image = slots_[row];
    FLEXNN_CHECK(image.same_shape(first),
                 "DataLoader: example {} is {}x{}x{} but example {} of the same batch is {}x{}x{}: every example must "
                 "have one shape (crop or resize them to one size)",
                 indices[row], image.channels, image.height, image.width, indices[rows[0]], first.channels,
                 first.height, first.width);
  }
  LabelledImages batch{Tensor::empty({count, first.channels, first.height, first.width}),
                       Tensor::empty({count}, DType::Int64)};
  const auto per_image = static_cast<int64_t>(first.pixels.size());
  float* images = batch.images.data<float>();
  int64_t* labels = batch.labels.data<int64_t>();
  for_each_example(count, options_.workers, [&](int64_t k) {
    std::copy_n(slots_[rows[k]].pixels.data(), per_image, images + k * per_image);
    labels[k] = source_.label(indices[rows[k]]);
  });
  return batch;
}

void DataLoader::work() {
  std::unique_lock lock(mutex_);
  while (true) {
    changed_.wait(lock, [this] { return stopping_ || requested_ >= 0; });
    if (stopping_) return;
    const int64_t begin = requested_ * options_.batch_size;
    const auto indices = std::span(order_).subspan(begin, std::min(options_.batch_size, source_.size() - begin));
    const int64_t epoch = epoch_;
    lock.unlock();
    std::optional<LabelledImages> batch;
    std::exception_ptr error;
    try {
      batch = prepare(indices, epoch);
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
