// safetensors-hpp: the OS layer for Windows. Include os.hpp, which documents the interface;
// os_posix.hpp has the same names for POSIX systems.
#pragma once

#include "os_config.hpp"

#if SAFETENSORS_DETAIL_OS_WINDOWS

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <utility>

#ifndef NOMINMAX
#define NOMINMAX
#endif
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#include <windows.h>

#include <process.h>  // _beginthreadex

#include "../error.hpp"

namespace safetensors::detail::os {

// ---- Capabilities ---------------------------------------------------------------------------

inline constexpr bool has_direct_io = false;          // reads are buffered
inline constexpr bool has_writeback_control = false;  // no sync_file_range
inline constexpr bool has_huge_pages = false;         // large pages need a privilege

inline constexpr const char* folder_cut_chars = "/\\:";
inline constexpr bool is_separator(char c) noexcept { return c == '/' || c == '\\'; }
inline constexpr std::uint64_t max_offset = std::numeric_limits<std::uint64_t>::max();

// ---- Errors ---------------------------------------------------------------------------------

inline std::wstring utf8_to_wide(const std::string& text) {
    if (text.empty()) return {};
    int n = ::MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, text.data(), static_cast<int>(text.size()),
                                  nullptr, 0);
    if (n <= 0) throw_error(errc::invalid_argument, "path is not valid UTF-8: " + quote(text));
    std::wstring wide(static_cast<std::size_t>(n), L'\0');
    ::MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, text.data(), static_cast<int>(text.size()), &wide[0], n);
    return wide;
}

// The errno value a Windows error stands for, so system_code() compares equal to the same
// std::errc on every platform; EIO for codes without a POSIX equivalent.
inline int windows_errno(DWORD code) noexcept {
    switch (code) {
    case ERROR_FILE_NOT_FOUND:
    case ERROR_PATH_NOT_FOUND:
    case ERROR_INVALID_DRIVE: return ENOENT;
    case ERROR_ACCESS_DENIED: return EACCES;
    case ERROR_DISK_FULL:
    case ERROR_HANDLE_DISK_FULL: return ENOSPC;
    case ERROR_SHARING_VIOLATION:
    case ERROR_LOCK_VIOLATION:
    case ERROR_USER_MAPPED_FILE: return EBUSY;
    case ERROR_FILE_EXISTS:
    case ERROR_ALREADY_EXISTS: return EEXIST;
    case ERROR_WRITE_PROTECT: return EROFS;
    case ERROR_NOT_ENOUGH_MEMORY:
    case ERROR_OUTOFMEMORY: return ENOMEM;
    case ERROR_INVALID_NAME: return EINVAL;
    case ERROR_DIRECTORY: return ENOTDIR;
    default: return EIO;
    }
}

// The text of a Windows error: the C library's wording for the codes that have a POSIX
// equivalent, so a message reads the same on every platform; the number otherwise.
inline std::string windows_error_text(DWORD code) {
    const int err = windows_errno(code);
    if (err == EIO || err == EBUSY) return "Windows error " + std::to_string(code);
    return std::strerror(err);
}

[[noreturn]] inline void throw_last_error(const std::string& what, const std::string& path) {
    const DWORD code = ::GetLastError();
    const int err = windows_errno(code);
    errc e = errc::io_error;
    if (err == ENOENT) e = errc::file_not_found;
    if (err == EACCES) e = errc::permission_denied;
    throw_error(e, what + " " + quote(path) + ": " + windows_error_text(code), path, errno_code(err));
}

[[noreturn]] inline void throw_last_write_error(const std::string& what, const std::string& target) {
    const DWORD code = ::GetLastError();
    throw_error(errc::write_failed, what + " " + quote(target) + ": " + windows_error_text(code), target,
                errno_code(windows_errno(code)));
}

inline bool is_directory(const std::wstring& path) {
    const DWORD attributes = ::GetFileAttributesW(path.c_str());
    return attributes != INVALID_FILE_ATTRIBUTES && (attributes & FILE_ATTRIBUTE_DIRECTORY) != 0;
}

