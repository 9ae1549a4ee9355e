#!/usr/bin/env bash
# Reading over HTTP (issue 18): serves a 1 GiB file (32 BF16 tensors of [4096, 4096]) with nginx
# on 127.0.0.1 (a free port, config in a temporary folder), then
#   - times load() over HTTP (safetensors-http-load load) against `curl -s -o /dev/null` of the
#     same URL, interleaved (the order reversed every run), and prints the medians in MB/s and
#     their ratio (target: load at least 0.8x curl's throughput); beside them the reader alone
#     (read_at of the whole file into memory faulted in before timing), which shows what of
#     load()'s time is the fresh memory it fills;
#   - counts, in nginx's access log ($bytes_sent per request), what a header-only open costs
#     (target: at most the header + 64 KiB) and what the 1/8 column part of a tensor costs
#     (":, 0:512" through to_tensor(); target: at most 1.25x its 4 MiB, in at most 64 requests).
#   bench/http_load.sh [BUILD_DIR] [RUNS]      (default build/bench, 9 runs of each)
# Needs nginx (Debian nginx-light), curl and python3 (for a free port).
set -euo pipefail
build="${1:-build/bench}"
runs="${2:-9}"
exe="$build/bin/safetensors-http-load"
[[ -x "$exe" ]] || { echo "http_load.sh: $exe not found; build the target safetensors-http-load" >&2; exit 2; }
nginx="$(command -v nginx || echo /usr/sbin/nginx)"
[[ -x "$nginx" ]] || { echo "http_load.sh: nginx not found (Debian: apt-get install nginx-light)" >&2; exit 2; }
command -v curl >/dev/null || { echo "http_load.sh: curl not found" >&2; exit 2; }

tmp="$(mktemp -d)"
nginx_pid=""
cleanup() {
    [[ -n "$nginx_pid" ]] && kill "$nginx_pid" 2>/dev/null && wait "$nginx_pid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
mkdir -p "$tmp/www" "$tmp/nginx/tmp"
"$exe" make "$tmp/www/big.safetensors"

port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
user_line=""
[[ "$(id -u)" == 0 ]] && user_line="user root;"
n="$tmp/nginx"
cat >"$n/nginx.conf" <<EOF
$user_line
master_process off;
worker_processes 1;
pid $n/nginx.pid;
error_log $n/error.log;
events { worker_connections 256; }
http {
  default_type application/octet-stream;
  client_body_temp_path $n/tmp; proxy_temp_path $n/tmp; fastcgi_temp_path $n/tmp;
  uwsgi_temp_path $n/tmp; scgi_temp_path $n/tmp;
  sendfile on;
  log_format counted '\$request_uri \$status \$bytes_sent';
  access_log $n/access.log counted;
  keepalive_requests 100000;
  server { listen 127.0.0.1:$port; root $tmp/www; }
}
EOF
"$nginx" -p "$n" -c "$n/nginx.conf" -e "$n/error.log" -g 'daemon off;' &
nginx_pid=$!
for _ in $(seq 100); do
    curl -s -o /dev/null "http://127.0.0.1:$port/" && break
    sleep 0.1
done
url="http://127.0.0.1:$port/big.safetensors"
curl -s -o /dev/null "$url"  # the file in the page cache before any timing

load_times=() read_times=() curl_times=() size=0
time_load() {
    local out
    out="$("$exe" load "$url")"
    load_times+=("${out% *}")
    size="${out#* }"
}
time_read() {
    local out
    out="$("$exe" read "$url")"
    read_times+=("${out% *}")
}
time_curl() { curl_times+=("$(curl -s -o /dev/null -w '%{time_total}' "$url")"); }
for ((i = 0; i < runs; i++)); do
    if ((i % 2 == 0)); then time_load; time_curl; time_read; else time_read; time_curl; time_load; fi
done
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
load_median="$(median "${load_times[@]}")"
read_median="$(median "${read_times[@]}")"
curl_median="$(median "${curl_times[@]}")"

# Requests and bytes nginx logged for lines FROM.. of the access log (nginx logs a request as
# soon as its answer is sent, before the client has all of it: wait a little).
lines() { sleep 0.2; wc -l <"$n/access.log"; }
logged() { sleep 0.2; tail -n "+$(($1 + 1))" "$n/access.log" | awk '{ r++; b += $3 } END { printf "%d %d", r, b }'; }
before="$(lines)"
header="$("$exe" open "$url")"
read -r open_requests open_bytes <<<"$(logged "$before")"
before="$(lines)"
part="$("$exe" columns "$url" "http://127.0.0.1:$port/_mark")"
mark="$(sleep 0.2; tail -n "+$((before + 1))" "$n/access.log" | grep -n '^/_mark ' | cut -d: -f1)"
read -r part_requests part_bytes <<<"$(logged "$((before + mark))")"

echo "1 GiB file ($size bytes) from nginx on 127.0.0.1, median of $runs interleaved runs each:"
awk -v s="$size" -v l="$load_median" -v r="$read_median" -v c="$curl_median" 'BEGIN {
    printf "  load() over HTTP          %.3f s  %7.1f MB/s  %.2fx curl (target >= 0.8x)\n", l, s / l / 1e6, c / l
    printf "  read_at into warm memory  %.3f s  %7.1f MB/s  %.2fx curl (the reader alone, no page faults)\n", r, s / r / 1e6, c / r
    printf "  curl -s -o /dev/null      %.3f s  %7.1f MB/s\n", c, s / c / 1e6 }'
echo "header-only open: $open_requests request(s), $open_bytes bytes sent for a header of $header bytes" \
     "($((open_bytes - header)) over it; target <= 65536)"
awk -v r="$part_requests" -v b="$part_bytes" -v p="$part" 'BEGIN {
    printf "1/8 column part (\":, 0:512\" of a [4096, 4096] BF16 tensor, %d bytes): %d requests, %d bytes sent (%.3fx; targets <= 64 requests, <= 1.25x)\n", p, r, b, b / p }'
