// safetensors-hpp: the OS layer. Everything that differs between operating systems lives in
// os_posix.hpp or os_win32.hpp (chosen here by os_config.hpp), behind one interface in
// namespace safetensors::detail::os. Paths are UTF-8; errors are safetensors::error with the
// path and an errno-valued system_code() on every platform.
//
// Capabilities (constexpr)
//   has_direct_io             open_direct can bypass the page cache (O_DIRECT, Linux)
//   has_writeback_control     write_back starts/drops writeback (sync_file_range, Linux)
//   has_huge_pages            allocate_pages asks for transparent huge pages (Linux)
//   folder_cut_chars          characters after which a file name starts ("/", or "/\\:")
//   is_separator(c)           c separates folders in a path
//   max_offset                the largest offset a write may reach (off_t)
// Errors (from the last failed call: errno, GetLastError)
//   throw_last_error          throws the error for "<what> <path>" (not found, denied, ...)
//   throw_last_write_error    the same as errc::write_failed
// Files (os::file: an owned descriptor or HANDLE, move-only, valid())
//   open_read(path, size)     a regular file for reading, and its size; throws otherwise
//   open_direct(path, size)   the same with O_DIRECT; invalid where it is refused
//   create_new(path, taken)   a new file for writing (O_EXCL); invalid, taken, if it exists
//   open_stream(path, trunc)  an existing device, FIFO or file for writing in order
//   read_some / write_some    one positional transfer (EINTR retried): count, 0 or -1
//   read_fully / write_fully  all the bytes, in chunks; the only loops over read/write_some
//   max_io_chunk              the most one read_some / write_some is asked for (1 GiB)
//   throw_file_shrank         the short_read error of a file cut after it was opened
//   flush(f)                  fsync / FlushFileBuffers
//   close(f)                  closes, reporting a delayed write error
//   remove(path)              unlink / DeleteFileW, no error
//   replace(temp, target, s)  atomic rename over target (write-through when s); throws
//   sync_folder(folder, t)    makes a rename in folder durable (fsync of the folder)
//   write_back(f, drop, err)  starts writeback of dirty pages, drops [0, drop) from the cache
//   check_target(t, folder)   how save() writes t (replace, stream, overwrite); throws
//   is_directory / exists     what a path names (following links)
//   make_folder(path)         mkdir of one folder; false when something else is there
// Memory
//   map_read(f, n, pop, path) os::mapping: a read-only map of the whole file (data())
//   advise(mapping, advice)   access-pattern hint (madvise)
//   allocate_pages / free_pages   fresh pages from the kernel (huge pages where possible)
// Entropy
//   entropy()                 64 random bits from the system, 0 where there are none
// Shared libraries
//   load_library(name)        dlopen / LoadLibrary, kept loaded; null with the reason in text
//   library_function(l, n, p) the function n of library l into p (a function pointer); false if absent
// Locks and threads
//   mutex                     lock() / unlock(), also without std::mutex (MinGW win32 threads)
//   thread                    start(run, arg) runs run(arg) on a new thread (false: none left);
//                             join() waits for it (the destructor joins too)
//   (both defined here over native_mutex / native_thread and the few functions each
//   implementation gives: mutex_init/destroy/lock/unlock, start_thread, join_thread)
// Shared by both (os_config.hpp, no OS header): the enums advice and target_kind, and the
// macros SAFETENSORS_DETAIL_OS_WINDOWS, SAFETENSORS_DETAIL_NO_THREADS (no std::thread) and
// SAFETENSORS_DETAIL_AVX_STACK_OK. Anything else in os_posix.hpp / os_win32.hpp (throw_errno,
// windows_errno, utf8_to_wide, ...) is a helper of that file: callers use only the above.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "../error.hpp"
#include "os_config.hpp"

#if SAFETENSORS_DETAIL_OS_WINDOWS
#include "os_win32.hpp"
#else
#include "os_posix.hpp"
#endif

namespace safetensors::detail::os {

// A plain mutex (lock, unlock): std::mutex does not exist with MinGW's win32 thread model.
class mutex {
public:
    mutex() noexcept { mutex_init(native_); }
    ~mutex() { mutex_destroy(native_); }
    mutex(const mutex&) = delete;
    mutex& operator=(const mutex&) = delete;
    void lock() noexcept { mutex_lock(native_); }
    void unlock() noexcept { mutex_unlock(native_); }

private:
    native_mutex native_;
};

// A thread running run(arg), started by start(); joined by join() or the destructor. Neither
// copied nor moved: the new thread reads run and arg from it. Not std::thread, whose
// constructor template costs about 3.5 MB of compiler memory in every file that reads files.
class thread {
public:
    thread() noexcept = default;
    ~thread() { join(); }
    thread(const thread&) = delete;
    thread& operator=(const thread&) = delete;

    // Whether the thread started (false when the system has no more threads to give).
    bool start(void (*run)(void*), void* arg) noexcept {
        start_ = {run, arg};
        started_ = start_thread(handle_, &start_);
        return started_;
    }
    // Waits until run(arg) has returned; nothing when the thread did not start.
    void join() noexcept {
        if (started_) join_thread(handle_);
        started_ = false;
    }

private:
    native_thread handle_{};
    thread_start start_;
    bool started_ = false;
};

// Linux transfers at most about 2 GiB per call and Windows takes a 32-bit count: 1 GiB a call.
inline constexpr std::size_t max_io_chunk = std::size_t{1} << 30;

// The file ended before a read did: it was cut after open() measured it.
[[noreturn]] inline void throw_file_shrank(const std::string& path, std::uint64_t offset) {
    throw_error(errc::short_read, "unexpected end of file in " + quote(path) + " at offset " + std::to_string(offset) +
                                      " (did the file shrink after it was opened?)",
                path);
}

// Reads [offset, offset + length) of f into destination, in chunks; errors name path and say
// what ("cannot read"). Reading stops early at stop_at (a known end of file: a short read
// there is the end of an O_DIRECT block); the end of the file anywhere else is an error.
inline void read_fully(const file& f, std::uint64_t offset, void* destination, std::size_t length,
                       const std::string& path, const char* what = "cannot read",
                       std::uint64_t stop_at = UINT64_MAX) {
    auto* out = static_cast<char*>(destination);
    while (length > 0 && offset < stop_at) {
        const std::size_t chunk = length < max_io_chunk ? length : max_io_chunk;
        const long long got = read_some(f, offset, out, chunk);
        if (got < 0) throw_last_error(what, path);
        if (got == 0) throw_file_shrank(path, offset);
        out += got;
        offset += static_cast<std::uint64_t>(got);
        length -= static_cast<std::size_t>(got);
    }
}

// Writes all size bytes at offset (sequential: at the current position, for a device or
// FIFO), in chunks; partial writes continue where they stopped.
inline void write_fully(const file& f, std::uint64_t offset, const void* data, std::size_t size,
                        const std::string& target, bool sequential = false) {
    const auto* p = static_cast<const char*>(data);
    while (size > 0) {
        const std::size_t chunk = size < max_io_chunk ? size : max_io_chunk;
        const long long done = write_some(f, offset, p, chunk, sequential);
        if (done < 0) throw_last_write_error("cannot write", target);
        if (done == 0) throw_error(errc::write_failed, "cannot write " + quote(target) + ": no progress");
        p += done;
        offset += static_cast<std::uint64_t>(done);
        size -= static_cast<std::size_t>(done);
    }
}

} // namespace safetensors::detail::os
