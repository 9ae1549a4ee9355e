#!/usr/bin/env python3
"""A fault-injecting HTTP/1.1 file server for the HTTP reader's tests (standard library only).

    fault_server.py ROOT

Serves the files under ROOT with keep-alive, single and multi-range requests (answered as
multipart/byteranges), a fixed ETag and Last-Modified. Two listeners share the same state:
127.0.0.1 and 127.0.0.2 ("another host"), both on ports the system picks; the first line on
stdout is "PORT PORT2". The server exits when its stdin closes (the test ended or died) or
after a bounded lifetime, so it can never outlive the tests by long.

A fault is chosen by the query string of each request (the path names the file):
    mode=drop&n=N            the first N requests: headers, half the body, then the connection closes
    mode=status&code=C&n=N   the first N requests: status C (503, 429 ...), Retry-After: retry_after if given
    mode=etag                the ETag changes after the first request
    mode=size                the object grows by one byte after the first request
    mode=ignore_range        200 with the whole body, whatever Range says
    mode=merge               a multi-range request: one 206 covering the first to the last range
    mode=first               a multi-range request: one 206 with only the first range
    mode=bad_range           Content-Range that does not match the bytes asked for
    mode=stall&seconds=S&n=N the first N requests: headers, then S seconds of silence, then the body
    mode=status&...&body_bytes=B   the same with a body of B bytes
    mode=redirect&to=T&n=N   the first N requests: 302 to T: "same" (this file, no fault), "other"
                             (the same on 127.0.0.2), "file" (file:///etc/passwd), "loop" (itself);
                             with then=QUERY (URL-encoded), to the file with that query
    mode=no_etag             no ETag and no Last-Modified
    mode=bad_part            a multipart answer whose first part is one byte shorter than its Content-Range
A path ORG/REPO/resolve/REVISION/PATH is answered as the hub does: the file at PATH, whatever
the revision, with X-Repo-Commit: HUB_COMMIT.
"The first N requests" are the N after the first `skip` (default 0) with this path and query:
the counters are kept per path and query, so each test uses its own (add e.g. &id=NAME).
GET /_stats returns every request so far as JSON (host, path, range, Authorization and
Accept-Encoding headers, connection number, status, body bytes sent, time); GET /_reset clears
the log and the counters.
"""
import json
import os
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

LIFETIME_SECONDS = 300
HUB_COMMIT = "0123456789abcdef0123456789abcdef01234567"

state_lock = threading.Lock()
counters = {}
log = []
connection_ids = [0]
ports = [0, 0]


def next_count(key):
    with state_lock:
        counters[key] = counters.get(key, 0) + 1
        return counters[key]


