// The oneDNN objects every oneDNN call of the CPU backend shares (gemm/onednn.cpp, conv_onednn.cpp): one CPU
// engine for the process and one stream per thread.
#pragma once
#include <dnnl.hpp>

namespace loom::cpu::gemm::onednn {

dnnl::engine& cpu_engine();
dnnl::stream& thread_stream();

}  // namespace loom::cpu::gemm::onednn
