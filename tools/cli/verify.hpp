// safetensors command: verify, a full check of checkpoints: everything open() and validate()
// check, then every byte of every tensor read through the checked path, so a file that is
// truncated or unreadable fails now rather than with a SIGBUS in the program that maps it.
//
//   safetensors verify FILE... [--sha256 [--per-tensor]] [--progress | --no-progress]
//
// Output, per FILE in the order given:
//   OK <FILE> (<N> tensors, <B> bytes)             (sharded: "<N> tensors in <S> shards")
//   <sha256>  <file>                               --sha256: each file as sha256sum prints it;
//                                                  a sharded FILE: each shard, then the index
//   <sha256>  <file>:<tensor name>                 --per-tensor: the tensor's raw bytes, in
//                                                  file order, after its file's line
// B counts tensor bytes. Paths and names are escaped with printable(). On the first error
// nothing is printed but the error line (exit 1). Memory stays at one 1 MiB buffer whatever
// the size (32 MiB for URLs): each file is read once, in order, and feeds the file's hash and
// the tensor's.
#pragma once

#include <CLI/CLI.hpp>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "checkpoint.hpp"
#include "command.hpp"
#include "output.hpp"
#include "sha256.hpp"

namespace cli {

struct verify_options {
    std::vector<std::string> files;
    bool sha256 = false;
    bool per_tensor = false;
    bool progress = false;
    bool no_progress = false;
};

namespace verify_detail {

// A read per chunk; over HTTP, 32 MiB are 4 requests of 8 MiB in flight at once.
constexpr std::size_t chunk_size = std::size_t(1) << 20;
constexpr std::size_t remote_chunk_size = std::size_t(1) << 25;

// Reads one safetensors file in order: tensors through read_bytes (into their own hash when
// per_tensor), and, when the whole file is hashed, the header and any bytes between tensors
// through the source's read_at, a buffer at a time. Appends the hash lines to out.
inline void read_file(const st::file& f, const std::string& path, const verify_options& opts, std::string& out,
                      std::vector<unsigned char>& buffer) {
    const st::source& src = *f.source();
    std::optional<sha256> file_hash;
    if (opts.sha256) file_hash.emplace();
    std::string tensor_lines;
    std::uint64_t at = 0;  // the next byte of the file not hashed yet
    const auto skip_to = [&](std::uint64_t end) {  // file bytes outside any tensor
        while (file_hash && at < end) {
            const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(end - at, buffer.size()));
            src.read_at(at, buffer.data(), n);
            file_hash->update(buffer.data(), n);
            progress().advance(n);
            at += n;
        }
    };
    for (const st::tensor_view& view : f) {  // file order: ascending, non-overlapping offsets
        skip_to(view.source_offset());
        std::optional<sha256> tensor_hash;
        if (opts.per_tensor) tensor_hash.emplace();
        for (std::uint64_t done = 0; done < view.byte_size();) {
            const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(view.byte_size() - done, buffer.size()));
            view.read_bytes(done, buffer.data(), n);
            if (file_hash) file_hash->update(buffer.data(), n);
            if (tensor_hash) tensor_hash->update(buffer.data(), n);
            progress().advance(n);
            done += n;
        }
        at = std::max(at, view.source_offset() + view.byte_size());
        if (tensor_hash)
            tensor_lines += tensor_hash->hex_digest() + "  " + printable(path) + ":" + printable(view.name()) + "\n";
    }
    skip_to(src.size());
    if (file_hash) out += file_hash->hex_digest() + "  " + printable(path) + "\n";
    out += tensor_lines;
}

// Bytes read for one input: its files in full with --sha256, else its tensors.
inline std::uint64_t bytes_to_read(const checkpoint& input, bool whole_files) {
    std::uint64_t total = 0;
    const auto add = [&](const st::file& f) {
        if (whole_files) total += f.source()->size();
        else
            for (const st::tensor_view& view : f) total += view.byte_size();
    };
    if (!input.is_sharded()) add(input.single());
    else
        for (std::size_t s = 0; s < input.sharded().shard_count(); ++s) add(input.sharded().shard(s));
    return total;
}