// ---- Files ----------------------------------------------------------------------------------

// Owns a HANDLE; move-only.
class file {
public:
    file() noexcept = default;
    explicit file(HANDLE h) noexcept : h_(h) {}
    file(file&& other) noexcept : h_(other.release()) {}
    file& operator=(file&& other) noexcept {
        if (this != &other) {
            reset();
            h_ = other.release();
        }
        return *this;
    }
    ~file() { reset(); }

    bool valid() const noexcept { return h_ != INVALID_HANDLE_VALUE && h_ != nullptr; }
    HANDLE native() const noexcept { return h_; }
    HANDLE release() noexcept {
        const HANDLE h = h_;
        h_ = INVALID_HANDLE_VALUE;
        return h;
    }

private:
    void reset() noexcept {
        if (valid()) ::CloseHandle(h_);
        h_ = INVALID_HANDLE_VALUE;
    }
    HANDLE h_ = INVALID_HANDLE_VALUE;
};

inline file open_read(const std::string& path, std::uint64_t& size) {
    const std::wstring wide = utf8_to_wide(path);
    file f(::CreateFileW(wide.c_str(), GENERIC_READ, FILE_SHARE_READ | FILE_SHARE_DELETE, nullptr, OPEN_EXISTING,
                         FILE_ATTRIBUTE_NORMAL, nullptr));
    if (!f.valid()) {
        // CreateFileW refuses a folder with "access denied"; say what it is, as POSIX does.
        const DWORD code = ::GetLastError();
        if (code == ERROR_ACCESS_DENIED && is_directory(wide))
            throw_error(errc::not_regular_file, quote(path) + " is a directory");
        ::SetLastError(code);
        throw_last_error("cannot open", path);
    }
    if (::GetFileType(f.native()) != FILE_TYPE_DISK)
        throw_error(errc::not_regular_file, quote(path) + " is not a regular file");
    LARGE_INTEGER bytes{};
    if (!::GetFileSizeEx(f.native(), &bytes)) throw_last_error("cannot get the size of", path);
    size = static_cast<std::uint64_t>(bytes.QuadPart);
    return f;
}

// No O_DIRECT here: always invalid, and callers read buffered.
inline file open_direct(const std::string& /*path*/, std::uint64_t& size) {
    size = 0;
    return {};
}

// CREATE_NEW is O_EXCL: never opens (or follows a link to) an existing file. Invalid on
// failure; name_taken says the name exists.
inline file create_new(const std::string& path, bool& name_taken) {
    const std::wstring wide = utf8_to_wide(path);
    file f(::CreateFileW(wide.c_str(), GENERIC_WRITE, 0, nullptr, CREATE_NEW, FILE_ATTRIBUTE_NORMAL, nullptr));
    name_taken = !f.valid() && ::GetLastError() == ERROR_FILE_EXISTS;
    return f;
}

// check_target never asks for a stream here; an existing file opened for writing as it is.
inline file open_stream(const std::string& path, bool truncate) {
    const std::wstring wide = utf8_to_wide(path);
    file f(::CreateFileW(wide.c_str(), GENERIC_WRITE, 0, nullptr, truncate ? TRUNCATE_EXISTING : OPEN_EXISTING,
                         FILE_ATTRIBUTE_NORMAL, nullptr));
    if (!f.valid()) throw_last_error("cannot open", path);
    return f;
}

// n is at most max_io_chunk (a DWORD count). The count, 0 at the end of the file, or -1 with
// the error kept for throw_last_error.
inline long long read_some(const file& f, std::uint64_t offset, void* destination, std::size_t n) noexcept {
    OVERLAPPED at{};
    at.Offset = static_cast<DWORD>(offset & 0xffffffffu);
    at.OffsetHigh = static_cast<DWORD>(offset >> 32);
    DWORD got = 0;
    if (!::ReadFile(f.native(), destination, static_cast<DWORD>(n), &got, &at)) return -1;
    return got;
}

