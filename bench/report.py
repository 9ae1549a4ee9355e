#!/usr/bin/env python3
"""Turn Google Benchmark JSON into the result tables of bench/README.md.

    safetensors-bench --benchmark_repetitions=5 --benchmark_report_aggregates_only=true \
        --benchmark_out=results.json --benchmark_out_format=json
    python3 bench/report.py results.json            # rewrites bench/README.md in place
    python3 bench/report.py results.json --stdout   # prints the tables instead

Each entry of PAIRS compares a benchmark with its baseline at every argument both were run
with (BM_Open/10000 with BM_SaxBaseline/10000, ...): the two times, their ratio and the
target ratio. A pair's ratio is either a time ratio, benchmark / baseline, that must stay at
or below the target (`speed=False`), or a speed ratio, baseline time / benchmark time (the
benchmark's throughput as a fraction of the baseline's), that must reach the target
(`speed=True`). With repetitions the median aggregate is used; without, the median of the
iteration runs. Pairs absent from the JSON are left out. The tables replace whatever lies
between the markers <!-- results:begin --> and <!-- results:end --> in the README.

Standard library only.
"""

import argparse
import json
import os
import platform
import statistics
import sys
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

BEGIN = "<!-- results:begin -->"
END = "<!-- results:end -->"


@dataclass
class Pair:
    bench: str          # benchmark family, e.g. "BM_Open"
    baseline: str       # what it is measured against, e.g. "BM_SaxBaseline"
    target: Optional[float]  # the bound on the ratio (None: no target yet)
    what: str           # one line for the table's heading
    arg_name: str = "argument"  # what the benchmark argument means, for the first column
    speed: bool = False  # False: time ratio bench/baseline <= target; True: speed ratio >= target
    target_arg: Optional[str] = None  # the one argument the target is for; other rows compare


# Later benchmarks add their pair here; a pair shows up once both benchmarks are in the JSON.
PAIRS: List[Pair] = [
    Pair("BM_Open", "BM_SaxBaseline", 1.3,
         "safetensors::open() of a file with N tensors vs a no-op nlohmann SAX pass over "
         "the same header bytes in memory; ratio = open time / SAX time", "tensors"),
    Pair("BM_SliceContiguous", "BM_SliceMemcpyBaseline", 0.9,
         "copy_to() of a contiguous 128 MiB slice vs memcpy of the same bytes; "
         "ratio = slice throughput / memcpy throughput", speed=True),
    Pair("BM_SliceShard", "BM_SliceShardMemcpyBaseline", 0.5,
         "copy_to() of split(-1, 3, 8), 32 MiB in 4 KiB runs, vs one memcpy of 32 MiB; "
         "ratio = slice throughput / memcpy throughput", speed=True),
    Pair("BM_Save", "BM_WriteLoop", 0.9,
         "save() of a 1 GiB file of 64 tensors vs a plain write() loop of the same bytes to the "
         "same folder, both ending with fsync (argument 0: new file, 1: replacing one); "
         "ratio = save throughput / write-loop throughput", speed=True),
    Pair("BM_ReadAll", "BM_SumBaseline", 0.6,
         "open a warm 1 GiB file of 64 BF16 tensors and sum every byte through the views "
         "(a fresh open each iteration; argument: how the bytes are reached, see the label "
         "column) vs the same sum over anonymous memory already faulted in; "
         "ratio = read-all throughput / sum throughput; the target is for the default, 0",
         "strategy", speed=True, target_arg="0"),
    Pair("BM_LoadOwned", "BM_MemcpyBaseline", 0.5,
         "load() of that file into owned tensors (open and allocation inside the loop) vs "
         "memcpy of 1 GiB between buffers already faulted in; "
         "ratio = load throughput / memcpy throughput", speed=True),
    Pair("BM_ConvertBF16ToF32", "BM_ConvertMemcpyBaseline", 0.5,
         "converting 256 MiB of BF16 to F32 (512 MiB written) vs memcpy of the 512 MiB of "
         "output; ratio = conversion throughput / memcpy throughput", speed=True),
]


@dataclass
class Single:
    bench: str
    limit_ns: float  # the time one iteration must stay under
    what: str


# Benchmarks with an absolute bound instead of a baseline.
SINGLES: List[Single] = [
    Single("BM_TensorLookup", 1000.0, "file::find() by name in a 100,000-tensor file"),
]

UNIT_NS = {"ns": 1.0, "us": 1e3, "ms": 1e6, "s": 1e9}