inline std::string verify_input(const checkpoint& input, const verify_options& opts, std::vector<unsigned char>& buffer) {
    std::string hashes;
    std::uint64_t tensors = 0, bytes = 0;
    const auto count = [&](const st::file& f) {
        tensors += f.size();
        for (const st::tensor_view& view : f) bytes += view.byte_size();
    };
    std::string summary;
    if (!input.is_sharded()) {
        read_file(input.single(), input.shown(), opts, hashes, buffer);
        count(input.single());
    } else {
        const st::sharded_file& m = input.sharded();
        for (std::size_t s = 0; s < m.shard_count(); ++s) {
            read_file(m.shard(s), input.shard_shown(s), opts, hashes, buffer);
            count(m.shard(s));
        }
        // The index as read at open (its text is kept), so it is the file sha256sum sees.
        if (opts.sha256 && input.is_index())
            hashes += sha256_hex(m.index().raw_json().data(), m.index().raw_json().size()) + "  " +
                      printable(input.index_shown()) + "\n";
        if (input.is_index())
            summary = " in " + std::to_string(m.shard_count()) + (m.shard_count() == 1 ? " shard" : " shards");
    }
    return "OK " + printable(input.shown()) + " (" + std::to_string(tensors) + (tensors == 1 ? " tensor" : " tensors") +
           summary + ", " + std::to_string(bytes) + " bytes)\n" + hashes;
}

inline int run_verify(const verify_options& opts) {
    if (opts.progress && opts.no_progress) throw usage_error("--progress and --no-progress cannot be used together");
    // Every input opened (and a sharded one checked against its index) before any is read,
    // so a broken header fails at once, not after gigabytes of reading.
    std::vector<checkpoint> inputs;
    inputs.reserve(opts.files.size());
    std::uint64_t total = 0;
    for (const std::string& path : opts.files) {
        inputs.emplace_back(path);
        total += bytes_to_read(inputs.back(), opts.sha256);
    }
    const progress_mode mode = opts.progress ? progress_mode::on : opts.no_progress ? progress_mode::off
                                                                                     : progress_mode::automatic;
    if (wants_progress(mode, total)) progress().start("verifying", total);
    const bool remote = std::any_of(inputs.begin(), inputs.end(), [](const checkpoint& c) { return c.is_remote(); });
    std::vector<unsigned char> buffer(remote ? remote_chunk_size : chunk_size);
    std::string out;
    for (const checkpoint& input : inputs) out += verify_input(input, opts, buffer);
    progress().finish();
    write_stdout(out);
    return exit_ok;
}

} // namespace verify_detail

inline const char verify_description[] =
    "Checks each FILE (a .safetensors file, an index or a folder) in full: the header as open() checks\n"
    "it, for a sharded checkpoint every shard against the index (weight_map, total_size), and then every\n"
    "byte of every tensor read through the checked path, so a truncated or unreadable file fails now.\n"
    "Prints \"OK FILE (N tensors, B bytes)\" for each, B being the bytes of tensor data; on the first\n"
    "problem only the error (exit 1).\n"
    "--sha256 adds \"HASH  PATH\" lines for each file read, as sha256sum prints them (a sharded FILE:\n"
    "each shard, then the index), and --per-tensor \"HASH  PATH:NAME\" lines, the SHA-256 of each\n"
    "tensor's raw bytes, to check against a published manifest. Files are read once, in order.";

inline command add_verify(CLI::App& root) {
    auto opts = std::make_shared<verify_options>();
    CLI::App* app = root.add_subcommand("verify", "Read every byte of checkpoints and check them; SHA-256");
    app->description(verify_description);
    CLI::Option* sha = app->add_flag("--sha256", opts->sha256,
                                     "print the SHA-256 of each file (shards and index too), as sha256sum does");
    app->add_flag("--per-tensor", opts->per_tensor,
                  "with --sha256: also print the SHA-256 of each tensor's raw bytes, as \"HASH  PATH:NAME\"")
        ->needs(sha);
    app->add_flag("--progress", opts->progress, "show a progress line on standard error (by default only on a "
                                                "terminal and for at least 64 MiB to read)");
    app->add_flag("--no-progress", opts->no_progress, "never show it");
    app->add_option("FILE", opts->files, "safetensors file, index or checkpoint folder")->required();
    return {app, [opts] { return verify_detail::run_verify(*opts); }};
}

} // namespace cli
