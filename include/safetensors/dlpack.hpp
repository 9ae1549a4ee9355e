// safetensors-hpp: DLPack export (optional; needs <dlpack/dlpack.h>, DLPack 0.6 or later, e.g.
// Debian's libdlpack-dev). Not included by safetensors.hpp.
//
//   DLManagedTensor* m = safetensors::to_dlpack(f.tensor("w"));   // zero-copy
//   // hand m to a consumer (torch.from_dlpack through a "dltensor" PyCapsule, CuPy, JAX, ...),
//   // which calls m->deleter(m) when it is done; or own it: safetensors::dlpack_ptr p(m);
//
// Nothing is copied: dl_tensor.data is the tensor's first byte and byte_offset is 0 (what
// torch, CuPy and NumPy produce and accept; DLPack's 256-byte alignment note is not followed by
// any of them). The export holds the source alive (a view's keep_alive(), a moved-in owned
// tensor, a device tensor's owner) until the deleter runs, and the deleter frees everything.
// shape and strides are always filled (strides in elements, compact row-major), ndim is the
// rank (0 for a scalar, with shape and strides null). Host tensors are kDLCPU, device 0;
// device tensors kDLCUDA with their ordinal.
//
// The bytes of a view are the file's read-only mapping: a consumer must not write to them
// (DLPack 0.6 has no read-only flag; a write faults). Export an owned tensor to hand out
// writable memory.
//
// Dtypes: U8..U64 kDLUInt, I8..I64 kDLInt, F16/F32/F64 kDLFloat, BF16 kDLBfloat, C64
// kDLComplex (64 bits); lanes 1. BOOL, the F8, F6 and F4 formats have no DLPack 0.6 code and
// are refused with errc::unsupported_dtype (convert them to F32 first: convert.hpp).
#pragma once

#if defined(__has_include)
#if !__has_include(<dlpack/dlpack.h>)
#error "safetensors/dlpack.hpp needs <dlpack/dlpack.h> (Debian/Ubuntu: apt-get install libdlpack-dev)"
#endif
#endif

#include <dlpack/dlpack.h>

#include <climits>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "detail/checked.hpp"
#include "device_tensor.hpp"
#include "dtype.hpp"
#include "error.hpp"
#include "span.hpp"
#include "tensor.hpp"
#include "view.hpp"

namespace safetensors {

// The DLPack type of a dtype, or nullopt where DLPack 0.6 has none.
inline std::optional<DLDataType> to_dlpack_dtype(dtype t) noexcept {
    const auto make = [](DLDataTypeCode code, unsigned bits) {
        DLDataType d;
        d.code = static_cast<std::uint8_t>(code);
        d.bits = static_cast<std::uint8_t>(bits);
        d.lanes = 1;
        return d;
    };
    switch (t) {
        case dtype::U8: case dtype::U16: case dtype::U32: case dtype::U64:
            return make(kDLUInt, detail::narrow<unsigned>(bit_size(t)));
        case dtype::I8: case dtype::I16: case dtype::I32: case dtype::I64:
            return make(kDLInt, detail::narrow<unsigned>(bit_size(t)));
        case dtype::F16: case dtype::F32: case dtype::F64:
            return make(kDLFloat, detail::narrow<unsigned>(bit_size(t)));
        case dtype::BF16: return make(kDLBfloat, 16);
        case dtype::C64: return make(kDLComplex, 64);
        default: return std::nullopt;  // BOOL, F8_*, F6_*, F4
    }
}

// Calls the tensor's deleter: for a unique_ptr that owns an export.
struct dlpack_deleter {
    void operator()(DLManagedTensor* t) const noexcept {
        if (t != nullptr && t->deleter != nullptr) t->deleter(t);
    }
};
using dlpack_ptr = std::unique_ptr<DLManagedTensor, dlpack_deleter>;

namespace detail {

// Everything one export owns; manager_ctx points here and the deleter deletes it.
struct dlpack_context {
    DLManagedTensor managed{};
    std::vector<std::int64_t> shape, strides;
    std::shared_ptr<const void> owner;  // keeps the bytes alive
    std::optional<tensor> owned;        // a moved-in tensor

