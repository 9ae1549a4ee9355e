// Test support: a private temporary folder, removed with everything in it when the test ends.
// Portable (std::filesystem), so the same tests run on POSIX and on Windows.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <filesystem>
#include <random>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

namespace test_support {

class temp_dir {
public:
    // Under the build tree's tmp folder (a real disk, usually), else the system's temp folder.
    temp_dir() : temp_dir(default_base()) {}

    // Under base: e.g. "/tmp", which a child process that dropped root can still reach.
    explicit temp_dir(const std::filesystem::path& base) {
        static std::atomic<unsigned> counter{0};
        std::random_device device;
        for (int attempt = 0; attempt < 100; ++attempt) {
            path = base / ("safetensors-test-" + std::to_string(device()) + "-" + std::to_string(counter++));
            std::error_code ec;
            if (std::filesystem::create_directories(path, ec)) return;
        }
        throw std::runtime_error("cannot create a temporary folder under " + base.string());
    }

    ~temp_dir() {
        std::error_code ec;
        if (std::filesystem::remove_all(path, ec) != static_cast<std::uintmax_t>(-1) && !ec) return;
        // A test may have locked a folder or file (chmod 0555 / 0000): unlock everything, retry.
        for (auto it = std::filesystem::recursive_directory_iterator(path, ec);
             !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec))
            std::filesystem::permissions(it->path(), std::filesystem::perms::owner_all,
                                         std::filesystem::perm_options::add, ec);
        std::filesystem::permissions(path, std::filesystem::perms::owner_all, std::filesystem::perm_options::add, ec);
        std::filesystem::remove_all(path, ec);
    }

    temp_dir(const temp_dir&) = delete;
    temp_dir& operator=(const temp_dir&) = delete;

    // Paths with forward slashes, which Windows accepts too, so messages read the same everywhere.
    std::string str() const { return path.generic_string(); }
    // The path of name inside the folder, as a string.
    std::string file(const std::string& name) const { return (path / name).generic_string(); }

    // Entries of the folder (or of sub inside it), hidden ones included, sorted: a temporary
    // file left behind shows here.
    std::vector<std::string> entries(const std::string& sub = "") const {
        std::vector<std::string> names;
        for (const auto& entry : std::filesystem::directory_iterator(sub.empty() ? path : path / sub))
            names.push_back(entry.path().filename().string());
        std::sort(names.begin(), names.end());
        return names;
    }

    std::filesystem::path path;

private:
    static std::filesystem::path default_base() {
#if defined(SAFETENSORS_TEST_TMP_DIR)
        return SAFETENSORS_TEST_TMP_DIR;
#else
        return std::filesystem::temp_directory_path();
#endif
    }
};

} // namespace test_support
