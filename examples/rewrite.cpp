// safetensors-rewrite: copy a .safetensors file through the streaming writer, optionally editing
// its metadata, selecting tensors or aligning its data section.
//
//   safetensors-rewrite IN OUT [--set-metadata K=V]... [--drop-metadata K]... [--only NAME]...
//                       [--align N] [--no-sync] [--progress | --no-progress]
//
// Without options a canonical IN (one the reference writer made) is reproduced byte for byte;
// any other valid file comes out in canonical form. Tensor bytes are read in 8 MiB chunks and
// handed to safetensors::stream_writer, so memory stays at about the header plus 9 MiB
// whatever the file size. OUT is replaced atomically (temporary file + rename); on any error,
// including a file-size limit (SIGXFSZ is ignored here so the limit shows as EFBIG and the
// cleanup runs), OUT is left as it was, stderr holds one line "error: <message>", and the exit
// status is 1.
#include <safetensors/safetensors.hpp>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <new>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#if defined(_WIN32)
#include <fcntl.h>
#include <io.h>
#else
#include <unistd.h>
#endif

namespace st = safetensors;

namespace {

const char usage_text[] =
    "usage: safetensors-rewrite [options] IN OUT\n"
    "       safetensors-rewrite --help\n"
    "\n"
    "Copies the safetensors file IN to OUT through the streaming writer, in the reference\n"
    "writer's layout: tensors by dtype (descending) then name, compact header JSON, padding\n"
    "to 8 bytes. Without options a file the reference wrote is reproduced byte for byte; any\n"
    "other valid file comes out in that canonical form. Metadata keeps its order.\n"
    "\n"
    "options (anywhere on the line; metadata edits apply in the order given):\n"
    "  --set-metadata K=V  set metadata key K to value V (split at the first '='): replaced\n"
    "                      in place if K exists, else added at the end; creates the metadata\n"
    "                      if IN has none\n"
    "  --drop-metadata K   remove metadata key K (nothing happens if it is absent); dropping\n"
    "                      every key leaves an empty \"__metadata__\":{}, not none\n"
    "  --only NAME         copy tensor NAME and no others unless they are named too (may be\n"
    "                      repeated); a NAME that IN does not have is an error\n"
    "  --align N           pad the header with spaces so the data section starts at a\n"
    "                      multiple of N bytes (a positive multiple of 8; default 8, the\n"
    "                      reference layout); every reader accepts the padding\n"
    "  --no-sync           skip fsync of the file and its folder: faster, still atomic for\n"
    "                      other processes, but may not survive a power loss\n"
    "  --progress          show a progress line on standard error (by default it is shown\n"
    "                      only when standard error is a terminal and IN holds at least\n"
    "                      64 MiB of tensors); standard output is never touched\n"
    "  --no-progress       never show it\n"
    "  -h, --help          show this help and exit\n"
    "  --                  end of options (for file names that start with '-')\n"
    "\n"
    "OUT is written to a temporary file in its folder, flushed, and renamed over OUT, so\n"
    "readers see the old file or the new one and a failure leaves OUT as it was. IN and OUT\n"
    "may be the same file. If OUT is a symbolic link, the link itself is replaced by the new\n"
    "file; the file it pointed to is not changed. The new file's permissions follow the\n"
    "umask. OUT \"-\" writes to standard output instead (no temporary file).\n"
    "\n"
    "On error the exit status is 1 and standard error holds one line, \"error: <message>\".\n";

struct usage_error {
    std::string message;
};

struct metadata_edit {
    bool drop = false;
    std::string key;
    std::string value;
};

enum class progress_mode { automatic, on, off };

struct options {
    bool help = false;
    progress_mode progress = progress_mode::automatic;
    std::string input;
    std::string output;
    std::vector<metadata_edit> edits;
    std::vector<std::string> only;
    st::write_options write;
};

std::uint64_t parse_alignment(const std::string& text) {
    // Digits only: strtoull would accept a sign, spaces and "0x".
    if (text.empty() || text.size() > 19 ||
        !std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; }))
        throw usage_error{"--align needs a positive integer, got " + st::detail::quote(text)};
    return std::strtoull(text.c_str(), nullptr, 10);
}

