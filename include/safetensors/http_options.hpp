// safetensors-hpp: the settings of the HTTP(S) reader (http.hpp). No libcurl here.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

#include "version.hpp"

namespace safetensors {

struct http_options {
    // Sent as "Authorization: Bearer TOKEN" to the URL's own host only: a redirect to another
    // host (a CDN) gets no token. Never part of an error message.
    std::string bearer_token;
    // A PEM bundle of CA certificates to trust instead of the system's (a private CA). TLS
    // certificates and host names are always verified.
    std::string ca_file;
    // Where hf:// URLs resolve: {hf_endpoint}/[datasets/|spaces/]ORG/REPO/resolve/{REVISION}/PATH.
    std::string hf_endpoint = "https://huggingface.co";
    // A proxy for every request, in curl's syntax ("http://proxy:3128"); empty: none. The
    // library reads no environment variable, so https_proxy and the like are not used.
    std::string proxy;

    std::chrono::milliseconds connect_timeout{10000};
    // No byte for this long (headers or body) fails the attempt, which is retried.
    std::chrono::milliseconds stall_timeout{30000};
    // Attempts per request: connection errors, stalls, 429 and 5xx are retried, resuming from
    // the bytes already received, after backoff_initial, doubling up to backoff_max (a
    // Retry-After from the server is honoured, up to backoff_max).
    unsigned max_attempts = 5;
    std::chrono::milliseconds backoff_initial{200};
    std::chrono::milliseconds backoff_max{10000};
    unsigned max_redirects = 10;

    // A server that ignores Range (200 with the whole body) is errc::range_not_supported after at
    // most 1 MiB read, unless this is set: then the whole file is downloaded into memory at open.
    bool allow_full_download = false;
    // Requests in flight at once for one read: large ranges are split in 8 MiB requests, and
    // scattered ones grouped in multi-range requests.
    unsigned parallel_requests = 4;
    // Threads for one read of 64 MiB or more, each with its own connections (0: one per
    // hardware thread, at most 8, and at most one per 64 MiB): copying out of libcurl's buffers
    // and faulting in fresh destination memory is more than one thread keeps up with.
    unsigned read_threads = 0;
    // Ranges per multi-range request (Range: bytes=a-b,c-d,..., answered as multipart/byteranges).
    std::size_t max_ranges_per_request = 64;
    // For a server that answers multi-range requests with one range: ranges closer than this
    // are fetched as one, with the bytes between them, in parallel single-range requests.
    std::uint64_t coalesce_gap = 4096;
    std::string user_agent = "safetensors-hpp/" SAFETENSORS_VERSION_STRING;

    // Called during each read that needs requests, at most every 100 ms per thread of the read
    // and once when the read is done, one call at a time, on a thread doing the read: bytes of
    // the read arrived so far and bytes it asks for (a progress line for long transfers).
    // Throwing from it stops the read with that exception.
    std::function<void(std::uint64_t received, std::uint64_t total)> progress;
};

} // namespace safetensors
