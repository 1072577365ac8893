// BatchPrefetcher: one producer thread, a bounded deque, and two condition variables.
#include "loom/data/prefetcher.h"

#include "loom/autograd/grad_mode.h"
#include "loom/core/error.h"
#include "loom/ops/creation.h"
#include "loom/ops/index.h"

namespace loom::data {

BatchPrefetcher::BatchPrefetcher(std::vector<Tensor> tensors, std::vector<std::vector<int64_t>> batches, int64_t depth)
    : tensors_(std::move(tensors)), batches_(std::move(batches)), depth_(static_cast<size_t>(depth)) {
  LOOM_CHECK(depth >= 1, Value, "BatchPrefetcher: depth must be >= 1, got ", depth);
  LOOM_CHECK(!tensors_.empty(), Value, "BatchPrefetcher: needs at least one tensor");
  for (const Tensor& t : tensors_) {
    LOOM_CHECK(t.defined() && t.dim() >= 1, Value, "BatchPrefetcher: every tensor needs a first (batch) dimension");
    LOOM_CHECK(t.size(0) == tensors_[0].size(0), Value, "BatchPrefetcher: tensors differ in their first dimension (",
               shape_str(tensors_[0].sizes()), " vs ", shape_str(t.sizes()), ")");
  }
  published_versions_ = current_versions();
  worker_ = std::thread([this] { run(); });
}

// Read in the consumer thread only: the counters are plain integers that the consumer's in-place ops bump.
std::vector<uint64_t> BatchPrefetcher::current_versions() const {
  std::vector<uint64_t> versions;
  versions.reserve(tensors_.size());
  for (const Tensor& t : tensors_) versions.push_back(t.version());
  return versions;
}

std::vector<Tensor> BatchPrefetcher::gather(size_t b) const {
  NoGradGuard no_grad;  // grad mode is thread-local: batches never record autograd history
  const auto& rows = batches_[b];
  Tensor index = from_blob_copy(rows.data(), {static_cast<int64_t>(rows.size())}, DType::Int64);
  std::vector<Tensor> batch;
  batch.reserve(tensors_.size());
  for (const Tensor& t : tensors_) batch.push_back(index_select(t, 0, index));
  return batch;
}

BatchPrefetcher::~BatchPrefetcher() { close(); }

void BatchPrefetcher::close() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  not_full_.notify_all();
  not_empty_.notify_all();
  if (worker_.joinable()) worker_.join();
}

int64_t BatchPrefetcher::remaining() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return static_cast<int64_t>(batches_.size() - consumed_);
}

int64_t BatchPrefetcher::regathered() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return static_cast<int64_t>(regathered_);
}

void BatchPrefetcher::run() {
  for (size_t b = 0; b < batches_.size(); ++b) {
    Batch batch;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      not_full_.wait(lock, [&] { return stop_ || queue_.size() < depth_; });
      if (stop_) break;
      batch.versions = published_versions_;
    }
    try {
      batch.tensors = gather(b);
    } catch (...) {
      std::lock_guard<std::mutex> lock(mutex_);
      error_ = std::current_exception();
      break;
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      queue_.push_back(std::move(batch));
      ++produced_;
    }
    not_empty_.notify_one();
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    done_ = true;
  }
  not_empty_.notify_all();
}

bool BatchPrefetcher::next(std::vector<Tensor>& out) {
  // Every in-place write the caller made before this call has bumped a counter by now; a write from another
  // thread that is ordered before this call (joined, or synchronized through a lock) has too.
  std::vector<uint64_t> versions = current_versions();
  std::unique_lock<std::mutex> lock(mutex_);
  not_empty_.wait(lock, [&] { return stop_ || !queue_.empty() || done_; });
  if (!queue_.empty()) {
    Batch batch = std::move(queue_.front());
    queue_.pop_front();
    size_t index = consumed_++;
    // Later gathers start from the dataset as it is now; a write after this call bumps a counter again.
    published_versions_ = versions;
    bool stale = batch.versions != versions;
    if (stale) ++regathered_;
    lock.unlock();
    not_full_.notify_one();
    // The dataset was written since the worker's gather began: the rows may be stale or torn, so gather again.
    out = stale ? gather(index) : std::move(batch.tensors);
    return true;
  }
  if (error_) {
    std::exception_ptr e = error_;
    error_ = nullptr;
    stop_ = true;
    std::rethrow_exception(e);
  }
  return false;
}

}  // namespace loom::data
