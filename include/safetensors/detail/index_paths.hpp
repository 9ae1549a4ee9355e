// safetensors-hpp: paths for sharded checkpoints: the folder of an index as given, joining a
// shard name to it, and telling a folder from a file. Paths are UTF-8 strings, as in open().
#pragma once

#include <cerrno>
#include <cstring>
#include <string>

#include "../error.hpp"
#include "os.hpp"

namespace safetensors::detail {

inline bool is_separator(char c) noexcept { return os::is_separator(c); }

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
inline bool is_directory(const std::string& path) { return os::is_directory(path); }

inline bool exists(const std::string& path) { return os::exists(path); }

// Creates folder and its missing parents (mkdir -p; new folders get 0777 & ~umask). A folder
// that exists is fine; anything else in the way is an error naming the path.
inline void make_folders(const std::string& folder) {
    for (std::size_t end = 1; end <= folder.size(); ++end) {
        if (end != folder.size() && !is_separator(folder[end])) continue;
        if (is_separator(folder[end - 1])) continue;  // "//", or a root "/"
        if (os::make_folder(folder.substr(0, end))) continue;
        // Something other than a folder is in the way.
        throw_error(errc::file_not_found, "cannot create the folder " + quote(folder) + ": " + std::strerror(ENOTDIR),
                    folder, errno_code(ENOTDIR));
    }
}

} // namespace safetensors::detail
