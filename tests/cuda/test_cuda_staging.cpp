// The host half of the CUDA loader (detail/cuda_staging.hpp), tested without a GPU: plans are
// replayed byte by byte, and the pipeline runs against a copy backend that imitates the copy
// engine (a thread that copies late), so a slot refilled before its copies finished would
// show up as wrong bytes.
#include <safetensors/detail/cuda_staging.hpp>

#include <doctest/doctest.h>

#include <safetensors/detail/cuda_direct_io.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <memory>
#include <new>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

namespace staging = safetensors::detail::staging;
using safetensors::errc;

namespace {

std::vector<std::byte> pattern(std::size_t n, std::uint32_t seed) {
    std::vector<std::byte> out(n);
    std::uint32_t x = seed * 2654435761u + 1;
    for (auto& b : out) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        b = static_cast<std::byte>(x);
    }
    return out;
}

// Replays a plan on the host: every chunk's reads into a slot, then its copies out of it.
std::vector<std::byte> replay(const staging::plan& p, const std::vector<std::byte>& src, std::size_t dst_size,
                              std::size_t slot_bytes) {
    std::vector<std::byte> dst(dst_size, std::byte{0});
    std::vector<std::byte> slot(slot_bytes);
    for (const auto& c : p.chunks) {
        std::fill(slot.begin(), slot.end(), std::byte{0xEE});
        for (const auto& r : c.reads) {
            REQUIRE(r.slot_offset + r.length <= slot_bytes);
            const std::size_t n = r.src >= src.size() ? 0 : std::min<std::size_t>(r.length, src.size() - r.src);
            std::memcpy(slot.data() + r.slot_offset, src.data() + r.src, n);  // past the end: EOF, like O_DIRECT
        }
        for (const auto& op : c.copies)
            for (std::size_t row = 0; row < op.rows; ++row) {
                const std::size_t from = op.slot_offset + row * op.slot_pitch;
                const std::uint64_t to = op.dst + row * op.dst_pitch;
                REQUIRE(from + op.width <= slot_bytes);
                REQUIRE(to + op.width <= dst_size);
                std::memcpy(dst.data() + to, slot.data() + from, op.width);
            }
    }
    return dst;
}

struct layout {
    std::vector<staging::piece> pieces;
    std::size_t dst_size = 0;
};

// Random tensors of a file laid out like the loader does: file order, 256-byte aligned.
layout random_tensors(std::mt19937& rng, std::size_t file_size) {
    layout out;
    std::uint64_t src = std::uniform_int_distribution<std::uint64_t>(0, 300)(rng);
    while (true) {
        const int kind = std::uniform_int_distribution<int>(0, 9)(rng);
        std::uint64_t n = kind < 5 ? std::uniform_int_distribution<std::uint64_t>(0, 600)(rng)
                                   : std::uniform_int_distribution<std::uint64_t>(1, 70000)(rng);
        if (src + n > file_size) break;
        out.dst_size = (out.dst_size + 255) / 256 * 256;
        out.pieces.push_back({src, out.dst_size, n});
        out.dst_size += n;
        src += n;
    }
    return out;
}

void check_pieces(const std::vector<std::byte>& dst, const std::vector<std::byte>& src, const layout& l) {
    for (const auto& p : l.pieces)
        REQUIRE(std::memcmp(dst.data() + p.dst, src.data() + p.src, p.length) == 0);
}

