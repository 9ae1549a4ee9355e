// The header reader (detail/json_scanner.hpp) against nlohmann's parser: on every reference
// fixture, on the fuzz regressions, and on headers made to hit each edge of the scanner's JSON
// subset (escapes, signs, fractions, exponents, leading zeros, 20-digit numbers, literals, stray
// bytes, truncation, nesting), both readers must build the same table or throw the same error.
// And the scanner must be what reads the headers writers produce.
#include <doctest/doctest.h>

#include <safetensors/header.hpp>

#include "fuzz/fuzz_header_scan.hpp"
#include "support/bytes.hpp"

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

namespace {

namespace st = safetensors;

// A file's bytes from its header text, with data_size bytes of data.
std::vector<std::uint8_t> file_bytes(const std::string& header, std::size_t data_size) {
    std::vector<std::uint8_t> out(8);
    for (int i = 0; i < 8; ++i) out[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(header.size() >> (8 * i));
    out.insert(out.end(), header.begin(), header.end());
    out.resize(out.size() + data_size);
    return out;
}

void check_agree(const std::vector<std::uint8_t>& bytes, const std::string& what) {
    const std::string diff = fuzz::disagreement(bytes.data(), bytes.size());
    CHECK_MESSAGE(diff.empty(), what, "\n", diff);
}

// What the scanner makes of a header on its own: complete, stopped or unsupported.
struct recorder {
    std::string events;
    bool null() { return events += "null ", true; }
    bool boolean(bool v) { return events += v ? "true " : "false ", true; }
    bool number_unsigned(std::uint64_t v) { return events += std::to_string(v) + " ", true; }
    bool string(std::string& s) { return events += "s:" + s + " ", true; }
    bool key(std::string& s) { return events += "k:" + s + " ", true; }
    bool start_object(std::size_t) { return events += "{ ", true; }
    bool end_object() { return events += "} ", true; }
    bool start_array(std::size_t) { return events += "[ ", true; }
    bool end_array() { return events += "] ", true; }
};

st::detail::scan_status scan(const std::string& text, std::string* events = nullptr) {
    recorder r;
    const auto status = st::detail::scan_json(text, r);
    if (events) *events = r.events;
    return status;
}

} // namespace

TEST_CASE("header scan: the scanner and nlohmann agree on every reference fixture and fuzz regression") {
    std::size_t files = 0;
    for (const char* folder : {"reference/valid", "reference/malformed", "reference/model/gpt2_tiny",
                               "reference/model/gpt2_tiny_sharded", "fuzz-regressions"}) {
        const std::filesystem::path dir = test_support::data_path(folder);
        if (!std::filesystem::exists(dir)) continue;
        for (const auto& entry : std::filesystem::recursive_directory_iterator(dir)) {
            if (!entry.is_regular_file()) continue;
            const auto bytes = test_support::read_all(entry.path().string());
            std::vector<std::uint8_t> data(bytes.size());
            if (!data.empty()) std::memcpy(data.data(), bytes.data(), bytes.size());
            check_agree(data, entry.path().string());
            ++files;
        }
    }
    CHECK(files > 60);
}

TEST_CASE("header scan: each edge of the scanner's subset gives nlohmann's table or error") {
    const std::string t = R"("t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]})";
    const std::vector<std::string> headers = {
        "{" + t + "}",
        " \t\r\n{ " + t + " } \n",
        R"({"__metadata__":{"a":"b","c":"d"},)" + t + "}",
        R"({"__metadata__":null,)" + t + "}",
        R"({"__metadata__":{"a":"\u00e9"},)" + t + "}",        // an escape: nlohmann decodes it
        R"({"__metadata__":{"a":"x\"y"},)" + t + "}",
        R"({"__metadata__":{"a":"caf)" "\xc3\xa9" R"("},)" + t + "}",  // raw UTF-8 passes through
        R"({"__metadata__":{"a":1},)" + t + "}",              // not a string: the builder's error
        R"({"__metadata__":{"a":true},)" + t + "}",
        R"({"__metadata__":{"a":false},)" + t + "}",
        R"({"__metadata__":{"a":null},)" + t + "}",
        R"({"__metadata__":{"a":-1},)" + t + "}",
        R"({"__metadata__":{"a":1.5},)" + t + "}",
        R"({"__metadata__":{"a":1e3},)" + t + "}",
        R"({"__metadata__":{"a":[1,{"b":[]}]},)" + t + "}",
        R"({"t":{"dtype":"F32","shape":[02],"data_offsets":[0,8]}})",
        R"({"t":{"dtype":"F32","shape":[2.0],"data_offsets":[0,8]}})",
        R"({"t":{"dtype":"F32","shape":[2e0],"data_offsets":[0,8]}})",
        R"({"t":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})",
        R"({"t":{"dtype":"F32","shape":[-0],"data_offsets":[0,8]}})",
        R"({"t":{"dtype":"F32","shape":[18446744073709551616],"data_offsets":[0,8]}})",
        R"({"t":{"dtype":"F32","shape":[18446744073709551615],"data_offsets":[0,8]}})",
        R"({"t":{"dtype":"F32","shape":[9999999999999999999],"data_offsets":[0,8]}})",
        R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"extra":{"x":[1,2,{"y":null}]}}})",
        R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},})",   // trailing comma
        R"({"t":{"dtype":"F32","shape":[2,],"data_offsets":[0,8]}})",
        R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}} x)",  // bytes after the value
        R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}})",
        R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]})",     // truncated
        R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8)",
        R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"u" )",
        R"({"t" {"dtype":"F32","shape":[2],"data_offsets":[0,8]}})",      // missing colon
        R"({"t":{"dtype":"F32" "shape":[2],"data_offsets":[0,8]}})",      // missing comma
        R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}truex)",
        R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"x":tru}})",
        R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"x":nul}})",
        R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"x":truex}})",
        R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"x":12a}})",
        R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"x":'a'}})",
        "{\"t\":{\"dtype\":\"F\x01" "32\",\"shape\":[2],\"data_offsets\":[0,8]}}",  // a control character
        "{\"t\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}\v",          // not JSON whitespace
        R"([1,2])",
        R"("header")",
        R"(7)",
        "",
        "   ",
        R"({})",
        R"({"t":{"dtype":"F32","shape":[],"data_offsets":[0,4]}})",
        R"({"t":{"dtype":"BF16","shape":[2],"data_offsets":[0,8]}})",  // the builder's size error
        R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})",
        std::string(200, '[') + std::string(200, ']'),  // nests past the limit
        "{\"a\":" + std::string(126, '[') + std::string(126, ']') + "}",
    };
    for (const std::string& header : headers)
        for (std::size_t data : {0, 4, 8, 16}) check_agree(file_bytes(header, data), header);

    // Every prefix of a canonical header, and every one-byte change of it.
    const std::string canonical = R"({"__metadata__":{"format":"pt"},"a.weight":{"dtype":"BF16","shape":[2,3],"data_offsets":[0,12]},"b":{"dtype":"I64","shape":[],"data_offsets":[12,20]}})";
    for (std::size_t n = 0; n <= canonical.size(); ++n) check_agree(file_bytes(canonical.substr(0, n), 20), "prefix");
    for (std::size_t i = 0; i < canonical.size(); ++i)
        for (char c : {' ', '"', '\\', ',', ':', '{', '}', '[', ']', '0', '9', '-', '.', 'e', 'x', '\n', '\x7f'}) {
            std::string mutated = canonical;
            mutated[i] = c;
            check_agree(file_bytes(mutated, 20), mutated);
        }
}

