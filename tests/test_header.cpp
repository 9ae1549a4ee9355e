// Header parsing and validation: one small byte image per rule of the format reference,
// in the reference's order, with the exact error code and message.
#include <doctest/doctest.h>

#include <safetensors/safetensors.hpp>

#include <string>
#include <vector>

#include "support/bytes.hpp"

using safetensors::errc;
using test_support::make_file;

namespace {

struct outcome {
    errc code = errc::ok;
    std::string message;
};

outcome open_bytes(const std::vector<std::byte>& bytes) {
    auto r = safetensors::try_open_buffer(bytes.data(), bytes.size());
    if (r) return {};
    return {r.error().code(), r.error().message()};
}

outcome open_json(const std::string& json, const std::string& data = "") { return open_bytes(make_file(json, data)); }

errc code_of(const std::string& json, const std::string& data = "") { return open_json(json, data).code; }

std::string tensor(const std::string& name, const std::string& dtype, const std::string& shape, std::uint64_t b,
                   std::uint64_t e) {
    return "\"" + name + "\":{\"dtype\":\"" + dtype + "\",\"shape\":" + shape + ",\"data_offsets\":[" +
           std::to_string(b) + "," + std::to_string(e) + "]}";
}

const std::string ok_t = tensor("t", "F32", "[2,2]", 0, 16);  // needs 16 bytes of data
const std::string data16(16, '\0');

} // namespace

TEST_CASE("rule 1: fewer than 8 bytes is 'header too small'") {
    for (std::size_t n = 0; n < 8; ++n) {
        std::vector<std::byte> bytes(n);
        CHECK(open_bytes(bytes).code == errc::header_too_small);
    }
    CHECK(open_bytes(std::vector<std::byte>(7)).message ==
          "header too small: \"buffer\" has 7 bytes, fewer than the 8-byte length prefix");
}

TEST_CASE("rule 2: a length above 100,000,000 is 'header too large'; exactly 100,000,000 is allowed") {
    auto prefix_only = [](std::uint64_t n) {
        std::vector<std::byte> bytes(16, std::byte{' '});
        for (int i = 0; i < 8; ++i) bytes[static_cast<std::size_t>(i)] = static_cast<std::byte>((n >> (8 * i)) & 0xff);
        return bytes;
    };
    auto too_large = open_bytes(prefix_only(100'000'001));
    CHECK(too_large.code == errc::header_too_large);
    CHECK(too_large.message == "header too large: length prefix says 100000001 bytes, the limit is 100000000");
    CHECK(open_bytes(prefix_only(UINT64_MAX)).code == errc::header_too_large);
    CHECK(open_bytes(prefix_only(std::uint64_t{1} << 63)).code == errc::header_too_large);
    // At the limit the length is accepted; the next rule (length past EOF) fires instead.
    CHECK(open_bytes(prefix_only(100'000'000)).code == errc::invalid_header_length);

    SUBCASE("a header of exactly 100,000,000 bytes of valid JSON opens") {
        std::string json = "{\"__metadata__\":{\"pad\":\"";
        std::string tail = "\"}}";
        json += std::string(100'000'000 - json.size() - tail.size(), 'x');
        json += tail;
        REQUIRE(json.size() == 100'000'000);
        auto f = safetensors::file::from_bytes(make_file(json));
        CHECK(f.header().header_size() == 100'000'000);
        CHECK(f.metadata()->at("pad").size() == 100'000'000 - 27);
    }
}

TEST_CASE("rule 3: 8 + N past the end of the file is 'invalid header length'") {
    auto bytes = make_file("{}");
    bytes.pop_back();  // N says 2, only 1 byte follows
    auto r = open_bytes(bytes);
    CHECK(r.code == errc::invalid_header_length);
    CHECK(r.message == "invalid header length: 2 bytes of header after the 8-byte prefix, but \"buffer\" has only 1");
}

