// Faults from the outside world, each answered by a safetensors::error with an exact code and
// message, and nothing written or lost: files that shrink or grow after open, permissions
// (in a child process that drops root), special files and length prefixes at the limits, a
// full disk (a 64 KiB tmpfs in a private mount namespace), and a write whose data source
// fails halfway. test_file.cpp and test_writer.cpp cover the neighbouring cases (mapped
// copies of a shrunk file, FIFO/directory codes, RLIMIT_FSIZE, a throwing stream producer).
#include <doctest/doctest.h>

#include <safetensors/safetensors.hpp>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#if !defined(_WIN32)
#include <csignal>
#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#if defined(__linux__)
#include <sched.h>
#include <sys/mount.h>
#endif
#endif

#include "support/bytes.hpp"
#include "support/errors.hpp"
#include "support/platform.hpp"
#include "support/temp_dir.hpp"

using safetensors::errc;
using test_support::data_path;
using test_support::error_of;
using test_support::temp_dir;

using test_support::bytes_of;

TEST_CASE("faults: a length prefix at the 100,000,000-byte limit is accepted, one more is refused") {
    // Exactly 100,000,000 bytes of valid JSON: "{}" and trailing spaces (legal whitespace).
    const std::uint64_t limit = safetensors::max_header_size;
    std::string json = "{}";
    json.resize(static_cast<std::size_t>(limit), ' ');
    auto bytes = test_support::make_file(json);
    REQUIRE(bytes.size() == 100'000'008u);
    {
        const auto f = safetensors::file::from_buffer(bytes.data(), bytes.size());
        CHECK(f.empty());
        CHECK(f.header().header_size() == limit);
        CHECK(f.header().data_offset() == 100'000'008u);
        CHECK(f.metadata() == nullptr);
    }
    // A prefix of limit + 1 is refused before anything is read or allocated, whatever follows.
    bytes.push_back(std::byte{' '});
    bytes[0] = std::byte{0x01};  // 0x05f5e101 = 100,000,001
    auto e = error_of([&] { (void)safetensors::file::from_buffer(bytes.data(), bytes.size()); });
    CHECK(e.code == errc::header_too_large);
    CHECK(e.message == "header too large: length prefix says 100000001 bytes, the limit is 100000000");

    // The limit claimed by a file far too small for it: the length check, with the sizes.
    auto small = test_support::make_file("{}");
    small[0] = std::byte{0x00};
    small[1] = std::byte{0xe1};
    small[2] = std::byte{0xf5};
    small[3] = std::byte{0x05};
    e = error_of([&] { (void)safetensors::file::from_buffer(small.data(), small.size()); });
    CHECK(e.code == errc::invalid_header_length);
    CHECK(e.message == "invalid header length: 100000000 bytes of header after the 8-byte prefix, but \"buffer\" has only 2");
}

TEST_CASE("faults: 7 bytes and empty input, from a buffer") {
    const std::vector<std::byte> seven(7);
    auto e = error_of([&] { (void)safetensors::file::from_buffer(seven.data(), seven.size()); });
    CHECK(e.code == errc::header_too_small);
    CHECK(e.message == "header too small: \"buffer\" has 7 bytes, fewer than the 8-byte length prefix");
    e = error_of([&] { (void)safetensors::file::from_bytes({}); });
    CHECK(e.code == errc::header_too_small);
    CHECK(e.message == "header too small: \"buffer\" has 0 bytes, fewer than the 8-byte length prefix");
    CHECK(error_of([&] { (void)safetensors::file::from_buffer(nullptr, 8); }).code == errc::invalid_argument);
}

namespace {

#if !defined(_WIN32)
// A private folder under /tmp, world-traversable, so a child that dropped root can reach it.
struct child_reachable_dir : temp_dir {
    child_reachable_dir() : temp_dir("/tmp") { REQUIRE(::chmod(path.c_str(), 0755) == 0); }
};

// Runs body in a forked child; its return value (0 = all expectations met, else the number of
// the first one that failed) comes back as the exit status. Exceptions give 99.
template <class Body>
int in_child(Body body) {
    std::fflush(nullptr);
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        int status = 99;
        try {
            status = body();
        } catch (...) {
        }
        ::_exit(status);
    }
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    REQUIRE(WIFEXITED(status));
    return WEXITSTATUS(status);
}