TEST_CASE("header scan: the scanner reads what writers write, and leaves the rest to nlohmann") {
    std::string events;
    CHECK(scan(R"({"__metadata__":{"format":"pt"},"w":{"dtype":"F16","shape":[2,3],"data_offsets":[0,12]}})", &events) ==
          st::detail::scan_status::complete);
    CHECK(events == "{ k:__metadata__ { k:format s:pt } k:w { k:dtype s:F16 k:shape [ 2 3 ] k:data_offsets [ 0 12 ] } } ");
    CHECK(scan(" [ true , false , null , 0 , 1234567890123456789 , \"\" , { } , [ ] ] ", &events) ==
          st::detail::scan_status::complete);
    CHECK(events == "[ true false null 0 1234567890123456789 s: { } [ ] ] ");
    // A string that is long enough for the eight-byte steps, with its quote at every offset.
    for (std::size_t n = 0; n < 40; ++n) {
        CHECK(scan("\"" + std::string(n, 'x') + "\"", &events) == st::detail::scan_status::complete);
        CHECK(events == "s:" + std::string(n, 'x') + " ");
        CHECK(scan("\"" + std::string(n, 'x') + "\\n\"") == st::detail::scan_status::unsupported);
        CHECK(scan("\"" + std::string(n, 'x') + "\x1f\"") == st::detail::scan_status::unsupported);
        CHECK(scan("\"" + std::string(n, 'x')) == st::detail::scan_status::unsupported);
    }
    for (const char* other : {"-1", "1.0", "1e2", "01", "12345678901234567890", "\"\\u0041\"", "tru", "nul", "x", "",
                              "[1 2]", "{\"a\" 1}", "{\"a\":1,}", "[1,]", "{1:2}", "[1] [2]"})
        CHECK_MESSAGE(scan(other) == st::detail::scan_status::unsupported, other);
}
