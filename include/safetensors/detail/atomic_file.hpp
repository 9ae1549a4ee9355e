// safetensors-hpp: replace a file atomically: write a new temporary file beside it, flush it,
// rename it over the target. Readers of the target see the old file or the new one, never a
// partial one, and a failure at any step leaves the target as it was.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <utility>

#include "../error.hpp"
#include "os.hpp"

namespace safetensors::detail {

// Where a temporary file for target goes: the same folder (rename is atomic only within one
// file system), a hidden name built from the target's, and the folder to sync after the rename.
struct temp_location {
    std::string prefix;  // target's folder with its trailing separator, or "" for the current one
    std::string base;    // target's file name
    std::string folder;  // the folder to open for fsync ("." for the current one)
};

inline temp_location split_target(const std::string& target) {
    const std::size_t cut = target.find_last_of(os::folder_cut_chars);
    temp_location where;
    if (cut == std::string::npos) {
        where.base = target;
        where.folder = ".";
    } else {
        where.prefix = target.substr(0, cut + 1);
        where.base = target.substr(cut + 1);
        where.folder = cut == 0 ? target.substr(0, 1) : target.substr(0, cut);
    }
    if (where.base.empty() || where.base == "." || where.base == "..")
        throw_error(errc::invalid_argument, "cannot write to " + quote(target) + ": the path names a folder, not a file");
    return where;
}

// 12 characters from [0-9a-z]: about 62 bits, mixed from os::entropy() (when it works),
// the clock, an address and a process-wide counter, so two writers never pick the same name
// in practice; O_EXCL / CREATE_NEW catch the rest and the caller retries.
inline std::string random_suffix() {
    static std::atomic<std::uint64_t> counter{0};
    std::uint64_t seed = static_cast<std::uint64_t>(std::chrono::high_resolution_clock::now().time_since_epoch().count());
    seed ^= std::uint64_t{reinterpret_cast<std::uintptr_t>(&counter)} << 16;
    seed += counter.fetch_add(0x9E3779B97F4A7C15ull, std::memory_order_relaxed);
    seed ^= os::entropy();  // 0 without an entropy source: the rest and the retry on a clash suffice
    // splitmix64 finalizer: spreads every input bit over the whole word.
    seed = (seed ^ (seed >> 30)) * 0xBF58476D1CE4E5B9ull;
    seed = (seed ^ (seed >> 27)) * 0x94D049BB133111EBull;
    seed ^= seed >> 31;
    static const char digits[] = "0123456789abcdefghijklmnopqrstuvwxyz";
    std::string out(12, '0');
    for (char& c : out) {
        c = digits[seed % 36];
        seed /= 36;
    }
    return out;
}

// ".<name>.<random>.tmp" in the target's folder. The name part is cut (at a UTF-8 character
// boundary) so the result stays within the usual 255-byte file name limit.
inline std::string temp_name(const temp_location& where) {
    std::size_t keep = where.base.size() < 200 ? where.base.size() : 200;
    while (keep > 0 && keep < where.base.size() && (static_cast<unsigned char>(where.base[keep]) & 0xC0) == 0x80) --keep;
    return where.prefix + "." + where.base.substr(0, keep) + "." + random_suffix() + ".tmp";
}

inline constexpr int temp_name_attempts = 64;

// A new temporary file beside a target, renamed over it by commit(); removed by discard() or
// the destructor if it was not committed. A character device or FIFO target (POSIX) is
// written straight through instead (streaming()).
class atomic_file {
public:
    // The temporary file is created exclusively (it never opens, or follows a symlink to, an
    // existing file) with default permissions (the umask decides, as for any new file).
    // early_writeback: start writing dirty pages to disk while the caller still produces
    // data (the caller will fsync anyway), instead of all of them at the fsync.
    // drop_behind: also drop written-back pages from the page cache behind the writer, so a
    // file larger than memory neither fills the cache nor evicts other data. Both are hints
    // that only do something where os::has_writeback_control.
    explicit atomic_file(std::string target, bool early_writeback = false, bool drop_behind = false)
        : target_(std::move(target)), early_writeback_(early_writeback || drop_behind), drop_behind_(drop_behind) {
        const temp_location where = split_target(target_);
        folder_ = where.folder;
        const os::target_kind kind = os::check_target(target_, where.folder);
        if (kind != os::target_kind::replace) {
            streaming_ = true;
            early_writeback_ = drop_behind_ = false;
            file_ = os::open_stream(target_, kind == os::target_kind::overwrite);
            return;
        }
        for (int attempt = 0;; ++attempt) {
            temp_ = temp_name(where);
            bool name_taken = false;
            file_ = os::create_new(temp_, name_taken);
            if (file_.valid()) break;
            temp_.clear();  // not ours: discard() must not remove it
            if (!name_taken || attempt + 1 == temp_name_attempts)
                os::throw_last_error("cannot create a temporary file beside", target_);
        }
    }
    ~atomic_file() { discard(); }
    atomic_file(const atomic_file&) = delete;
    atomic_file& operator=(const atomic_file&) = delete;

