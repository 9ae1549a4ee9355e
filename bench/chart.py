#!/usr/bin/env python3
"""Draw the benchmark ratios of a Google Benchmark JSON file as a PNG bar chart.

    python3 bench/chart.py build/bench/results.json bench/ratios.png

One bar per benchmark pair of bench/report.py (the same pairs, arguments and ratios as the
README tables), with the pair's target drawn as a tick. Speed ratios (higher is better)
and time ratios (lower is better) are drawn as "how far past the target": ratio / target
for speed pairs, target / ratio for time pairs, so every bar right of 1 meets its target.
Needs matplotlib (Debian/Ubuntu: apt install python3-matplotlib).
"""

import argparse
import os
import sys
import textwrap

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import report  # noqa: E402  (same folder)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("json", nargs="+")
    parser.add_argument("png")
    parser.add_argument("--metric", choices=("real_time", "cpu_time"), default="real_time")
    args = parser.parse_args()
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("chart.py: needs matplotlib (apt install python3-matplotlib); no chart drawn", file=sys.stderr)
        return 1

    results, context = report.load(args.json, args.metric)
    labels, scores, texts = [], [], []
    for pair, rows in report.pair_rows(results):
        if pair.target is None:
            continue
        for arg, bench, _, ratio in rows:
            if pair.target_arg is not None and arg != pair.target_arg:
                continue  # comparison rows: in the table, not the chart
            name = pair.bench + (f"/{arg}" if arg else "") + (f" ({bench.label})" if bench.label else "")
            labels.append(name)
            scores.append(ratio / pair.target if pair.speed else pair.target / ratio)
            bound = "≥" if pair.speed else "≤"
            texts.append(f"{ratio:.2f}× (target {bound} {pair.target:g}×)")
    for single in report.SINGLES:
        for (family, arg), r in sorted(results.items()):
            if family == single.bench:
                labels.append(single.bench + (f"/{arg}" if arg else ""))
                scores.append(single.limit_ns / r.time_ns)
                texts.append(f"{report.fmt_time(r.time_ns)} (target < {report.fmt_time(single.limit_ns)})")
    if not labels:
        print("chart.py: no benchmark pair in the results", file=sys.stderr)
        return 1

    fig, ax = plt.subplots(figsize=(10, 0.45 * len(labels) + 1.5))
    y = list(range(len(labels)))[::-1]
    colors = ["#2a9d8f" if s >= 1 else "#e76f51" for s in scores]
    ax.barh(y, scores, color=colors)
    ax.axvline(1.0, color="black", linewidth=1)
    for yi, s, t in zip(y, scores, texts):
        ax.text(s, yi, "  " + t, va="center", fontsize=8)
    ax.set_yticks(y)
    ax.set_yticklabels(labels, fontsize=8)
    ax.set_xlabel("measured ratio / target (right of 1: target met)")
    ax.set_xlim(0, max(max(scores) * 1.6, 1.5))
    title = "safetensors-hpp benchmarks against their baselines\n" + "\n".join(
        textwrap.wrap(report.machine_line(context), 120))
    ax.set_title(title, fontsize=8)
    fig.tight_layout()
    fig.savefig(args.png, dpi=110)
    print(f"chart.py: wrote {args.png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
