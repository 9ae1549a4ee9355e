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
#include <random>
#include <string>

#include "../error.hpp"
#include "../source.hpp"  // platform headers, throw_errno / throw_last_error, utf8_to_wide

#if !defined(_WIN32)
#include <cerrno>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>
#endif

namespace safetensors::detail {

// Where a temporary file for target goes: the same folder (rename is atomic only within one
// file system), a hidden name built from the target's, and the folder to sync after the rename.
struct temp_location {
    std::string prefix;  // target's folder with its trailing separator, or "" for the current one
    std::string base;    // target's file name
    std::string folder;  // the folder to open for fsync ("." for the current one)
};

inline temp_location split_target(const std::string& target) {
#if defined(_WIN32)
    const std::size_t cut = target.find_last_of("/\\:");
#else
    const std::size_t cut = target.find_last_of('/');
#endif
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

// 12 characters from [0-9a-z]: about 62 bits, mixed from std::random_device (when it works),
// the clock, an address and a process-wide counter, so two writers never pick the same name
// in practice; O_EXCL / CREATE_NEW catch the rest and the caller retries.
inline std::string random_suffix() {
    static std::atomic<std::uint64_t> counter{0};
    std::uint64_t seed = static_cast<std::uint64_t>(std::chrono::high_resolution_clock::now().time_since_epoch().count());
    seed ^= std::uint64_t{reinterpret_cast<std::uintptr_t>(&counter)} << 16;
    seed += counter.fetch_add(0x9E3779B97F4A7C15ull, std::memory_order_relaxed);
    try {
        std::random_device device;
        seed ^= (static_cast<std::uint64_t>(device()) << 32) ^ device();
    } catch (...) {
        // No entropy source: the other inputs and the retry on a name clash still suffice.
    }
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
// Linux moves at most about 2 GiB per write call; Windows takes a 32-bit count.
inline constexpr std::size_t max_write_chunk = std::size_t{1} << 30;

#if defined(_WIN32)

[[noreturn]] inline void throw_windows_write_error(const std::string& what, const std::string& target) {
    const DWORD code = ::GetLastError();
    throw_error(errc::write_failed, what + " " + quote(target) + ": " + windows_error_text(code), target,
                errno_code(windows_errno(code)));
}

// Refuses a folder as the target, and says so when the target's folder does not exist.
inline void check_target(const std::string& target, const temp_location& where) {
    const std::wstring wide = utf8_to_wide(target);
    if (is_directory(wide))
        throw_error(errc::not_regular_file, "cannot write " + quote(target) + ": it is a directory", target,
                    errno_code(EISDIR));
    if (::GetFileAttributesW(wide.c_str()) != INVALID_FILE_ATTRIBUTES) return;
    const std::wstring folder = utf8_to_wide(where.folder);
    if (::GetFileAttributesW(folder.c_str()) == INVALID_FILE_ATTRIBUTES)
        throw_error(errc::file_not_found, "cannot write " + quote(target) + ": the folder " + quote(where.folder) +
                                              " does not exist", target, errno_code(ENOENT));
    if (!is_directory(folder))
        throw_error(errc::file_not_found, "cannot write " + quote(target) + ": " + quote(where.folder) + " is not a folder",
                    target, errno_code(ENOTDIR));
}

// MoveFileExW failed. Windows cannot replace a file that is open or mapped: real Windows says
// ERROR_SHARING_VIOLATION or ERROR_USER_MAPPED_FILE, Wine ERROR_ACCESS_DENIED. All three are
// one error, file_in_use; a folder in the way is reported as POSIX reports it.
[[noreturn]] inline void throw_replace_error(const std::string& target, const std::wstring& wide_target) {
    const DWORD code = ::GetLastError();
    if (is_directory(wide_target))
        throw_error(errc::not_regular_file, "cannot write " + quote(target) + ": it is a directory", target,
                    errno_code(EISDIR));
    if (code == ERROR_ACCESS_DENIED || code == ERROR_SHARING_VIOLATION || code == ERROR_USER_MAPPED_FILE)
        throw_error(errc::file_in_use,
                    "cannot replace " + quote(target) + ": the file is in use (open or mapped by this or another process)",
                    target, errno_code(EBUSY));
    throw_error(errc::write_failed, "cannot replace " + quote(target) + ": " + windows_error_text(code), target,
                errno_code(windows_errno(code)));
}

// A new temporary file beside a target, renamed over it by commit(); removed by discard() or
// the destructor if it was not committed.
class atomic_file {
public:
    // early_writeback and drop_behind are Linux hints (see the POSIX version); ignored here.
    explicit atomic_file(std::string target, bool /*early_writeback*/ = false, bool /*drop_behind*/ = false)
        : target_(std::move(target)) {
        const temp_location where = split_target(target_);
        check_target(target_, where);
        for (int attempt = 0;; ++attempt) {
            temp_ = utf8_to_wide(temp_name(where));
            // CREATE_NEW is O_EXCL: never opens (or follows a link to) an existing file.
            handle_ = ::CreateFileW(temp_.c_str(), GENERIC_WRITE, 0, nullptr, CREATE_NEW, FILE_ATTRIBUTE_NORMAL, nullptr);
            if (handle_ != INVALID_HANDLE_VALUE) break;
            if (::GetLastError() != ERROR_FILE_EXISTS || attempt + 1 == temp_name_attempts)
                throw_last_error("cannot create a temporary file beside", target_);
        }
    }
    ~atomic_file() { discard(); }
    atomic_file(const atomic_file&) = delete;
    atomic_file& operator=(const atomic_file&) = delete;

    const std::string& target() const noexcept { return target_; }
    bool streaming() const noexcept { return false; }  // devices are not written on Windows

    void write_at(std::uint64_t offset, const void* data, std::size_t size) {
        const auto* p = static_cast<const char*>(data);
        while (size > 0) {
            const DWORD chunk = static_cast<DWORD>(size < max_write_chunk ? size : max_write_chunk);
            OVERLAPPED at{};
            at.Offset = static_cast<DWORD>(offset & 0xffffffffu);
            at.OffsetHigh = static_cast<DWORD>(offset >> 32);
            DWORD done = 0;
            if (!::WriteFile(handle_, p, chunk, &done, &at)) throw_windows_write_error("cannot write", target_);
            if (done == 0) throw_error(errc::write_failed, "cannot write " + quote(target_) + ": no progress");
            p += done;
            offset += done;
            size -= done;
        }
    }

    // Flushes the data (when sync), closes the file and moves it over the target. With
    // MOVEFILE_WRITE_THROUGH the call returns only once the rename is on disk.
    void commit(bool sync) {
        if (sync && !::FlushFileBuffers(handle_)) throw_windows_write_error("cannot flush", target_);
        HANDLE h = handle_;
        handle_ = INVALID_HANDLE_VALUE;
        if (!::CloseHandle(h)) throw_windows_write_error("cannot close", target_);
        const std::wstring wide_target = utf8_to_wide(target_);
        const DWORD flags = MOVEFILE_REPLACE_EXISTING | (sync ? MOVEFILE_WRITE_THROUGH : 0);
        if (!::MoveFileExW(temp_.c_str(), wide_target.c_str(), flags)) throw_replace_error(target_, wide_target);
        temp_.clear();
    }

    void discard() noexcept {
        if (handle_ != INVALID_HANDLE_VALUE) {
            ::CloseHandle(handle_);
            handle_ = INVALID_HANDLE_VALUE;
        }
        if (!temp_.empty()) {
            ::DeleteFileW(temp_.c_str());
            temp_.clear();
        }
    }

private:
    std::string target_;
    std::wstring temp_;  // empty once renamed or removed
    HANDLE handle_ = INVALID_HANDLE_VALUE;
};

#else  // POSIX

[[noreturn]] inline void throw_write_error(int err, const std::string& what, const std::string& target) {
    throw_error(errc::write_failed, what + " " + quote(target) + ": " + std::strerror(err), target, errno_code(err));
}

// What save() does with its target, from stat() (which follows symbolic links).
enum class target_kind {
    replace,  // a regular file, a link to one, or nothing yet: write a temporary file, rename it
    stream,   // a character device or a FIFO (/dev/stdout, a pipe): write straight through
    overwrite,  // a regular file reached through /dev or /proc (/dev/stdout redirected to a
                // file): truncated and written through, since renaming there would replace
                // the /dev/stdout link itself
};

inline bool in_system_folder(const std::string& path) noexcept {
    return path.rfind("/dev/", 0) == 0 || path.rfind("/proc/", 0) == 0;
}

// Refuses a block device, a directory or a socket, and a target whose folder does not exist.
inline target_kind classify_target(const std::string& target, const temp_location& where) {
    struct stat st {};
    if (::stat(target.c_str(), &st) == 0) {
        if (S_ISREG(st.st_mode)) return in_system_folder(target) ? target_kind::overwrite : target_kind::replace;
        if (S_ISCHR(st.st_mode) || S_ISFIFO(st.st_mode)) return target_kind::stream;
        if (S_ISDIR(st.st_mode))
            throw_error(errc::not_regular_file, "cannot write " + quote(target) + ": it is a directory", target,
                        errno_code(EISDIR));
        const char* what = S_ISBLK(st.st_mode) ? "a block device" : S_ISSOCK(st.st_mode) ? "a socket" : "not a regular file";
        throw_error(errc::not_regular_file, "cannot write " + quote(target) + ": it is " + what +
                                                " (only regular files, character devices and FIFOs are written)",
                    target);
    }
    const int err = errno;
    if (err != ENOENT && err != ENOTDIR) return target_kind::replace;  // e.g. EACCES: creating the temporary file will say
    // A dangling link or a missing folder. Say which, rather than "cannot create a temporary file".
    if (::stat(where.folder.c_str(), &st) != 0) {
        const int folder_err = errno;
        if (folder_err == ENOENT)
            throw_error(errc::file_not_found, "cannot write " + quote(target) + ": the folder " + quote(where.folder) +
                                                  " does not exist", target, errno_code(ENOENT));
        return target_kind::replace;
    }
    if (!S_ISDIR(st.st_mode))
        throw_error(errc::file_not_found, "cannot write " + quote(target) + ": " + quote(where.folder) +
                                              " is not a folder", target, errno_code(ENOTDIR));
    return target_kind::replace;
}

class atomic_file {
public:
    // The temporary file is created with O_EXCL (it never opens, or follows a symlink to, an
    // existing file) and mode 0666, so the umask decides its permissions as for any new file.
    // early_writeback: start writing dirty pages to disk while the caller still produces
    // data (the caller will fsync anyway), instead of all of them at the fsync.
    // drop_behind: also drop written-back pages from the page cache behind the writer, so a
    // file larger than memory neither fills the cache nor evicts other data. Both are Linux
    // hints (sync_file_range, posix_fadvise); elsewhere they do nothing.
    explicit atomic_file(std::string target, bool early_writeback = false, bool drop_behind = false)
        : target_(std::move(target)), early_writeback_(early_writeback || drop_behind), drop_behind_(drop_behind) {
        const temp_location where = split_target(target_);
        folder_ = where.folder;
        const target_kind kind = classify_target(target_, where);
        if (kind != target_kind::replace) {
            open_stream(kind == target_kind::overwrite);
            return;
        }
        for (int attempt = 0;; ++attempt) {
            temp_ = temp_name(where);
            fd_ = ::open(temp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
            if (fd_ >= 0) break;
            const int err = errno;
            temp_.clear();
            if (err == EINTR || (err == EEXIST && attempt + 1 < temp_name_attempts)) continue;
            throw_errno(err, "cannot create a temporary file beside", target_);
        }
    }
    ~atomic_file() { discard(); }
    atomic_file(const atomic_file&) = delete;
    atomic_file& operator=(const atomic_file&) = delete;

    const std::string& target() const noexcept { return target_; }
    // True for a character device or FIFO target: bytes must come in file order.
    bool streaming() const noexcept { return streaming_; }

    // Positional write of all size bytes; EINTR and partial writes are retried. With SIGXFSZ
    // ignored, a write past RLIMIT_FSIZE fails with EFBIG and lands here as an error.
    void write_at(std::uint64_t offset, const void* data, std::size_t size) {
        constexpr auto max_offset = static_cast<std::uint64_t>(std::numeric_limits<off_t>::max());
        if (offset > max_offset || size > max_offset - offset)
            throw_error(errc::file_too_large, "cannot write " + quote(target_) + ": offset " + std::to_string(offset) +
                                                  " is past what this platform's off_t can address");
        if (streaming_ && offset != written_end_)
            throw_error(errc::stream_error, "cannot write " + quote(target_) + " at offset " + std::to_string(offset) +
                                                ": it is a device or FIFO, written in file order, and " +
                                                std::to_string(written_end_) + " bytes are written so far", target_);
        const auto* p = static_cast<const char*>(data);
        while (size > 0) {
            const std::size_t chunk = size < max_write_chunk ? size : max_write_chunk;
            const ssize_t done = streaming_ ? ::write(fd_, p, chunk) : ::pwrite(fd_, p, chunk, static_cast<off_t>(offset));
            if (done < 0) {
                if (errno == EINTR) continue;
                throw_write_error(errno, "cannot write", target_);
            }
            if (done == 0) throw_error(errc::write_failed, "cannot write " + quote(target_) + ": no progress");
            p += done;
            offset += static_cast<std::uint64_t>(done);
            size -= static_cast<std::size_t>(done);
            unsynced_ += static_cast<std::uint64_t>(done);
        }
        if (offset > written_end_) written_end_ = offset;
        start_writeback();
    }

    // fsync (when sync) and close the temporary file, rename it over the target, then fsync the
    // folder so the rename itself survives a crash. Any failure before the rename leaves the
    // target untouched (the destructor removes the temporary file).
    void commit(bool sync) {
        if (streaming_) {  // nothing to flush or rename: the bytes have gone to the device or reader
            const int fd = fd_;
            fd_ = -1;
            if (::close(fd) != 0 && errno != EINTR) throw_write_error(errno, "cannot close", target_);
            return;
        }
        if (deferred_error_ != 0) throw_write_error(deferred_error_, "cannot write", target_);
        if (sync && ::fsync(fd_) != 0) throw_write_error(errno, "cannot flush", target_);
        const int fd = fd_;
        fd_ = -1;
        // close() can report a delayed write error (NFS); it must not be retried on EINTR.
        if (::close(fd) != 0 && errno != EINTR) throw_write_error(errno, "cannot close", target_);
        if (::rename(temp_.c_str(), target_.c_str()) != 0) throw_write_error(errno, "cannot replace", target_);
        temp_.clear();
        if (sync) sync_folder();
    }

    void discard() noexcept {
        if (fd_ >= 0) {
            ::close(fd_);
            fd_ = -1;
        }
        if (!temp_.empty()) {
            ::unlink(temp_.c_str());
            temp_.clear();
        }
    }

private:
    // A character device or FIFO: opened for writing as it is (no O_CREAT), like cp or Python's
    // open(path, "wb"); a regular file behind /dev/stdout is truncated first. Opening a FIFO
    // waits for a reader.
    void open_stream(bool truncate) {
        streaming_ = true;
        early_writeback_ = drop_behind_ = false;
        do {
            fd_ = ::open(target_.c_str(), O_WRONLY | O_CLOEXEC | (truncate ? O_TRUNC : 0));
        } while (fd_ < 0 && errno == EINTR);
        if (fd_ < 0) throw_errno(errno, "cannot open", target_);
    }

    // Every writeback_window bytes, asks the kernel to start writing the file's dirty pages
    // (SYNC_FILE_RANGE_WRITE alone waits for nothing). The page-cache copy and the disk then
    // overlap and the final fsync has little left, so a durable write of a large file runs at
    // about the speed of the disk. With drop_behind, everything below the previous round's end
    // (which has had a whole window's time to reach the disk) is waited for and dropped from
    // the cache: at most about two windows of the file stay cached. A waiting sync_file_range
    // consumes a writeback error that fsync would otherwise report, so one is kept for commit.
    void start_writeback() noexcept {
        constexpr std::uint64_t writeback_window = std::uint64_t{32} << 20;
        if (!early_writeback_ || unsynced_ < writeback_window) return;
        unsynced_ = 0;
#if defined(__linux__) && defined(SYNC_FILE_RANGE_WRITE)
        if (drop_behind_ && previous_round_end_ > 0) {
            const auto end = static_cast<off_t>(previous_round_end_);
            if (::sync_file_range(fd_, 0, end,
                                  SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER) != 0) {
                if (deferred_error_ == 0) deferred_error_ = errno;
            } else {
                (void)::posix_fadvise(fd_, 0, end, POSIX_FADV_DONTNEED);
            }
        }
        if (::sync_file_range(fd_, 0, 0, SYNC_FILE_RANGE_WRITE) != 0 && deferred_error_ == 0)  // 0, 0: whole file
            deferred_error_ = errno;
        previous_round_end_ = written_end_;
#endif
    }

    // The target already holds the new contents, so a failure here cannot be undone; an I/O
    // error is still reported (the rename may not survive a crash), saying the file was
    // replaced. File systems without fsync on folders (EINVAL, ENOTSUP) and folders we may not
    // open for reading (EACCES, EPERM) leave nothing to do.
    void sync_folder() {
        int dir = -1;
        do {
            dir = ::open(folder_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        } while (dir < 0 && errno == EINTR);
        int err = dir < 0 ? errno : 0;
        if (dir >= 0) {
            if (::fsync(dir) != 0) err = errno;
            ::close(dir);
        }
        if (err != 0 && err != EINVAL && err != ENOTSUP && err != EACCES && err != EPERM)
            throw_error(errc::write_failed, "replaced " + quote(target_) + ", but cannot sync its folder " +
                                                quote(folder_) + " to make the rename durable: " + std::strerror(err),
                        target_, errno_code(err));
    }

    std::string target_;
    std::string temp_;    // empty once renamed or removed
    std::string folder_;
    int fd_ = -1;
    bool streaming_ = false;
    bool early_writeback_ = false;
    bool drop_behind_ = false;
    std::uint64_t unsynced_ = 0;            // bytes written since the last writeback round
    std::uint64_t written_end_ = 0;         // the highest offset written so far
    std::uint64_t previous_round_end_ = 0;  // written_end_ at the last writeback round
    int deferred_error_ = 0;                // a write-back error seen by sync_file_range
};

#endif

} // namespace safetensors::detail