    const std::string& target() const noexcept { return target_; }
    // True for a character device or FIFO target: bytes must come in file order.
    bool streaming() const noexcept { return streaming_; }

    // Positional write of all size bytes (os::write_fully). With SIGXFSZ ignored, a write past
    // RLIMIT_FSIZE fails with EFBIG and lands here as an error.
    void write_at(std::uint64_t offset, const void* data, std::size_t size) {
        if (offset > os::max_offset || size > os::max_offset - offset)
            throw_error(errc::file_too_large, "cannot write " + quote(target_) + ": offset " + std::to_string(offset) +
                                                  " is past what this platform's off_t can address");
        if (streaming_ && offset != written_end_)
            throw_error(errc::stream_error, "cannot write " + quote(target_) + " at offset " + std::to_string(offset) +
                                                ": it is a device or FIFO, written in file order, and " +
                                                std::to_string(written_end_) + " bytes are written so far", target_);
        os::write_fully(file_, offset, data, size, target_, streaming_);
        unsynced_ += size;
        if (offset + size > written_end_) written_end_ = offset + size;
        start_writeback();
    }

    // Flush (when sync) and close the temporary file, rename it over the target, then sync the
    // folder so the rename itself survives a crash. Any failure before the rename leaves the
    // target untouched (the destructor removes the temporary file).
    void commit(bool sync) {
        if (streaming_) {  // nothing to flush or rename: the bytes have gone to the device or reader
            if (!os::close(file_)) os::throw_last_write_error("cannot close", target_);
            return;
        }
        if (deferred_error_ != 0)
            throw_error(errc::write_failed, "cannot write " + quote(target_) + ": " + std::strerror(deferred_error_),
                        target_, errno_code(deferred_error_));
        if (sync && !os::flush(file_)) os::throw_last_write_error("cannot flush", target_);
        if (!os::close(file_)) os::throw_last_write_error("cannot close", target_);
        os::replace(temp_, target_, sync);
        temp_.clear();
        if (sync) os::sync_folder(folder_, target_);
    }

    void discard() noexcept {
        file_ = os::file();
        if (!temp_.empty()) {
            os::remove(temp_);
            temp_.clear();
        }
    }

private:
    // Every writeback_window bytes, asks the OS to start writing the file's dirty pages. The
    // page-cache copy and the disk then overlap and the final fsync has little left, so a
    // durable write of a large file runs at about the speed of the disk. With drop_behind,
    // everything below the previous round's end (which has had a whole window's time to reach
    // the disk) is waited for and dropped from the cache: at most about two windows stay cached.
    void start_writeback() noexcept {
        constexpr std::uint64_t writeback_window = std::uint64_t{32} << 20;
        if (!os::has_writeback_control || !early_writeback_ || unsynced_ < writeback_window) return;
        unsynced_ = 0;
        os::write_back(file_, drop_behind_ ? previous_round_end_ : 0, deferred_error_);
        previous_round_end_ = written_end_;
    }

    std::string target_;
    std::string temp_;    // empty once renamed or removed
    std::string folder_;
    os::file file_;
    bool streaming_ = false;
    bool early_writeback_ = false;
    bool drop_behind_ = false;
    std::uint64_t unsynced_ = 0;            // bytes written since the last writeback round
    std::uint64_t written_end_ = 0;         // the highest offset written so far
    std::uint64_t previous_round_end_ = 0;  // written_end_ at the last writeback round
    int deferred_error_ = 0;                // a write-back error seen by os::write_back
};

} // namespace safetensors::detail
