// safetensors command: a subcommand as main() sees it: its CLI11 parser and what runs it.
#pragma once

#include <functional>

namespace CLI {
class App;
}

namespace cli {

// add_<name>(root) registers a subcommand and returns this; main() calls run() for the one
// the command line chose. run() returns the exit status and throws usage_error (exit 2) or
// any library error (exit 1).
struct command {
    CLI::App* app;
    std::function<int()> run;
};

} // namespace cli