// Root ignores permission bits, so a child drops to nobody (65534) first; as another user,
// the bits already bind. Returns false if the switch failed.
bool drop_root() {
    if (::geteuid() != 0) return true;
    const gid_t none[1] = {65534};
    return ::setgroups(1, none) == 0 && ::setresgid(65534, 65534, 65534) == 0 && ::setresuid(65534, 65534, 65534) == 0 &&
           ::geteuid() == 65534;
}
#endif  // !_WIN32

const std::string all_dtypes = "reference/valid/all_dtypes.safetensors";

} // namespace

TEST_CASE("faults: a file truncated after open: checked reads report short_read, views of read mode are unaffected" *
          POSIX_ONLY("truncates a mapped file, which Windows refuses (ERROR_USER_MAPPED_FILE)")) {
#if !defined(_WIN32)
    temp_dir dir;
    const std::string path = dir.file("shrinks.safetensors");
    test_support::write_all(path, test_support::read_all(data_path(all_dtypes)));
    const auto mapped = safetensors::open(path);
    const auto in_memory = safetensors::open(path, {safetensors::open_mode::read});
    const auto big = mapped.tensor("big_f32_64x64");
    REQUIRE(::truncate(path.c_str(), 100) == 0);

    // tensor_view::read_bytes and tensor_slice::read_bytes go through the descriptor.
    std::vector<std::byte> out(16);
    auto e = error_of([&] { big.read_bytes(0, out.data(), out.size()); });
    CHECK(e.code == errc::short_read);
    CHECK(e.message == "unexpected end of file in \"" + path + "\" at offset " + std::to_string(big.source_offset()) +
                           " (did the file shrink after it was opened?)");
    e = error_of([&] { big.slice("1:3, ::2").read_bytes(0, out.data(), out.size()); });
    CHECK(e.code == errc::short_read);
    CHECK(e.message == "unexpected end of file in \"" + path + "\" at offset " +
                           std::to_string(big.source_offset() + 64 * 4) + " (did the file shrink after it was opened?)");
    // A read past the size seen at open is refused before any system call.
    e = error_of([&] { mapped.source()->read_at(mapped.source()->size() - 4, out.data(), 8); });
    CHECK(e.code == errc::short_read);
    CHECK(e.message == "read of 8 bytes at offset 20538 is past the end of \"" + path + "\" (20542 bytes)");

    // The private copy of read mode still answers from memory.
    const auto kept = in_memory.tensor("big_f32_64x64");
    CHECK(kept.as<float>().size() == 4096);
    CHECK(kept.bytes().size() == 16384);
    const auto first_rows = kept.slice("0:2");
    std::vector<std::byte> rows(static_cast<std::size_t>(first_rows.byte_size()));
    first_rows.copy_to(rows.data(), rows.size());
    CHECK(std::equal(rows.begin(), rows.end(), kept.bytes().begin()));
#endif
}

TEST_CASE("faults: saving from a source that fails halfway leaves the target as it was and no temporary file" *
          POSIX_ONLY("truncates a mapped file, which Windows refuses (ERROR_USER_MAPPED_FILE)")) {
#if !defined(_WIN32)
    temp_dir dir;
    const std::string path = dir.file("source.safetensors");
    const std::string target = dir.file("target.safetensors");
    test_support::write_all(path, test_support::read_all(data_path(all_dtypes)));
    test_support::write_all(target, bytes_of("previous"));
    const auto f = safetensors::open(path);
    // Cut the file inside the data section: the first tensors in the writer's order still
    // read, a later one fails (the writer reads views through read_at, not the mapping).
    const auto victim = f.tensor("rand_float32_3x4x5");
    REQUIRE(::truncate(path.c_str(), static_cast<off_t>(victim.source_offset() + 10)) == 0);
    const auto e = error_of([&] { safetensors::save(target, f); });
    CHECK(e.code == errc::short_read);
    CHECK(e.message == "unexpected end of file in \"" + path + "\" at offset " + std::to_string(victim.source_offset() + 10) +
                           " (did the file shrink after it was opened?)");
    CHECK(test_support::read_all(target) == bytes_of("previous"));
    CHECK(dir.entries() == std::vector<std::string>{"source.safetensors", "target.safetensors"});
    // serialize() fails the same way and returns nothing.
    CHECK(error_of([&] { (void)safetensors::serialize(f); }).code == errc::short_read);
#endif
}

