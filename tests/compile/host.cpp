// The public API instantiated for every supported element type, compiled (not run) for the
// host with the build's own flags: see tests/CMakeLists.txt (safetensors-api-check).
#include "api_usage.hpp"

double safetensors_api_check(const std::string& path) { return safetensors_compile_check::use_api(path); }