    static void release(DLManagedTensor* self) noexcept { delete static_cast<dlpack_context*>(self->manager_ctx); }
};

// Fills everything but data and device; checks the dtype and that shape and strides fit int64_t.
inline std::unique_ptr<dlpack_context> dlpack_prepare(std::string_view name, dtype t, span<const std::uint64_t> shape) {
    const std::string prefix = "tensor " + quote(name) + ": ";
    const std::optional<DLDataType> type = to_dlpack_dtype(t);
    if (!type)
        throw_error(errc::unsupported_dtype,
                    prefix + "dtype " + std::string(to_string(t)) + " has no DLPack 0.6 type code");
    if (shape.size() > static_cast<std::size_t>(INT_MAX))
        throw_error(errc::shape_overflow, prefix + "rank " + std::to_string(shape.size()) + " does not fit DLPack's int ndim");
    auto ctx = std::make_unique<dlpack_context>();
    ctx->shape.resize(shape.size());
    ctx->strides.resize(shape.size());
    std::uint64_t stride = 1;  // compact row-major, in elements
    for (std::size_t d = shape.size(); d-- > 0;) {
        constexpr std::uint64_t max = static_cast<std::uint64_t>(INT64_MAX);
        if (shape[d] > max)
            throw_error(errc::shape_overflow, prefix + "dimension " + std::to_string(d) + " of shape " +
                                                  shape_to_string(shape) + " does not fit DLPack's int64_t");
        ctx->shape[d] = static_cast<std::int64_t>(shape[d]);
        ctx->strides[d] = static_cast<std::int64_t>(stride);
        // Only an empty tensor can get here with a stride past int64_t; its strides are never used.
        if (d > 0 && (!checked_mul(stride, shape[d], stride) || stride > max))
            throw_error(errc::shape_overflow, prefix + "the strides of shape " + shape_to_string(shape) +
                                                  " do not fit DLPack's int64_t");
    }
    DLTensor& dl = ctx->managed.dl_tensor;
    dl.ndim = static_cast<int>(shape.size());
    dl.dtype = *type;
    dl.shape = shape.empty() ? nullptr : ctx->shape.data();
    dl.strides = shape.empty() ? nullptr : ctx->strides.data();
    dl.byte_offset = 0;
    ctx->managed.manager_ctx = ctx.get();
    ctx->managed.deleter = &dlpack_context::release;
    return ctx;
}

inline DLDevice dlpack_device(DLDeviceType type, int id) noexcept {
    DLDevice d;
    d.device_type = type;
    d.device_id = id;
    return d;
}

} // namespace detail

// A host view, zero-copy. The export keeps the file's bytes alive (keep_alive()). A view of
// a reader has no bytes to point at: errc::not_addressable (export tensor::copy_of(view) instead).
inline DLManagedTensor* to_dlpack(const tensor_view& view) {
    const std::byte* bytes = view.data();  // first: throws before anything is allocated
    auto ctx = detail::dlpack_prepare(view.name(), view.dtype(), view.shape());
    ctx->owner = view.keep_alive();
    DLTensor& dl = ctx->managed.dl_tensor;
    dl.data = const_cast<std::byte*>(bytes);  // read-only mapping: see the note at the top
    dl.device = detail::dlpack_device(kDLCPU, 0);
    return &ctx.release()->managed;
}

// An owned tensor, moved into the export (its bytes do not move, so data() before the call is
// the export's data). Writable by the consumer.
inline DLManagedTensor* to_dlpack(tensor&& t) {
    auto ctx = detail::dlpack_prepare(t.name(), t.dtype(), t.shape());
    ctx->owned.emplace(std::move(t));
    DLTensor& dl = ctx->managed.dl_tensor;
    dl.data = ctx->owned->data();
    dl.device = detail::dlpack_device(kDLCPU, 0);
    return &ctx.release()->managed;
}

// A tensor in CUDA device memory (cuda.hpp produces these); the export shares its owner.
inline DLManagedTensor* to_dlpack(const device_tensor& t) {
    auto ctx = detail::dlpack_prepare(t.name, t.dtype, t.shape);
    if (t.device < 0)
        detail::throw_error(errc::invalid_argument, "tensor " + detail::quote(t.name) + ": device ordinal " +
                                                        std::to_string(t.device) + " is not a CUDA device");
    ctx->owner = t.owner;
    DLTensor& dl = ctx->managed.dl_tensor;
    dl.data = t.data;
    dl.device = detail::dlpack_device(kDLCUDA, t.device);
    return &ctx.release()->managed;
}

} // namespace safetensors