TEST_CASE("faults: a file extended after open keeps the size it was opened with" *
          POSIX_ONLY("appends to a file the library holds open, which its Windows share mode refuses")) {
#if !defined(_WIN32)
    temp_dir dir;
    const std::string path = dir.file("grows.safetensors");
    const auto original = test_support::read_all(data_path(all_dtypes));
    test_support::write_all(path, original);
    for (auto mode : {safetensors::open_mode::map, safetensors::open_mode::read}) {
        const auto f = safetensors::open(path, {mode});
        {
            auto grown = original;
            grown.resize(grown.size() + 4096, std::byte{0x5a});
            const int fd = ::open(path.c_str(), O_WRONLY | O_APPEND);
            REQUIRE(fd >= 0);
            REQUIRE(::write(fd, grown.data() + original.size(), 4096) == 4096);
            ::close(fd);
        }
        CHECK(f.source()->size() == original.size());
        CHECK(f.header().data_size() == original.size() - f.header().data_offset());
        const auto last = f.tensor_at(f.size() - 1);
        std::vector<std::byte> tail(static_cast<std::size_t>(last.byte_size()));
        last.read_bytes(0, tail.data(), tail.size());
        CHECK(std::equal(tail.begin(), tail.end(), original.end() - static_cast<std::ptrdiff_t>(tail.size())));
        // The bytes appended after open are out of reach, even through the descriptor.
        std::vector<std::byte> past(8);
        const auto e = error_of([&] { f.source()->read_at(original.size(), past.data(), past.size()); });
        CHECK(e.code == errc::short_read);
        CHECK(e.message == "read of 8 bytes at offset 20542 is past the end of \"" + path + "\" (20542 bytes)");
        // Opened again, the grown file no longer passes validation: its data is not covered.
        const auto reopened = safetensors::try_open(path, {mode});
        REQUIRE(!reopened);
        CHECK(reopened.error().code() == errc::incomplete_coverage);
        CHECK(reopened.error().message() == "\"" + path +
                                                "\": incomplete metadata, file not fully covered: tensors cover 18198 "
                                                "bytes of a 22294-byte data section");
        CHECK(reopened.error().path() == path);
        test_support::write_all(path, original);
    }
#endif
}

TEST_CASE("faults: special files in read mode, with exact messages" *
          POSIX_ONLY("FIFOs and /dev/zero")) {
#if !defined(_WIN32)
    temp_dir dir;
    const safetensors::open_options read{safetensors::open_mode::read};
    auto failure = [&](const std::string& path) {
        const auto r = safetensors::try_open(path, read);
        REQUIRE(!r);
        return r.error();
    };
    auto e = failure(dir.str());
    CHECK(e.code() == errc::not_regular_file);
    CHECK(e.message() == "\"" + dir.str() + "\" is a directory");
    const std::string fifo = dir.file("fifo");
    REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    e = failure(fifo);  // opened without blocking (no writer), then refused
    CHECK(e.code() == errc::not_regular_file);
    CHECK(e.message() == "\"" + fifo + "\" is not a regular file");
    e = failure("/dev/zero");
    CHECK(e.code() == errc::not_regular_file);
    CHECK(e.message() == "\"/dev/zero\" is not a regular file");
    const std::string seven = dir.file("seven");
    test_support::write_all(seven, std::vector<std::byte>(7, std::byte{1}));
    e = failure(seven);
    CHECK(e.code() == errc::header_too_small);
    CHECK(e.message() == "header too small: \"" + seven + "\" has 7 bytes, fewer than the 8-byte length prefix");
    e = failure(dir.file("missing"));
    CHECK(e.code() == errc::file_not_found);
    CHECK(e.message() == "cannot open \"" + dir.file("missing") + "\": No such file or directory");
#endif
}

