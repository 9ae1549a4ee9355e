// HTTP test support: the servers the HTTP tests read from, on loopback addresses with free
// ports, each started once per test run and stopped when it ends:
//   nginx()        nginx (Debian nginx-light) over HTTP and HTTPS, with an access log that
//                  counts requests and bytes sent;
//   fault_server() tests/http/fault_server.py (Python's standard library) on 127.0.0.1 and
//                  127.0.0.2 ("another host"), with injected faults.
// Both serve www_dir(): tests/data under /data/ and the files a test writes under /gen/.
// The HTTPS certificate comes from a throw-away CA made with openssl at start (ca_file()).
#pragma once

#include <curl/curl.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../../support/run_program.hpp"
#include "../../support/temp_dir.hpp"
#include "process.hpp"

namespace http_test {

inline std::string data_dir() { return SAFETENSORS_TEST_DATA_DIR; }

// A folder for everything the servers need, removed at exit.
inline const test_support::temp_dir& work_dir() {
    static const test_support::temp_dir dir;
    return dir;
}

// What both servers serve: data/ (tests/data, through a symlink) and gen/ (files tests write).
inline std::string www_dir() {
    static const std::string dir = [] {
        const std::string www = work_dir().file("www");
        std::filesystem::create_directories(www + "/gen");
        std::filesystem::create_directory_symlink(SAFETENSORS_TEST_DATA_DIR, www + "/data");
        return www;
    }();
    return dir;
}
inline std::string gen_dir() { return www_dir() + "/gen"; }

inline void write_text(const std::string& path, const std::string& text) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << text;
    if (!out) throw std::runtime_error("cannot write " + path);
}

// A port nobody listens on now (bound and released: the server binds it next).
inline int free_port() {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof a;
    if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &length) != 0)
        throw std::runtime_error("cannot find a free port");
    ::close(fd);
    return ntohs(a.sin_port);
}