// A copy backend imitating the GPU: copies run later on a thread of their own.
class host_backend {
public:
    explicit host_backend(std::byte* base, unsigned delay_us = 50) : base_(base), delay_us_(delay_us) {
        thread_ = std::thread([this] { loop(); });
    }
    ~host_backend() {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            quit_ = true;
        }
        cv_.notify_all();
        thread_.join();
    }

    void issue(const staging::chunk& c, const std::byte* slot, std::size_t index) {
        if (fail_issue_at >= 0 && issued_total_++ == fail_issue_at)
            safetensors::detail::throw_error(errc::cuda_error, "injected copy failure");
        std::lock_guard<std::mutex> lock(mutex_);
        if (issued_.size() <= index) issued_.resize(index + 1, 0), completed_.resize(index + 1, 0);
        ++issued_[index];
        queue_.push_back({&c, slot, index});
        cv_.notify_all();
    }
    void wait(std::size_t index) {
        std::unique_lock<std::mutex> lock(mutex_);
        cv_.wait(lock, [&] { return index >= issued_.size() || completed_[index] == issued_[index]; });
    }
    void drain() noexcept {
        std::unique_lock<std::mutex> lock(mutex_);
        cv_.wait(lock, [&] { return queue_.empty() && !busy_; });
        ++drains;
    }

    int fail_issue_at = -1;
    int drains = 0;

private:
    struct job {
        const staging::chunk* c;
        const std::byte* slot;
        std::size_t index;
    };
    void loop() {
        std::unique_lock<std::mutex> lock(mutex_);
        for (;;) {
            cv_.wait(lock, [&] { return quit_ || !queue_.empty(); });
            if (queue_.empty()) return;
            job j = queue_.front();
            queue_.pop_front();
            busy_ = true;
            lock.unlock();
            std::this_thread::sleep_for(std::chrono::microseconds(delay_us_));  // a late DMA
            for (const auto& op : j.c->copies)
                for (std::size_t row = 0; row < op.rows; ++row)
                    std::memcpy(base_ + op.dst + row * op.dst_pitch, j.slot + op.slot_offset + row * op.slot_pitch,
                                op.width);
            lock.lock();
            busy_ = false;
            ++completed_[j.index];
            cv_.notify_all();
        }
    }

    std::byte* base_;
    unsigned delay_us_;
    int issued_total_ = 0;
    std::mutex mutex_;
    std::condition_variable cv_;
    std::deque<job> queue_;
    std::vector<std::size_t> issued_, completed_;
    bool busy_ = false;
    bool quit_ = false;
    std::thread thread_;
};

staging::reader memory_reader(const std::vector<std::byte>& src) {
    return [&src](std::uint64_t offset, void* destination, std::size_t length) {
        REQUIRE(offset + length <= src.size());
        std::memcpy(destination, src.data() + offset, length);
    };
}

} // namespace

TEST_CASE("gather_plan: one copy per slot, reads straight to the place in the destination image") {
    std::mt19937 rng(1);
    const auto src = pattern(1 << 20, 7);
    for (int round = 0; round < 40; ++round) {
        const layout l = random_tensors(rng, src.size());
        const std::size_t slot = std::size_t{1} << std::uniform_int_distribution<int>(12, 17)(rng);
        const staging::plan p = staging::gather_plan(l.pieces, slot);
        std::uint64_t total = 0;
        for (const auto& piece : l.pieces) total += piece.length;
        CHECK(p.payload == total);
        CHECK(p.read_bytes() == total);  // buffered: exactly the tensors' bytes are read
        for (std::size_t i = 0; i < p.chunks.size(); ++i) {
            REQUIRE(p.chunks[i].copies.size() == 1);
            CHECK(p.chunks[i].copies[0].width <= staging::chunk_limit(i, slot, 1));
        }
        check_pieces(replay(p, src, l.dst_size, slot), src, l);
    }
}

TEST_CASE("gather_plan: adjacent pieces become one read, first chunks ramp up") {
    // Three tensors back to back in the file and in the destination: one read per chunk.
    std::vector<staging::piece> pieces{{100, 0, 4096}, {4196, 4096, 8192}, {12388, 12288, 20480}};
    const staging::plan p = staging::gather_plan(pieces, 16384);
    REQUIRE(p.chunks.size() == 5);
    CHECK(p.chunks[0].copies[0].width == 2048);   // 1/8 of a slot
    CHECK(p.chunks[1].copies[0].width == 4096);   // 1/4
    CHECK(p.chunks[2].copies[0].width == 8192);   // 1/2
    CHECK(p.chunks[3].copies[0].width == 16384);  // then whole slots
    CHECK(p.chunks[4].copies[0].width == 32768 - 30720);
    for (const auto& c : p.chunks) CHECK(c.reads.size() == 1);
    CHECK_THROWS_AS(staging::gather_plan({{0, 100, 10}, {0, 105, 10}}, 4096), safetensors::error);
}

