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
template <class SAX>
bool json_sax_parse(std::string_view text, SAX* sax) {
    const char* first = text.data();
    auto input = nlohmann::detail::input_adapter(first, first + text.size());
    return nlohmann::detail::parser<nlohmann::json, decltype(input)>(std::move(input), nullptr,
                                                                    /*allow_exceptions_=*/true,
                                                                    /*skip_comments=*/false)
        .sax_parse(sax, /*strict=*/true);
}

} // namespace safetensors::detail
