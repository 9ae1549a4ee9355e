// safetensors-hpp: paths for sharded checkpoints: the folder of an index as given, joining a
// shard name to it, and telling a folder from a file. Paths are UTF-8 strings, as in open().
#pragma once

#include <string>

#include "../source.hpp"  // platform headers, utf8_to_wide

#if !defined(_WIN32)
#include <sys/stat.h>
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

} // namespace safetensors::detail