TEST_CASE("block_plan: aligned blocks for O_DIRECT, pieces picked out of them") {
    std::mt19937 rng(2);
    const auto src = pattern(3 << 20, 9);
    for (int round = 0; round < 40; ++round) {
        const layout l = random_tensors(rng, src.size());
        const std::size_t slot = std::size_t{4096} << std::uniform_int_distribution<int>(0, 6)(rng);
        const staging::plan p = staging::block_plan(l.pieces, slot, 4096);
        for (const auto& c : p.chunks)
            for (const auto& r : c.reads) {
                CHECK(r.src % 4096 == 0);
                CHECK(r.length % 4096 == 0);
                CHECK(r.slot_offset % 4096 == 0);
            }
        check_pieces(replay(p, src, l.dst_size, slot), src, l);
    }
}

TEST_CASE("block_plan with a gap: a column shard becomes one read and one 2D copy per slot") {
    // A [512, 1024] tensor of 2-byte elements, shard 1 of 4 along dim 1: 512 rows of 512 bytes,
    // 2048 bytes apart.
    const auto src = pattern(1 << 20, 3);
    layout l;
    for (std::uint64_t row = 0; row < 512; ++row) l.pieces.push_back({64 + row * 2048 + 512, row * 512, 512});
    l.dst_size = 512 * 512;
    const staging::plan exact = staging::gather_plan(l.pieces, 1 << 18);
    CHECK(exact.read_count() == 512);  // one pread per row, only the shard's bytes
    CHECK(exact.read_bytes() == 512 * 512);
    const staging::plan blocks = staging::block_plan(l.pieces, 1 << 18, 1, 4096);
    CHECK(blocks.read_count() == blocks.chunks.size());
    for (const auto& c : blocks.chunks) {
        REQUIRE(c.copies.size() == 1);
        CHECK(c.copies[0].slot_pitch == 2048);
        CHECK(c.copies[0].dst_pitch == 512);
    }
    check_pieces(replay(exact, src, l.dst_size, 1 << 18), src, l);
    check_pieces(replay(blocks, src, l.dst_size, 1 << 18), src, l);
}

TEST_CASE("pipeline: every byte arrives, with any thread count and a tiny ring") {
    std::mt19937 rng(3);
    const auto src = pattern(2 << 20, 11);
    for (int round = 0; round < 24; ++round) {
        const layout l = random_tensors(rng, src.size());
        const std::size_t slot = std::size_t{4096} << std::uniform_int_distribution<int>(0, 4)(rng);
        const std::size_t slots = std::uniform_int_distribution<std::size_t>(1, 6)(rng);
        const unsigned threads = std::uniform_int_distribution<unsigned>(1, 8)(rng);
        const bool blocks = round % 3 == 0;
        const staging::plan p = blocks ? staging::block_plan(l.pieces, slot, 4096) : staging::gather_plan(l.pieces, slot);
        std::vector<std::byte> ring_memory(slot * slots);
        staging::ring ring(ring_memory.data(), slot, slots);
        std::vector<std::byte> dst(l.dst_size + 4096);
        host_backend backend(dst.data(), round % 2 ? 0 : 200);
        std::uint64_t last = 0;
        int calls = 0;
        staging::reader read = blocks ? staging::reader([&src](std::uint64_t offset, void* out, std::size_t length) {
                                            const std::size_t n = offset >= src.size() ? 0 : std::min<std::size_t>(length, src.size() - offset);
                                            std::memcpy(out, src.data() + offset, n);
                                        })
                                      : memory_reader(src);
        {
            staging::pipeline<host_backend> pipe(p, ring, read, backend, threads);
            pipe.run([&](std::uint64_t done, std::uint64_t total) {
                CHECK(done > last);
                CHECK(total == p.payload);
                last = done;
                ++calls;
                return true;
            });
        }
        backend.drain();
        CHECK(calls == static_cast<int>(p.chunks.size()));
        CHECK(last == p.payload);
        check_pieces(dst, src, l);
    }
}

