// Grad mode: whether ops record autograd graph nodes on this thread (no_grad / enable_grad). The flag lives in the
// dispatcher (ops/registry.cpp), which reads it on every call, so the guards live in the ops layer beside it.
#pragma once
#include "loom/ops/registry.h"

namespace loom {

class NoGradGuard {
 public:
  NoGradGuard() : previous_(grad_mode_enabled()) { set_grad_mode_enabled(false); }
  ~NoGradGuard() { set_grad_mode_enabled(previous_); }
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool previous_;
};

class EnableGradGuard {
 public:
  explicit EnableGradGuard(bool enabled = true) : previous_(grad_mode_enabled()) { set_grad_mode_enabled(enabled); }
  ~EnableGradGuard() { set_grad_mode_enabled(previous_); }
  EnableGradGuard(const EnableGradGuard&) = delete;
  EnableGradGuard& operator=(const EnableGradGuard&) = delete;

 private:
  bool previous_;
};

}  // namespace loom
