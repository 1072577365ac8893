// Intra-op parallelism: one OpenMP pool, sized by set_num_threads, with a grain size so tiny ops stay serial.
#pragma once
#include <cstdint>
#include <functional>

namespace loom {

// The process-wide intra-op thread count (every calling thread, the data loader's prefetch thread included).
// Starts at OpenMP's default (OMP_NUM_THREADS or the core count).
int get_num_threads();
// Sets it for loom's own loops and for the libraries that keep their own pools (BLAS), through the listeners.
void set_num_threads(int num_threads);
// Called with the new count on every set_num_threads; a backend whose library has its own thread pool installs
// one (the CPU backend: OpenBLAS). Install at start-up, before any thread uses loom.
void add_num_threads_listener(void (*listener)(int num_threads));
bool in_parallel_region();

// Splits [begin, end) into chunks of at least `grain` iterations and calls fn(chunk_begin, chunk_end) on the
// pool. Runs inline when the range is small, one thread is set, or we are already inside a parallel region.
// Exceptions thrown by fn are re-thrown on the calling thread.
void parallel_for(int64_t begin, int64_t end, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);

// Default grain for elementwise work: below this many elements one thread is faster than waking others.
inline constexpr int64_t kElementwiseGrain = 32768;

}  // namespace loom
