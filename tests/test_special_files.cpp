// Writing onto special files: a character device or a FIFO is written straight through (no
// temporary file, no rename), a block device, a directory or a socket is refused, and the node
// itself is never replaced. No test writes to a real /dev node as root: device nodes are
// private mknod copies in a temporary folder (skipped, with a message, where mknod or device
// access is not allowed), and /dev/full is written only by a child that dropped root
// (test_faults.cpp).
#include <doctest/doctest.h>

#include <safetensors/safetensors.hpp>

#include <chrono>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#if !defined(_WIN32)
#include <cerrno>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/un.h>
#include <unistd.h>
#endif

#include "support/bytes.hpp"
#include "support/errors.hpp"
#include "support/platform.hpp"
#include "support/temp_dir.hpp"

namespace st = safetensors;
using st::dtype;
using st::errc;
using test_support::error_of;
using test_support::temp_dir;

#if !defined(_WIN32)
namespace {

const std::vector<float> values = {1.f, 2.f, 3.f, 4.f};

std::vector<std::byte> expected_bytes() { return st::serialize({{"w", dtype::F32, {2, 2}, values}}, {{"k", "v"}}); }

bool is_char_device(const std::string& path) {
    struct stat st {};
    return ::lstat(path.c_str(), &st) == 0 && S_ISCHR(st.st_mode);
}

// A private copy of a character device (major, minor), or "" when this environment forbids
// making or opening one (no CAP_MKNOD, a nodev mount): the caller then skips, saying so.
std::string private_char_device(const temp_dir& dir, const std::string& name, unsigned major, unsigned minor) {
    const std::string path = dir.file(name);
    if (::mknod(path.c_str(), S_IFCHR | 0666, makedev(major, minor)) != 0) return "";
    const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) {
        ::unlink(path.c_str());
        return "";
    }
    ::close(fd);
    return path;
}

// Reads a FIFO on its own thread until the writer closes it, for at most 10 seconds. The
// read end is opened without blocking first, so the writer's open finds a reader.
class fifo_reader {
public:
    explicit fifo_reader(const std::string& path) {
        fd_ = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
        REQUIRE(fd_ >= 0);
        thread_ = std::thread([this] { run(); });
    }
    ~fifo_reader() {
        if (thread_.joinable()) thread_.join();
        if (fd_ >= 0) ::close(fd_);
    }
    // Waits for the end of the stream; the bytes read, and whether it ended within the limit.
    std::vector<std::byte> finish() {
        thread_.join();
        CHECK(ended_);
        return bytes_;
    }

private:
    void run() {
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        bool writer_seen = false;
        while (std::chrono::steady_clock::now() < deadline) {
            pollfd p{fd_, POLLIN, 0};
            if (::poll(&p, 1, 50) < 0 && errno != EINTR) return;
            std::byte buffer[4096];
            const ssize_t got = ::read(fd_, buffer, sizeof buffer);
            if (got > 0) {
                writer_seen = true;
                bytes_.insert(bytes_.end(), buffer, buffer + got);
            } else if (got == 0 && writer_seen) {  // EOF after data: the writer closed
                ended_ = true;
                return;
            } else if (got == 0) {
                std::this_thread::sleep_for(std::chrono::milliseconds(5));  // no writer yet
            }
        }
    }

    int fd_ = -1;
    std::thread thread_;
    std::vector<std::byte> bytes_;
    bool ended_ = false;
};

} // namespace
#endif

TEST_CASE("special files: a private copy of /dev/null is written through and stays a device" *
          POSIX_ONLY("device nodes")) {
#if !defined(_WIN32)
    temp_dir dir;
    const std::string null = private_char_device(dir, "null", 1, 3);
    if (null.empty()) {
        MESSAGE("mknod or device access is not allowed here: the private /dev/null case was not run");
        return;
    }
    st::save(null, {{"w", dtype::F32, {2, 2}, values}}, {{"k", "v"}});
    CHECK(is_char_device(null));
    CHECK(dir.entries() == std::vector<std::string>{"null"});  // no temporary file was made
    // Through a symbolic link too: stat() follows it; the link stays a link.
    REQUIRE(::symlink(null.c_str(), dir.file("link").c_str()) == 0);
    st::save(dir.file("link"), {{"w", dtype::F32, {2, 2}, values}});
    CHECK(is_char_device(null));
    CHECK(std::filesystem::is_symlink(dir.file("link")));
    // The streaming writer on a device path: file order only, as on a sink.
    st::stream_writer w(null, {{"a", dtype::U8, {2}}, {"b", dtype::F32, {1}}});
    CHECK_FALSE(w.seekable());
    const std::uint8_t two[2] = {1, 2};
    const auto e = error_of([&] { w.write("a", two, 2); });  // F32 "b" comes first in file order
    CHECK(e.code == errc::stream_error);
    w.write("b", values.data(), 4);
    w.write("a", two, 2);
    w.commit();
    CHECK(is_char_device(null));
    CHECK(dir.entries() == std::vector<std::string>{"link", "null"});
#endif
}

