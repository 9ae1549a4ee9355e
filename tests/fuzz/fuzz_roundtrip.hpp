// fuzz_roundtrip: whatever the reader accepts, the writer writes back, and the reader reopens
// to the same tensors (names, dtypes, shapes, bytes) and metadata. A canonical input (the
// writer's is_canonical) comes back byte for byte; the writer's output is always canonical,
// and the streaming writer produces the same bytes as serialize().
#pragma once

#include <safetensors/safetensors.hpp>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "fuzz_support.hpp"

namespace fuzz {

inline int fuzz_roundtrip_one(const std::uint8_t* data, std::size_t size) {
    using namespace safetensors;
    const result<file> opened = try_open_buffer(data, size);
    if (!opened) return 0;
    const file& f = *opened;

    std::vector<std::byte> written;
    try {
        written = serialize(f);
    } catch (const error& e) {
        // The only refusal allowed: padding pushed a header near the limit over it.
        FUZZ_CHECK(e.code() == errc::header_too_large);
        FUZZ_CHECK(f.header().header_size() > max_header_size - 8);
        return 0;
    }

    const file g = file::from_bytes(written);  // throws (and so crashes the fuzzer) if invalid
    FUZZ_CHECK(g.size() == f.size());
    for (const tensor_view& a : f) {
        const auto b = g.find(a.name());
        FUZZ_CHECK(b.has_value());
        FUZZ_CHECK(b->dtype() == a.dtype());
        FUZZ_CHECK(b->shape() == a.shape());
        FUZZ_CHECK(b->bytes() == a.bytes());
    }
    FUZZ_CHECK((f.metadata() == nullptr) == (g.metadata() == nullptr));
    if (f.metadata() != nullptr) FUZZ_CHECK(*f.metadata() == *g.metadata());

    // Canonical in, identical out; and the writer's own output is canonical and a fixed point.
    const bool canonical = is_canonical(f);
    if (canonical)
        FUZZ_CHECK(written.size() == size && (size == 0 || std::memcmp(written.data(), data, size) == 0));
    FUZZ_CHECK(is_canonical(g));
    FUZZ_CHECK(serialize(g) == written);

    // The streaming writer, fed in file order in odd-sized chunks, writes the same bytes.
    std::vector<tensor_ref> decls;
    for (const tensor_view& v : f) decls.push_back({std::string(v.name()), v.dtype(), std::vector<std::uint64_t>(v.shape().begin(), v.shape().end())});
    std::vector<std::byte> streamed;
    stream_writer w([&](const std::byte* p, std::size_t n) { streamed.insert(streamed.end(), p, p + n); }, decls,
                    f.metadata());
    for (std::size_t i = 0; i < w.size(); ++i) {
        const span<const std::byte> bytes = f.tensor(w.tensor(i).name).bytes();
        for (std::size_t done = 0; done < bytes.size(); done += 333)
            w.write(i, bytes.data() + done, bytes.size() - done < 333 ? bytes.size() - done : 333);
    }
    w.commit();
    FUZZ_CHECK(streamed == written);
    return 0;
}

} // namespace fuzz
