#include "loom/core/parallel.h"

#include <omp.h>

#include <algorithm>
#include <atomic>
#include <exception>
#include <mutex>
#include <vector>

#include "loom/core/error.h"

namespace loom {

namespace {
// omp_set_num_threads only changes the calling thread's setting; loom's count is one number for the process,
// passed to every parallel region explicitly.
std::atomic<int> g_num_threads{0};  // 0: not yet read from OpenMP's default
std::vector<void (*)(int)>& listeners() {
  static std::vector<void (*)(int)> all;
  return all;
}
}  // namespace

int get_num_threads() {
  int n = g_num_threads.load(std::memory_order_relaxed);
  if (n == 0) {
    int expected = 0;
    g_num_threads.compare_exchange_strong(expected, omp_get_max_threads());
    n = g_num_threads.load(std::memory_order_relaxed);
  }
  return n;
}

void set_num_threads(int num_threads) {
  LOOM_CHECK(num_threads >= 1, Value, "set_num_threads: expected a positive number of threads, got ", num_threads);
  g_num_threads.store(num_threads, std::memory_order_relaxed);
  for (auto listener : listeners()) listener(num_threads);
}

void add_num_threads_listener(void (*listener)(int)) { listeners().push_back(listener); }

bool in_parallel_region() { return omp_in_parallel(); }

void parallel_for(int64_t begin, int64_t end, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) {
  if (begin >= end) return;
  int64_t range = end - begin;
  int threads = get_num_threads();
  grain = std::max<int64_t>(grain, 1);
  if (threads == 1 || range <= grain || omp_in_parallel()) {
    fn(begin, end);
    return;
  }
  int64_t chunks = std::min<int64_t>(threads, (range + grain - 1) / grain);
  std::exception_ptr error;
  std::mutex error_mutex;
#pragma omp parallel num_threads(static_cast<int>(chunks))
  {
    int64_t id = omp_get_thread_num(), count = omp_get_num_threads();
    int64_t per = (range + count - 1) / count;
    int64_t lo = begin + id * per, hi = std::min(end, lo + per);
    if (lo < hi) {
      try {
        fn(lo, hi);
      } catch (...) {
        std::lock_guard<std::mutex> lock(error_mutex);
        if (!error) error = std::current_exception();
      }
    }
  }
  if (error) std::rethrow_exception(error);
}

}  // namespace loom
