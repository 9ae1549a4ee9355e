// The harness that runs README.md's C++ blocks (see generate.cmake for how blocks become code).
//
// Each block runs in a fresh temporary folder that holds every fixture of the table below,
// under the name the README uses; the folder is the current directory while the block runs.
// A block refers to a fixture by that plain name ("model.safetensors", "gpt2_tiny_sharded").
//
// FIXTURES: the one place that maps README names to files. An entry is either a path under
// tests/data (a file or a folder, copied) or a function that writes the file (or folder) into
// the current directory. To add one, add a line to fixtures() below.
//
// CONTEXT: names the README's prose defines and its fragments use without declaring (`f`,
// `rank`, `tensors`, `use(...)`). They are members of struct context, which every fragment's
// code derives from, constructed in the block's folder just before the block runs; a fragment
// that declares the same name itself simply hides the member. To add one, add a member. Keep
// member names distinct from library function names (a member would hide them from unqualified
// calls in the block).
#pragma once

#include <safetensors/safetensors.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <filesystem>
#include <iostream>
#include <random>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

namespace readme {

// ---- Fixtures ---------------------------------------------------------------------------------

// model.safetensors: one small file with every tensor and metadata key the README's blocks
// name (the CUDA block's too), written with safetensors::save.
inline void write_model(const std::string& path) {
    std::vector<std::uint16_t> lm_head(4 * 8);  // BF16 codes of 0.0, 0.5, ... (exact in BF16)
    for (std::size_t i = 0; i < lm_head.size(); ++i) {
        const float value = 0.5f * static_cast<float>(i);
        std::uint32_t bits = 0;
        static_assert(sizeof bits == sizeof value);
        std::memcpy(&bits, &value, sizeof bits);
        lm_head[i] = static_cast<std::uint16_t>(bits >> 16);
    }
    auto counting = [](std::size_t count) {
        std::vector<float> values(count);
        for (std::size_t i = 0; i < count; ++i) values[i] = static_cast<float>(i);
        return values;
    };
    const std::vector<float> embedding = counting(16 * 8), emb = counting(16 * 4), w = counting(2 * 3),
                             norm = counting(8);
    safetensors::metadata_map metadata{{"format", "pt"},
                                       {"ss_network_dim", "16"},
                                       {"ss_tag_frequency", R"({"photo": {"a cat": 3, "a dog": 1}})"}};
    safetensors::save(path,
                      {{"lm_head.weight", safetensors::dtype::BF16, {4, 8}, lm_head},
                       {"embedding", safetensors::dtype::F32, {16, 8}, embedding},
                       {"emb", safetensors::dtype::F32, {16, 4}, emb},
                       {"w", safetensors::dtype::F32, {2, 3}, w},
                       {"embed.weight", safetensors::dtype::F32, {16, 8}, embedding},
                       {"norm.weight", safetensors::dtype::F32, {8}, norm}},
                      metadata);
}

inline void make_folder(const std::string& path) { std::filesystem::create_directory(path); }

struct fixture {
    const char* name;                     // as the README writes it, relative to the block's folder
    const char* data;                     // a file or folder under tests/data, or nullptr
    void (*make)(const std::string& path); // or a function that creates it at path
};

inline const std::vector<fixture>& fixtures() {
    static const std::vector<fixture> table = {
        {"model.safetensors", nullptr, write_model},                      // tensors and metadata above
        {"gpt2_tiny_sharded", "reference/model/gpt2_tiny_sharded", nullptr},  // 5 shards + index
        {"out", nullptr, make_folder},                                    // save_sharded's target folder
    };
    return table;
}

// ---- Context: names the prose defines -------------------------------------------------------

struct context {
    safetensors::file f = safetensors::open("model.safetensors");          // "f": an open file
    safetensors::tensor_view view = f.tensor("emb");                        // an F32 tensor
    safetensors::tensor_map tensors = safetensors::load("model.safetensors");  // tensors to write
    std::uint64_t rank = 0, world_size = 2;                                 // tensor parallelism
    std::string checkpoint_folder = "gpt2_tiny_sharded";                    // a sharded checkpoint
    float buf[64] = {};                                                     // a float buffer ...
    std::size_t n = 64;                                                     // ... of n elements
    std::vector<std::uint16_t> codes{0x3f80, 0x4000, 0xc040};               // BF16 1, 2, -3
    std::vector<float> floats = std::vector<float>(3);                      // room for them