options parse_options(int argc, char** argv) {
    options opts;
    std::vector<std::string> positional;
    bool options_done = false;
    bool aligned = false;
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        if (options_done || arg.empty() || arg[0] != '-' || arg == "-") {
            positional.push_back(arg);
            continue;
        }
        // "--name VALUE" or "--name=VALUE".
        auto value_of = [&](const std::string& name) -> std::optional<std::string> {
            if (arg == name) {
                if (i + 1 >= argc) throw usage_error{"option " + name + " needs a value (see --help)"};
                return std::string(argv[++i]);
            }
            if (arg.compare(0, name.size() + 1, name + "=") == 0) return arg.substr(name.size() + 1);
            return std::nullopt;
        };
        if (arg == "--") {
            options_done = true;
        } else if (arg == "--help" || arg == "-h") {
            opts.help = true;
        } else if (arg == "--no-sync") {
            opts.write.sync = false;
        } else if (arg == "--progress") {
            opts.progress = progress_mode::on;
        } else if (arg == "--no-progress") {
            opts.progress = progress_mode::off;
        } else if (auto kv = value_of("--set-metadata")) {
            const std::size_t eq = kv->find('=');
            if (eq == std::string::npos)
                throw usage_error{"--set-metadata needs KEY=VALUE, got " + st::detail::quote(*kv)};
            opts.edits.push_back({false, kv->substr(0, eq), kv->substr(eq + 1)});
        } else if (auto key = value_of("--drop-metadata")) {
            opts.edits.push_back({true, std::move(*key), {}});
        } else if (auto name = value_of("--only")) {
            opts.only.push_back(std::move(*name));
        } else if (auto n = value_of("--align")) {
            if (aligned) throw usage_error{"option --align given twice"};
            aligned = true;
            opts.write.alignment = parse_alignment(*n);
        } else {
            throw usage_error{"unknown option " + st::detail::quote(arg) + " (see --help)"};
        }
    }
    if (opts.help) return opts;
    if (positional.size() != 2)
        throw usage_error{"expected IN and OUT, got " + std::to_string(positional.size()) + " argument" +
                          (positional.size() == 1 ? "" : "s") + " (see --help)"};
    opts.input = positional[0];
    opts.output = positional[1];
    return opts;
}

[[noreturn]] void throw_stdout_error() {
    const int e = errno;
    throw st::error(st::errc::write_failed,
                    std::string("cannot write to standard output: ") + (e ? std::strerror(e) : "write failed"));
}

void write_stdout(const void* data, std::size_t size) {
    if (size != 0 && std::fwrite(data, 1, size, stdout) != size) throw_stdout_error();
}

bool stderr_is_terminal() {
#if defined(_WIN32)
    return _isatty(_fileno(stderr)) != 0;
#else
    return ::isatty(2) == 1;
#endif
}

