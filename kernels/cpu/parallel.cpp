// A small persistent thread pool behind parallel_for: workers sleep on a condition variable,
// take chunk indices from an atomic counter, and the calling thread works alongside them.
#include "kernels/cpu/parallel.hpp"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace flexnn::cpu {
namespace {

thread_local bool inside_parallel_region = false;

int default_thread_count() {
  if (const char* env = std::getenv("FLEXNN_NUM_THREADS")) {
    int n = std::atoi(env);
    if (n > 0) return n;
  }
  return std::max(1u, std::thread::hardware_concurrency());
}

class ThreadPool {
 public:
  ~ThreadPool() { resize_workers(0); }

  int threads() const { return thread_count_; }

  void set_threads(int n) {
    std::lock_guard run_lock(run_mutex_);
    thread_count_ = std::max(1, n);
    resize_workers(thread_count_ - 1);
  }

  void run(int64_t chunks, const std::function<void(int64_t)>& chunk_body) {
    std::lock_guard run_lock(run_mutex_);
    {
      std::lock_guard lock(mutex_);
      job_ = &chunk_body;
      job_chunks_ = chunks;
      next_chunk_.store(0);
      active_workers_ = static_cast<int>(workers_.size());
      error_ = nullptr;
      ++generation_;
    }
    wake_.notify_all();
    work_on_current_job();
    std::unique_lock lock(mutex_);
    done_.wait(lock, [&] { return active_workers_ == 0; });
    job_ = nullptr;
    if (error_) std::rethrow_exception(error_);
  }

 private:
  void resize_workers(int count) {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
      ++generation_;
    }
    wake_.notify_all();
    for (auto& w : workers_) w.join();
    workers_.clear();
    stopping_ = false;
    // Each worker starts from the current generation, so a job published before it first waits
    // is not missed.
    const uint64_t start_generation = generation_;
    for (int i = 0; i < count; ++i) workers_.emplace_back([this, start_generation] { worker_loop(start_generation); });
  }

  void worker_loop(uint64_t seen) {
    inside_parallel_region = true;
    for (;;) {
      {
        std::unique_lock lock(mutex_);
        wake_.wait(lock, [&] { return generation_ != seen; });
        seen = generation_;
        if (stopping_) return;
      }
      work_on_current_job();
      std::lock_guard lock(mutex_);
      if (--active_workers_ == 0) done_.notify_one();
    }
  }

  void work_on_current_job() {
    bool was_inside = inside_parallel_region;
    inside_parallel_region = true;
    for (int64_t c = next_chunk_.fetch_add(1); c < job_chunks_; c = next_chunk_.fetch_add(1)) {
      try {
        (*job_)(c);
      } catch (...) {
        std::lock_guard lock(mutex_);
        if (!error_) error_ = std::current_exception();
      }
    }
    inside_parallel_region = was_inside;
  }

  std::mutex run_mutex_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable done_;
  std::vector<std::thread> workers_;
  const std::function<void(int64_t)>* job_ = nullptr;
  int64_t job_chunks_ = 0;
  std::atomic<int64_t> next_chunk_{0};
  int active_workers_ = 0;
  uint64_t generation_ = 0;
  bool stopping_ = false;
  std::exception_ptr error_;
  int thread_count_ = 1;
};

ThreadPool& pool() {
  static ThreadPool* instance = [] {
    auto* p = new ThreadPool();  // never destroyed: workers must outlive static destructors
    p->set_threads(default_thread_count());
    return p;
  }();
  return *instance;
}

}  // namespace

int num_threads() { return pool().threads(); }

void set_num_threads(int n) { pool().set_threads(n); }

void parallel_for(int64_t begin, int64_t end, int64_t grain,
                  const std::function<void(int64_t, int64_t)>& body) {
  if (end <= begin) return;
  grain = std::max<int64_t>(1, grain);
  const int64_t chunks = (end - begin + grain - 1) / grain;
  auto chunk_body = [&](int64_t c) { body(begin + c * grain, std::min(end, begin + (c + 1) * grain)); };
  if (chunks == 1 || inside_parallel_region || pool().threads() == 1) {
    for (int64_t c = 0; c < chunks; ++c) chunk_body(c);
    return;
  }
  pool().run(chunks, chunk_body);
}

}  // namespace flexnn::cpu