TEST_CASE("rule 4: header bytes must be valid UTF-8, checked before JSON") {
    CHECK(open_json("{\"a\x80\":{}}").message == "invalid UTF-8 in header at byte 3");  // lone continuation
    CHECK(code_of("{\"\xC0\x80\":1}") == errc::invalid_utf8);       // overlong NUL
    CHECK(code_of("{\"\xE0\x80\xAF\":1}") == errc::invalid_utf8);   // overlong '/'
    CHECK(code_of("{\"\xED\xA0\x80\":1}") == errc::invalid_utf8);   // surrogate D800
    CHECK(code_of("{\"\xF4\x90\x80\x80\":1}") == errc::invalid_utf8);  // above U+10FFFF
    CHECK(code_of("{\"\xF5\":1}") == errc::invalid_utf8);
    CHECK(code_of("{\"\xE2\x82\":1}") == errc::invalid_utf8);       // truncated sequence
    CHECK(code_of("{} \xC3") == errc::invalid_utf8);                 // truncated at the very end
    // Even where the JSON is also broken, UTF-8 is reported first.
    CHECK(code_of("[\xFF") == errc::invalid_utf8);
    // Valid multi-byte names are fine.
    CHECK(code_of("{" + tensor("\xC3\xA9\xE4\xB8\xAD\xF0\x9F\x98\x80", "U8", "[1]", 0, 1) + "}", "x") == errc::ok);
}

// The bytes are checked in 32-byte blocks with a byte-by-byte path for blocks that are not
// plain ASCII: every position in and around a block boundary must be found exactly.
TEST_CASE("rule 4/5: the byte scan finds the first bad byte wherever it is") {
    using safetensors::detail::scan_header_bytes;
    auto scan = [](const std::string& s) {
        return scan_header_bytes(reinterpret_cast<const unsigned char*>(s.data()), s.size());
    };
    for (std::size_t size : {std::size_t{0}, std::size_t{31}, std::size_t{32}, std::size_t{33}, std::size_t{100}}) {
        CAPTURE(size);
        const std::string plain(size, 'a');
        CHECK(scan(plain).invalid_utf8 == size);
        CHECK(scan(plain).first_nul == size);
        for (std::size_t at = 0; at < size; ++at) {
            CAPTURE(at);
            std::string nul = plain;
            nul[at] = '\0';
            if (at + 1 < size) nul[size - 1] = '\0';  // only the first one counts
            CHECK(scan(nul).first_nul == at);
            CHECK(scan(nul).invalid_utf8 == size);
            std::string bad = plain;
            bad[at] = '\xFF';
            CHECK(scan(bad).invalid_utf8 == at);
            if (at > 0) {  // a NUL before bad UTF-8: UTF-8 is still reported
                bad[0] = '\0';
                CHECK(scan(bad).invalid_utf8 == at);
            }
            if (at + 4 <= size) {  // a valid 4-byte sequence starting here (across a block edge too)
                std::string emoji = plain;
                emoji.replace(at, 4, "\xF0\x9F\x98\x80");
                CHECK(scan(emoji).invalid_utf8 == size);
                CHECK(scan(emoji).first_nul == size);
            }
            if (at + 2 == size) {  // a 3-byte sequence cut by the end of the header
                std::string cut = plain;
                cut.replace(at, 2, "\xE2\x82");
                CHECK(scan(cut).invalid_utf8 == at);
            }
        }
    }
    // Through the parser: invalid UTF-8 after a NUL wins, as the reference checks UTF-8 first.
    const char nul_then_bad[] = "{\"a\0\":1,\"b\xFF\":2}";
    CHECK(open_json(std::string(nul_then_bad, sizeof nul_then_bad - 1)).message == "invalid UTF-8 in header at byte 10");
}

