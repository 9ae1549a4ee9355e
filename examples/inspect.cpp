// safetensors-inspect: show what a .safetensors file holds, as a table or as JSON, or copy
// one tensor's raw bytes to standard output.
//
//   safetensors-inspect FILE                 table of tensors, totals, then the metadata
//   safetensors-inspect --json FILE          {"metadata": ..., "tensors": ...} for scripts
//   safetensors-inspect --dump NAME FILE     the tensor's raw little-endian bytes
//   safetensors-inspect --dump NAME --slice SPEC FILE
//                                            only the part SPEC selects ("0, :, 1:3")
//   safetensors-inspect --help
//
// The file is untrusted input: every name, key and value is escaped before it is printed, so
// no control character (C0, DEL, C1) from the file reaches the terminal. Output is built in
// memory and written only once everything has succeeded, so on any error standard output
// stays empty and standard error holds exactly one line, "error: <message>" (exit status 1).
#include <safetensors/safetensors.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <new>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#if defined(_WIN32)
#include <fcntl.h>
#include <io.h>
#endif

namespace st = safetensors;

namespace {

const char usage_text[] =
    "usage: safetensors-inspect [--json] FILE\n"
    "       safetensors-inspect --dump NAME [--slice SPEC] FILE\n"
    "       safetensors-inspect --help\n"
    "\n"
    "Shows the tensors and metadata of a safetensors file.\n"
    "\n"
    "options:\n"
    "  (none)        a table of the tensors in file order (name, dtype, shape, bytes,\n"
    "                data offsets), the totals, then the metadata in header order;\n"
    "                metadata values holding JSON objects or arrays are pretty-printed\n"
    "  --json        print {\"metadata\": {...} or null, \"tensors\": {NAME: {\"dtype\": ...,\n"
    "                \"shape\": [...], \"data_offsets\": [begin, end]}}} with metadata in\n"
    "                header order and tensors in file order (2-space indent, one tensor\n"
    "                per line)\n"
    "  --dump NAME   write the raw bytes of tensor NAME to standard output, nothing else\n"
    "  --slice SPEC  with --dump: only the elements SPEC selects, in row-major order;\n"
    "                SPEC is Python/torch basic indexing, e.g. \"0, :, 1:3\" or \"..., ::2\"\n"
    "  -h, --help    show this help and exit\n"
    "  --            end of options (for a FILE that starts with '-')\n"
    "\n"
    "Names, keys and values are printed with control characters escaped. On error the\n"
    "exit status is 1, standard output is empty and standard error holds one line,\n"
    "\"error: <message>\".\n";

// A usage mistake: reported like a file error (one "error: " line, exit 1).
struct usage_error {
    std::string message;
};

enum class mode { table, json, dump };

struct options {
    mode what = mode::table;
    bool help = false;
    std::string file;
    std::string tensor_name;  // --dump NAME
    std::optional<std::string> slice;  // --slice SPEC (refines --dump)
};

// Escapes a string from the file so it can be shown on a terminal: backslash, C0 controls,
// DEL and C1 controls (UTF-8 C2 80..C2 9F) become escape sequences; everything else
// (including other UTF-8) passes through. Not truncated: a table must show whole names.
// Backslashes are doubled (so the escapes are unambiguous) unless keep_backslash is set,
// for text that is already escaped, such as the library's error messages.
std::string printable(std::string_view text, bool keep_backslash = false) {
    static const char hex[] = "0123456789abcdef";
    std::string out;
    out.reserve(text.size());
    for (std::size_t i = 0; i < text.size(); ++i) {
        auto c = static_cast<unsigned char>(text[i]);
        if (c == 0xC2 && i + 1 < text.size()) {
            auto next = static_cast<unsigned char>(text[i + 1]);
            if (next >= 0x80 && next <= 0x9F) {
                out += "\\u00";
                out.push_back(hex[next >> 4]);
                out.push_back(hex[next & 15]);
                ++i;
                continue;
            }
        }
        switch (c) {
            case '\\': out += keep_backslash ? "\\" : "\\\\"; break;
            case '\n': out += "\\n"; break;
            case '\t': out += "\\t"; break;
            case '\r': out += "\\r"; break;
            default:
                if (c < 0x20 || c == 0x7f) {
                    out += "\\x";
                    out.push_back(hex[c >> 4]);
                    out.push_back(hex[c & 15]);
                } else {
                    out.push_back(static_cast<char>(c));
                }
        }
    }
    return out;
}

// A string as a JSON string literal. The header is validated UTF-8, so passing UTF-8 through
// gives valid JSON; C0, DEL and C1 controls are written as \u00XX so the output is also safe
// on a terminal (the same escaping applied to nlohmann's output below).
void append_json_string(std::string& out, std::string_view text) {
    static const char hex[] = "0123456789abcdef";
    out.push_back('"');
    for (std::size_t i = 0; i < text.size(); ++i) {
        auto c = static_cast<unsigned char>(text[i]);
        unsigned escape = 0x100;  // none
        if (c == 0xC2 && i + 1 < text.size()) {
            auto next = static_cast<unsigned char>(text[i + 1]);
            if (next >= 0x80 && next <= 0x9F) {
                escape = next;
                ++i;
            }
        }
        if (escape == 0x100) {
            switch (c) {
                case '"': out += "\\\""; continue;
                case '\\': out += "\\\\"; continue;
                case '\n': out += "\\n"; continue;
                case '\t': out += "\\t"; continue;
                case '\r': out += "\\r"; continue;
                case '\b': out += "\\b"; continue;
                case '\f': out += "\\f"; continue;
                default: break;
            }
            if (c < 0x20 || c == 0x7f) escape = c;
        }
        if (escape != 0x100) {
            out += "\\u00";
            out.push_back(hex[escape >> 4]);
            out.push_back(hex[escape & 15]);
        } else {
            out.push_back(static_cast<char>(c));
        }
    }
    out.push_back('"');
}

// nlohmann's dump() escapes C0 controls but, with ensure_ascii off, passes DEL and C1
// controls through raw; escape those too (still valid JSON: they sit inside strings).
std::string escape_json_text(const std::string& json) {
    static const char hex[] = "0123456789abcdef";
    std::string out;
    out.reserve(json.size());
    for (std::size_t i = 0; i < json.size(); ++i) {
        auto c = static_cast<unsigned char>(json[i]);
        unsigned code = 0x100;
        if (c == 0x7f) code = c;
        else if (c == 0xC2 && i + 1 < json.size()) {
            auto next = static_cast<unsigned char>(json[i + 1]);
            if (next >= 0x80 && next <= 0x9F) {
                code = next;
                ++i;
            }
        }
        if (code == 0x100) {
            out.push_back(static_cast<char>(c));
        } else {
            out += "\\u00";
            out.push_back(hex[code >> 4]);
            out.push_back(hex[code & 15]);
        }
    }
    return out;
}

// Deepest nesting of [ and { outside string literals; stops counting past limit.
bool nesting_within(std::string_view text, std::size_t limit) {
    std::size_t depth = 0;
    bool in_string = false;
    for (std::size_t i = 0; i < text.size(); ++i) {
        char c = text[i];
        if (in_string) {
            if (c == '\\') ++i;
            else if (c == '"') in_string = false;
        } else if (c == '"') {
            in_string = true;
        } else if (c == '[' || c == '{') {
            if (++depth > limit) return false;
        } else if ((c == ']' || c == '}') && depth > 0) {
            --depth;
        }
    }
    return true;
}

// Metadata values that hold a JSON object or array (LoRA trainers store ss_* settings this
// way) are parsed and pretty-printed; anything else, and JSON nested deeper than this, is
// shown as a plain string.
constexpr std::size_t max_pretty_depth = 64;

std::optional<nlohmann::ordered_json> parse_embedded_json(std::string_view value) {
    if (value.empty() || (value.front() != '{' && value.front() != '[')) return std::nullopt;
    if (!nesting_within(value, max_pretty_depth)) return std::nullopt;
    auto parsed = nlohmann::ordered_json::parse(value.begin(), value.end(), nullptr, /*allow_exceptions=*/false);
    if (parsed.is_discarded()) return std::nullopt;
    return parsed;
}

// Width in terminal columns, approximately: one per UTF-8 code point.
std::size_t display_width(std::string_view text) {
    std::size_t n = 0;
    for (char c : text)
        if ((static_cast<unsigned char>(c) & 0xC0) != 0x80) ++n;
    return n;
}

void append_padded(std::string& out, const std::string& cell, std::size_t width, bool right) {
    std::size_t w = display_width(cell);
    std::string pad(w < width ? width - w : 0, ' ');
    if (right) out += pad;
    out += cell;
    if (!right) out += pad;
}

std::string shape_text(st::span<const std::uint64_t> shape) {
    std::string out = "[";
    for (std::size_t i = 0; i < shape.size(); ++i) {
        if (i) out += ", ";
        out += std::to_string(shape[i]);
    }
    return out + "]";
}

std::string table_report(const st::file& f, const std::string& path) {
    struct row {
        std::string cells[5];
    };
    static const char* const headings[5] = {"NAME", "DTYPE", "SHAPE", "BYTES", "DATA_OFFSETS"};
    std::vector<row> rows;
    rows.reserve(f.size());
    std::uint64_t total_bytes = 0;
    for (const auto& view : f) {
        auto offsets = view.data_offsets();
        rows.push_back(row{{printable(view.name()), std::string(st::to_string(view.dtype())), shape_text(view.shape()),
                            std::to_string(view.byte_size()),
                            "[" + std::to_string(offsets.first) + ", " + std::to_string(offsets.second) + "]"}});
        total_bytes += view.byte_size();
    }
    std::size_t width[5];
    for (int c = 0; c < 5; ++c) {
        width[c] = std::string_view(headings[c]).size();
        for (const auto& r : rows) width[c] = std::max(width[c], display_width(r.cells[c]));
    }

    std::string out;
    out += "file: " + printable(path) + "\n\n";
    if (!rows.empty()) {
        auto line = [&](const std::string (&cells)[5]) {
            for (int c = 0; c < 5; ++c) {
                if (c) out += "  ";
                if (c == 4) out += cells[c];  // last column: no trailing spaces
                else append_padded(out, cells[c], width[c], c == 3);
            }
            out += '\n';
        };
        line({headings[0], headings[1], headings[2], headings[3], headings[4]});
        for (const auto& r : rows) line(r.cells);
        out += '\n';
    }
    const auto& header = f.header();
    out += "tensors: " + std::to_string(f.size()) + "\n";
    out += "total bytes: " + std::to_string(total_bytes) + "\n";
    out += "header size: " + std::to_string(header.header_size()) + " bytes (data starts at byte " +
           std::to_string(header.data_offset()) + ")\n";

    const st::metadata_map* metadata = f.metadata();
    if (!metadata) {
        out += "metadata: none\n";
        return out;
    }
    out += "metadata: " + std::to_string(metadata->size()) + (metadata->size() == 1 ? " entry\n" : " entries\n");
    for (const auto& [key, value] : *metadata) {
        out += "  " + printable(key) + " = ";
        if (auto json = parse_embedded_json(value)) {
            // Continuation lines line up under the key.
            std::string text = escape_json_text(json->dump(2));
            for (char c : text) {
                out.push_back(c);
                if (c == '\n') out += "  ";
            }
        } else {
            out += '"';
            std::string shown = printable(value);
            for (char c : shown) {
                if (c == '"') out += "\\\"";
                else out.push_back(c);
            }
            out += '"';
        }
        out += '\n';
    }
    return out;
}

// Built by hand rather than through nlohmann::ordered_json, whose inserts are linear (a
// header can hold a million tensors); strings are escaped by append_json_string.
std::string json_report(const st::file& f) {
    std::string out = "{\n  \"metadata\": ";
    if (const st::metadata_map* metadata = f.metadata()) {
        if (metadata->empty()) {
            out += "{}";
        } else {
            out += "{\n";
            bool first = true;
            for (const auto& [key, value] : *metadata) {
                if (!first) out += ",\n";
                first = false;
                out += "    ";
                append_json_string(out, key);
                out += ": ";
                append_json_string(out, value);
            }
            out += "\n  }";
        }
    } else {
        out += "null";
    }
    out += ",\n  \"tensors\": ";
    if (f.empty()) {
        out += "{}";
    } else {
        out += "{\n";
        bool first = true;
        for (const auto& view : f) {
            if (!first) out += ",\n";
            first = false;
            out += "    ";
            append_json_string(out, view.name());
            out += ": {\"dtype\": \"";
            out += st::to_string(view.dtype());
            out += "\", \"shape\": " + shape_text(view.shape());
            auto offsets = view.data_offsets();
            out += ", \"data_offsets\": [" + std::to_string(offsets.first) + ", " + std::to_string(offsets.second) + "]}";
        }
        out += "\n  }";
    }
    out += "\n}\n";
    return out;
}

options parse_options(int argc, char** argv) {
    options opts;
    bool json = false;
    std::optional<std::string> dump;
    std::optional<std::string> slice;
    std::vector<std::string> positional;
    bool options_done = false;
    for (int i = 1; i < argc; ++i) {
        std::string arg = argv[i];
        if (options_done || arg.empty() || arg[0] != '-' || arg == "-") {
            positional.push_back(arg);
            continue;
        }
        // An option that takes a value: "--name VALUE" or "--name=VALUE".
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
        } else if (arg == "--json") {
            json = true;
        } else if (auto name = value_of("--dump")) {
            if (dump) throw usage_error{"option --dump given twice"};
            dump = std::move(*name);
        } else if (auto spec = value_of("--slice")) {
            if (slice) throw usage_error{"option --slice given twice"};
            slice = std::move(*spec);
        } else {
            throw usage_error{"unknown option " + st::detail::quote(arg) + " (see --help)"};
        }
    }
    if (opts.help) return opts;
    if (json && dump) throw usage_error{"--json and --dump cannot be used together"};
    if (slice && !dump) throw usage_error{"--slice needs --dump NAME"};
    if (positional.empty()) throw usage_error{"no FILE given (see --help)"};
    if (positional.size() > 1)
        throw usage_error{"expected one FILE, got " + std::to_string(positional.size()) + " arguments (see --help)"};
    opts.file = positional.front();
    if (dump) {
        opts.what = mode::dump;
        opts.tensor_name = std::move(*dump);
        opts.slice = std::move(slice);
    } else if (json) {
        opts.what = mode::json;
    }
    return opts;
}