TEST_CASE("pipeline: its timings tell whether the reads or the copies are the bottleneck") {
    const auto src = pattern(1 << 17, 8);
    const staging::plan p = staging::gather_plan({{0, 0, 1 << 17}}, 16384);
    const double chunks = static_cast<double>(p.chunks.size());  // 3 ramp-up chunks, then whole slots
    REQUIRE(chunks >= 8);
    std::vector<std::byte> ring_memory(16384 * 4), dst(1 << 17);
    constexpr double ms = 1e-3;
    SUBCASE("slow copies: the readers wait for slots") {
        staging::ring ring(ring_memory.data(), 16384, 2);
        host_backend backend(dst.data(), 3000);  // 3 ms per chunk
        staging::timings t;
        {
            staging::pipeline<host_backend> pipe(p, ring, memory_reader(src), backend, 2);
            pipe.run({});
            t = pipe.timings();
        }
        backend.drain();
        // Every chunk after the first two waited for a slot whose 3 ms copy was queued or running.
        CHECK(t.slot_wait_seconds > (chunks - 2) * 3 * ms * 0.5);
        CHECK(t.read_seconds < t.slot_wait_seconds);
    }
    SUBCASE("slow reads: the issuing thread waits for filled slots") {
        staging::ring ring(ring_memory.data(), 16384, 4);
        host_backend backend(dst.data(), 0);
        const staging::reader slow = [&src](std::uint64_t offset, void* out, std::size_t length) {
            std::this_thread::sleep_for(std::chrono::milliseconds(3));
            std::memcpy(out, src.data() + offset, length);
        };
        for (unsigned threads : {1u, 2u}) {
            CAPTURE(threads);
            staging::timings t;
            {
                staging::pipeline<host_backend> pipe(p, ring, slow, backend, threads);
                pipe.run({});
                t = pipe.timings();
            }
            backend.drain();
            CHECK(t.read_seconds >= chunks * 3 * ms);  // summed over the readers
            if (threads > 1) CHECK(t.issue_wait_seconds > chunks * 3 * ms / threads * 0.5);
            check_pieces(dst, src, layout{{{0, 0, 1 << 17}}, 1 << 17});
        }
    }
}

TEST_CASE("pipeline: a reader failure stops everything and reaches the caller") {
    const auto src = pattern(1 << 20, 5);
    std::vector<staging::piece> pieces{{0, 0, 1 << 20}};
    const staging::plan p = staging::gather_plan(pieces, 16384);
    std::vector<std::byte> ring_memory(16384 * 4), dst(1 << 20);
    staging::ring ring(ring_memory.data(), 16384, 4);
    for (unsigned threads : {1u, 4u}) {
        host_backend backend(dst.data());
        std::atomic<int> reads{0};
        staging::reader failing = [&](std::uint64_t offset, void* out, std::size_t length) {
            if (++reads == 20) safetensors::detail::throw_error(errc::short_read, "injected read failure");
            std::memcpy(out, src.data() + offset, length);
        };
        try {
            staging::pipeline<host_backend> pipe(p, ring, failing, backend, threads);
            pipe.run({});
            FAIL("no error");
        } catch (const safetensors::error& e) {
            CHECK(e.code() == errc::short_read);
        }
        CHECK(backend.drains == 1);             // the copies in flight were waited for
        CHECK(ring.in_flight().empty());        // and the ring is whole again
    }
}

