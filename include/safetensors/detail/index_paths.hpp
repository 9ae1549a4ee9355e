// safetensors-hpp: paths for sharded checkpoints: the folder of an index as given, joining a
// shard name to it, and telling a folder from a file. Paths are UTF-8 strings, as in open().
#pragma once

#include <cerrno>
#include <cstring>
#include <string>

#include "../source.hpp"  // platform headers, utf8_to_wide

#if !defined(_WIN32)
#include <cerrno>
#include <sys/stat.h>
#include <sys/types.h>
#endif

namespace safetensors::detail {

inline bool is_separator(char c) noexcept {
#if defined(_WIN32)
    return c == '/' || c == '\\';
#else
    return c == '/';
#endif
}

// The folder part of path with its trailing separator ("" for a bare file name). Purely
// textual on purpose: no canonicalization, so a symlinked index (the Hugging Face cache's
// snapshots/<rev>/ links into blobs/) finds its shards beside the link, not the blob.
inline std::string folder_of(const std::string& path) {
    for (std::size_t i = path.size(); i > 0; --i)
        if (is_separator(path[i - 1])) return path.substr(0, i);
    return {};
}

// folder (as given by the caller) with a trailing separator, so a name can be appended.
inline std::string as_folder(const std::string& folder) {
    if (folder.empty() || is_separator(folder.back())) return folder;
    return folder + "/";
}

// Whether path names a folder (following symbolic links); false when it does not exist.
inline bool is_directory(const std::string& path) {
#if defined(_WIN32)
    const DWORD attributes = ::GetFileAttributesW(utf8_to_wide(path).c_str());
    return attributes != INVALID_FILE_ATTRIBUTES && (attributes & FILE_ATTRIBUTE_DIRECTORY) != 0;
#else
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
#endif
}

inline bool exists(const std::string& path) {
#if defined(_WIN32)
    return ::GetFileAttributesW(utf8_to_wide(path).c_str()) != INVALID_FILE_ATTRIBUTES;
#else
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0;
#endif
}

// Creates folder and its missing parents (mkdir -p; new folders get 0777 & ~umask). A folder
// that exists is fine; anything else in the way is an error naming the path.
inline void make_folders(const std::string& folder) {
    for (std::size_t end = 1; end <= folder.size(); ++end) {
        if (end != folder.size() && !is_separator(folder[end])) continue;
        if (is_separator(folder[end - 1])) continue;  // "//", or a root "/"
        const std::string part = folder.substr(0, end);
#if defined(_WIN32)
        if (part.size() == 2 && part[1] == ':') continue;  // a drive, "C:"
        if (::CreateDirectoryW(utf8_to_wide(part).c_str(), nullptr) || is_directory(part)) continue;
        if (!exists(part)) throw_last_error("cannot create the folder", part);
#else
        if (::mkdir(part.c_str(), 0777) == 0) continue;
        const int err = errno;
        if (err == EEXIST && is_directory(part)) continue;
        if (err != EEXIST) throw_errno(err, "cannot create the folder", part);
#endif
        // Something other than a folder is in the way.
        throw_error(errc::file_not_found, "cannot create the folder " + quote(folder) + ": " + std::strerror(ENOTDIR),
                    folder, errno_code(ENOTDIR));
    }
}

} // namespace safetensors::detail