def parse_ranges(header, size):
    """[(first, last)] for 'bytes=a-b,c-d,-n,a-', or None when absent or unsatisfiable."""
    if not header or not header.startswith("bytes="):
        return None
    out = []
    for part in header[len("bytes="):].split(","):
        first, _, last = part.strip().partition("-")
        if first == "":
            n = int(last)
            first, last = max(0, size - n), size - 1
        else:
            first = int(first)
            last = size - 1 if last == "" else min(int(last), size - 1)
        if first <= last and first < size:
            out.append((first, last))
    return out


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go in separate writes: no delayed-ACK waits

    def setup(self):
        super().setup()
        with state_lock:
            connection_ids[0] += 1
            self.connection_id = connection_ids[0]

    def log_message(self, *args):
        pass

    def record(self, status, body_bytes):
        with state_lock:
            log.append({
                "host": self.server.server_address[0],
                "path": self.path,
                "range": self.headers.get("Range", ""),
                "authorization": self.headers.get("Authorization", ""),
                "accept_encoding": self.headers.get("Accept-Encoding", ""),
                "connection": self.connection_id,
                "status": status,
                "body_bytes": body_bytes,
                "time": time.time(),
            })

    def send_body(self, status, headers, body, fault=None):
        # Logged first: a client that has the answer finds it in /_stats.
        sent = len(body) // 2 if fault == "drop" else len(body)
        self.record(status, sent)
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if fault == "drop":
            self.wfile.write(body[:sent])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
        else:
            if fault is not None:
                self.wfile.flush()
                time.sleep(fault)
            self.wfile.write(body)

    def do_GET(self):
        url = urlsplit(self.path)
        if url.path == "/_stats":
            with state_lock:
                body = json.dumps(log).encode()
            return self.send_body(200, [("Content-Type", "application/json")], body)
        if url.path == "/_reset":
            with state_lock:
                log.clear()
                counters.clear()
            return self.send_body(200, [], b"")
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        count = next_count(self.path)
        try:
            self.serve(url, query, count)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def serve(self, url, query, count):
        mode = query.get("mode", "")
        skip, n = int(query.get("skip", "0")), int(query.get("n", "1000000"))
        active = skip < count <= skip + n
        if mode == "redirect" and active:
            return self.redirect(url, query)
        if mode == "status" and active:
            headers = [("Content-Type", "text/plain")]
            if "retry_after" in query:
                headers.append(("Retry-After", query["retry_after"]))
            body = b"x" * int(query["body_bytes"]) if "body_bytes" in query else b"injected status\n"
            return self.send_body(int(query["code"]), headers, body)
        relative, headers = url.path.lstrip("/"), []
        if "/resolve/" in relative:  # the hub: ORG/REPO/resolve/REVISION/PATH serves ROOT/PATH
            relative = relative.partition("/resolve/")[2].partition("/")[2]
            headers.append(("X-Repo-Commit", HUB_COMMIT))
        relative = unquote(relative)
        path = os.path.join(self.server.root, relative)
        if not os.path.isfile(path):
            return self.send_body(404, [("Content-Type", "text/plain")], b"not found\n")
        with open(path, "rb") as f:
            data = f.read()
        if mode == "size" and count > 1:
            data += b"\0"
        if mode != "no_etag":
            etag = '"v%d"' % (count if mode == "etag" else 1)
            headers += [("ETag", etag), ("Last-Modified", "Mon, 01 Jan 2024 00:00:00 GMT")]
        fault = None
        if mode == "drop" and active:
            fault = "drop"
        if mode == "stall" and active:
            fault = float(query.get("seconds", "5"))
        self.answer(data, headers, mode, fault)

    def redirect(self, url, query):
        host, port = self.server.server_address
        target = query.get("to", "same")
        if target == "file":
            location = "file:///etc/passwd"
        elif target == "loop":
            location = self.path
        else:
            where = ("127.0.0.2", ports[1]) if target == "other" else (host, port)
            location = "http://%s:%d%s" % (where[0], where[1], url.path)
            if "then" in query:
                location += "?" + query["then"]
        self.send_body(302, [("Location", location)], b"")

    def answer(self, data, headers, mode, fault):
        size = len(data)
        ranges = None if mode == "ignore_range" else parse_ranges(self.headers.get("Range"), size)
        if ranges is None:
            return self.send_body(200, headers, data, fault)
        if not ranges:
            return self.send_body(416, [("Content-Range", "bytes */%d" % size)], b"")
        if len(ranges) > 1 and mode in ("merge", "first"):
            ranges = [(ranges[0][0], ranges[-1][1])] if mode == "merge" else ranges[:1]
        if len(ranges) == 1:
            first, last = ranges[0]
            shown = (first + 1, last + 1) if mode == "bad_range" else (first, last)
            headers.append(("Content-Range", "bytes %d-%d/%d" % (shown[0], shown[1], size)))
            return self.send_body(206, headers, data[first:last + 1], fault)
        boundary = "fault_server_boundary_%d" % count_of(self.path)
        parts = []
        for first, last in ranges:
            shown = last + 1 if mode == "bad_part" and not parts else last
            parts.append(("--%s\r\nContent-Type: application/octet-stream\r\n"
                          "Content-Range: bytes %d-%d/%d\r\n\r\n" % (boundary, first, shown, size)).encode())
            parts.append(data[first:last + 1])
            parts.append(b"\r\n")
        parts.append(("--%s--\r\n" % boundary).encode())
        headers.append(("Content-Type", "multipart/byteranges; boundary=" + boundary))
        self.send_body(206, headers, b"".join(parts), fault)


def count_of(key):
    with state_lock:
        return counters.get(key, 0)


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, root):
        super().__init__(address, Handler)
        self.root = root


def main():
    root = sys.argv[1]
    first = Server(("127.0.0.1", 0), root)
    second = Server(("127.0.0.2", 0), root)
    ports[0], ports[1] = first.server_address[1], second.server_address[1]
    for server in (first, second):
        threading.Thread(target=server.serve_forever, daemon=True).start()
    print("%d %d" % (ports[0], ports[1]), flush=True)
    # Until stdin closes (the test process ended, however it ended), at most LIFETIME_SECONDS.
    watcher = threading.Thread(target=lambda: sys.stdin.read(), daemon=True)
    watcher.start()
    watcher.join(LIFETIME_SECONDS)
    os._exit(0)


if __name__ == "__main__":
    main()