TEST_CASE("special files: a private copy of /dev/full reports no space, with the OS error" *
          POSIX_ONLY("device nodes")) {
#if !defined(_WIN32)
    temp_dir dir;
    const std::string full = private_char_device(dir, "full", 1, 7);
    if (full.empty()) {
        MESSAGE("mknod or device access is not allowed here: the private /dev/full case was not run");
        return;
    }
    auto e = error_of([&] { st::save(full, {{"w", dtype::F32, {2, 2}, values}}); });
    CHECK(e.code == errc::write_failed);
    CHECK(e.message == "cannot write \"" + full + "\": No space left on device");
    CHECK(e.path == full);
    CHECK(e.system_code == std::errc::no_space_on_device);
    CHECK(is_char_device(full));
    // The same through the non-throwing path of the error: result<T>::error() has the accessors.
    const auto r = st::detail::capture([&] {
        st::save(full, {{"w", dtype::F32, {2, 2}, values}});
        return 0;
    });
    REQUIRE(!r);
    CHECK(r.error().system_code() == std::errc::no_space_on_device);
    CHECK(r.error().path() == full);
    CHECK(dir.entries() == std::vector<std::string>{"full"});
#endif
}

TEST_CASE("special files: a FIFO gets the file's bytes in order, with no temporary file" * POSIX_ONLY("FIFOs")) {
#if !defined(_WIN32)
    temp_dir dir;
    const std::string fifo = dir.file("pipe");
    REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    {
        fifo_reader reader(fifo);
        st::save(fifo, {{"w", dtype::F32, {2, 2}, values}}, {{"k", "v"}});
        CHECK(reader.finish() == expected_bytes());
    }
    {
        fifo_reader reader(fifo);
        st::stream_writer w(fifo, {{"w", dtype::F32, {2, 2}}}, {{"k", "v"}});
        CHECK_FALSE(w.seekable());
        w.write("w", values.data(), 8);
        w.write("w", values.data() + 2, 8);
        w.commit();
        CHECK(reader.finish() == expected_bytes());
    }
    struct stat info {};
    REQUIRE(::stat(fifo.c_str(), &info) == 0);
    CHECK(S_ISFIFO(info.st_mode));
    CHECK(dir.entries() == std::vector<std::string>{"pipe"});
#endif
}

TEST_CASE("special files: a block device, a directory and a socket are refused, untouched" *
          POSIX_ONLY("device nodes and sockets")) {
#if !defined(_WIN32)
    temp_dir dir;
    auto refused = [&](const std::string& path, const std::string& what) {
        const auto e = error_of([&] { st::save(path, {{"w", dtype::F32, {2, 2}, values}}); });
        CHECK(e.code == errc::not_regular_file);
        CHECK(e.message == "cannot write \"" + path + "\": it is " + what);
        CHECK(e.path == path);
        const auto s = error_of([&] { st::stream_writer w(path, {{"w", dtype::F32, {1}}}); });
        CHECK(s.code == errc::not_regular_file);
        return e;
    };
    REQUIRE(::mkdir(dir.file("folder").c_str(), 0755) == 0);
    CHECK(refused(dir.file("folder"), "a directory").system_code == std::errc::is_a_directory);
    CHECK(std::filesystem::is_directory(dir.file("folder")));

    // A socket bound in the folder (its path must fit sun_path).
    const std::string socket_path = dir.file("sock");
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    if (socket_path.size() < sizeof address.sun_path) {
        const int s = ::socket(AF_UNIX, SOCK_STREAM, 0);
        REQUIRE(s >= 0);
        socket_path.copy(address.sun_path, socket_path.size());
        REQUIRE(::bind(s, reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0);
        refused(socket_path, "a socket (only regular files, character devices and FIFOs are written)");
        ::close(s);
        struct stat info {};
        REQUIRE(::stat(socket_path.c_str(), &info) == 0);
        CHECK(S_ISSOCK(info.st_mode));
    } else {
        MESSAGE("the temporary folder's path is too long for a socket: that case was not run");
    }

    // A block device node (loop0's numbers); refused on stat alone, never opened.
    const std::string block = dir.file("block");
    if (::mknod(block.c_str(), S_IFBLK | 0600, makedev(7, 0)) == 0) {
        refused(block, "a block device (only regular files, character devices and FIFOs are written)");
        struct stat info {};
        REQUIRE(::stat(block.c_str(), &info) == 0);
        CHECK(S_ISBLK(info.st_mode));
    } else {
        MESSAGE("mknod is not allowed here: the block device case was not run");
    }
#endif
}
