// safetensors-bench entry point; the benchmarks live in the other bench_*.cpp files.
#include <benchmark/benchmark.h>

BENCHMARK_MAIN();
