#!/usr/bin/env python3
"""GPU benchmark of safetensors_hpp (issue 21, item 7, GPU part), all figures from one run.

Loads of a warm file (default 2 GiB, 280 BF16 tensors) into GPU memory, each timed from the
call to the last byte on the device (torch.cuda.synchronize):
  pinned       the limit: one copy of the file's bytes from pinned host memory to the device
               (torch's copy_, non_blocking, into memory allocated before the clock starts)
  load_file    safetensors_hpp.torch.load_file(path, device=DEVICE)
  get_tensor   safetensors_hpp.safe_open(path, "pt", device=DEVICE), get_tensor of every tensor
  ref.load_file    the reference package's safetensors.torch.load_file(path, device=DEVICE)
  ref.safe_open    the reference's safe_open(path, "pt", device=DEVICE) and get_tensor of each
(the ref.* variants where `import safetensors` finds the reference package).
Repetitions are interleaved (every variant once per round, the order rotated each round) after
one untimed warm-up round (CUDA context, the loader's pinned ring, torch's caching allocator);
medians are reported, ratios as throughput ratios. Every variant's tensors are checked against
the file's bytes in the warm-up round.

Targets (issue 21's acceptance): load_file at least 0.8x pinned, at least 5x ref.load_file.

Usage:
  PYTHONPATH=<build>/python python3 bench/python/bench_cuda.py [--gib 2] [--reps 11]
      [--tensors 280] [--dir /var/tmp] [--device cuda:0] [--out DIR]
--out DIR writes DIR/results-python.md and DIR/results-python.json. --device cpu runs the same
loads to the CPU (no pinned limit): a smoke test of this script on a machine without a GPU.
Files go to a fresh folder under --dir and are removed at the end.
"""
import argparse
import gc
import json
import os
import shutil
import statistics
import sys
import tempfile
import time

import torch

import safetensors_hpp
from safetensors_hpp import safe_open
from safetensors_hpp.torch import load_file, save_file

try:  # the reference package, where this machine has it
    import safetensors as reference
    import safetensors.torch as reference_torch
except ImportError:
    reference = None


