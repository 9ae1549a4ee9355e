#!/usr/bin/env python3
"""Compare torch.load of a .pt file with safetensors-hpp on the same tensors, honestly.

    python3 bench/compare_torch.py --tool build/bench/bin/safetensors-time-load
    python3 bench/compare_torch.py --tool ... --readme bench/README.md   # also rewrites the table

Writes 1 GiB of BF16 tensors (64 x [4096, 2048], random) as model.pt (torch.save) and as
model.safetensors (written here with the format's plain rules), reads both once so the page
cache is warm, then times (median of --repeats runs, each in a fresh state):

  open only     torch.load (torch has no lazy open before 2.1's mmap=True; tried when
                available) vs safetensors::open, which parses the header and maps the
                data without reading it. This is the comparison behind the widely quoted
                "76x faster than PyTorch on CPU": it compares reading 1 GiB with not reading it.
  open + touch  the same, then every byte read once (a sum), so both have done the I/O.
  load          torch.load vs safetensors::load (every tensor copied into owned memory).

Needs torch (Debian: apt install python3-torch) and the C++ timing program built from
bench/time_load.cpp (target safetensors-time-load).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

BEGIN = "<!-- torch:begin -->"
END = "<!-- torch:end -->"
TENSORS, ROWS, COLS = 64, 4096, 2048


def write_safetensors(path, tensors):
    """The format's writer rules: sorted names, consecutive offsets, header padded with
    spaces to a multiple of 8."""
    header, offset, blobs = {}, 0, []
    for name in sorted(tensors):
        data = tensors[name].contiguous().view(torch.int16).numpy().tobytes()
        header[name] = {"dtype": "BF16", "shape": list(tensors[name].shape),
                        "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(len(text).to_bytes(8, "little"))
        f.write(text)
        for blob in blobs:
            f.write(blob)


def median_time(repeats, run):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def touch(tensors):
    return sum(int(t.view(torch.int64).sum()) for t in tensors.values())


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tool", required=True, help="path to safetensors-time-load")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--dir", default=None, help="folder for the two 1 GiB files (default: a temporary one)")
    parser.add_argument("--readme", default=None, help="markdown file whose torch block to rewrite")
    args = parser.parse_args()

    torch.set_num_threads(os.cpu_count() or 1)
    with tempfile.TemporaryDirectory(dir=args.dir) as folder:
        gen = torch.Generator().manual_seed(0)
        tensors = {f"model.layers.{i}.mlp.up_proj.weight":
                   torch.randn(ROWS, COLS, generator=gen).to(torch.bfloat16) for i in range(TENSORS)}
        pt, st = os.path.join(folder, "model.pt"), os.path.join(folder, "model.safetensors")
        torch.save(tensors, pt)
        write_safetensors(st, tensors)
        del tensors
        for path in (pt, st):  # warm the page cache
            with open(path, "rb") as f:
                while f.read(1 << 24):
                    pass

        torch_load = median_time(args.repeats, lambda: torch.load(pt))
        torch_touch = median_time(args.repeats, lambda: touch(torch.load(pt)))
        torch_mmap = None
        try:
            torch.load(pt, mmap=True)
            torch_mmap = median_time(args.repeats, lambda: torch.load(pt, mmap=True))
        except TypeError:  # torch < 2.1: no lazy open
            pass
        ours = json.loads(subprocess.run([args.tool, st, str(args.repeats)], check=True,
                                         capture_output=True, text=True).stdout)

    gib = ours["bytes"] / 2**30
    rows = [
        ("open only", "torch.load" + (" (mmap=True)" if torch_mmap else " (reads everything)"),
         torch_mmap or torch_load, "`safetensors::open` (reads nothing but the header)", ours["open"]),
        ("open + touch every byte", "torch.load + sum", torch_touch, "`open` + sum through the views", ours["open_touch"]),
        ("load into owned memory", "torch.load", torch_load, "`safetensors::load`", ours["load"]),
    ]
    lines = [
        f"torch {torch.__version__}, {gib:.2f} GiB of BF16 in {TENSORS} tensors, warm page cache, "
        f"median of {args.repeats} runs (`bench/compare_torch.py`):",
        "",
        "| what | torch | time | safetensors-hpp | time | torch / ours |",
        "|---|---|---:|---|---:|---:|",
    ]
    for what, t_name, t_time, s_name, s_time in rows:
        lines.append(f"| {what} | {t_name} | {t_time * 1e3:.1f} ms | {s_name} | {s_time * 1e3:.2f} ms | "
                     f"{t_time / s_time:.1f}× |")
    block = "\n".join(lines)
    print(block)
    if args.readme:
        with open(args.readme, encoding="utf-8") as f:
            text = f.read()
        start, end = text.find(BEGIN), text.find(END)
        if start < 0 or end < start:
            sys.exit(f"compare_torch.py: markers {BEGIN} / {END} not found in {args.readme}")
        with open(args.readme, "w", encoding="utf-8") as f:
            f.write(text[:start + len(BEGIN)] + "\n" + block + "\n" + text[end:])
    return 0


if __name__ == "__main__":
    try:
        import torch
    except ImportError:
        sys.exit("compare_torch.py: needs torch (Debian/Ubuntu: apt install python3-torch)")
    sys.exit(main())
