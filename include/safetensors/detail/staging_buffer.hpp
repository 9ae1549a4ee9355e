// safetensors-hpp: detail::staging_buffer, the writers' output batching: small pieces (the
// header, small tensors, small chunks) gathered into large writes, large ones passed straight
// through. Used by save() and stream_writer; emit(offset, data, size) does the writing.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "../source.hpp"  // aligned_bytes, allocate_aligned

namespace safetensors::detail {

// Sequential-ish output with a small staging buffer: small pieces (the header, small tensors,
// small chunks) are gathered into one write; large ones go straight from the caller's memory
// to write(), without a copy. Staged bytes must continue the staged run, else it is flushed.
class staging_buffer {
public:
    static constexpr std::size_t capacity = std::size_t{1} << 20;
    static constexpr std::size_t direct_threshold = std::size_t{256} << 10;

    // Where to copy size (< direct_threshold) bytes that belong at offset.
    template <class Emit>
    std::byte* reserve(std::uint64_t offset, std::size_t size, Emit&& emit) {
        if (used_ != 0 && (offset != start_ + used_ || size > capacity - used_)) flush(emit);
        if (used_ == 0) {
            start_ = offset;
            if (!bytes_) bytes_ = allocate_aligned(capacity);
        }
        std::byte* at = bytes_.get() + used_;
        used_ += size;
        return at;
    }

    template <class Emit>
    void put(std::uint64_t offset, const void* data, std::size_t size, Emit&& emit) {
        if (size == 0) return;
        if (size >= direct_threshold) {
            flush(emit);
            emit(offset, data, size);
            return;
        }
        std::memcpy(reserve(offset, size, emit), data, size);
    }

    template <class Emit>
    void flush(Emit&& emit) {
        if (used_ == 0) return;
        const std::size_t n = used_;
        used_ = 0;
        emit(start_, bytes_.get(), n);
    }

private:
    aligned_bytes bytes_;
    std::uint64_t start_ = 0;
    std::size_t used_ = 0;
};

} // namespace safetensors::detail