    // use(x, ...): "do something with it".
    template <class... T>
    static void use(const T&...) noexcept {}
};

// ---- Runner -----------------------------------------------------------------------------------

enum class kind { run, compile_only, skipped };

struct block {
    int number;         // 1-based, in README order
    int line;           // of the opening fence in README.md
    kind what;
    const char* reason; // compile_only and skipped: why
    void (*run)();      // kind::run only
};

// A whole-program block's renamed main(), with or without arguments.
inline void call_main(int (*main_function)()) {
    if (const int status = main_function(); status != 0)
        throw std::runtime_error("main() returned " + std::to_string(status));
}
inline void call_main(int (*main_function)(int, char**)) {
    char name[] = "readme";
    char* argv[] = {name, nullptr};
    if (const int status = main_function(1, argv); status != 0)
        throw std::runtime_error("main() returned " + std::to_string(status));
}

inline std::filesystem::path fresh_folder(const std::filesystem::path& base) {
    std::random_device device;
    for (int attempt = 0; attempt < 100; ++attempt) {
        std::filesystem::path path = base / ("readme-" + std::to_string(device()));
        std::error_code ec;
        if (std::filesystem::create_directories(path, ec)) return path;
    }
    throw std::runtime_error("cannot create a temporary folder under " + base.string());
}

// Puts every fixture into folder: copies from tests/data, or made once into made/ and copied.
inline void put_fixtures(const std::filesystem::path& folder, const std::filesystem::path& made) {
    namespace fs = std::filesystem;
    for (const fixture& x : fixtures()) {
        fs::path from;
        if (x.data) {
            from = fs::path(SAFETENSORS_TEST_DATA_DIR) / x.data;
        } else {
            from = made / x.name;
            if (!fs::exists(from)) x.make(from.string());
        }
        fs::copy(from, folder / x.name, fs::copy_options::recursive);
    }
}

// Runs the blocks (all, or only those whose numbers are given: `safetensors-readme 3 4`);
// prints what ran. Fails when a block fails, or when the blocks accounted for are not all the
// blocks the generator found. A failed block's folder is kept, and printed.
inline int run_all(const std::vector<block>& blocks, int found, const char* readme, int argc, char** argv) {
    namespace fs = std::filesystem;
    std::vector<int> only;
    for (int i = 1; i < argc; ++i) only.push_back(std::atoi(argv[i]));
    auto wanted = [&](int number) {
        if (only.empty()) return true;
        for (int n : only)
            if (n == number) return true;
        return false;
    };

    const fs::path start = fs::current_path();
    const fs::path base = fresh_folder(SAFETENSORS_README_TMP_DIR);
    const fs::path made = base / "made";
    fs::create_directory(made);
    int ran = 0, compile_only = 0, skipped = 0, failed = 0;
    for (const block& b : blocks) {
        if (!wanted(b.number)) continue;
        const std::string where = "block " + std::to_string(b.number) + " (" + readme + ":" + std::to_string(b.line) + ")";
        if (b.what == kind::compile_only) {
            std::cout << "readme: " << where << ": compile-only: " << b.reason << "\n";
            ++compile_only;
            continue;
        }
        if (b.what == kind::skipped) {
            std::cout << "readme: " << where << ": SKIPPED: " << b.reason << "\n";
            ++skipped;
            continue;
        }
        std::cout << "readme: " << where << ": running" << std::endl;
        const fs::path folder = base / ("block-" + std::to_string(b.number));
        try {
            fs::create_directory(folder);
            put_fixtures(folder, made);
            fs::current_path(folder);
            b.run();
            std::cout.flush();
            fs::current_path(start);
            fs::remove_all(folder);
            ++ran;
        } catch (const std::exception& e) {
            fs::current_path(start);
            std::cout.flush();
            std::cerr << "readme: " << where << " FAILED: " << e.what() << " (its folder: " << folder.string() << ")\n";
            ++failed;
        }
    }
    std::cout << "readme: " << ran << " blocks ran, " << compile_only << " compile-only";
    if (skipped) std::cout << ", " << skipped << " skipped";
    if (failed) std::cout << ", " << failed << " FAILED";
    std::cout << " (" << readme << " has " << found << " C++ blocks)\n";
    if (failed) return 1;
    if (only.empty() && ran + compile_only + skipped != found) {
        std::cerr << "readme: the blocks accounted for (" << ran + compile_only + skipped
                  << ") are not the blocks found in " << readme << " (" << found << ")\n";
        return 1;
    }
    if (only.empty() && blocks.empty()) {
        std::cerr << "readme: no C++ blocks found\n";
        return 1;
    }
    std::error_code ec;
    fs::remove_all(base, ec);
    return 0;
}

} // namespace readme
