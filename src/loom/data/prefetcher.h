// Background batch assembly for the DataLoader's tensor fast path: a C++ thread gathers the rows of each batch
// (index_select on dim 0 of every dataset tensor) into a bounded queue while the caller trains on the last one.
//
// Semantics (those of PyTorch's single-process loader): a batch holds the rows as they are when next() returns
// it, so in-place updates of the dataset made between two next() calls are seen by the next batch. Each gather
// is tagged with the dataset tensors' version counters as published by the consumer thread before the gather
// began; next() compares that tag with the current counters and, when any tensor was written in place since (or
// during the gather, which could have copied a torn row), gathers the batch again in the calling thread. Writes
// that bypass the version counter (through a NumPy or DLPack alias of the data) cannot be seen: use
// prefetch=False for those.
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
  // Call it from one thread (the one that updates the dataset, if any).
  bool next(std::vector<Tensor>& out);
  // Batches gathered again by next() because the dataset changed after the worker gathered them.
  int64_t regathered() const;
  // Stops the worker early and joins it; next() then returns false. Idempotent.
  void close();
  int64_t remaining() const;

 private:
  struct Batch {
    std::vector<Tensor> tensors;
    std::vector<uint64_t> versions;  // the dataset's version counters published before the gather began
  };
  void run();
  std::vector<Tensor> gather(size_t b) const;
  std::vector<uint64_t> current_versions() const;
  std::vector<Tensor> tensors_;
  std::vector<std::vector<int64_t>> batches_;
  size_t depth_;
  mutable std::mutex mutex_;
  std::condition_variable not_full_, not_empty_;
  std::deque<Batch> queue_;
  std::vector<uint64_t> published_versions_;  // read by the consumer thread only, handed over under mutex_
  std::exception_ptr error_;
  size_t produced_ = 0, consumed_ = 0, regathered_ = 0;
  bool stop_ = false, done_ = false;
  std::thread worker_;
};

}  // namespace loom::data