TEST_CASE("rule 5: strict JSON") {
    SUBCASE("JSON whitespace before and after the object is allowed") {
        CHECK(code_of(" \t\r\n{" + ok_t + "} \t\r\n  ", data16) == errc::ok);
    }
    SUBCASE("NUL, form feed, BOM, comments, trailing commas, second values are not") {
        auto nul = open_json("{" + ok_t + "}" + std::string(1, '\0'), data16);
        CHECK(nul.code == errc::invalid_json);
        CHECK(nul.message == "invalid JSON in header: NUL byte at byte 57");
        CHECK(code_of(std::string(1, '\0') + "{}") == errc::invalid_json);
        CHECK(code_of("{}\f") == errc::invalid_json);
        CHECK(code_of("\f{}") == errc::invalid_json);
        auto bom = open_json("\xEF\xBB\xBF{}");
        CHECK(bom.code == errc::invalid_json);
        CHECK(bom.message == "invalid JSON in header: byte order mark at byte 0");
        CHECK(code_of(" \xEF\xBB\xBF{}") == errc::invalid_json);
        CHECK(code_of("{}/* c */") == errc::invalid_json);
        CHECK(code_of("{/* c */}") == errc::invalid_json);
        CHECK(code_of("{" + ok_t + ",}", data16) == errc::invalid_json);
        CHECK(code_of("{}{}") == errc::invalid_json);
        CHECK(code_of("{} x") == errc::invalid_json);
        auto garbage = open_json("{}x");
        CHECK(garbage.message ==
              "invalid JSON in header at byte 3: parse error at line 1, column 3: syntax error while parsing value - "
              "invalid literal; last read: '{}x'; expected end of input");
    }
    SUBCASE("the top level must be an object; an empty header is invalid") {
        CHECK(open_json("").code == errc::invalid_json);
        CHECK(open_json("   ").code == errc::invalid_json);
        auto arr = open_json("[]");
        CHECK(arr.code == errc::invalid_header);
        CHECK(arr.message == "header must be a JSON object, got an array");
        CHECK(code_of("\"x\"") == errc::invalid_header);
        CHECK(code_of("1") == errc::invalid_header);
        CHECK(code_of("null") == errc::invalid_header);
        CHECK(code_of("{}") == errc::ok);
    }
    SUBCASE("__metadata__: null, an object of strings, anywhere, once") {
        auto none = safetensors::file::from_bytes(make_file("{\"__metadata__\":null}"));
        CHECK(none.metadata() == nullptr);
        auto empty = safetensors::file::from_bytes(make_file("{\"__metadata__\":{}}"));
        REQUIRE(empty.metadata() != nullptr);
        CHECK(empty.metadata()->empty());
        auto last = safetensors::file::from_bytes(make_file("{" + ok_t + ",\"__metadata__\":{\"b\":\"1\",\"a\":\"2\"}}", data16));
        REQUIRE(last.metadata() != nullptr);
        CHECK(last.metadata()->begin()->first == "b");  // header order kept
        CHECK(last.metadata()->at("a") == "2");

        CHECK(open_json("{\"__metadata__\":\"x\"}").message == "__metadata__ must be an object of strings or null, got \"x\"");
        CHECK(code_of("{\"__metadata__\":[]}") == errc::invalid_metadata);
        CHECK(code_of("{\"__metadata__\":1}") == errc::invalid_metadata);
        CHECK(open_json("{\"__metadata__\":{\"k\":1}}").message == "metadata value for key \"k\" must be a string, got 1");
        CHECK(code_of("{\"__metadata__\":{\"k\":null}}") == errc::invalid_metadata);
        CHECK(code_of("{\"__metadata__\":{\"k\":{}}}") == errc::invalid_metadata);
        CHECK(code_of("{\"__metadata__\":{\"k\":[\"v\"]}}") == errc::invalid_metadata);
        CHECK(code_of("{\"__metadata__\":{\"k\":true}}") == errc::invalid_metadata);
        CHECK(open_json("{\"__metadata__\":{},\"__metadata__\":{}}").message == "duplicate key \"__metadata__\" in header");
        CHECK(code_of("{\"__metadata__\":null,\"__metadata__\":null}") == errc::invalid_metadata);
        // Deviation: the reference keeps the last of duplicated metadata keys; we refuse.
        auto dup = open_json("{\"__metadata__\":{\"k\":\"1\",\"j\":\"2\",\"k\":\"3\"}}");
        CHECK(dup.code == errc::duplicate_metadata_key);
        CHECK(dup.message == "duplicate metadata key \"k\"");
    }
    SUBCASE("tensor names: any string, escapes decoded, duplicates refused") {
        auto f = safetensors::file::from_bytes(make_file("{" + tensor("", "U8", "[1]", 0, 1) + "," +
                                                         tensor("a\\u00e9\\n", "U8", "[1]", 1, 2) + "}", "xy"));
        CHECK(f.contains(""));
        CHECK(f.contains("a\xC3\xA9\n"));
        // Deviation: duplicates (also after unescaping) are refused; the reference keeps the last.
        auto dup = open_json("{" + tensor("a", "U8", "[1]", 0, 1) + "," + tensor("\\u0061", "U8", "[1]", 1, 2) + "}", "xy");
        CHECK(dup.code == errc::duplicate_tensor);
        CHECK(dup.message == "duplicate tensor name \"a\"");
        CHECK(code_of("{" + tensor("\\ud800", "U8", "[1]", 0, 1) + "}", "x") == errc::invalid_json);  // lone surrogate
        CHECK(code_of("{\"a\tb\":{}}") == errc::invalid_json);  // raw control character
        // A name that is only special after unescaping is still the metadata key.
        CHECK(code_of("{\"__metadata\\u005f_\":{\"k\":\"v\"}}") == errc::ok);
    }
    SUBCASE("tensor entries: an object with dtype, shape, data_offsets") {
        CHECK(open_json("{\"t\":{\"shape\":[],\"data_offsets\":[0,4]}}", "1234").message ==
              "tensor \"t\": missing field \"dtype\"");
        CHECK(open_json("{\"t\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", "1234").message ==
              "tensor \"t\": missing field \"shape\"");
        CHECK(open_json("{\"t\":{\"dtype\":\"F32\",\"shape\":[]}}", "1234").message ==
              "tensor \"t\": missing field \"data_offsets\"");
        CHECK(open_json("{\"t\":{\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]}}", "1234").message ==
              "tensor \"t\": field \"dtype\" is given twice");
        CHECK(code_of("{\"t\":{\"dtype\":\"F32\",\"shape\":[],\"shape\":[],\"data_offsets\":[0,4]}}", "1234") ==
              errc::invalid_tensor_entry);
        CHECK(code_of("{\"t\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4],\"data_offsets\":[0,4]}}", "1234") ==
              errc::invalid_tensor_entry);
        // Deviation: the reference accepts these through quirks of its deserializer.
        CHECK(open_json("{\"t\":[\"F32\",[],[0,4]]}", "1234").message == "tensor \"t\": entry must be an object, got an array");
        CHECK(open_json("{\"t\":{\"dtype\":{\"F32\":null},\"shape\":[],\"data_offsets\":[0,4]}}", "1234").message ==
              "tensor \"t\": field \"dtype\" must be a string, got an object");
        CHECK(code_of("{\"t\":\"F32\"}") == errc::invalid_tensor_entry);
        CHECK(code_of("{\"t\":null}") == errc::invalid_tensor_entry);
        CHECK(code_of("{\"t\":1}") == errc::invalid_tensor_entry);
    }
    SUBCASE("dtype: exact names only") {
        CHECK(code_of("{" + tensor("t", "f32", "[]", 0, 4) + "}", "1234") == errc::unknown_dtype);
        CHECK(code_of("{" + tensor("t", "F128", "[]", 0, 4) + "}", "1234") == errc::unknown_dtype);
        CHECK(code_of("{" + tensor("t", "", "[]", 0, 4) + "}", "1234") == errc::unknown_dtype);
        // Another spelling of a format name gets a hint; anything else the list of names.
        CHECK(open_json("{" + tensor("t", "f32", "[]", 0, 4) + "}", "1234").message ==
              "tensor \"t\": field \"dtype\" unknown dtype \"f32\" (did you mean \"F32\"?)");
        CHECK(open_json("{" + tensor("t", "torch.bfloat16", "[]", 0, 2) + "}", "12").message ==
              "tensor \"t\": field \"dtype\" unknown dtype \"torch.bfloat16\" (did you mean \"BF16\"?)");
        CHECK(open_json("{" + tensor("t", "F128", "[]", 0, 4) + "}", "1234").message ==
              "tensor \"t\": field \"dtype\" unknown dtype \"F128\" (expected one of BOOL, F4, F6_E2M3, F6_E3M2, U8, I8, "
              "F8_E5M2, F8_E4M3, F8_E8M0, F8_E4M3FNUZ, F8_E5M2FNUZ, I16, U16, F16, BF16, I32, U32, F32, C64, F64, I64, U64)");
        CHECK(code_of("{\"t\":{\"dtype\":7,\"shape\":[],\"data_offsets\":[0,4]}}", "1234") == errc::invalid_tensor_entry);
        for (auto d : safetensors::all_dtypes) {
            std::string json = "{\"t\":{\"dtype\":\"" + std::string(safetensors::to_string(d)) +
                               "\",\"shape\":[8],\"data_offsets\":[0," + std::to_string(safetensors::bit_size(d)) + "]}}";
            CHECK(code_of(json, std::string(safetensors::bit_size(d), 'x')) == errc::ok);
        }
    }
    SUBCASE("shape and data_offsets: arrays of unsigned integers") {
        auto shape_of = [](const std::string& shape) {
            return open_json("{\"t\":{\"dtype\":\"U8\",\"shape\":" + shape + ",\"data_offsets\":[0,0]}}");
        };
        CHECK(shape_of("[]").code == errc::size_mismatch);  // a scalar needs 1 byte: the shape itself parsed
        CHECK(shape_of("[0]").code == errc::ok);
        CHECK(shape_of("[-1]").message == "tensor \"t\": field \"shape\" dimension 0 must be an unsigned integer, got -1");
        CHECK(shape_of("[1,-0]").message == "tensor \"t\": field \"shape\" dimension 1 must be an unsigned integer, got 0");
        CHECK(shape_of("[4.0]").message == "tensor \"t\": field \"shape\" dimension 0 must be an unsigned integer, got 4.0");
        CHECK(shape_of("[1e0]").code == errc::invalid_tensor_entry);
        CHECK(shape_of("[18446744073709551616]").code == errc::invalid_tensor_entry);  // 2^64: a float to nlohmann
        CHECK(shape_of("[18446744073709551615,0]").code == errc::ok);              // 2^64-1 parses; times 0 is 0
        CHECK(shape_of("[18446744073709551615,2]").code == errc::shape_overflow);  // ... times 2 overflows
        CHECK(shape_of("[01]").code == errc::invalid_json);
        CHECK(shape_of("[\"1\"]").code == errc::invalid_tensor_entry);
        CHECK(shape_of("[[1]]").code == errc::invalid_tensor_entry);
        CHECK(shape_of("[null]").code == errc::invalid_tensor_entry);
        CHECK(shape_of("4").message == "tensor \"t\": field \"shape\" must be an array, got 4");
        CHECK(shape_of("{}").code == errc::invalid_tensor_entry);

        auto offsets_of = [](const std::string& offsets) {
            return open_json("{\"t\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":" + offsets + "}}");
        };
        CHECK(offsets_of("[0,0]").code == errc::ok);
        CHECK(offsets_of("[0]").message == "tensor \"t\": field \"data_offsets\" must have exactly 2 elements, got 1");
        CHECK(offsets_of("[]").code == errc::invalid_tensor_entry);
        CHECK(offsets_of("[0,0,0]").message == "tensor \"t\": field \"data_offsets\" must have exactly 2 elements, got more");
        CHECK(offsets_of("[0,-0]").code == errc::invalid_tensor_entry);
        CHECK(offsets_of("[0.0,0]").message ==
              "tensor \"t\": field \"data_offsets\" element 0 must be an unsigned integer, got 0.0");
        CHECK(offsets_of("[0,18446744073709551616]").code == errc::invalid_tensor_entry);
        CHECK(offsets_of("0").code == errc::invalid_tensor_entry);
    }
    SUBCASE("unknown fields inside a tensor entry are ignored, whatever they hold") {
        std::string t = "\"t\":{\"dtype\":\"F32\",\"foo\":[1,{}],\"shape\":[],\"x\":{\"y\":[null,true,-1.5e3,\"s\"]},"
                        "\"data_offsets\":[0,4],\"z\":\"w\"}";
        CHECK(code_of("{" + t + "}", "1234") == errc::ok);
    }
    SUBCASE("nesting: 127 levels are accepted, 128 refused, also inside ignored fields") {
        auto nested = [](std::size_t levels) {  // levels counts the top-level object
            std::string inner(levels - 2, '[');  // the top object and the entry are 2 levels
            inner += std::string(levels - 2, ']');
            return "{\"t\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[0,0],\"x\":" + inner + "}}";
        };
        CHECK(code_of(nested(127)) == errc::ok);
        auto deep = open_json(nested(128));
        CHECK(deep.code == errc::nesting_too_deep);
        CHECK(deep.message == "header JSON nests deeper than 127 levels");
        // A huge nesting depth is refused early, without recursion.
        CHECK(code_of("{\"t\":{\"x\":" + std::string(1'000'000, '[')) == errc::nesting_too_deep);
    }
}

