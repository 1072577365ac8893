// Background batch assembly for the DataLoader's tensor fast path: a C++ thread gathers the rows of each batch
// (index_select on dim 0 of every dataset tensor) into a bounded queue while the caller trains on the last one.
#pragma once
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include "loom/core/tensor.h"

namespace loom::data {

class BatchPrefetcher {
 public:
  // `tensors` share their first dimension; `batches` are the row indices of each batch, in order.
  // The worker runs with grad mode off and holds at most `depth` finished batches (it waits when the queue is full).
  BatchPrefetcher(std::vector<Tensor> tensors, std::vector<std::vector<int64_t>> batches, int64_t depth = 2);
  ~BatchPrefetcher();  // stops and joins the worker (safe mid-epoch)
  BatchPrefetcher(const BatchPrefetcher&) = delete;
  BatchPrefetcher& operator=(const BatchPrefetcher&) = delete;

  // Blocks until the next batch is ready and moves it into `out`; false when all batches were returned.
  // An exception thrown by the worker (e.g. an index out of range) is re-thrown here, once, in order.
  bool next(std::vector<Tensor>& out);
  // Stops the worker early and joins it; next() then returns false. Idempotent.
  void close();
  int64_t remaining() const;

 private:
  void run();
  std::vector<Tensor> tensors_;
  std::vector<std::vector<int64_t>> batches_;
  size_t depth_;
  mutable std::mutex mutex_;
  std::condition_variable not_full_, not_empty_;
  std::deque<std::vector<Tensor>> queue_;
  std::exception_ptr error_;
  size_t produced_ = 0, consumed_ = 0;
  bool stop_ = false, done_ = false;
  std::thread worker_;
};

}  // namespace loom::data
