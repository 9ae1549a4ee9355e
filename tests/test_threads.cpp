// Concurrency: 8 threads use ONE open file at once (lookups, sorted keys, metadata,
// iteration, bytes, typed access, elements, slices, shards, owned copies), in map and read
// mode, starting together right after open. The library builds nothing lazily (file.hpp:
// every member is const; the name index and the metadata index are built by the parser), so
// there is no first-use state to race on; the test makes sure it stays that way. Run under
// ThreadSanitizer by scripts/test.sh (stage "ThreadSanitizer"); under the other builds it
// checks that every thread sees the same results as a single-threaded pass.
#include <doctest/doctest.h>

#include <safetensors/safetensors.hpp>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "support/bytes.hpp"

using safetensors::dtype;
using test_support::data_path;

namespace {

constexpr int thread_count = 8;

// Runs body(k) on thread_count threads that wait for each other before starting, so they
// hit the file at the same moment; returns what each one computed.
template <class Body>
std::vector<std::uint64_t> on_threads(Body body) {
    std::atomic<int> ready{0};
    std::vector<std::uint64_t> results(thread_count, 0);
    std::vector<std::thread> threads;
    for (int k = 0; k < thread_count; ++k)
        threads.emplace_back([&, k] {
            ready.fetch_add(1);
            while (ready.load() < thread_count) std::this_thread::yield();
            results[static_cast<std::size_t>(k)] = body(k);
        });
    for (auto& t : threads) t.join();
    return results;
}

// FNV-1a over bytes, so results can be compared without keeping copies.
std::uint64_t mix(std::uint64_t h, const void* data, std::size_t size) {
    const auto* p = static_cast<const unsigned char*>(data);
    for (std::size_t i = 0; i < size; ++i) h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}
std::uint64_t mix(std::uint64_t h, std::string_view text) { return mix(h, text.data(), text.size()); }
std::uint64_t mix(std::uint64_t h, std::uint64_t v) { return mix(h, &v, sizeof v); }

// Everything a reader does with a file, folded into one number. thread picks the order
// (forward or backward) so threads touch different tensors at the same time.
std::uint64_t use_file(const safetensors::file& shared, int thread) {
    const safetensors::file f = shared;  // a copy shares the state: its counters race too
    std::uint64_t h = 0xcbf29ce484222325ull;
    for (auto name : f.sorted_keys()) h = mix(h, name);
    if (const auto* m = f.metadata())
        for (const auto& [key, value] : *m) h = mix(mix(h, key), *m->find(key) == value ? value : "?");
    const auto keys = f.keys();
    for (std::size_t n = 0; n < keys.size(); ++n) {
        const std::size_t i = thread % 2 == 0 ? n : keys.size() - 1 - n;
        const auto view = f.tensor(keys[i]);
        h = mix(h, f.contains(keys[i]) && f.find(keys[i])->data_offsets() == view.data_offsets() ? 1 : 0);
        h = mix(h, view.bytes().data(), view.bytes().size());
        std::vector<std::byte> copy(static_cast<std::size_t>(view.byte_size()));
        view.read_bytes(0, copy.data(), copy.size());
        h = mix(h, copy.data(), copy.size());
        h = mix(h, safetensors::tensor::copy_of(view).byte_size());
        if (view.dtype() == dtype::F32) {
            const auto values = view.to_vector<float>();
            h = mix(h, values.data(), values.size() * sizeof(float));
        }
        if (view.dtype() != dtype::C64)
            for (std::uint64_t e = 0; e < view.element_count() && e < 16; ++e) {
                const double v = view.element(e);
                h = mix(h, &v, sizeof v);
            }
        if (view.rank() >= 1 && view.shape()[0] >= 2 && !safetensors::is_sub_byte(view.dtype())) {
            const auto first_half = view.split(0, 0, 2);
            std::vector<std::byte> out(static_cast<std::size_t>(first_half.byte_size()));
            first_half.copy_to(out.data(), out.size());
            h = mix(h, out.data(), out.size());
            const auto strided = view.slice("::2");
            std::vector<std::byte> packed(static_cast<std::size_t>(strided.byte_size()));
            strided.read_bytes(0, packed.data(), packed.size());
            h = mix(h, packed.data(), packed.size());
        }
    }
    for (const auto& view : f) h = mix(h, view.name());  // iteration
    return h;
}

void check_one_file(const std::string& path, safetensors::open_mode mode) {
    const auto expected = use_file(safetensors::open(path, {mode}), 0);
    const auto expected_backward = use_file(safetensors::open(path, {mode}), 1);
    const auto f = safetensors::open(path, {mode});  // fresh: the threads are its first users
    const auto results = on_threads([&](int k) { return use_file(f, k); });
    for (int k = 0; k < thread_count; ++k)
        CHECK(results[static_cast<std::size_t>(k)] == (k % 2 == 0 ? expected : expected_backward));
}

} // namespace

TEST_CASE("threads: 8 threads read, slice and decode one mapped file at once") {
    for (const char* name : {"all_dtypes", "slicing", "lora_metadata", "complex64", "f4"}) {
        CAPTURE(name);
        check_one_file(data_path(std::string("reference/valid/") + name + ".safetensors"), safetensors::open_mode::map);
    }
}

TEST_CASE("threads: 8 threads read, slice and decode one file read into memory at once") {
    for (const char* name : {"all_dtypes", "slicing", "lora_metadata", "complex64", "f4"}) {
        CAPTURE(name);
        check_one_file(data_path(std::string("reference/valid/") + name + ".safetensors"), safetensors::open_mode::read);
    }
}

TEST_CASE("threads: lookups race the first reads of a file opened from a buffer") {
    const auto bytes = test_support::read_all(data_path("reference/valid/many_tensors.safetensors"));
    const auto f = safetensors::file::from_buffer(bytes.data(), bytes.size());
    const auto keys = f.keys();
    const auto results = on_threads([&](int k) {
        std::uint64_t found = 0;
        for (int round = 0; round < 4; ++round)
            for (std::size_t n = 0; n < keys.size(); ++n) {
                const auto name = keys[(n * 7 + static_cast<std::size_t>(k)) % keys.size()];
                if (k % 2 == 0) {
                    found += f.find(name).has_value() ? 1 : 0;
                } else {
                    if (n % 64 == 0) found += f.sorted_keys().size() == keys.size() ? 0 : 1000;
                    found += f.contains(name) ? 1 : 0;
                    found += f.tensor(name).bytes().size() == f[name].byte_size() ? 0 : 1000;
                }
            }
        return found;
    });
    for (auto r : results) CHECK(r == 4 * keys.size());
}

TEST_CASE("threads: 8 threads save and reopen their own files at once (temporary names never clash)") {
    const auto source = safetensors::open(data_path("reference/valid/all_dtypes.safetensors"));
    const auto original = test_support::read_all(data_path("reference/valid/all_dtypes.safetensors"));
    const auto results = on_threads([&](int k) {
        // All threads write into the same folder: their temporary files sit side by side.
        const std::string path = std::string(SAFETENSORS_TEST_TMP_DIR) + "/threads-" + std::to_string(k) + ".safetensors";
        safetensors::write_options options;
        options.sync = false;  // durability is not under test
        safetensors::save(path, source, options);
        const bool same = test_support::read_all(path) == original;
        std::remove(path.c_str());
        return static_cast<std::uint64_t>(same ? 1 : 0);
    });
    for (auto r : results) CHECK(r == 1);
}