TEST_CASE("rule 6: offsets walk in (begin, end) order") {
    SUBCASE("out of order in the JSON is fine: file order follows offsets") {
        auto f = safetensors::file::from_bytes(
            make_file("{" + tensor("b", "F32", "[1]", 4, 8) + "," + tensor("a", "F32", "[1]", 0, 4) + "}", "12345678"));
        CHECK(f.keys() == std::vector<std::string_view>{"a", "b"});
    }
    SUBCASE("gap at the start, holes, overlaps, reversed ranges") {
        CHECK(open_json("{" + tensor("t", "F32", "[1]", 4, 8) + "}", "12345678").message ==
              "invalid offset for tensor \"t\": data_offsets [4, 8], expected it to begin at 0");
        CHECK(open_json("{" + tensor("a", "F32", "[1]", 0, 4) + "," + tensor("b", "F32", "[1]", 8, 12) + "}",
                        "123456789012").message == "invalid offset for tensor \"b\": data_offsets [8, 12], expected it to begin at 4");
        CHECK(code_of("{" + tensor("a", "F32", "[2]", 0, 8) + "," + tensor("b", "F32", "[1]", 4, 8) + "}", "12345678") ==
              errc::invalid_offsets);
        CHECK(open_json("{" + tensor("t", "F32", "[1]", 4, 0) + "}", "1234").message ==
              "invalid offset for tensor \"t\": data_offsets [4, 0], expected it to begin at 0");
    }
    SUBCASE("zero-sized tensors at the start, between tensors and at the end") {
        std::string json = "{" + tensor("z0", "F32", "[0]", 0, 0) + "," + tensor("a", "F32", "[1]", 0, 4) + "," +
                           tensor("z1", "F32", "[0,3]", 4, 4) + "," + tensor("b", "F32", "[1]", 4, 8) + "," +
                           tensor("z2", "I8", "[0]", 8, 8) + "}";
        auto f = safetensors::file::from_bytes(make_file(json, "12345678"));
        CHECK(f.keys() == std::vector<std::string_view>{"z0", "a", "z1", "b", "z2"});
        CHECK(f.tensor("z1").byte_size() == 0);
        CHECK(f.tensor("z1").element_count() == 0);
    }
    SUBCASE("but not strictly inside another tensor's range") {
        CHECK(open_json("{" + tensor("a", "F32", "[2]", 0, 8) + "," + tensor("z", "F32", "[0]", 4, 4) + "}", "12345678")
                  .message == "invalid offset for tensor \"z\": data_offsets [4, 4], expected it to begin at 8");
    }
    SUBCASE("element count and bit count are overflow-checked left to right") {
        CHECK(code_of("{" + tensor("t", "F32", "[0,9223372036854775808,9223372036854775808]", 0, 0) + "}") == errc::ok);
        auto overflow = open_json("{" + tensor("t", "F32", "[9223372036854775808,9223372036854775808,0]", 0, 0) + "}");
        CHECK(overflow.code == errc::shape_overflow);
        CHECK(overflow.message == "overflow computing buffer size for tensor \"t\" from shape "
                                  "[9223372036854775808, 9223372036854775808, 0] and dtype F32");
        // The element count fits, count * 32 bits does not.
        CHECK(code_of("{" + tensor("t", "F32", "[1152921504606846976]", 0, 0) + "}") == errc::shape_overflow);
        CHECK(code_of("{" + tensor("t", "U8", "[1152921504606846976]", 0, 0) + "}") == errc::size_mismatch);
    }
    SUBCASE("sub-byte tensors must fill whole bytes") {
        CHECK(code_of("{" + tensor("t", "F4", "[4]", 0, 2) + "}", "ab") == errc::ok);
        CHECK(open_json("{" + tensor("t", "F4", "[3]", 0, 2) + "}", "ab").message ==
              "tensor \"t\": shape [3] of dtype F4 is not a whole number of bytes");
        CHECK(code_of("{" + tensor("t", "F6_E2M3", "[4]", 0, 3) + "}", "abc") == errc::ok);
        CHECK(code_of("{" + tensor("t", "F6_E3M2", "[2]", 0, 2) + "}", "ab") == errc::misaligned_sub_byte);
    }
    SUBCASE("size must match dtype and shape") {
        CHECK(open_json("{" + tensor("t", "F32", "[2,2]", 0, 12) + "}", std::string(12, 'x')).message ==
              "invalid shape, data type, or offset for tensor \"t\": shape [2, 2] of dtype F32 needs 16 bytes, "
              "data_offsets [0, 12] hold 12");
        CHECK(code_of("{" + tensor("t", "F32", "[]", 0, 8) + "}", std::string(8, 'x')) == errc::size_mismatch);
    }
}

