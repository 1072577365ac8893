#include "work_queue.h"

#include <cstdlib>

#include "loom/core/error.h"
#include "loom/ops/registry.h"

namespace vdev {

namespace {
std::chrono::microseconds configured_delay() {
  const char* value = std::getenv("LOOM_VDEV_DELAY_US");
  return std::chrono::microseconds(value ? std::atoll(value) : 0);
}
}  // namespace

WorkQueue::WorkQueue(int) : delay_(configured_delay()), worker_([this] { run(); }) {}

WorkQueue::~WorkQueue() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  worker_.join();
}

void WorkQueue::push(std::function<void()> task) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    tasks_.push_back(std::move(task));
  }
  wake_.notify_one();
}

void WorkQueue::run() {
  loom::set_grad_mode_enabled(false);  // kernels' own op calls never build graphs
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    wake_.wait(lock, [&] { return stop_ || !tasks_.empty(); });
    if (tasks_.empty()) return;  // stopping, and nothing left to run
    std::function<void()> task = std::move(tasks_.front());
    tasks_.pop_front();
    busy_ = true;
    lock.unlock();
    if (delay_.count() > 0) std::this_thread::sleep_for(delay_);
    try {
      task();
    } catch (...) {
      std::lock_guard<std::mutex> relock(mutex_);
      if (!error_) error_ = std::current_exception();
    }
    task = nullptr;  // drop the tensors it kept alive before reporting the queue drained
    lock.lock();
    busy_ = false;
    if (tasks_.empty()) drained_.notify_all();
  }
}

void WorkQueue::synchronize() {
  std::unique_lock<std::mutex> lock(mutex_);
  drained_.wait(lock, [&] { return tasks_.empty() && !busy_; });
  if (error_) {
    std::exception_ptr error = error_;
    error_ = nullptr;
    std::rethrow_exception(error);
  }
}

bool WorkQueue::idle() {
  std::lock_guard<std::mutex> lock(mutex_);
  return tasks_.empty() && !busy_;
}

WorkQueue& StreamTable::get(int device_index, uint64_t id) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto key = std::make_pair(device_index, id);
  auto it = queues_.find(key);
  if (it == queues_.end()) {
    LOOM_CHECK(id == 0, Value, "vdev: stream ", id, " does not exist on vdev:", device_index);
    it = queues_.emplace(key, std::make_unique<WorkQueue>(device_index)).first;
  }
  return *it->second;
}

uint64_t StreamTable::create(int device_index) {
  std::lock_guard<std::mutex> lock(mutex_);
  const uint64_t id = next_id_++;
  queues_.emplace(std::make_pair(device_index, id), std::make_unique<WorkQueue>(device_index));
  return id;
}

void StreamTable::destroy(int device_index, uint64_t id) {
  std::unique_ptr<WorkQueue> queue;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = queues_.find({device_index, id});
    if (it == queues_.end() || id == 0) return;
    queue = std::move(it->second);
    queues_.erase(it);
  }
  queue->synchronize();  // work already queued still runs, as with cudaStreamDestroy
}

void StreamTable::synchronize_device(int device_index) {
  std::vector<WorkQueue*> device_queues;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto& [key, queue] : queues_)
      if (key.first == device_index) device_queues.push_back(queue.get());
  }
  for (WorkQueue* queue : device_queues) queue->synchronize();
}

StreamTable& streams() {
  static StreamTable* table = new StreamTable();  // never destroyed: workers may run during exit
  return *table;
}

void Event::wait() {
  std::unique_lock<std::mutex> lock(mutex);
  done_cv.wait(lock, [&] { return completed >= recorded; });
}

bool Event::done() {
  std::lock_guard<std::mutex> lock(mutex);
  return completed >= recorded;
}

}  // namespace vdev