// Waits until something accepts connections on 127.0.0.1:port (at most 10 s).
inline void wait_for_port(int port) {
    for (int i = 0; i < 500; ++i) {
        const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        a.sin_port = htons(static_cast<std::uint16_t>(port));
        const bool up = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
        ::close(fd);
        if (up) return;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    throw std::runtime_error("no server on port " + std::to_string(port) + " after 10 s");
}

inline void run_checked(const std::vector<std::string>& argv) {
    const auto r = test_support::run_program(argv.front(), {argv.begin() + 1, argv.end()});
    if (r.status != 0) throw std::runtime_error(argv.front() + " failed: " + r.err);
}

// A CA and a certificate for 127.0.0.1 and localhost signed by it: ca.pem, server.pem, server.key.
inline std::string make_certificates() {
    const std::string dir = work_dir().file("tls");
    std::filesystem::create_directories(dir);
    const std::string openssl = SAFETENSORS_TEST_OPENSSL;
    const std::vector<std::string> ec = {"-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"};
    std::vector<std::string> ca = {openssl, "req", "-x509"};
    ca.insert(ca.end(), ec.begin(), ec.end());
    ca.insert(ca.end(), {"-keyout", dir + "/ca.key", "-out", dir + "/ca.pem", "-days", "2", "-subj", "/CN=safetensors test CA"});
    run_checked(ca);
    std::vector<std::string> request = {openssl, "req"};
    request.insert(request.end(), ec.begin(), ec.end());
    request.insert(request.end(), {"-keyout", dir + "/server.key", "-out", dir + "/server.csr", "-subj", "/CN=127.0.0.1"});
    run_checked(request);
    write_text(dir + "/ext.cnf", "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n");
    run_checked({openssl, "x509", "-req", "-in", dir + "/server.csr", "-CA", dir + "/ca.pem", "-CAkey", dir + "/ca.key",
                 "-CAcreateserial", "-out", dir + "/server.pem", "-days", "2", "-extfile", dir + "/ext.cnf"});
    return dir;
}

inline const std::string& tls_dir() {
    static const std::string dir = make_certificates();
    return dir;
}
inline std::string ca_file() { return tls_dir() + "/ca.pem"; }

// GET url with libcurl directly (the test's own client, for the fault server's statistics).
inline std::string plain_get(const std::string& url) {
    std::unique_ptr<CURL, void (*)(CURL*)> curl(curl_easy_init(), curl_easy_cleanup);
    std::string body;
    curl_easy_setopt(curl.get(), CURLOPT_URL, url.c_str());
    curl_easy_setopt(curl.get(), CURLOPT_PROXY, "");
    curl_easy_setopt(curl.get(), CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(curl.get(), CURLOPT_WRITEDATA, &body);
    curl_easy_setopt(curl.get(), CURLOPT_WRITEFUNCTION, +[](char* p, std::size_t, std::size_t n, void* out) {
        static_cast<std::string*>(out)->append(p, n);
        return n;
    });
    if (curl_easy_perform(curl.get()) != CURLE_OK) throw std::runtime_error("GET " + url + " failed");
    return body;
}

class fault_server_process {
public:
    fault_server_process()
        : process_({SAFETENSORS_TEST_PYTHON, SAFETENSORS_TEST_FAULT_SERVER, www_dir()}, work_dir().file("fault_server.err")) {
        std::istringstream ports(process_.read_line(std::chrono::seconds(20)));
        ports >> port_ >> other_port_;
        if (port_ <= 0 || other_port_ <= 0) throw std::runtime_error("the fault server printed no ports");
    }
    // http://127.0.0.1:PORT/data-relative path and query; other_url(): the same on 127.0.0.2.
    std::string url(const std::string& path) const { return "http://127.0.0.1:" + std::to_string(port_) + "/" + path; }
    std::string other_url(const std::string& path) const {
        return "http://127.0.0.2:" + std::to_string(other_port_) + "/" + path;
    }
    // Every request since the last reset: host, path, range, authorization, connection, status, body_bytes.
    nlohmann::json requests() const { return nlohmann::json::parse(plain_get(url("_stats"))); }
    void reset() const { plain_get(url("_reset")); }

private:
    child_process process_;
    int port_ = 0;
    int other_port_ = 0;
};

inline fault_server_process& fault_server() {
    static fault_server_process server;
    return server;
}

// One line of nginx's access log.
struct access_entry {
    std::string uri;
    int status = 0;
    std::uint64_t bytes_sent = 0;  // headers and body
};

std::string nginx_config(const std::string& prefix, int http_port, int https_port);

class nginx_process {
public:
    nginx_process() : http_port_(free_port()), https_port_(free_port()), prefix_(work_dir().file("nginx")) {
        std::filesystem::create_directories(prefix_ + "/tmp");
        write_text(prefix_ + "/nginx.conf", nginx_config(prefix_, http_port_, https_port_));
        // master_process off in the config: one process, stopped by one signal. timeout bounds
        // its life should this process die without stopping it.
        process_.reset(new child_process({"/usr/bin/timeout", "600", SAFETENSORS_TEST_NGINX, "-p", prefix_, "-c",
                                          prefix_ + "/nginx.conf", "-e", prefix_ + "/error.log", "-g", "daemon off;"},
                                         prefix_ + "/stderr.log"));
        wait_for_port(http_port_);
        wait_for_port(https_port_);
    }
    std::string http_url(const std::string& path) const { return "http://127.0.0.1:" + std::to_string(http_port_) + "/" + path; }
    std::string https_url(const std::string& path) const {
        return "https://127.0.0.1:" + std::to_string(https_port_) + "/" + path;
    }
    int http_port() const { return http_port_; }

    // The log once every request answered so far is in it: nginx writes a request's line after
    // sending its answer, so a fresh request is made and waited for (at most 10 s).
    std::vector<access_entry> access_log() const {
        const std::string mark = "/_settled/" + std::to_string(++marks_);
        plain_get(http_url(mark.substr(1)));  // a 404, which plain_get takes as an answer
        for (int i = 0; i < 1000; ++i) {
            std::vector<access_entry> out = read_log();
            for (auto it = out.rbegin(); it != out.rend(); ++it)
                if (it->uri == mark) return out;
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        throw std::runtime_error("nginx did not log " + mark + " within 10 s");
    }

private:
    std::vector<access_entry> read_log() const {
        std::vector<access_entry> out;
        std::ifstream in(prefix_ + "/access.log");
        access_entry e;
        while (in >> e.uri >> e.status >> e.bytes_sent) out.push_back(e);
        return out;
    }

    mutable int marks_ = 0;
    int http_port_;
    int https_port_;
    std::string prefix_;
    std::unique_ptr<child_process> process_;
};

inline std::string nginx_config(const std::string& prefix, int http_port, int https_port) {
    const std::string http = "127.0.0.1:" + std::to_string(http_port);
    return "user root;\nmaster_process off;\nworker_processes 1;\npid " + prefix + "/nginx.pid;\n"
           "error_log " + prefix + "/error.log;\nevents { worker_connections 256; }\nhttp {\n"
           "  default_type application/octet-stream;\n"
           "  client_body_temp_path " + prefix + "/tmp;\n  proxy_temp_path " + prefix + "/tmp;\n"
           "  fastcgi_temp_path " + prefix + "/tmp;\n  uwsgi_temp_path " + prefix + "/tmp;\n"
           "  scgi_temp_path " + prefix + "/tmp;\n"
           "  log_format counted '$request_uri $status $bytes_sent';\n"
           "  access_log " + prefix + "/access.log counted;\n"
           "  keepalive_requests 100000;\n"
           "  server {\n"
           "    listen " + http + ";\n    listen 127.0.0.1:" + std::to_string(https_port) + " ssl;\n"
           "    ssl_certificate " + tls_dir() + "/server.pem;\n    ssl_certificate_key " + tls_dir() + "/server.key;\n"
           "    root " + www_dir() + ";\n"
           "    location /to-http/ { return 302 http://" + http + "/data/reference/valid/slicing.safetensors; }\n"
           "    location /to-file/ { return 302 file:///etc/passwd; }\n"
           "  }\n}\n";
}

inline nginx_process& nginx() {
    static nginx_process server;
    return server;
}

} // namespace http_test
