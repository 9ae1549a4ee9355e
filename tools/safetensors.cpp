// safetensors: the command-line tool. One program, a subcommand per job:
//
//   safetensors inspect FILE...         tensors and metadata (table or --json)
//   safetensors dump FILE NAME          one tensor's raw bytes
//   safetensors values FILE [NAME...]   elements, printed like NumPy
//   safetensors stats FILE...           min, max, mean, std, abs-max, NaN/Inf/zero counts
//   safetensors diff A B                what differs between two checkpoints
//   safetensors rewrite IN OUT          copy with edits: metadata, names, dtypes, shards
//   safetensors verify FILE...          full validation, every byte read, SHA-256
//
// Installed beside it, safetensors-inspect and safetensors-rewrite are this program under
// another name: it then runs that subcommand (the tools of version 0.1, with their flags).
// Every input may be a URL (http://, https://, hf://; --token, --ca-file: cli/remote.hpp).
//
// Error contract: one line "error: <message>" on standard error; exit 1 on an error, 2 on a
// usage error (diff: 0 equal, 1 different, 2 any error).
#include <CLI/CLI.hpp>

#include <csignal>
#include <exception>
#include <new>
#include <string>
#include <vector>

#include "cli/diff.hpp"
#include "cli/inspect.hpp"
#include "cli/output.hpp"
#include "cli/remote.hpp"
#include "cli/rewrite.hpp"
#include "cli/stats.hpp"
#include "cli/values.hpp"
#include "cli/verify.hpp"

namespace {

// "safetensors-inspect" and "safetensors-rewrite" (any folder, any ".exe") name a subcommand.
std::string alias_of(const char* argv0) {
    std::string name = argv0 ? argv0 : "";
    const auto slash = name.find_last_of("/\\");
    if (slash != std::string::npos) name.erase(0, slash + 1);
    if (name.size() > 4 && name.compare(name.size() - 4, 4, ".exe") == 0) name.resize(name.size() - 4);
    for (const char* alias : {"inspect", "rewrite"})
        if (name == std::string("safetensors-") + alias) return alias;
    return {};
}

int run(int argc, char** argv, int& error_status) {
    CLI::App app("Inspect, check, compare and rewrite safetensors checkpoints.", "safetensors");
    app.require_subcommand(1);
    app.set_version_flag("--version", SAFETENSORS_VERSION_STRING);
    const std::vector<cli::command> commands = {
        cli::add_inspect(app), cli::add_dump(app), cli::add_values(app), cli::add_stats(app),
        cli::add_diff(app),    cli::add_rewrite(app), cli::add_verify(app),
    };
    for (const cli::command& c : commands) cli::add_remote_options(*c.app);  // every one reads inputs
    std::vector<char*> args(argv, argv + argc);
    const std::string alias = alias_of(argc > 0 ? argv[0] : nullptr);
    std::string alias_arg = alias;
    if (!alias.empty()) args.insert(args.begin() + 1, &alias_arg[0]);
    try {
        app.parse(static_cast<int>(args.size()), args.data());
    } catch (const CLI::CallForHelp&) {
        cli::write_stdout(app.help());
        cli::flush_stdout();
        return cli::exit_ok;
    } catch (const CLI::CallForAllHelp&) {
        cli::write_stdout(app.help("", CLI::AppFormatMode::All));
        cli::flush_stdout();
        return cli::exit_ok;
    } catch (const CLI::CallForVersion&) {
        cli::write_stdout(std::string(SAFETENSORS_VERSION_STRING) + "\n");
        cli::flush_stdout();
        return cli::exit_ok;
    } catch (const CLI::ParseError& e) {
        throw cli::usage_error(e.what());
    }
    for (const cli::command& c : commands) {
        if (!app.got_subcommand(c.app)) continue;
        if (c.app->get_name() == "diff") error_status = cli::exit_usage;  // 1 means "different"
        const int status = c.run();
        cli::flush_stdout();
        return status;
    }
    throw cli::usage_error("no subcommand given (see --help)");
}

} // namespace

int main(int argc, char** argv) {
#if defined(SIGXFSZ)
    // Past RLIMIT_FSIZE the kernel sends SIGXFSZ, which kills the process before the writer
    // can remove its temporary file. Ignored, the write fails with EFBIG and the cleanup runs.
    std::signal(SIGXFSZ, SIG_IGN);
#endif
    int error_status = cli::exit_error;
    // No message shows a token, not even CLI11's, which quotes arguments it did not expect.
    const std::vector<std::string> tokens = cli::tokens_in(argc, argv);
    const auto fail = [&](const std::string& message) { cli::report_error(cli::without_tokens(message, tokens)); };
    try {
        return run(argc, argv, error_status);
    } catch (const cli::usage_error& e) {
        fail(e.what());
        return cli::exit_usage;
    } catch (const safetensors::error& e) {
        fail(e.message());
    } catch (const std::bad_alloc&) {
        fail("out of memory");
    } catch (const std::exception& e) {
        fail(e.what());
    }
    return error_status;
}
