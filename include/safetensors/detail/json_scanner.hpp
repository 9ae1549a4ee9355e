// safetensors-hpp: a fast JSON reader for the shape safetensors headers have in practice,
// emitting the same SAX events as nlohmann's parser.
//
// Opening a real checkpoint shard spent about 87% of its instructions in nlohmann's lexer (a
// push_back per character, strtoull per number). This reader covers a strict subset of JSON:
// objects, arrays, strings without escapes or control characters, unsigned integers of at most
// 19 digits (no sign, fraction or exponent), true, false and null, separated by JSON
// whitespace. On anything else, valid or not, it stops and says so (scan_status::unsupported),
// and the caller parses the whole text again with nlohmann, which then gives its own events and
// its own error messages. So for every text, the events a handler sees are the ones nlohmann
// gives; tests/fuzz/fuzz_header_scan.cpp checks that the two paths build the same table or
// throw the same error. The text must already be checked as UTF-8 without NUL bytes
// (sax_builder::check_bytes), which is what nlohmann's string rules would check here.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace safetensors::detail {

enum class scan_status {
    complete,     // the whole text was read and every event accepted
    stopped,      // the handler returned false (its failure is what to report)
    unsupported,  // outside this reader's subset: parse the text with nlohmann instead
};

template <class SAX>
class json_scanner {
public:
    json_scanner(std::string_view text, SAX& sax) noexcept
        : p_(text.data()), end_(text.data() + text.size()), sax_(sax) {}

    scan_status run() {
        skip_space();
        const scan_status s = value();
        if (s != scan_status::complete) return s;
        skip_space();
        return p_ == end_ ? scan_status::complete : scan_status::unsupported;  // nlohmann reports the rest
    }

private:
    static scan_status result(bool accepted) noexcept { return accepted ? scan_status::complete : scan_status::stopped; }

    void skip_space() noexcept {
        while (p_ != end_ && (*p_ == ' ' || *p_ == '\n' || *p_ == '\r' || *p_ == '\t')) ++p_;
    }

    // Nesting is bounded by the handler: its start_object/start_array refuse depth 128.
    scan_status value() {
        if (p_ == end_) return scan_status::unsupported;
        switch (*p_) {
            case '{': return object();
            case '[': return array();
            case '"':
                if (!read_string()) return scan_status::unsupported;
                return result(sax_.string(text_));
            case 't': return literal("true", 4) ? result(sax_.boolean(true)) : scan_status::unsupported;
            case 'f': return literal("false", 5) ? result(sax_.boolean(false)) : scan_status::unsupported;
            case 'n': return literal("null", 4) ? result(sax_.null()) : scan_status::unsupported;
            default: return number();
        }
    }

    scan_status object() {
        ++p_;
        if (!sax_.start_object(static_cast<std::size_t>(-1))) return scan_status::stopped;
        skip_space();
        if (p_ != end_ && *p_ == '}') {
            ++p_;
            return result(sax_.end_object());
        }
        for (;;) {
            if (p_ == end_ || *p_ != '"' || !read_string()) return scan_status::unsupported;
            skip_space();
            if (p_ == end_ || *p_ != ':') return scan_status::unsupported;
            ++p_;
            if (!sax_.key(text_)) return scan_status::stopped;
            skip_space();
            const scan_status s = value();
            if (s != scan_status::complete) return s;
            skip_space();
            if (p_ == end_) return scan_status::unsupported;
            if (*p_ == '}') {
                ++p_;
                return result(sax_.end_object());
            }
            if (*p_ != ',') return scan_status::unsupported;
            ++p_;
            skip_space();
        }
    }

    scan_status array() {
        ++p_;
        if (!sax_.start_array(static_cast<std::size_t>(-1))) return scan_status::stopped;
        skip_space();
        if (p_ != end_ && *p_ == ']') {
            ++p_;
            return result(sax_.end_array());
        }
        for (;;) {
            const scan_status s = value();
            if (s != scan_status::complete) return s;
            skip_space();
            if (p_ == end_) return scan_status::unsupported;
            if (*p_ == ']') {
                ++p_;
                return result(sax_.end_array());
            }
            if (*p_ != ',') return scan_status::unsupported;
            ++p_;
            skip_space();
        }
    }

    // A string at p_ (the opening quote) into text_; false for an escape or a control
    // character (nlohmann decodes the one and rejects the other).
    bool read_string() {
        const char* begin = ++p_;
        // Eight bytes at a time while none of them is '"', '\\' or below 0x20.
        while (end_ - p_ >= 8) {
            std::uint64_t word;
            std::memcpy(&word, p_, 8);
            if (has_string_end(word)) break;
            p_ += 8;
        }
        while (p_ != end_) {
            const auto c = static_cast<unsigned char>(*p_);
            if (c == '"') {
                text_.assign(begin, static_cast<std::size_t>(p_ - begin));
                ++p_;
                return true;
            }
            if (c == '\\' || c < 0x20) return false;
            ++p_;
        }
        return false;  // unterminated
    }

    // Whether any byte of word is '"', '\\' or below 0x20 (the exact "has zero byte" and "has
    // byte less than" tests: no false answers either way).
    static bool has_string_end(std::uint64_t word) noexcept {
        constexpr std::uint64_t ones = 0x0101010101010101u, highs = 0x8080808080808080u;
        const std::uint64_t quote = word ^ (ones * '"');
        const std::uint64_t backslash = word ^ (ones * '\\');
        return (((quote - ones) & ~quote) | ((backslash - ones) & ~backslash) | ((word - ones * 0x20) & ~word)) & highs;
    }

    bool literal(const char* word, std::size_t size) noexcept {
        if (static_cast<std::size_t>(end_ - p_) < size || std::string_view(p_, size) != std::string_view(word, size))
            return false;
        p_ += size;
        // "truex" or "null1" is an error nlohmann words itself.
        return p_ == end_ || !is_word_char(*p_);
    }

    static bool is_word_char(char c) noexcept {
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '.' || c == '-' ||
               c == '+' || c == '_';
    }

    // An unsigned integer: "0" or a nonzero digit and at most 18 more, not followed by a digit,
    // '.', 'e' or 'E' (a leading zero, a fraction, an exponent or a longer number is nlohmann's).
    scan_status number() {
        const char* begin = p_;
        std::uint64_t v = 0;
        while (p_ != end_ && *p_ >= '0' && *p_ <= '9') {
            v = v * 10 + static_cast<std::uint64_t>(*p_ - '0');
            ++p_;
        }
        const auto digits = static_cast<std::size_t>(p_ - begin);
        if (digits == 0 || digits > 19 || (digits > 1 && *begin == '0')) return scan_status::unsupported;
        if (p_ != end_ && is_word_char(*p_)) return scan_status::unsupported;
        return result(sax_.number_unsigned(v));
    }

    const char* p_;
    const char* end_;
    SAX& sax_;
    std::string text_;  // the last string or key, handed to the handler (which may move from it)
};

// Reads text with handler (see the top of this file).
template <class SAX>
scan_status scan_json(std::string_view text, SAX& sax) {
    return json_scanner<SAX>(text, sax).run();
}

} // namespace safetensors::detail
