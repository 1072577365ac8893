// Grad mode's guards (NoGradGuard, EnableGradGuard) moved to loom/ops/grad_mode.h, beside the dispatcher that owns the
// flag; this header keeps the old include path working for programs and plugins.
#pragma once
#include "loom/ops/grad_mode.h"