TEST_CASE("pipeline: cancel from the progress callback, and a failing copy") {
    const auto src = pattern(1 << 20, 6);
    const staging::plan p = staging::gather_plan({{0, 0, 1 << 20}}, 16384);
    std::vector<std::byte> ring_memory(16384 * 4), dst(1 << 20);
    staging::ring ring(ring_memory.data(), 16384, 4);
    for (unsigned threads : {1u, 3u}) {
        host_backend backend(dst.data());
        int calls = 0;
        try {
            staging::pipeline<host_backend> pipe(p, ring, memory_reader(src), backend, threads);
            pipe.run([&](std::uint64_t, std::uint64_t) { return ++calls < 3; });
            FAIL("not cancelled");
        } catch (const safetensors::error& e) {
            CHECK(e.code() == errc::cancelled);
            CHECK(std::string(e.what()).find("cancelled by the progress callback") != std::string::npos);
        }
        CHECK(calls == 3);
        CHECK(backend.drains == 1);
        CHECK(ring.in_flight().empty());

        host_backend broken(dst.data());
        broken.fail_issue_at = 5;
        try {
            staging::pipeline<host_backend> pipe(p, ring, memory_reader(src), broken, threads);
            pipe.run({});
            FAIL("no error");
        } catch (const safetensors::error& e) {
            CHECK(e.code() == errc::cuda_error);
        }
        CHECK(broken.drains == 1);

        // The same ring serves the next run.
        host_backend fine(dst.data());
        staging::pipeline<host_backend> pipe(p, ring, memory_reader(src), fine, threads);
        pipe.run({});
        fine.drain();
        CHECK(std::memcmp(dst.data(), src.data(), src.size()) == 0);
    }
}

#if defined(__linux__)
TEST_CASE("direct_file: O_DIRECT blocks up to the end of the file, and a plan run through it") {
    namespace fs = std::filesystem;
    const auto src = pattern(5 * 4096 + 123, 13);  // not a whole number of blocks
    const fs::path path = fs::temp_directory_path() / "safetensors-direct-io-test.bin";
    {
        std::ofstream out(path, std::ios::binary | std::ios::trunc);
        out.write(reinterpret_cast<const char*>(src.data()), static_cast<std::streamsize>(src.size()));
    }
    auto file = std::make_shared<const safetensors::detail::direct_file>(path.string());
    if (!file->is_open()) {
        MESSAGE("the file system of " << path << " refuses O_DIRECT: nothing to test");
        fs::remove(path);
        return;
    }
    CHECK(file->size() == src.size());
    constexpr std::align_val_t page{4096};
    std::unique_ptr<std::byte, void (*)(std::byte*)> buffer(
        static_cast<std::byte*>(::operator new(8 * 4096, page)), [](std::byte* p) { ::operator delete(p, page); });
    file->read_aligned(0, buffer.get(), 8 * 4096);  // past the end: stops there
    CHECK(std::memcmp(buffer.get(), src.data(), src.size()) == 0);
    file->read_aligned(4 * 4096, buffer.get(), 4096);  // a whole block, then the short one
    CHECK(std::memcmp(buffer.get(), src.data() + 4 * 4096, 4096) == 0);

    // Through a source (the header path): any offset and length.
    const safetensors::detail::direct_source source(file);
    std::vector<std::byte> some(5000);
    source.read_at(4000, some.data(), some.size());
    CHECK(std::memcmp(some.data(), src.data() + 4000, some.size()) == 0);
    CHECK_THROWS_AS(source.read_at(src.size() - 10, some.data(), 11), safetensors::error);

    // A block plan run by the pipeline with O_DIRECT reads into page-aligned slots.
    const layout l{{{5, 0, 700}, {705, 768, 9000}, {12000, 10240, 8603}}, 10240 + 8603};
    const staging::plan p = staging::block_plan(l.pieces, 8192, 4096);
    staging::ring ring(buffer.get(), 8192, 4);
    std::vector<std::byte> dst(l.dst_size);
    host_backend backend(dst.data());
    staging::pipeline<host_backend> pipe(
        p, ring, [&](std::uint64_t offset, void* out, std::size_t n) { file->read_aligned(offset, out, n); }, backend,
        3);
    pipe.run({});
    backend.drain();
    check_pieces(dst, src, l);
    fs::remove(path);
}
#endif
