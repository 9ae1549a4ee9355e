// safetensors-hpp: device_tensor, the plain description of a tensor in device memory.
//
// CUDA-free on purpose: interop code (DLPack export, framework glue) can take and hand out
// device tensors without including cuda_runtime.h. safetensors/cuda.hpp produces them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "dtype.hpp"
#include "span.hpp"

namespace safetensors {

// One tensor in device memory: dense, row-major, little-endian, exactly as in the file.
// `data` stays valid while any copy of `owner` lives; every tensor of one load shares one
// owner (the device allocation, the "arena"), so keeping any of them keeps all of them.
struct device_tensor {
    std::string name;
    safetensors::dtype dtype = safetensors::dtype::U8;
    std::vector<std::uint64_t> shape;
    int device = -1;             // CUDA device ordinal
    void* data = nullptr;        // device pointer, 256-byte aligned (may be null when byte_size is 0)
    std::uint64_t byte_size = 0;
    std::shared_ptr<const void> owner;

    std::size_t rank() const noexcept { return shape.size(); }
    std::uint64_t element_count() const noexcept { return detail::checked_shape_elements(shape); }
};

// Name -> device tensor, sorted bytewise like tensor_map (Python's dict from load_file()).
using device_tensor_map = std::map<std::string, device_tensor, std::less<>>;

} // namespace safetensors