// Writes all of data to stdout; throws on failure.
void write_stdout(const void* data, std::size_t size) {
    if (size != 0 && std::fwrite(data, 1, size, stdout) != size) {
        int e = errno;
        throw st::error(st::errc::io_error,
                        std::string("cannot write to standard output: ") + (e ? std::strerror(e) : "write failed"));
    }
}

void flush_stdout() {
    if (std::fflush(stdout) != 0 || std::ferror(stdout)) {
        int e = errno;
        throw st::error(st::errc::io_error,
                        std::string("cannot write to standard output: ") + (e ? std::strerror(e) : "write failed"));
    }
}

// The bytes of a tensor_view or a tensor_slice (packed, row-major), read in chunks through
// read_bytes: read_at on the file, so a file truncated after open gives an error instead of a
// SIGBUS from the mapping.
template <class Bytes>
void dump_bytes(const Bytes& source) {
#if defined(_WIN32)
    _setmode(_fileno(stdout), _O_BINARY);
#endif
    constexpr std::size_t chunk = std::size_t(1) << 20;
    std::vector<unsigned char> buffer(static_cast<std::size_t>(std::min<std::uint64_t>(source.byte_size(), chunk)));
    for (std::uint64_t done = 0; done < source.byte_size();) {
        auto n = static_cast<std::size_t>(std::min<std::uint64_t>(source.byte_size() - done, chunk));
        source.read_bytes(done, buffer.data(), n);
        write_stdout(buffer.data(), n);
        done += n;
    }
}

int run(int argc, char** argv) {
    options opts = parse_options(argc, argv);
    if (opts.help) {
        write_stdout(usage_text, sizeof(usage_text) - 1);
        flush_stdout();
        return 0;
    }
    st::file f = st::open(opts.file);
    switch (opts.what) {
        case mode::table: {
            std::string text = table_report(f, opts.file);
            write_stdout(text.data(), text.size());
            break;
        }
        case mode::json: {
            std::string text = json_report(f);
            write_stdout(text.data(), text.size());
            break;
        }
        case mode::dump: {
            st::tensor_view view = f.tensor(opts.tensor_name);  // tensor_not_found before any output
            if (opts.slice)
                dump_bytes(view.slice(*opts.slice));  // a bad SPEC is reported before any output
            else
                dump_bytes(view);
            break;
        }
    }
    flush_stdout();
    return 0;
}

void report(std::string_view message) {
    // The library's messages are one line already; escape anyway so that holds for any text.
    std::string line = "error: " + printable(message, /*keep_backslash=*/true) + "\n";
    std::fwrite(line.data(), 1, line.size(), stderr);
    std::fflush(stderr);
}

} // namespace

int main(int argc, char** argv) {
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