// "1.5 GiB": binary units with one decimal.
std::string human_size(std::uint64_t bytes) {
    if (bytes < 1024) return std::to_string(bytes) + " B";
    static const char* const units[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    double value = static_cast<double>(bytes) / 1024;
    std::size_t unit = 0;
    while (value >= 1023.95 && unit + 1 < sizeof units / sizeof units[0]) {
        value /= 1024;
        ++unit;
    }
    char text[32];
    std::snprintf(text, sizeof text, "%.1f %s", value, units[unit]);
    return text;
}

// One line on standard error, redrawn ("\r") each time the percentage changes, ended with a
// newline when done or before an error message. Never writes to standard output.
class progress_line {
public:
    void start(std::uint64_t total) {
        total_ = total;
        active_ = true;
        draw(0);
    }
    void advance(std::uint64_t bytes) {
        if (!active_) return;
        done_ += bytes;
        draw(done_);
    }
    // Ends the line (if one is shown), so what follows starts on a fresh line.
    void finish() noexcept {
        if (!active_) return;
        active_ = false;
        std::fputs("\n", stderr);
        std::fflush(stderr);
    }

private:
    void draw(std::uint64_t done) {
        const int percent = total_ == 0 ? 100 : static_cast<int>(static_cast<double>(done) * 100.0 / static_cast<double>(total_));
        if (percent == shown_) return;
        shown_ = percent;
        const int filled = percent / 5;
        std::string line = "\rrewriting [" + std::string(static_cast<std::size_t>(filled), '#') +
                           std::string(static_cast<std::size_t>(20 - filled), ' ') + "] " + std::to_string(percent) + "% " +
                           human_size(done) + " of " + human_size(total_) + "   ";
        std::fputs(line.c_str(), stderr);
        std::fflush(stderr);
    }

    std::uint64_t total_ = 0;
    std::uint64_t done_ = 0;
    int shown_ = -1;
    bool active_ = false;
};

progress_line progress;  // global so main() can end the line before an error

int run(int argc, char** argv) {
    const options opts = parse_options(argc, argv);
    if (opts.help) {
        write_stdout(usage_text, sizeof(usage_text) - 1);
        if (std::fflush(stdout) != 0) throw_stdout_error();
        return 0;
    }

    const st::file in = st::open(opts.input);

    // The tensors to copy: all, or the --only ones (each once, in any order: the writer sorts).
    std::vector<st::tensor_ref> decls;
    auto declare = [&](const st::tensor_view& view) {
        decls.emplace_back(view.name(), view.dtype(), view.shape());
    };
    if (opts.only.empty()) {
        decls.reserve(in.size());
        for (const st::tensor_view& view : in) declare(view);
    } else {
        std::vector<std::string> names = opts.only;
        std::sort(names.begin(), names.end());
        names.erase(std::unique(names.begin(), names.end()), names.end());
        for (const std::string& name : names) declare(in.tensor(name));  // tensor_not_found if absent
    }

    std::optional<st::metadata_map> metadata;
    if (in.metadata() != nullptr) metadata = *in.metadata();
    for (const metadata_edit& edit : opts.edits) {
        if (edit.drop) {
            if (metadata) metadata->erase(edit.key);
        } else {
            if (!metadata) metadata.emplace();
            metadata->set(edit.key, edit.value);
        }
    }

    // The writer validates and plans everything here, before OUT is touched.
    std::optional<st::stream_writer> writer;
    if (opts.output == "-") {
#if defined(_WIN32)
        _setmode(_fileno(stdout), _O_BINARY);
#endif
        writer.emplace([](const std::byte* data, std::size_t size) { write_stdout(data, size); }, std::move(decls),
                       metadata, opts.write);
    } else {
        writer.emplace(opts.output, std::move(decls), metadata, opts.write);
    }

    // In the order the writer asks for; read_bytes goes through pread, so a file truncated
    // while we copy gives an error instead of a SIGBUS.
    std::uint64_t total = 0;
    for (std::size_t i = 0; i < writer->size(); ++i) total += writer->tensor(i).byte_size();
    constexpr std::uint64_t large_file = std::uint64_t{64} << 20;
    if (opts.progress == progress_mode::on ||
        (opts.progress == progress_mode::automatic && total >= large_file && stderr_is_terminal()))
        progress.start(total);

    constexpr std::uint64_t chunk = std::uint64_t{8} << 20;
    std::vector<std::byte> buffer;
    for (std::size_t i = 0; i < writer->size(); ++i) {
        const st::tensor_info info = writer->tensor(i);
        const st::tensor_view view = in.tensor(info.name);
        const std::uint64_t size = info.byte_size();
        const auto wanted = static_cast<std::size_t>(std::min(size, chunk));
        if (buffer.size() < wanted) buffer.resize(wanted);
        for (std::uint64_t done = 0; done < size;) {
            const auto n = static_cast<std::size_t>(std::min(size - done, chunk));
            view.read_bytes(done, buffer.data(), n);
            writer->write(i, buffer.data(), n);
            done += n;
            progress.advance(n);
        }
    }
    writer->commit();
    progress.finish();
    if (opts.output == "-" && (std::fflush(stdout) != 0 || std::ferror(stdout))) throw_stdout_error();
    return 0;
}

void report(const std::string& message) {
    progress.finish();
    // Library messages quote names with control characters escaped, so this stays one line.
    const std::string line = "error: " + message + "\n";
    std::fwrite(line.data(), 1, line.size(), stderr);
    std::fflush(stderr);
}

} // namespace

int main(int argc, char** argv) {
#if defined(SIGXFSZ)
    // Past RLIMIT_FSIZE the kernel sends SIGXFSZ, which kills the process before the writer
    // can remove its temporary file. Ignored, the write fails with EFBIG and the cleanup runs.
    std::signal(SIGXFSZ, SIG_IGN);
#endif
    try {
        return run(argc, argv);
    } catch (const usage_error& e) {
        report(e.message);
    } catch (const st::error& e) {
        report(e.message());
    } catch (const std::bad_alloc&) {
        report("out of memory");
    } catch (const std::exception& e) {
        report(e.what());
    }
    return 1;
}
