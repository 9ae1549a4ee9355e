// safetensors-bench entry point; the benchmarks live in the other bench_*.cpp files.
//
// The targets in bench/README.md are ratios of medians from one run, and this VM's speed
// drifts by tens of percent over tens of seconds. So a plain run repeats every benchmark 20
// times in random order (a slow spell then lands on both sides of a pair) and reports the
// aggregates. Flags given on the command line come later and win, e.g.
// --benchmark_repetitions=1 for a quick look.
#include <benchmark/benchmark.h>

#include <vector>

int main(int argc, char** argv) {
    static char repetitions[] = "--benchmark_repetitions=20";
    static char interleaving[] = "--benchmark_enable_random_interleaving=true";
    static char aggregates[] = "--benchmark_report_aggregates_only=true";
    std::vector<char*> args{argv[0], repetitions, interleaving, aggregates};
    for (int i = 1; i < argc; ++i) args.push_back(argv[i]);
    int count = static_cast<int>(args.size());
    args.push_back(nullptr);

    benchmark::Initialize(&count, args.data());
    if (benchmark::ReportUnrecognizedArguments(count, args.data())) return 1;
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
