// Test support: run a callable and return the safetensors::error it threw (code and message),
// or an "ok" error_info when it threw nothing.
#pragma once

#include <safetensors/error.hpp>

namespace test_support {

template <class F>
safetensors::error_info error_of(F&& f) {
    try {
        f();
    } catch (const safetensors::error& e) {
        return {e.code(), e.message()};
    }
    return {};
}

} // namespace test_support
