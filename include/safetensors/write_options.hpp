// safetensors-hpp: write_options, the layout and durability settings every writer takes
// (save, serialize, is_canonical, stream_writer, save_sharded).
#pragma once

#include <cstdint>

namespace safetensors {

struct write_options {
    // The data section starts at a multiple of this many bytes: the header is padded with
    // spaces (legal trailing JSON whitespace, which every reader accepts). 8 is the reference
    // layout; 4096 lets the data be mapped page-aligned. Must be a positive multiple of 8, so
    // every element stays aligned to its size.
    std::uint64_t alignment = 8;
    // Flush the file to stable storage before the rename, and the folder after it. Off, the
    // replacement is still atomic for other processes, but may not survive a power loss.
    bool sync = true;
    // Leave the written bytes in the OS page cache, as any write does. Off (Linux), the file
    // is written back while it is produced and dropped from the cache behind the writer, so a
    // file larger than memory neither fills the cache nor evicts other programs' data, and
    // large writes run at the disk's speed; reading the file right after then goes to disk.
    bool keep_in_cache = true;
};

} // namespace safetensors
