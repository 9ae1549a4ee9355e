// safetensors command: inputs given as URLs (http://, https://, hf://), read over HTTP(S) with
// range requests through safetensors/http.hpp when the build found libcurl
// (SAFETENSORS_CLI_HTTP, set by tools/CMakeLists.txt); and what sets how they are read: --token
// (else the HF_TOKEN environment variable), --ca-file, and HF_ENDPOINT for hf:// URLs. The
// library reads no environment variable, so the tool does it here.
//
// The token is handed to the library, which sends it to the URL's own host only and never puts
// it in a message; the tool never prints it either. URLs are printed without their query
// (signed URLs carry secrets there), as the library's messages name them.
#pragma once

#include <CLI/CLI.hpp>
#include <safetensors/detail/http_url.hpp>  // redacted(): no libcurl in it
#include <safetensors/safetensors.hpp>

#if defined(SAFETENSORS_CLI_HTTP) && SAFETENSORS_CLI_HTTP
#include <safetensors/http.hpp>
#endif

#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "output.hpp"

namespace cli {

// http://, https:// or hf:// (the scheme in any case): read over the network, never a path.
inline bool is_url(std::string_view text) {
    namespace http = st::detail::http;
    for (std::string_view scheme : {"http://", "https://", "hf://"})
        if (text.size() >= scheme.size() && http::iequals(text.substr(0, scheme.size()), scheme)) return true;
    return false;
}

// An index URL: its path (before any query or fragment) ends in ".json", as a local index's name.
inline bool is_index_url(std::string_view url) {
    const std::string_view path = url.substr(0, url.find_first_of("?#"));
    return path.size() >= 5 && path.substr(path.size() - 5) == ".json";
}

// How output names a URL: as the library's messages do (an hf:// URL as given, any other
// without its query, shown as "?...", and without user information).
using st::detail::http::shown_url;

// What the flags set, for every URL the process opens (one command line, one set of flags).
struct remote_settings {
    std::optional<std::string> token;  // --token; absent: HF_TOKEN
    std::string ca_file;
};

inline remote_settings& remote() {
    static remote_settings settings;
    return settings;
}

// --token and --ca-file, on every subcommand that reads inputs.
inline void add_remote_options(CLI::App& app) {
    app.add_option("--token", remote().token,
                   "for URL inputs: send \"Authorization: Bearer TOKEN\" to the URL's own host only (never to "
                   "a host it redirects to); default: the HF_TOKEN environment variable, which other users "
                   "cannot see in the process list; --token '' sends none")
        ->type_name("TOKEN");
    app.add_option("--ca-file", remote().ca_file,
                   "for https:// inputs: trust the CA certificates in this PEM file instead of the system's")
        ->type_name("FILE")
        ->check(CLI::ExistingFile.description(""));
}

inline std::string environment(const char* name) {
    const char* value = std::getenv(name);
    return value ? value : "";
}

// The tokens a command line and HF_TOKEN carry ("--token T", "--token=T"), wherever they are on
// it: CLI11's "arguments were not expected" message quotes `safetensors --token T inspect` whole.
inline std::vector<std::string> tokens_in(int argc, char** argv) {
    std::vector<std::string> out{environment("HF_TOKEN")};
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i] ? argv[i] : "";
        if (arg == "--token" && i + 1 < argc && argv[i + 1]) out.emplace_back(argv[i + 1]);
        else if (arg.substr(0, 8) == "--token=") out.emplace_back(arg.substr(8));
    }
    return out;
}

// message with every non-empty token in it replaced by "<token>".
inline std::string without_tokens(std::string message, const std::vector<std::string>& tokens) {
    for (const std::string& token : tokens) {
        if (token.empty()) continue;
        for (std::size_t at = message.find(token); at != std::string::npos; at = message.find(token, at + 7))
            message.replace(at, token.size(), "<token>");
    }
    return message;
}

#if defined(SAFETENSORS_CLI_HTTP) && SAFETENSORS_CLI_HTTP

inline st::http_options http_options() {
    st::http_options o;
    o.bearer_token = remote().token ? *remote().token : environment("HF_TOKEN");
    o.ca_file = remote().ca_file;
    // As huggingface_hub reads it: where hf:// URLs resolve (a mirror, a local hub).
    const std::string endpoint = environment("HF_ENDPOINT");
    if (!endpoint.empty()) o.hf_endpoint = endpoint;
    return o;
}

inline st::file open_url_file(const std::string& url) { return st::open_url(url, http_options()); }
inline st::sharded_file open_url_index(const std::string& url) { return st::open_sharded_url(url, http_options()); }

#else

[[noreturn]] inline void no_http_support(const std::string& url) {
    st::detail::throw_error(st::errc::invalid_argument,
                            "cannot read " + st::detail::quote(shown_url(url)) +
                                ": this build of safetensors has no HTTP support (libcurl not found at build time)");
}
inline st::file open_url_file(const std::string& url) { no_http_support(url); }
inline st::sharded_file open_url_index(const std::string& url) { no_http_support(url); }

#endif

} // namespace cli
