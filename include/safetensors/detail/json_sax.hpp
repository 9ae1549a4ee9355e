// safetensors-hpp: a strict SAX parse of JSON text with nlohmann, JSON only.
#pragma once

#include <string_view>
#include <utility>

#include <nlohmann/json.hpp>

namespace safetensors::detail {

// nlohmann::json::sax_parse picks the input format at run time, so each call also compiles
// nlohmann's CBOR/MessagePack/UBJSON/BSON reader for the SAX type: the largest part of the
// compile cost of the header parser, for code that never runs. This is that function's JSON
// branch, spelled out (the same parser and input adapter; strict; no comments).
// The parser's interface is nlohmann's detail: it is used only on the 3.11 releases it was
// checked against (Debian's 3.11.2, the 3.11.3 CMake fetches); any other version takes the
// public call, which gives the same events and errors.
template <class SAX>
bool json_sax_parse(std::string_view text, SAX* sax) {
    const char* first = text.data();
#if NLOHMANN_JSON_VERSION_MAJOR == 3 && NLOHMANN_JSON_VERSION_MINOR == 11
    auto input = nlohmann::detail::input_adapter(first, first + text.size());
    return nlohmann::detail::parser<nlohmann::json, decltype(input)>(std::move(input), nullptr,
                                                                    /*allow_exceptions_=*/true,
                                                                    /*skip_comments=*/false)
        .sax_parse(sax, /*strict=*/true);
#else
    return nlohmann::json::sax_parse(first, first + text.size(), sax, nlohmann::json::input_format_t::json,
                                     /*strict=*/true, /*ignore_comments=*/false);
#endif
}

} // namespace safetensors::detail
