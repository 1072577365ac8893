// Streams of the simulated device: each is a worker thread running its queue of tasks in order, so kernels and copies
// run asynchronously, after the host call that queued them has returned (as on a GPU). Errors a task raises are kept
// and raised by the next synchronize(), as CUDA reports a failed kernel at the next synchronising call.
#pragma once
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <thread>

namespace vdev {

class WorkQueue {
 public:
  explicit WorkQueue(int device_index);
  ~WorkQueue();
  void push(std::function<void()> task);
  // Blocks until every task queued so far has run; rethrows the first error a task raised since the last call.
  void synchronize();
  bool idle();

 private:
  void run();
  std::mutex mutex_;
  std::condition_variable wake_, drained_;
  std::deque<std::function<void()>> tasks_;
  bool busy_ = false, stop_ = false;
  std::exception_ptr error_;
  std::chrono::microseconds delay_;  // LOOM_VDEV_DELAY_US: a pause before each task, to expose missing syncs
  std::thread worker_;
};

// Every stream of every device, by (device index, stream id); stream 0 of each device exists from the start.
class StreamTable {
 public:
  WorkQueue& get(int device_index, uint64_t id);
  uint64_t create(int device_index);
  void destroy(int device_index, uint64_t id);
  void synchronize_device(int device_index);

 private:
  std::mutex mutex_;
  uint64_t next_id_ = 1;
  std::map<std::pair<int, uint64_t>, std::unique_ptr<WorkQueue>> queues_;
};
StreamTable& streams();

// Events: recorded on a stream, done once the stream has run everything queued before the record.
struct Event {
  std::mutex mutex;
  std::condition_variable done_cv;
  uint64_t recorded = 0, completed = 0;  // generations: done when completed == recorded
  int waiters = 0;                       // queued stream_wait_event tasks still to run (they read the event)
  std::chrono::steady_clock::time_point time;
  bool timing = false;
  void wait();
  bool done();
};

}  // namespace vdev