@dataclass
class Result:
    time_ns: float
    bytes_per_second: Optional[float]
    repetitions: int
    cv: Optional[float]  # coefficient of variation across repetitions, when reported
    label: str = ""      # the benchmark's SetLabel text, if any


def split_name(run_name: str) -> Tuple[str, str]:
    """'BM_Open/10000' -> ('BM_Open', '10000'); 'BM_X' -> ('BM_X', '')."""
    for suffix in ("/real_time", "/process_time", "/manual_time"):  # timing modes, not arguments
        if run_name.endswith(suffix):
            run_name = run_name[: -len(suffix)]
    family, _, args = run_name.partition("/")
    return family, args


def load(paths: List[str], metric: str) -> Tuple[Dict[Tuple[str, str], Result], dict]:
    entries: List[dict] = []
    context: dict = {}
    for path in paths:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        context = context or data.get("context", {})
        entries.extend(data.get("benchmarks", []))

    by_run: Dict[str, Dict[str, list]] = {}
    for e in entries:
        if e.get("error_occurred"):
            print(f"report.py: skipping {e.get('name')}: {e.get('error_message')}", file=sys.stderr)
            continue
        run = e.get("run_name") or e["name"]
        slot = by_run.setdefault(run, {"iteration": [], "median": [], "cv": []})
        if e.get("run_type") == "aggregate":
            if e.get("aggregate_name") == "median":
                slot["median"].append(e)
            elif e.get("aggregate_name") == "cv":
                slot["cv"].append(e)
        else:
            slot["iteration"].append(e)

    results: Dict[Tuple[str, str], Result] = {}
    for run, slot in by_run.items():
        def ns(e: dict) -> float:
            return float(e[metric]) * UNIT_NS.get(e.get("time_unit", "ns"), 1.0)

        if slot["median"]:
            e = slot["median"][0]
            reps = int(e.get("repetitions", 0)) or len(slot["iteration"]) or 1
            time_ns, bps = ns(e), e.get("bytes_per_second")
        elif slot["iteration"]:
            its = slot["iteration"]
            reps = len(its)
            time_ns = statistics.median(ns(e) for e in its)
            rates = [e["bytes_per_second"] for e in its if "bytes_per_second" in e]
            bps = statistics.median(rates) if rates else None
        else:
            continue
        cv = float(slot["cv"][0][metric]) if slot["cv"] else None
        label = next((e.get("label", "") for e in slot["median"] + slot["iteration"] if e.get("label")), "")
        results[split_name(run)] = Result(time_ns, bps, reps, cv, label)
    return results, context


def fmt_time(ns: float) -> str:
    for unit, scale in (("s", 1e9), ("ms", 1e6), ("µs", 1e3)):
        if ns >= scale:
            return f"{ns / scale:.3g} {unit}"
    return f"{ns:.3g} ns"


def fmt_rate(bps: Optional[float]) -> str:
    if not bps:
        return ""
    for unit, scale in (("GB/s", 1e9), ("MB/s", 1e6), ("kB/s", 1e3)):
        if bps >= scale:
            return f" ({bps / scale:.3g} {unit})"
    return f" ({bps:.3g} B/s)"


def fmt_result(r: Result) -> str:
    cv = f" ±{r.cv * 100:.0f}%" if r.cv is not None else ""
    return f"{fmt_time(r.time_ns)}{cv}{fmt_rate(r.bytes_per_second)}"


def arg_key(arg: str):
    first = arg.split("/")[0]
    return (0, int(first), arg) if first.isdigit() else (1, 0, arg)


def machine_line(context: dict) -> str:
    parts = []
    host = context.get("host_name")
    cpu_model = None
    if host and host == platform.node() and os.path.exists("/proc/cpuinfo"):
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu_model = line.split(":", 1)[1].strip()
                    break
    if cpu_model:
        parts.append(cpu_model)
    if context.get("num_cpus"):
        mhz = context.get("mhz_per_cpu")
        parts.append(f"{context['num_cpus']} CPUs" + (f" @ {mhz} MHz" if mhz else ""))
    if host:
        parts.append(f"host `{host}`")
    if context.get("date"):
        parts.append(context["date"])
    load = context.get("load_avg")
    if load:
        parts.append("load average " + " / ".join(f"{x:.2f}" for x in load[:3]) +
                     (" (other work was running: expect noise)"
                      if context.get("num_cpus") and load[0] > 0.5 * context["num_cpus"] else ""))
    if context.get("library_build_type"):
        parts.append(f"Google Benchmark library: {context['library_build_type']} build")
    return ", ".join(parts) or "unknown machine"


