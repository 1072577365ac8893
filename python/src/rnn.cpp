// The helper op of the recurrent layers (loom.nn.modules.rnn).
#include "convert.h"
#include "loom/ops/rnn.h"

namespace loom::python {

void bind_rnn(nb::module_& m) {
  m.def("_split_steps", &split_steps, nb::arg("input"), nb::arg("sizes"),
        "Splits input along dim 0 into contiguous pieces of the given sizes (one per time step); its backward is one "
        "cat.");
}

}  // namespace loom::python