def make_tensors(total_bytes, count):
    """`count` BF16 tensors of [rows, 4096], about total_bytes in all, no two alike."""
    cols = 4096
    rows = max(1, total_bytes // (count * cols * 2))
    g = torch.Generator().manual_seed(0)
    seed = torch.randn(rows * cols, generator=g).to(torch.bfloat16).reshape(rows, cols)
    tensors = {}
    for i in range(count):
        t = seed.clone()
        t.view(-1)[0] = i
        tensors["model.layers.%03d.mlp.down_proj.weight" % i] = t
    return tensors


def warm(path):
    with open(path, "rb") as f:
        while f.read(64 << 20):
            pass


def checksum(tensors):
    """A sum over every tensor's bytes (viewed as int16, accumulated in int64), on the tensors' device."""
    return sum(int(t.reshape(-1).view(torch.int16).sum(dtype=torch.int64)) for t in tensors)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gib", type=float, default=2.0)
    ap.add_argument("--reps", type=int, default=11)
    ap.add_argument("--tensors", type=int, default=280)
    ap.add_argument("--dir", default="/var/tmp")
    ap.add_argument("--device", default="cuda:0")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("bench_cuda.py: torch %s sees no CUDA device (use --device cpu for a smoke test)" % torch.__version__)
        return 2
    if device.type == "cuda" and not safetensors_hpp._core.has_cuda:
        print("bench_cuda.py: this safetensors_hpp was built without CUDA")
        return 2
    work = tempfile.mkdtemp(prefix="bench_cuda_py_", dir=args.dir)
    try:
        return run(args, device, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run(args, device, work):
    path = os.path.join(work, "model.safetensors")
    tensors = make_tensors(int(args.gib * (1 << 30)), args.tensors)
    save_file(tensors, path, metadata={"format": "pt"})
    expected = checksum(tensors.values())
    del tensors
    size = os.path.getsize(path)
    warm(path)
    cuda = device.type == "cuda"
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    where = args.device if cuda else "cpu"
    print("safetensors_hpp %s, torch %s, reference %s; device %s%s; %d tensors, %.3f GiB file (%s), %d rounds"
          % (safetensors_hpp.__version__, torch.__version__, reference.__version__ if reference else "absent", where,
             " (%s)" % torch.cuda.get_device_name(device) if cuda else "", args.tensors, size / (1 << 30), path,
             args.reps), flush=True)

    variants = []
    if cuda:
        pinned = torch.empty(size, dtype=torch.uint8, pin_memory=True)
        view, done = memoryview(pinned.numpy()), 0
        with open(path, "rb", buffering=0) as f:
            while done < size:  # one read(2) moves at most 2 GiB - 4 KiB
                n = f.readinto(view[done:])
                assert n, "the file shrank"
                done += n
        target = torch.empty(size, dtype=torch.uint8, device=device)

        def v_pinned():
            target.copy_(pinned, non_blocking=True)
            return [target]

        variants.append(("pinned", v_pinned, False))

    def v_load_file():
        return list(load_file(path, device=where).values())

    def v_get_tensor():
        with safe_open(path, framework="pt", device=where) as f:
            return [f.get_tensor(k) for k in f.offset_keys()]

    variants += [("load_file", v_load_file, True), ("get_tensor", v_get_tensor, True)]
    if reference is not None:
        def v_ref_load_file():
            return list(reference_torch.load_file(path, device=where).values())

        def v_ref_safe_open():
            with reference.safe_open(path, framework="pt", device=where) as f:
                return [f.get_tensor(k) for k in f.keys()]

        variants += [("ref.load_file", v_ref_load_file, True), ("ref.safe_open", v_ref_safe_open, True)]

    # Warm-up round, untimed, with the checks.
    for name, fn, is_load in variants:
        result = fn()
        sync()
        if is_load:
            got = checksum(result)
            assert got == expected, (name, got, expected)
            assert all(t.device.type == device.type for t in result), name
        del result
        gc.collect()

    times = {name: [] for name, _, _ in variants}
    for rnd in range(args.reps):
        k = rnd % len(variants)
        for name, fn, _ in variants[k:] + variants[:k]:
            gc.collect()
            sync()
            t0 = time.perf_counter()
            result = fn()
            sync()
            times[name].append(time.perf_counter() - t0)
            del result
        print("round %d: %s" % (rnd + 1, "  ".join("%s %.4fs" % (n, times[n][-1]) for n in times)), flush=True)

    med = {n: statistics.median(v) for n, v in times.items()}
    gbps = {n: size / med[n] / 1e9 for n in med}
    lines = ["| variant | median s | min s | GB/s (median) |", "|---|---:|---:|---:|"]
    for n, v in times.items():
        lines.append("| %s | %.4f | %.4f | %.2f |" % (n, med[n], min(v), gbps[n]))
    ratios = {}
    checks = []
    if "pinned" in med:
        ratios["load_file / pinned"] = med["pinned"] / med["load_file"]
        ratios["get_tensor / pinned"] = med["pinned"] / med["get_tensor"]
        checks.append(("load_file at least 0.8x pinned", ratios["load_file / pinned"] >= 0.8))
    if "ref.load_file" in med:
        ratios["load_file / ref.load_file"] = med["ref.load_file"] / med["load_file"]
        ratios["get_tensor / ref.safe_open"] = med["ref.safe_open"] / med["get_tensor"]
        checks.append(("load_file at least 5x ref.load_file", ratios["load_file / ref.load_file"] >= 5))
    lines += ["", "| ratio (throughput) | value |", "|---|---:|"]
    lines += ["| %s | %.3fx |" % (n, r) for n, r in ratios.items()]
    lines += [""] + ["- %s: %s" % (c, "met" if ok else "NOT MET") for c, ok in checks]
    report = "\n".join(lines)
    print()
    print(report)
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        header = ("# Python GPU benchmark (`bench/python/bench_cuda.py`)\n\nsafetensors_hpp %s, torch %s, reference %s, "
                  "device %s, %d tensors, %d bytes, %d rounds after a warm-up\n\n"
                  % (safetensors_hpp.__version__, torch.__version__, reference.__version__ if reference else "absent",
                     torch.cuda.get_device_name(device) if cuda else "cpu", args.tensors, size, args.reps))
        with open(os.path.join(args.out, "results-python.md"), "w") as f:
            f.write(header + report + "\n")
        with open(os.path.join(args.out, "results-python.json"), "w") as f:
            json.dump({"bytes": size, "tensors": args.tensors, "device": where, "torch": torch.__version__,
                       "reference": reference.__version__ if reference else None, "seconds": times,
                       "median_gbps": gbps, "ratios": ratios, "checks": dict(checks)}, f, indent=1)
    return 0 if all(ok for _, ok in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