TEST_CASE("rule 7: the tensors must cover the data buffer exactly") {
    CHECK(open_json("{" + ok_t + "}", data16 + "x").message ==
          "incomplete metadata, file not fully covered: tensors cover 16 bytes of a 17-byte data section");
    CHECK(code_of("{}", "x") == errc::incomplete_coverage);
    CHECK(code_of("{}") == errc::ok);
    CHECK(code_of("{" + ok_t + "}", std::string(15, '\0')) == errc::incomplete_coverage);
}

TEST_CASE("values are never checked, and no alignment is required") {
    CHECK(code_of("{" + tensor("b", "BOOL", "[2]", 0, 2) + "}", "\x02\xff") == errc::ok);
    CHECK(code_of("{" + tensor("f", "F32", "[1]", 0, 4) + "}", std::string("\xff\xff\xff\x7f", 4)) == errc::ok);
    // N = 5 leaves the data section at offset 13: readable, but typed access refuses.
    auto bytes = make_file("{" + tensor("f", "F32", "[1]", 0, 4) + "} ", std::string("\0\0\x80?", 4));
    auto f = safetensors::file::from_bytes(bytes);
    float value = 0;
    f.tensor("f").copy_to(&value, 1);
    CHECK(value == 1.0f);
}

TEST_CASE("header_table exposes sizes, file order and a name index") {
    std::string json = "{" + tensor("b", "U8", "[2]", 0, 2) + "," + tensor("a", "U8", "[1]", 2, 3) + "}";
    auto table = safetensors::parse_header(json, 3);
    CHECK(table.header_size() == json.size());
    CHECK(table.data_offset() == json.size() + 8);
    CHECK(table.data_size() == 3);
    REQUIRE(table.size() == 2);
    CHECK(table[0].name == "b");
    CHECK(table[0].dtype == safetensors::dtype::U8);
    CHECK(table[0].shape[0] == 2);
    CHECK(table[1].begin == 2);
    CHECK(table[1].end == 3);
    CHECK(table.find("a") == std::optional<std::size_t>(1));
    CHECK(!table.find("c"));
    CHECK(table.name(table.sorted_indices()[0]) == "a");
}
