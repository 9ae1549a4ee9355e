// The floor of opening a safetensors file: what any reader that maps the file must do, in
// plain system calls: open, fstat, map the whole file, read the header's bytes through the
// mapping (summed, so the reads stay), unmap, close. POSIX only.
#pragma once

#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <safetensors/detail/inlining.hpp>  // SAFETENSORS_DETAIL_HOT

namespace bench {

// Hot, as the library's open path is (detail/inlining.hpp): its code sits next to the library's
// and the program's main, so that a first open in a fresh process (first_open.cpp) pays no code
// page fault for the floor that it does not pay for the library.
SAFETENSORS_DETAIL_HOT inline std::uint64_t open_floor(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    struct stat st {};
    if (fd < 0 || ::fstat(fd, &st) != 0 || st.st_size < 8) {
        if (fd >= 0) ::close(fd);
        throw std::runtime_error("cannot open " + path);
    }
    const auto size = static_cast<std::size_t>(st.st_size);
    void* map = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (map == MAP_FAILED) {
        ::close(fd);
        throw std::runtime_error("cannot map " + path);
    }
    const auto* bytes = static_cast<const unsigned char*>(map);
    std::uint64_t n = 0;
    std::memcpy(&n, bytes, 8);
    std::uint64_t sum = 0;
    for (std::uint64_t i = 8; i < 8 + n && i < size; ++i) sum += bytes[i];
    ::munmap(map, size);
    ::close(fd);
    return sum;
}

} // namespace bench
