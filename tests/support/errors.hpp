// Test support: run a callable and return what the safetensors::error it threw says (code,
// message, path, OS error), or a default "ok" value (code errc::ok) when it threw nothing.
#pragma once

#include <string>
#include <system_error>

#include <safetensors/error.hpp>

namespace test_support {

struct caught {
    safetensors::errc code = safetensors::errc::ok;
    std::string message;
    std::string path;
    std::error_code system_code;
};

template <class F>
caught error_of(F&& f) {
    try {
        f();
    } catch (const safetensors::error& e) {
        return {e.code(), e.message(), e.path(), e.system_code()};
    }
    return {};
}

} // namespace test_support