TEST_CASE("faults: permission denied, reading a file and writing into a folder (as an unprivileged user)" *
          POSIX_ONLY("switches to an unprivileged uid in a forked child")) {
#if !defined(_WIN32)
    child_reachable_dir dir;
    const std::string secret = dir.file("secret.safetensors");
    test_support::write_all(secret, test_support::read_all(data_path(all_dtypes)));
    REQUIRE(::chmod(secret.c_str(), 0000) == 0);
    REQUIRE(::mkdir(dir.file("locked").c_str(), 0755) == 0);
    const std::string target = dir.file("locked/model.safetensors");
    test_support::write_all(target, bytes_of("previous"));
    REQUIRE(::chmod(dir.file("locked").c_str(), 0555) == 0);

    const int status = in_child([&] {
        if (!drop_root()) return 1;
        for (auto mode : {safetensors::open_mode::map, safetensors::open_mode::read}) {
            const auto r = safetensors::try_open(secret, {mode});
            if (r || r.error().code() != errc::permission_denied) return 2;
            if (r.error().message() != "cannot open \"" + secret + "\": Permission denied") return 3;
            if (r.error().system_code() != std::errc::permission_denied || r.error().path() != secret) return 10;
        }
        const auto thrown = error_of([&] { (void)safetensors::open(secret); });
        if (thrown.system_code != std::errc::permission_denied) return 11;
        auto e = error_of([&] { safetensors::save(target, {}); });
        if (e.code != errc::permission_denied) return 4;
        if (e.message != "cannot create a temporary file beside \"" + target + "\": Permission denied") return 5;
        if (e.system_code != std::errc::permission_denied || e.path != target) return 12;
        e = error_of([&] { safetensors::stream_writer w(target, {{"t", safetensors::dtype::U8, {4}}}); });
        if (e.code != errc::permission_denied) return 6;
        return 0;
    });
    CHECK(status == 0);
    REQUIRE(::chmod(dir.file("locked").c_str(), 0755) == 0);
    CHECK(test_support::read_all(target) == bytes_of("previous"));
    CHECK(dir.entries("locked") == std::vector<std::string>{"model.safetensors"});
#endif
}

TEST_CASE("faults: /dev/full written by an unprivileged child reports no_space_on_device; the node stays" *
          POSIX_ONLY("switches to an unprivileged uid in a forked child")) {
#if !defined(_WIN32)
    struct stat before {};
    if (::stat("/dev/full", &before) != 0 || !S_ISCHR(before.st_mode)) {
        MESSAGE("this system has no /dev/full character device: the case was not run");
        return;
    }
    const std::vector<float> four(4);
    // Never as root: if the special-file rule broke, root could replace the node.
    const int status = in_child([&] {
        if (!drop_root() || ::geteuid() == 0) return 1;
        auto e = error_of([&] { safetensors::save("/dev/full", {{"w", safetensors::dtype::F32, {4}, four}}); });
        if (e.code != errc::write_failed) return 2;
        if (e.message != "cannot write \"/dev/full\": No space left on device") return 3;
        if (e.system_code != std::errc::no_space_on_device || e.path != "/dev/full") return 4;
        e = error_of([&] {
            safetensors::stream_writer w("/dev/full", {{"w", safetensors::dtype::F32, {4}}});
            w.write("w", four.data(), 16);
            w.commit();
        });
        if (e.system_code != std::errc::no_space_on_device) return 5;
        return 0;
    });
    CHECK(status == 0);
    struct stat after {};
    REQUIRE(::stat("/dev/full", &after) == 0);
    CHECK(S_ISCHR(after.st_mode));
    CHECK(after.st_rdev == before.st_rdev);
#endif
}

