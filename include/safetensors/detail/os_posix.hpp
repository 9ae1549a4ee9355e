// safetensors-hpp: the OS layer for POSIX systems (Linux, macOS, the BSDs). Include os.hpp,
// which documents the interface; os_win32.hpp has the same names for Windows.
#pragma once

#include "os_config.hpp"

#if !SAFETENSORS_DETAIL_OS_WINDOWS

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <utility>

#include <dlfcn.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "../error.hpp"

namespace safetensors::detail::os {

// ---- Capabilities ---------------------------------------------------------------------------

#if defined(__linux__) && defined(O_DIRECT)
inline constexpr bool has_direct_io = true;
inline constexpr int direct_flag = O_DIRECT;
#else
inline constexpr bool has_direct_io = false;
inline constexpr int direct_flag = 0;
#endif

#if defined(__linux__) && defined(SYNC_FILE_RANGE_WRITE)
inline constexpr bool has_writeback_control = true;
#else
inline constexpr bool has_writeback_control = false;
#endif

// Transparent huge pages for large anonymous buffers; never under ASan, which keeps its own
// view of every heap buffer.
#if defined(__linux__) && defined(MADV_HUGEPAGE) && !defined(__SANITIZE_ADDRESS__)
#define SAFETENSORS_DETAIL_OS_HUGE_PAGES 1
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#undef SAFETENSORS_DETAIL_OS_HUGE_PAGES
#endif
#endif
#endif
#if defined(SAFETENSORS_DETAIL_OS_HUGE_PAGES)
inline constexpr bool has_huge_pages = true;
#else
inline constexpr bool has_huge_pages = false;
#endif

// Characters after which a target's file name starts.
inline constexpr const char* folder_cut_chars = "/";
inline constexpr bool is_separator(char c) noexcept { return c == '/'; }
// The largest file offset a write may reach.
inline constexpr std::uint64_t max_offset = static_cast<std::uint64_t>(std::numeric_limits<off_t>::max());

// ---- Errors ---------------------------------------------------------------------------------

[[noreturn]] inline void throw_errno(int err, const std::string& what, const std::string& path) {
    errc e = errc::io_error;
    if (err == ENOENT || err == ENOTDIR) e = errc::file_not_found;
    if (err == EACCES || err == EPERM) e = errc::permission_denied;
    if (err == ENOMEM || err == EFBIG || err == EOVERFLOW) e = errc::file_too_large;
    throw_error(e, what + " " + quote(path) + ": " + std::strerror(err), path, errno_code(err));
}

[[noreturn]] inline void throw_write_errno(int err, const std::string& what, const std::string& target) {
    throw_error(errc::write_failed, what + " " + quote(target) + ": " + std::strerror(err), target, errno_code(err));
}

[[noreturn]] inline void throw_last_error(const std::string& what, const std::string& path) {
    throw_errno(errno, what, path);
}

[[noreturn]] inline void throw_last_write_error(const std::string& what, const std::string& target) {
    throw_write_errno(errno, what, target);
}

// ---- Files ----------------------------------------------------------------------------------

// Owns a file descriptor; move-only.
class file {
public:
    file() noexcept = default;
    explicit file(int fd) noexcept : fd_(fd) {}
    file(file&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
    file& operator=(file&& other) noexcept {
        if (this != &other) {
            reset();
            fd_ = other.fd_;
            other.fd_ = -1;
        }
        return *this;
    }
    ~file() { reset(); }

    bool valid() const noexcept { return fd_ >= 0; }
    int native() const noexcept { return fd_; }
    int release() noexcept {
        const int fd = fd_;
        fd_ = -1;
        return fd;
    }

private:
    void reset() noexcept {
        if (fd_ >= 0) ::close(fd_);
        fd_ = -1;
    }
    int fd_ = -1;
};

inline int open_retrying(const char* path, int flags, mode_t mode = 0) noexcept {
    int fd = -1;
    do {
        fd = ::open(path, flags, mode);
    } while (fd < 0 && errno == EINTR);
    return fd;
}

// The size of an open regular file; name_directories: say "is a directory" for one.
inline std::uint64_t regular_size(const file& f, const std::string& path, bool name_directories) {
    struct stat st {};
    if (::fstat(f.native(), &st) != 0) throw_errno(errno, "cannot stat", path);
    if (name_directories && S_ISDIR(st.st_mode)) throw_error(errc::not_regular_file, quote(path) + " is a directory");
    if (!S_ISREG(st.st_mode)) throw_error(errc::not_regular_file, quote(path) + " is not a regular file");
    return static_cast<std::uint64_t>(st.st_size);
}

inline file open_read(const std::string& path, std::uint64_t& size) {
    // O_NONBLOCK: opening a FIFO must not wait for a writer; we refuse it right after.
    file f(open_retrying(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
    if (!f.valid()) throw_errno(errno, "cannot open", path);
    size = regular_size(f, path, true);
    return f;
}

// O_DIRECT: invalid when the platform or the file system refuses it (tmpfs and some overlay
// and network file systems answer EINVAL); callers then read buffered.
inline file open_direct(const std::string& path, std::uint64_t& size) {
    if (!has_direct_io) return {};
    file f(open_retrying(path.c_str(), O_RDONLY | O_CLOEXEC | direct_flag));
    if (!f.valid()) {
        if (errno == EINVAL) return {};
        throw_errno(errno, "cannot open", path);
    }
    size = regular_size(f, path, false);
    return f;
}

// O_EXCL: never opens (or follows a symlink to) an existing file; mode 0666, so the umask
// decides the permissions as for any new file. Invalid on failure; name_taken says EEXIST.
inline file create_new(const std::string& path, bool& name_taken) {
    file f(open_retrying(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666));
    name_taken = !f.valid() && errno == EEXIST;
    return f;
}

// A character device or FIFO opened for writing as it is (no O_CREAT), like cp; a regular
// file behind /dev/stdout is truncated first. Opening a FIFO waits for a reader.
inline file open_stream(const std::string& path, bool truncate) {
    file f(open_retrying(path.c_str(), O_WRONLY | O_CLOEXEC | (truncate ? O_TRUNC : 0)));
    if (!f.valid()) throw_errno(errno, "cannot open", path);
    return f;
}

// One positional read of at most n bytes (EINTR retried): the count, 0 at the end of the
// file, or -1 with the error kept for throw_last_error.
inline long long read_some(const file& f, std::uint64_t offset, void* destination, std::size_t n) noexcept {
    for (;;) {
        const ssize_t got = ::pread(f.native(), destination, n, static_cast<off_t>(offset));
        if (got >= 0 || errno != EINTR) return got;
    }
}

// One write of at most n bytes (EINTR retried); sequential: at the current position (a
// device or FIFO), else at offset. The count, or -1 with the error kept.
inline long long write_some(const file& f, std::uint64_t offset, const void* data, std::size_t n,
                            bool sequential) noexcept {
    for (;;) {
        const ssize_t done = sequential ? ::write(f.native(), data, n)
                                        : ::pwrite(f.native(), data, n, static_cast<off_t>(offset));
        if (done >= 0 || errno != EINTR) return done;
    }
}

inline bool flush(const file& f) noexcept { return ::fsync(f.native()) == 0; }

// close() can report a delayed write error (NFS); it must not be retried on EINTR.
inline bool close(file& f) noexcept { return ::close(f.release()) == 0 || errno == EINTR; }

inline bool remove(const std::string& path) noexcept { return ::unlink(path.c_str()) == 0; }

// Renames temp over target; sync is for the folder (sync_folder), not needed here.
inline void replace(const std::string& temp, const std::string& target, bool /*sync*/) {
    if (::rename(temp.c_str(), target.c_str()) != 0) throw_write_errno(errno, "cannot replace", target);
}

// fsync of target's folder after the rename, so the rename itself survives a crash. The
// target already holds the new contents, so a failure cannot be undone; an I/O error is still
// reported, saying the file was replaced. File systems without fsync on folders (EINVAL,
// ENOTSUP) and folders we may not open for reading (EACCES, EPERM) leave nothing to do.
inline void sync_folder(const std::string& folder, const std::string& target) {
    const int dir = open_retrying(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int err = dir < 0 ? errno : 0;
    if (dir >= 0) {
        if (::fsync(dir) != 0) err = errno;
        ::close(dir);
    }
    if (err != 0 && err != EINVAL && err != ENOTSUP && err != EACCES && err != EPERM)
        throw_error(errc::write_failed, "replaced " + quote(target) + ", but cannot sync its folder " + quote(folder) +
                                            " to make the rename durable: " + std::strerror(err),
                    target, errno_code(err));
}

// Asks the kernel to start writing the file's dirty pages (SYNC_FILE_RANGE_WRITE alone waits
// for nothing). drop_below > 0: first waits for [0, drop_below) to reach the disk and drops
// it from the page cache. A waiting sync_file_range consumes a writeback error that fsync
// would otherwise report, so the first one is kept in deferred_error. Nothing elsewhere.
inline void write_back(const file& f, std::uint64_t drop_below, int& deferred_error) noexcept {
#if defined(__linux__) && defined(SYNC_FILE_RANGE_WRITE)
    if (drop_below > 0) {
        const auto end = static_cast<off_t>(drop_below);
        if (::sync_file_range(f.native(), 0, end,
                              SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER) != 0) {
            if (deferred_error == 0) deferred_error = errno;
        } else {
            (void)::posix_fadvise(f.native(), 0, end, POSIX_FADV_DONTNEED);
        }
    }
    if (::sync_file_range(f.native(), 0, 0, SYNC_FILE_RANGE_WRITE) != 0 && deferred_error == 0)  // 0, 0: whole file
        deferred_error = errno;
#else
    (void)f;
    (void)drop_below;
    (void)deferred_error;
#endif
}

// ---- Save targets and folders ---------------------------------------------------------------

inline bool in_system_folder(const std::string& path) noexcept {
    return path.rfind("/dev/", 0) == 0 || path.rfind("/proc/", 0) == 0;
}

// Refuses a block device, a directory or a socket, and a target whose folder does not exist;
// from stat(), which follows symbolic links.
inline target_kind check_target(const std::string& target, const std::string& folder) {
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
    if (::stat(folder.c_str(), &st) != 0) {
        if (errno == ENOENT)
            throw_error(errc::file_not_found, "cannot write " + quote(target) + ": the folder " + quote(folder) +
                                                  " does not exist", target, errno_code(ENOENT));
        return target_kind::replace;
    }
    if (!S_ISDIR(st.st_mode))
        throw_error(errc::file_not_found, "cannot write " + quote(target) + ": " + quote(folder) + " is not a folder",
                    target, errno_code(ENOTDIR));
    return target_kind::replace;
}

// Whether path names a folder (following symbolic links); false when it does not exist.
inline bool is_directory(const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

inline bool exists(const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0;
}

// Creates one folder (0777 & ~umask). True when it is there now (made, or a folder already);
// false when something else is in the way; throws on any other error.
inline bool make_folder(const std::string& path) {
    if (::mkdir(path.c_str(), 0777) == 0) return true;
    const int err = errno;
    if (err == EEXIST) return is_directory(path);
    throw_errno(err, "cannot create the folder", path);
}

// ---- Memory ---------------------------------------------------------------------------------

// A read-only, private map of a whole file; unmapped on destruction; move-only.
class mapping {
public:
    mapping() noexcept = default;
    mapping(mapping&& other) noexcept : data_(other.data_), size_(other.size_) { other.data_ = nullptr; }
    mapping& operator=(mapping&& other) noexcept {
        std::swap(data_, other.data_);
        std::swap(size_, other.size_);
        return *this;
    }
    ~mapping() {
        if (data_ != nullptr) ::munmap(data_, size_);
    }
    const void* data() const noexcept { return data_; }

private:
    friend mapping map_read(const file&, std::size_t, bool, const std::string&);
    friend void advise(const mapping&, advice) noexcept;
    void* data_ = nullptr;
    std::size_t size_ = 0;
};

// length > 0. populate: fault every page in now (MAP_POPULATE, where it exists).
inline mapping map_read(const file& f, std::size_t length, bool populate, const std::string& path) {
    int flags = MAP_PRIVATE;
#if defined(MAP_POPULATE)
    if (populate) flags |= MAP_POPULATE;
#else
    (void)populate;
#endif
    void* p = ::mmap(nullptr, length, PROT_READ, flags, f.native(), 0);
    if (p == MAP_FAILED) throw_errno(errno, "cannot map", path);
    mapping m;
    m.data_ = p;
    m.size_ = length;
    return m;
}

inline void advise(const mapping& m, advice hint) noexcept {
    int flag = MADV_NORMAL;
    switch (hint) {
        case advice::normal: return;
        case advice::sequential: flag = MADV_SEQUENTIAL; break;
        case advice::random: flag = MADV_RANDOM; break;
        case advice::willneed: flag = MADV_WILLNEED; break;
    }
    ::madvise(m.data_, m.size_, flag);  // only a hint: failure changes nothing we rely on
}

// Fresh zeroed pages straight from the kernel, marked for huge pages where has_huge_pages
// (a hint: without THP the pages are just smaller). Null when there is no memory.
inline void* allocate_pages(std::size_t size) noexcept {
    void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return nullptr;
#if defined(SAFETENSORS_DETAIL_OS_HUGE_PAGES)
    ::madvise(p, size, MADV_HUGEPAGE);
#endif
    return p;
}

inline void free_pages(void* p, std::size_t size) noexcept { ::munmap(p, size); }

// ---- Shared libraries ---------------------------------------------------------------------

// A library loaded for the rest of the process (never closed: its functions stay callable).
inline void* load_library(const char* name, std::string& why) {
    void* library = ::dlopen(name, RTLD_NOW | RTLD_LOCAL);
    if (library == nullptr) {
        const char* text = ::dlerror();
        why = text != nullptr ? text : "dlopen failed";
    }
    return library;
}

template <class Function>
bool library_function(void* library, const char* name, Function& out) noexcept {
    void* address = ::dlsym(library, name);
    if (address == nullptr) return false;
    static_assert(sizeof out == sizeof address, "a function pointer the size of a data pointer (POSIX)");
    std::memcpy(&out, &address, sizeof out);
    return true;
}

// ---- Entropy --------------------------------------------------------------------------------

// 64 bits from the kernel's random source, or 0 where it cannot be read (a chroot without
// /dev): callers mix it with other inputs. Read directly, so that <random> is not compiled
// into every file that includes the writer.
inline std::uint64_t entropy() noexcept {
    std::uint64_t value = 0;
    const int fd = open_retrying("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    if (::read(fd, &value, sizeof value) != static_cast<ssize_t>(sizeof value)) value = 0;
    ::close(fd);
    return value;
}

// ---- Locks and threads (the classes are in os.hpp) -------------------------------------------

using native_mutex = pthread_mutex_t;
inline void mutex_init(native_mutex& m) noexcept { ::pthread_mutex_init(&m, nullptr); }
inline void mutex_destroy(native_mutex& m) noexcept { ::pthread_mutex_destroy(&m); }
inline void mutex_lock(native_mutex& m) noexcept { ::pthread_mutex_lock(&m); }
inline void mutex_unlock(native_mutex& m) noexcept { ::pthread_mutex_unlock(&m); }

using native_thread = pthread_t;

inline void* thread_entry(void* start) {
    const thread_start& s = *static_cast<const thread_start*>(start);
    s.run(s.arg);
    return nullptr;
}
// Runs start->run(start->arg) on a new thread; false when the system has none left to give.
inline bool start_thread(native_thread& handle, thread_start* start) noexcept {
    return ::pthread_create(&handle, nullptr, &thread_entry, start) == 0;
}
inline void join_thread(native_thread& handle) noexcept { ::pthread_join(handle, nullptr); }

} // namespace safetensors::detail::os

#endif // !SAFETENSORS_DETAIL_OS_WINDOWS
