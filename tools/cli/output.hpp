// safetensors command: what every subcommand prints with: escaping of text from the file,
// JSON strings, sizes, the one-line error contract, standard output written in full or not
// at all, and the progress line on standard error.
#pragma once

#include <safetensors/error.hpp>
#include <safetensors/span.hpp>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>
#include <string_view>

#if defined(_WIN32)
#include <fcntl.h>
#include <io.h>
#else
#include <unistd.h>
#endif

namespace cli {

namespace st = safetensors;

// Exit statuses: 0 success (diff: equal), 1 an error (diff: different), 2 a usage error
// (diff: an error of any kind, like diff(1)).
constexpr int exit_ok = 0;
constexpr int exit_error = 1;
constexpr int exit_usage = 2;

// A mistake on the command line: "error: <message>" and exit 2. Messages name flags.
struct usage_error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// Escapes text from the file for a terminal: backslash, C0 controls, DEL and C1 controls
// (UTF-8 C2 80..C2 9F) become escapes; other UTF-8 passes through. Backslashes are doubled
// (so escapes are unambiguous) unless keep_backslash is set, for text already escaped, such
// as the library's error messages.
inline std::string printable(std::string_view text, bool keep_backslash = false) {
    static const char hex[] = "0123456789abcdef";
    std::string out;
    out.reserve(text.size());
    for (std::size_t i = 0; i < text.size(); ++i) {
        const auto c = static_cast<unsigned char>(text[i]);
        if (c == 0xC2 && i + 1 < text.size()) {
            const auto next = static_cast<unsigned char>(text[i + 1]);
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

// printable() inside double quotes, with quotes escaped: a name or value in a table.
inline std::string quoted_text(std::string_view text) {
    std::string out = "\"";
    for (char c : printable(text)) {
        if (c == '"') out += "\\\"";
        else out.push_back(c);
    }
    return out + "\"";
}

// A string as a JSON string literal. Headers are validated UTF-8, so UTF-8 passes through;
// C0, DEL and C1 controls are written as \u00XX so the output is also safe on a terminal.
// Width in terminal columns, approximately: one per UTF-8 code point (names may hold any).
inline std::size_t display_width(std::string_view text) {
    std::size_t n = 0;
    for (char c : text)
        if ((static_cast<unsigned char>(c) & 0xC0) != 0x80) ++n;
    return n;
}

inline void append_json_string(std::string& out, std::string_view text) {
    static const char hex[] = "0123456789abcdef";
    out.push_back('"');
    for (std::size_t i = 0; i < text.size(); ++i) {
        const auto c = static_cast<unsigned char>(text[i]);
        unsigned escape = 0x100;  // none
        if (c == 0xC2 && i + 1 < text.size()) {
            const auto next = static_cast<unsigned char>(text[i + 1]);
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

inline std::string shape_text(st::span<const std::uint64_t> shape) {
    std::string out = "[";
    for (std::size_t i = 0; i < shape.size(); ++i) {
        if (i) out += ", ";
        out += std::to_string(shape[i]);
    }
    return out + "]";
}

// "642 B", "37.5 KiB", "1.5 MiB": binary units with one decimal.
inline std::string human_size(std::uint64_t bytes) {
    if (bytes < 1024) return std::to_string(bytes) + " B";
    static const char* const units[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    double value = static_cast<double>(bytes) / 1024;
    std::size_t unit = 0;
    // Step up while the value would print as 1024.0 or more.
    while (value >= 1023.95 && unit + 1 < sizeof units / sizeof units[0]) {
        value /= 1024;
        ++unit;
    }
    char text[32];
    std::snprintf(text, sizeof text, "%.1f %s", value, units[unit]);
    return text;
}

[[noreturn]] inline void throw_stdout_error() {
    const int e = errno;
    throw st::error(st::errc::write_failed,
                    std::string("cannot write to standard output: ") + (e ? std::strerror(e) : "write failed"));
}

inline void write_stdout(const void* data, std::size_t size) {
    if (size != 0 && std::fwrite(data, 1, size, stdout) != size) throw_stdout_error();
}
inline void write_stdout(std::string_view text) { write_stdout(text.data(), text.size()); }

// Standard output in pieces: text is appended to a buffer that is written out whenever it
// holds 64 KiB or more (spill), so the report of a million tensors never sits whole in memory:
// each page of a string that large is a fresh page fault, and growing it copies it. Commands
// that promise empty output on any error open and check every input first.
class stdout_buffer {
public:
    static constexpr std::size_t chunk = std::size_t{1} << 16;

    stdout_buffer() { text_.reserve(2 * chunk); }
    std::string& text() noexcept { return text_; }
    void spill() {
        if (text_.size() >= chunk) flush();
    }
    void flush() {
        write_stdout(text_);
        text_.clear();
    }

private:
    std::string text_;
};

// The reports of a command's inputs (inspect, stats), written through one stdout_buffer:
// tables one after another with a blank line between; for JSON, one input's report, or several
// as one object {name(i): report} whose reports are indented by two spaces. table(i, out) and
// json(i, indent, out) append input i's report, the JSON one without a final newline.
template <class Name, class Table, class Json>
void write_reports(std::size_t count, bool as_json, const Name& name, const Table& table, const Json& json) {
    stdout_buffer out;
    if (!as_json) {
        for (std::size_t i = 0; i < count; ++i) {
            if (i != 0) out.text() += '\n';
            table(i, out);
        }
    } else if (count == 1) {
        json(0, "", out);
        out.text() += '\n';
    } else {
        out.text() += "{\n";
        for (std::size_t i = 0; i < count; ++i) {
            out.text() += "  ";
            append_json_string(out.text(), name(i));
            out.text() += ": ";
            json(i, "  ", out);
            out.text() += i + 1 < count ? ",\n" : "\n";
        }
        out.text() += "}\n";
    }
    out.flush();
}

inline void flush_stdout() {
    if (std::fflush(stdout) != 0 || std::ferror(stdout)) throw_stdout_error();
}

// Raw bytes on standard output (no CR LF translation on Windows).
inline void binary_stdout() {
#if defined(_WIN32)
    _setmode(_fileno(stdout), _O_BINARY);
#endif
}

inline bool stderr_is_terminal() {
#if defined(_WIN32)
    return _isatty(_fileno(stderr)) != 0;
#else
    return ::isatty(2) == 1;
#endif
}

// Whether a progress line is shown: --progress, --no-progress, or by default only on a
// terminal for inputs of at least 64 MiB.
enum class progress_mode { automatic, on, off };

inline bool wants_progress(progress_mode mode, std::uint64_t total_bytes) {
    constexpr std::uint64_t large_input = std::uint64_t{64} << 20;
    return mode == progress_mode::on ||
           (mode == progress_mode::automatic && total_bytes >= large_input && stderr_is_terminal());
}

// One line on standard error, redrawn ("\r") each time the percentage changes, ended with a
// newline when done or before an error message. Never writes to standard output. Not
// thread-safe: callers that work in threads advance it from one thread.
class progress_line {
public:
    void start(std::string verb, std::uint64_t total) {
        verb_ = std::move(verb);
        total_ = total;
        done_ = 0;
        shown_ = -1;
        active_ = true;
        draw();
    }
    void advance(std::uint64_t bytes) {
        if (!active_) return;
        done_ += bytes;
        draw();
    }
    // Ends the line (if one is shown), so what follows starts on a fresh line.
    void finish() noexcept {
        if (!active_) return;
        active_ = false;
        std::fputs("\n", stderr);
        std::fflush(stderr);
    }

private:
    void draw() {
        const int percent =
            total_ == 0 ? 100 : static_cast<int>(static_cast<double>(done_) * 100.0 / static_cast<double>(total_));
        if (percent == shown_) return;
        shown_ = percent;
        const int filled = percent / 5;
        const std::string line = "\r" + verb_ + " [" + std::string(static_cast<std::size_t>(filled), '#') +
                                 std::string(static_cast<std::size_t>(20 - filled), ' ') + "] " +
                                 std::to_string(percent) + "% " + human_size(done_) + " of " + human_size(total_) +
                                 "   ";
        std::fputs(line.c_str(), stderr);
        std::fflush(stderr);
    }

    std::string verb_;
    std::uint64_t total_ = 0;
    std::uint64_t done_ = 0;
    int shown_ = -1;
    bool active_ = false;
};

// The one progress line of the process, so main() can end it before an error message.
inline progress_line& progress() {
    static progress_line line;
    return line;
}

// The error contract: one line, "error: <message>", on standard error.
inline void report_error(std::string_view message) {
    progress().finish();
    // The library's messages are one line already; escape anyway so that holds for any text.
    const std::string line = "error: " + printable(message, /*keep_backslash=*/true) + "\n";
    std::fwrite(line.data(), 1, line.size(), stderr);
    std::fflush(stderr);
}

} // namespace cli