TEST_CASE("faults: save to /dev/stdout redirected to a file writes the file; /dev/stdout stays a link" *
          POSIX_ONLY("switches to an unprivileged uid in a forked child")) {
#if defined(__linux__)
    struct stat link {};
    if (::lstat("/dev/stdout", &link) != 0 || !S_ISLNK(link.st_mode)) {
        MESSAGE("/dev/stdout is not a symbolic link here: the case was not run");
        return;
    }
    child_reachable_dir dir;
    const std::string out = dir.file("stdout.safetensors");
    test_support::write_all(out, bytes_of("previous contents, longer than the new file will be ......................"));
    REQUIRE(::chmod(out.c_str(), 0666) == 0);
    const std::vector<float> four = {1, 2, 3, 4};
    // As nobody, so a regression could not replace the /dev/stdout link (root could).
    const int status = in_child([&] {
        if (!drop_root()) return 1;
        const int fd = ::open(out.c_str(), O_WRONLY | O_CLOEXEC);
        if (fd < 0 || ::dup2(fd, 1) != 1) return 2;
        safetensors::save("/dev/stdout", {{"w", safetensors::dtype::F32, {4}, four}});
        return 0;
    });
    CHECK(status == 0);
    CHECK(test_support::read_all(out) == safetensors::serialize({{"w", safetensors::dtype::F32, {4}, four}}));
    REQUIRE(::lstat("/dev/stdout", &link) == 0);
    CHECK(S_ISLNK(link.st_mode));
#endif
}

#if defined(__linux__) || defined(_WIN32)
TEST_CASE("faults: a full disk fails the write; the target keeps its content and no temporary file remains" *
          POSIX_ONLY("mounts a tmpfs in a private mount namespace (Linux)")) {
#if defined(__linux__)
    child_reachable_dir dir;
    REQUIRE(::mkdir(dir.file("small").c_str(), 0755) == 0);
    const std::string folder = dir.file("small");
    const std::string target = folder + "/model.safetensors";
    const std::vector<std::byte> big(1 << 20, std::byte{3});
    // In a private mount namespace, a 64 KiB tmpfs over the folder; 1 MiB cannot fit. Status
    // 77: this environment refuses the mount (no CAP_SYS_ADMIN).
    const int status = in_child([&] {
        if (::unshare(CLONE_NEWNS) != 0 || ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
            ::mount("tmpfs", folder.c_str(), "tmpfs", 0, "size=64k,mode=0755") != 0)
            return 77;
        test_support::write_all(target, bytes_of("previous"));
        const std::string expected = "cannot write \"" + target + "\": No space left on device";
        auto e = error_of([&] { safetensors::save(target, {{"big", safetensors::dtype::U8, {1 << 20}, big}}); });
        if (e.code != errc::write_failed) return 1;
        if (e.message != expected) return 2;
        if (e.system_code != std::errc::no_space_on_device || e.path != target) return 8;
        e = error_of([&] {
            safetensors::stream_writer w(target, {{"big", safetensors::dtype::U8, {1 << 20}}});
            for (std::size_t done = 0; done < big.size(); done += 4097)
                w.write("big", big.data() + done, std::min<std::size_t>(4097, big.size() - done));
            w.commit();
        });
        if (e.code != errc::write_failed) return 3;
        if (e.message != expected) return 4;
        if (test_support::read_all(target) != bytes_of("previous")) return 5;
        DIR* d = ::opendir(folder.c_str());
        int names = 0;
        while (const dirent* entry = ::readdir(d)) names += entry->d_name[0] == '.' ? 0 : 1;
        ::closedir(d);
        if (names != 1) return 6;  // the target only: no temporary file left
        // A write that fits still succeeds on the same small disk.
        safetensors::save(target, {{"small", safetensors::dtype::U8, {1024}, std::vector<std::byte>(1024)}});
        if (safetensors::open(target)["small"].byte_size() != 1024) return 7;
        // Remounted read-only: EROFS, kept as the error's system_code().
        if (::mount(nullptr, folder.c_str(), nullptr, MS_REMOUNT | MS_RDONLY, nullptr) != 0) return 0;
        e = error_of([&] { safetensors::save(target, {}); });
        if (e.system_code != std::errc::read_only_file_system || e.path != target) return 9;
        if (e.message != "cannot create a temporary file beside \"" + target + "\": Read-only file system") return 10;
        return 0;
    });
    if (status == 77) {
        // test_writer.cpp's RLIMIT_FSIZE test covers the same failure path (a failed pwrite).
        MESSAGE("mounting a tmpfs is not permitted here: the full-disk case was not run");
    } else {
        CHECK(status == 0);
    }
#endif
}
#endif  // __linux__ || _WIN32