inline long long write_some(const file& f, std::uint64_t offset, const void* data, std::size_t n,
                            bool /*sequential*/) noexcept {
    OVERLAPPED at{};
    at.Offset = static_cast<DWORD>(offset & 0xffffffffu);
    at.OffsetHigh = static_cast<DWORD>(offset >> 32);
    DWORD done = 0;
    if (!::WriteFile(f.native(), data, static_cast<DWORD>(n), &done, &at)) return -1;
    return done;
}

inline bool flush(const file& f) noexcept { return ::FlushFileBuffers(f.native()) != 0; }

inline bool close(file& f) noexcept { return ::CloseHandle(f.release()) != 0; }

inline bool remove(const std::string& path) noexcept {
    try {
        return ::DeleteFileW(utf8_to_wide(path).c_str()) != 0;
    } catch (...) {
        return false;
    }
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

// Moves temp over target. With MOVEFILE_WRITE_THROUGH (sync) the call returns only once the
// rename is on disk, so sync_folder has nothing left to do.
inline void replace(const std::string& temp, const std::string& target, bool sync) {
    const std::wstring wide_temp = utf8_to_wide(temp);
    const std::wstring wide_target = utf8_to_wide(target);
    const DWORD flags = MOVEFILE_REPLACE_EXISTING | (sync ? MOVEFILE_WRITE_THROUGH : 0);
    if (!::MoveFileExW(wide_temp.c_str(), wide_target.c_str(), flags)) throw_replace_error(target, wide_target);
}

inline void sync_folder(const std::string& /*folder*/, const std::string& /*target*/) {}

inline void write_back(const file& /*f*/, std::uint64_t /*drop_below*/, int& /*deferred_error*/) noexcept {}

// ---- Save targets and folders ---------------------------------------------------------------

// Refuses a folder as the target, and says so when the target's folder does not exist.
// Devices are not written here: every target is replaced.
inline target_kind check_target(const std::string& target, const std::string& folder) {
    const std::wstring wide = utf8_to_wide(target);
    if (is_directory(wide))
        throw_error(errc::not_regular_file, "cannot write " + quote(target) + ": it is a directory", target,
                    errno_code(EISDIR));
    if (::GetFileAttributesW(wide.c_str()) != INVALID_FILE_ATTRIBUTES) return target_kind::replace;
    const std::wstring wide_folder = utf8_to_wide(folder);
    if (::GetFileAttributesW(wide_folder.c_str()) == INVALID_FILE_ATTRIBUTES)
        throw_error(errc::file_not_found, "cannot write " + quote(target) + ": the folder " + quote(folder) +
                                              " does not exist", target, errno_code(ENOENT));
    if (!is_directory(wide_folder))
        throw_error(errc::file_not_found, "cannot write " + quote(target) + ": " + quote(folder) + " is not a folder",
                    target, errno_code(ENOTDIR));
    return target_kind::replace;
}

inline bool is_directory(const std::string& path) { return is_directory(utf8_to_wide(path)); }

inline bool exists(const std::string& path) {
    return ::GetFileAttributesW(utf8_to_wide(path).c_str()) != INVALID_FILE_ATTRIBUTES;
}

// Creates one folder. True when it is there now (made, a folder already, or a drive "C:");
// false when something else is in the way; throws on any other error.
inline bool make_folder(const std::string& path) {
    if (path.size() == 2 && path[1] == ':') return true;
    if (::CreateDirectoryW(utf8_to_wide(path).c_str(), nullptr) || is_directory(path)) return true;
    if (!exists(path)) throw_last_error("cannot create the folder", path);
    return false;
}

// ---- Memory ---------------------------------------------------------------------------------

// A read-only view of a whole file; unmapped on destruction; move-only.
class mapping {
public:
    mapping() noexcept = default;
    mapping(mapping&& other) noexcept : section_(std::move(other.section_)), data_(other.data_) {
        other.data_ = nullptr;
    }
    mapping& operator=(mapping&& other) noexcept {
        std::swap(section_, other.section_);
        std::swap(data_, other.data_);
        return *this;
    }
    ~mapping() {
        if (data_ != nullptr) ::UnmapViewOfFile(data_);
    }
    const void* data() const noexcept { return data_; }

private:
    friend mapping map_read(const file&, std::size_t, bool, const std::string&);
    file section_;  // the file mapping object
    void* data_ = nullptr;
};

// length > 0 (the whole file is mapped); populate has no equivalent here.
inline mapping map_read(const file& f, std::size_t /*length*/, bool /*populate*/, const std::string& path) {
    mapping m;
    m.section_ = file(::CreateFileMappingW(f.native(), nullptr, PAGE_READONLY, 0, 0, nullptr));
    if (!m.section_.valid()) throw_last_error("cannot map", path);
    m.data_ = ::MapViewOfFile(m.section_.native(), FILE_MAP_READ, 0, 0, 0);
    if (m.data_ == nullptr) throw_last_error("cannot map", path);
    return m;
}

inline void advise(const mapping& /*m*/, advice /*hint*/) noexcept {}

inline void* allocate_pages(std::size_t size) noexcept {
    return ::VirtualAlloc(nullptr, size, MEM_COMMIT | MEM_RESERVE, PAGE_READWRITE);
}

inline void free_pages(void* p, std::size_t /*size*/) noexcept { ::VirtualFree(p, 0, MEM_RELEASE); }

// ---- Shared libraries ---------------------------------------------------------------------

// A library loaded for the rest of the process (never freed: its functions stay callable).
inline void* load_library(const char* name, std::string& why) {
    HMODULE library = ::LoadLibraryA(name);
    if (library == nullptr) why = "LoadLibrary failed with error " + std::to_string(::GetLastError());
    return reinterpret_cast<void*>(library);
}

template <class Function>
bool library_function(void* library, const char* name, Function& out) noexcept {
    FARPROC address = ::GetProcAddress(reinterpret_cast<HMODULE>(library), name);
    if (address == nullptr) return false;
    static_assert(sizeof out == sizeof address, "function pointers of one size");
    std::memcpy(&out, &address, sizeof out);
    return true;
}

// ---- Entropy --------------------------------------------------------------------------------

// 64 bits from the system's random source (std::random_device is rand_s with MinGW), or 0
// where it fails: callers mix it with other inputs.
inline std::uint64_t entropy() noexcept {
    try {
        std::random_device device;
        return (static_cast<std::uint64_t>(device()) << 32) ^ device();
    } catch (...) {
        return 0;
    }
}

// ---- Locks and threads (the classes are in os.hpp) -------------------------------------------

using native_mutex = SRWLOCK;
inline void mutex_init(native_mutex& m) noexcept { ::InitializeSRWLock(&m); }
inline void mutex_destroy(native_mutex&) noexcept {}  // an SRW lock holds no resources
inline void mutex_lock(native_mutex& m) noexcept { ::AcquireSRWLockExclusive(&m); }
inline void mutex_unlock(native_mutex& m) noexcept { ::ReleaseSRWLockExclusive(&m); }

using native_thread = HANDLE;

inline unsigned __stdcall thread_entry(void* start) {
    const thread_start& s = *static_cast<const thread_start*>(start);
    s.run(s.arg);
    return 0;
}
// Runs start->run(start->arg) on a new thread; false when the system has none left to give.
// _beginthreadex rather than CreateThread, so that the C runtime is set up for the thread.
inline bool start_thread(native_thread& handle, thread_start* start) noexcept {
    handle = reinterpret_cast<HANDLE>(
        ::_beginthreadex(nullptr, 0, &thread_entry, start, 0, nullptr));
    return handle != nullptr;
}
inline void join_thread(native_thread& handle) noexcept {
    ::WaitForSingleObject(handle, INFINITE);
    ::CloseHandle(handle);
}

} // namespace safetensors::detail::os

#endif // SAFETENSORS_DETAIL_OS_WINDOWS
