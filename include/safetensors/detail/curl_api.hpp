// safetensors-hpp: the libcurl functions the HTTP reader calls, through one table.
//
// By default the table holds libcurl's functions as linked (safetensors::http links libcurl).
// A program that defines SAFETENSORS_HTTP_LOAD_LIBCURL before including http.hpp, and does
// not link libcurl, gets the table filled from libcurl.so.4 at its first HTTP request: a run
// that never reads a URL never maps libcurl and the thirty libraries it needs (17 ms of every
// start of the safetensors tool on the CI machine, most of it). The tool is built that way.
#pragma once

#include <curl/curl.h>

#include <string>

#include "../error.hpp"
#include "os.hpp"

namespace safetensors::detail::http {

struct curl_functions {
    decltype(&::curl_global_init) global_init;
    decltype(&::curl_easy_init) easy_init;
    decltype(&::curl_easy_cleanup) easy_cleanup;
    decltype(&::curl_easy_reset) easy_reset;
    decltype(&::curl_easy_setopt) easy_setopt;
    decltype(&::curl_easy_getinfo) easy_getinfo;
    decltype(&::curl_easy_strerror) easy_strerror;
    decltype(&::curl_multi_init) multi_init;
    decltype(&::curl_multi_cleanup) multi_cleanup;
    decltype(&::curl_multi_add_handle) multi_add_handle;
    decltype(&::curl_multi_remove_handle) multi_remove_handle;
    decltype(&::curl_multi_perform) multi_perform;
    decltype(&::curl_multi_poll) multi_poll;
    decltype(&::curl_multi_info_read) multi_info_read;
    decltype(&::curl_multi_strerror) multi_strerror;
    decltype(&::curl_slist_append) slist_append;
    decltype(&::curl_slist_free_all) slist_free_all;
};

#if defined(SAFETENSORS_HTTP_LOAD_LIBCURL)
// libcurl's soname on Linux (the ABI of libcurl 7 and 8), or SAFETENSORS_HTTP_LIBCURL_NAME.
#if !defined(SAFETENSORS_HTTP_LIBCURL_NAME)
#define SAFETENSORS_HTTP_LIBCURL_NAME "libcurl.so.4"
#endif

inline curl_functions load_curl_functions() {
    const char* const name = SAFETENSORS_HTTP_LIBCURL_NAME;
    std::string why;
    void* library = os::load_library(name, why);
    if (library == nullptr)
        throw_error(errc::network_error, std::string("URLs need libcurl, which could not be loaded: ") + why);
    curl_functions f{};
    const auto find = [&](auto& slot, const char* function) {
        if (!os::library_function(library, function, slot))
            throw_error(errc::network_error, std::string(name) + " has no function " + function + " (libcurl 7.66 or later is needed)");
    };
    find(f.global_init, "curl_global_init");
    find(f.easy_init, "curl_easy_init");
    find(f.easy_cleanup, "curl_easy_cleanup");
    find(f.easy_reset, "curl_easy_reset");
    find(f.easy_setopt, "curl_easy_setopt");
    find(f.easy_getinfo, "curl_easy_getinfo");
    find(f.easy_strerror, "curl_easy_strerror");
    find(f.multi_init, "curl_multi_init");
    find(f.multi_cleanup, "curl_multi_cleanup");
    find(f.multi_add_handle, "curl_multi_add_handle");
    find(f.multi_remove_handle, "curl_multi_remove_handle");
    find(f.multi_perform, "curl_multi_perform");
    find(f.multi_poll, "curl_multi_poll");
    find(f.multi_info_read, "curl_multi_info_read");
    find(f.multi_strerror, "curl_multi_strerror");
    find(f.slist_append, "curl_slist_append");
    find(f.slist_free_all, "curl_slist_free_all");
    return f;
}

// Loaded once per process, at the first call (a failed load throws, and the next call tries again).
inline const curl_functions& curl() {
    static const curl_functions functions = load_curl_functions();
    return functions;
}
#else
inline const curl_functions& curl() noexcept {
    static const curl_functions functions{
        &::curl_global_init, &::curl_easy_init, &::curl_easy_cleanup, &::curl_easy_reset, &::curl_easy_setopt,
        &::curl_easy_getinfo, &::curl_easy_strerror, &::curl_multi_init, &::curl_multi_cleanup,
        &::curl_multi_add_handle, &::curl_multi_remove_handle, &::curl_multi_perform, &::curl_multi_poll,
        &::curl_multi_info_read, &::curl_multi_strerror, &::curl_slist_append, &::curl_slist_free_all};
    return functions;
}
#endif

} // namespace safetensors::detail::http