def pair_rows(results: Dict[Tuple[str, str], Result]):
    """For each pair: (pair, [(argument, bench result, baseline result, ratio), ...]).
    A baseline run without an argument is the baseline of every argument of its benchmark."""
    out = []
    for pair in PAIRS:
        bench_args = {a for (fam, a) in results if fam == pair.bench}
        base_args = {a for (fam, a) in results if fam == pair.baseline}
        rows = []
        for arg in sorted(bench_args, key=arg_key):
            base_arg = arg if arg in base_args else ("" if "" in base_args else None)
            if base_arg is None:
                continue
            b, base = results[(pair.bench, arg)], results[(pair.baseline, base_arg)]
            if pair.speed:
                ratio = base.time_ns / b.time_ns if b.time_ns else float("inf")
            else:
                ratio = b.time_ns / base.time_ns if base.time_ns else float("inf")
            rows.append((arg, b, base, ratio))
        out.append((pair, rows))
    return out


def render(results: Dict[Tuple[str, str], Result], context: dict, metric: str) -> str:
    reps = max((r.repetitions for r in results.values()), default=1)
    label = "wall-clock" if metric == "real_time" else "CPU"
    lines = [
        f"Machine: {machine_line(context)}.",
        "",
        f"Median {label} time of {reps} repetition(s); ± is the coefficient of variation "
        "across repetitions; throughput (in parentheses) is the bytes each benchmark "
        "reports as processed, per second.",
    ]
    shown = 0
    for pair, rows in pair_rows(results):
        if not rows:
            continue
        shown += 1
        bound = "≥" if pair.speed else "≤"
        target = f"{bound} {pair.target:g}×" if pair.target is not None else "—"
        lines += [
            "",
            f"### {pair.bench} vs {pair.baseline}",
            "",
            pair.what + ".",
            "",
            f"| {pair.arg_name} | {pair.bench} | {pair.baseline} | ratio | target | |",
            "|---:|---:|---:|---:|---:|:---|",
        ]
        for arg, b, base, ratio in rows:
            if pair.target is None:
                verdict = ""
            elif pair.target_arg is not None and arg != pair.target_arg:
                verdict = "(comparison)"
            elif (ratio >= pair.target) if pair.speed else (ratio <= pair.target):
                verdict = "met"
            else:
                verdict = "**missed**"
            shown_arg = (arg or "—") + (f" ({b.label})" if b.label else "")
            lines.append(f"| {shown_arg} | {fmt_result(b)} | {fmt_result(base)} | "
                         f"{ratio:.2f}× | {target} | {verdict} |")
    for single in SINGLES:
        found = sorted(((a, r) for (fam, a), r in results.items() if fam == single.bench), key=lambda x: arg_key(x[0]))
        if not found:
            continue
        shown += 1
        lines += ["", f"### {single.bench}", "", single.what + ".", "",
                  "| argument | time | target | |", "|---:|---:|---:|:---|"]
        for arg, r in found:
            verdict = "met" if r.time_ns < single.limit_ns else "**missed**"
            lines.append(f"| {arg or '—'} | {fmt_result(r)} | < {fmt_time(single.limit_ns)} | {verdict} |")
    if not shown:
        lines += ["", "No benchmark pair found in the results."]
    return "\n".join(lines)


def replace_block(text: str, block: str) -> str:
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        raise SystemExit(f"report.py: markers {BEGIN} / {END} not found")
    return text[:start + len(BEGIN)] + "\n" + block + "\n" + text[end:]


def main() -> int:
    here = os.path.dirname(os.path.abspath(__file__))
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("json", nargs="+", help="Google Benchmark --benchmark_out JSON file(s)")
    parser.add_argument("--readme", default=os.path.join(here, "README.md"),
                        help="markdown file to update between the markers (default: bench/README.md)")
    parser.add_argument("--metric", choices=("real_time", "cpu_time"), default="real_time")
    parser.add_argument("--stdout", action="store_true", help="print the tables, change no file")
    args = parser.parse_args()

    results, context = load(args.json, args.metric)
    block = render(results, context, args.metric)
    if args.stdout:
        print(block)
        return 0
    with open(args.readme, encoding="utf-8") as f:
        text = f.read()
    updated = replace_block(text, block)
    if updated != text:
        with open(args.readme, "w", encoding="utf-8") as f:
            f.write(updated)
    print(f"report.py: updated {args.readme}")
    print(block)
    return 0


if __name__ == "__main__":
    sys.exit(main())
