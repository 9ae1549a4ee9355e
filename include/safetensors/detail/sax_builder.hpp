// safetensors-hpp: what the header and index SAX builders share: the byte checks nlohmann
// does not make, the nesting limit, skipping unknown values, and keeping the first failure
// (a callback returns false to stop the parse; the failure is thrown once nlohmann returns).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>

#include <nlohmann/json.hpp>

#include "../error.hpp"
#include "../header_table.hpp"  // max_json_depth
#include "json_sax.hpp"
#include "utf8.hpp"

namespace safetensors::detail {

// Which reader header_builder uses: the fast scanner (header_scanner.hpp) with nlohmann behind
// it, or nlohmann alone.
enum class json_reader { automatic, nlohmann };

// How one kind of document names itself and classifies its failures.
struct json_document {
    std::string name;            // "header", or the index's path: "invalid JSON in <name> ..."
    std::string nesting_name;    // "<nesting_name> nests deeper than 127 levels"
    errc invalid_json;           // malformed JSON, a NUL byte, a BOM
    errc invalid_utf8;
    errc too_deep;
};

class sax_builder {
public:
    // nlohmann's parse errors, without its "[json.exception.parse_error.101] " prefix.
    bool parse_error(std::size_t position, const std::string&, const nlohmann::detail::exception& e) {
        if (failed_) return false;  // our own stop, reported already
        std::string what = e.what();
        const auto close = what.find("] ");
        if (close != std::string::npos) what.erase(0, close + 2);
        return fail(document_.invalid_json,
                    "invalid JSON in " + document_.name + " at byte " + std::to_string(position) + ": " + what);
    }

protected:
    explicit sax_builder(json_document document) : document_(std::move(document)) {}

    // Checks text's bytes, then runs nlohmann's JSON SAX parser (json_sax.hpp) with builder
    // (a class derived from this one) and throws the first failure.
    template <class Builder>
    static void parse(std::string_view text, Builder& builder) {
        const sax_builder& base = builder;
        base.check_bytes(text);
        const bool ok = json_sax_parse(text, &builder);
        if (!ok || base.failed_) throw_error(base.failure_code_, base.failure_);
    }

    // Bytes nlohmann would misread: it stops at a raw NUL and silently skips a leading BOM,
    // while the reference rejects both. UTF-8 is checked first, as the reference does.
    void check_bytes(std::string_view text) const {
        const auto* bytes = reinterpret_cast<const unsigned char*>(text.data());
        const header_bytes_scan scan = scan_header_bytes(bytes, text.size());
        if (scan.invalid_utf8 != text.size())
            throw_error(document_.invalid_utf8,
                        "invalid UTF-8 in " + document_.name + " at byte " + std::to_string(scan.invalid_utf8));
        if (scan.first_nul != text.size())
            throw_error(document_.invalid_json,
                        "invalid JSON in " + document_.name + ": NUL byte at byte " + std::to_string(scan.first_nul));
        if (text.size() >= 3 && bytes[0] == 0xEF && bytes[1] == 0xBB && bytes[2] == 0xBF)
            throw_error(document_.invalid_json, "invalid JSON in " + document_.name + ": byte order mark at byte 0");
    }

    // An object or array starts (false past the nesting limit) or ends.
    bool enter() {
        if (++depth_ > max_json_depth)
            return fail(document_.too_deep,
                        document_.nesting_name + " nests deeper than " + std::to_string(max_json_depth) + " levels");
        return true;
    }
    void leave() noexcept { --depth_; }

    // Skipping a value nobody reads (its nesting still counts): start_skip() at its key, then
    // skip_start() for each container start, and skip_end() / skip_scalar() return true when
    // the skipped value is over.
    void start_skip() noexcept { skip_depth_ = 0; }
    void skip_start() noexcept { ++skip_depth_; }
    bool skip_end() noexcept { return --skip_depth_ == 0; }
    bool skip_scalar() const noexcept { return skip_depth_ == 0; }

    // Keeps the first failure; always false, so a callback can return it.
    bool fail(errc code, std::string message) {
        if (!failed_) {
            failed_ = true;
            failure_code_ = code;
            failure_ = std::move(message);
        }
        return false;
    }

    const json_document& document() const noexcept { return document_; }

private:
    json_document document_;
    std::size_t depth_ = 0;
    std::size_t skip_depth_ = 0;
    bool failed_ = false;
    errc failure_code_ = errc::ok;
    std::string failure_;
};

} // namespace safetensors::detail
