// Test support: runs a program (the safetensors tool) in a child process with posix_spawn, its
// standard output, standard error and exit status captured separately. POSIX only.
#pragma once

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace test_support {

struct run_result {
    int status = -1;  // exit status; 128 + signal number if killed by a signal
    std::string out;
    std::string err;
};

// The environment of the programs run here: this process's, except that
// SAFETENSORS_TEST_CHILD_ASAN_OPTIONS, when set, replaces their ASAN_OPTIONS. The asan stage
// sets it to run the tool without LeakSanitizer, whose scan at exit costs about 30 ms per
// process (a thousand of them); the tool's own leaks are checked by the tool.* ctest tests,
// which run it directly, and the library's by every test binary at its exit.
struct child_environment {
    std::vector<std::string> entries;
    std::vector<char*> pointers;

    child_environment() {
        const char* replacement = std::getenv("SAFETENSORS_TEST_CHILD_ASAN_OPTIONS");
        for (char** entry = environ; *entry != nullptr; ++entry) {
            if (replacement != nullptr && std::strncmp(*entry, "ASAN_OPTIONS=", 13) == 0) continue;
            entries.emplace_back(*entry);
        }
        if (replacement != nullptr) entries.push_back(std::string("ASAN_OPTIONS=") + replacement);
        for (std::string& entry : entries) pointers.push_back(&entry[0]);
        pointers.push_back(nullptr);
    }
};

// Runs program with args, stdin from /dev/null; reads stdout and stderr concurrently so a
// large dump cannot deadlock on a full pipe.
inline run_result run_program(const std::string& program, const std::vector<std::string>& args) {
    int out_pipe[2];
    int err_pipe[2];
    if (::pipe(out_pipe) != 0) throw std::runtime_error("pipe failed");
    if (::pipe(err_pipe) != 0) {
        ::close(out_pipe[0]);
        ::close(out_pipe[1]);
        throw std::runtime_error("pipe failed");
    }
    std::vector<std::string> storage;
    storage.push_back(program);
    storage.insert(storage.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& s : storage) argv.push_back(&s[0]);
    argv.push_back(nullptr);

    // posix_spawn rather than fork: no copy of this (possibly sanitizer-sized) address space.
    posix_spawn_file_actions_t actions;
    ::posix_spawn_file_actions_init(&actions);
    ::posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    ::posix_spawn_file_actions_adddup2(&actions, out_pipe[1], 1);
    ::posix_spawn_file_actions_adddup2(&actions, err_pipe[1], 2);
    for (int fd : {out_pipe[0], out_pipe[1], err_pipe[0], err_pipe[1]}) ::posix_spawn_file_actions_addclose(&actions, fd);
    child_environment environment;
    pid_t pid = -1;
    int spawned = ::posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environment.pointers.data());
    ::posix_spawn_file_actions_destroy(&actions);
    if (spawned != 0) {
        for (int fd : {out_pipe[0], out_pipe[1], err_pipe[0], err_pipe[1]}) ::close(fd);
        throw std::runtime_error("cannot run " + storage.front() + ": " + std::strerror(spawned));
    }
    ::close(out_pipe[1]);
    ::close(err_pipe[1]);

    run_result result;
    pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
    std::string* sinks[2] = {&result.out, &result.err};
    int open_count = 2;
    char buffer[65536];
    while (open_count > 0) {
        int ready = ::poll(fds, 2, -1);
        if (ready < 0) {
            if (errno == EINTR) continue;
            break;
        }
        for (int i = 0; i < 2; ++i) {
            if (fds[i].fd < 0 || fds[i].revents == 0) continue;
            ssize_t n = ::read(fds[i].fd, buffer, sizeof buffer);
            if (n > 0) {
                sinks[i]->append(buffer, static_cast<std::size_t>(n));
            } else if (n == 0 || errno != EINTR) {
                ::close(fds[i].fd);
                fds[i].fd = -1;
                --open_count;
            }
        }
    }
    for (auto& p : fds)
        if (p.fd >= 0) ::close(p.fd);

    int status = 0;
    while (::waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) throw std::runtime_error("waitpid failed");
    if (WIFEXITED(status)) result.status = WEXITSTATUS(status);
    else if (WIFSIGNALED(status)) result.status = 128 + WTERMSIG(status);
    return result;
}

} // namespace test_support
