// The smallest backend plugin: built against the installed headers with find_package(Loom), it passes loom's ABI
// handshake (plugin.h) and its init function runs inside the consumer's libloom. It registers no device (the fake-
// device backend of the plugin tests does that), so init reports that it ran by failing with a known message.
#include <stdexcept>

#include "loom/backends/plugin.h"

namespace {

void init_package_plugin() { throw std::runtime_error("package plugin init ran"); }

}  // namespace

LOOM_BACKEND_PLUGIN(init_package_plugin)
