#!/usr/bin/env python3
"""CPU benchmark of safetensors_hpp (issue 21, item 7), all figures from one run.

Loads of a warm ~1 GiB file, each followed by the same pass over every tensor's bytes (a sum of
the bytes viewed as int64):
  load_file    safetensors_hpp.torch.load_file(path), then the pass
  get_tensor   safe_open(path, "pt") and get_tensor of every tensor, then the pass
  torch.load   torch.load of the same tensors saved with torch.save, then the pass
  readinto     f.readinto of the whole file into a preallocated buffer, then the pass over each
               tensor's byte range (the limit: one read, no allocation)
Writes of the same tensors:
  save_file    safetensors_hpp.torch.save_file(tensors, path)
  f.write      one f.write of the file's bytes (already in memory) into a new file
Repetitions are interleaved (every variant once per round, the order rotated each round);
medians are reported, and ratios as throughput ratios (the time of the reference variant divided
by the time of the measured one).

Usage:
  PYTHONPATH=<build>/python /usr/bin/python3 bench/python/bench_load.py [--gib 1] [--reps 7]
      [--tensors 280] [--dir /tmp]
Files go to a fresh folder under --dir and are removed at the end.
"""
import argparse
import gc
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


def make_tensors(total_bytes, count):
    """`count` tensors, alternately F32 and BF16, of about total_bytes in all; every byte size is a
    multiple of 8 so the pass can view each tensor as int64."""
    per = total_bytes // count
    cols = 1024
    g = torch.Generator().manual_seed(0)
    seed_f32 = torch.randn(per // 4, generator=g)
    tensors = {}
    for i in range(count):
        if i % 2 == 0:
            rows = max(1, per // (4 * cols))
            t = seed_f32[: rows * cols].reshape(rows, cols).clone()
        else:
            rows = max(1, per // (2 * cols))
            t = seed_f32[: rows * cols // 2].to(torch.bfloat16).repeat(2).reshape(rows, cols)
        t.view(-1)[0] = i  # no two tensors alike
        tensors["model.layers.%03d.%s.weight" % (i // 2, "mlp" if i % 2 else "attn")] = t
    return tensors


def byte_pass(tensors):
    """One pass over every tensor's bytes."""
    total = 0
    for t in tensors:
        total += int(t.reshape(-1).view(torch.int64).sum())
    return total


def data_ranges(path):
    """(offset, length) in the file of every tensor, from the header, read by hand."""
    import json
    import struct

    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
    header.pop("__metadata__", None)
    return [(8 + n + v["data_offsets"][0], v["data_offsets"][1] - v["data_offsets"][0]) for v in header.values()]


def warm(path):
    with open(path, "rb") as f:
        while f.read(64 << 20):
            pass


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gib", type=float, default=1.0)
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--tensors", type=int, default=280)
    ap.add_argument("--dir", default="/tmp")
    args = ap.parse_args()

    work = tempfile.mkdtemp(prefix="bench_py_", dir=args.dir)
    try:
        run(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run(args, work):
    sf_path = os.path.join(work, "model.safetensors")
    pt_path = os.path.join(work, "model.pt")
    out_sf = os.path.join(work, "out.safetensors")
    out_raw = os.path.join(work, "out.bin")

    tensors = make_tensors(int(args.gib * (1 << 30)), args.tensors)
    save_file(tensors, sf_path, metadata={"format": "pt"})
    torch.save(tensors, pt_path)
    expected = byte_pass(tensors.values())
    size = os.path.getsize(sf_path)
    ranges = data_ranges(sf_path)
    print("safetensors_hpp %s, torch %s, %d threads; %d tensors, %.3f GiB file (%s), %d rounds"
          % (safetensors_hpp.__version__, torch.__version__, torch.get_num_threads(), len(tensors),
             size / (1 << 30), sf_path, args.reps), flush=True)
    warm(sf_path)
    warm(pt_path)

    buffer = bytearray(size)
    view = memoryview(buffer)

    def v_load_file():
        d = load_file(sf_path)
        r = byte_pass(d.values())
        del d
        return r

    def v_get_tensor():
        with safe_open(sf_path, framework="pt") as f:
            ts = [f.get_tensor(k) for k in f.offset_keys()]
        r = byte_pass(ts)
        del ts
        return r

    def v_torch_load():
        d = torch.load(pt_path)
        r = byte_pass(d.values())
        del d
        return r

    def v_readinto():
        with open(sf_path, "rb", buffering=0) as f:
            n = f.readinto(view)
        assert n == size
        return byte_pass(torch.frombuffer(buffer, dtype=torch.int64, count=length // 8, offset=off)
                         for off, length in ranges)

    def v_save_file():
        save_file(tensors, out_sf, metadata={"format": "pt"})

    def v_write():
        with open(out_raw, "wb") as f:
            f.write(view)

    loads = [("load_file", v_load_file), ("get_tensor", v_get_tensor), ("torch.load", v_torch_load),
             ("readinto", v_readinto)]
    saves = [("save_file", v_save_file), ("f.write", v_write)]
    target = {"save_file": out_sf, "f.write": out_raw}
    times = {name: [] for name, _ in loads + saves}

    for rnd in range(args.reps):
        k = rnd % len(loads)
        for name, fn in loads[k:] + loads[:k]:
            gc.collect()
            t0 = time.perf_counter()
            r = fn()
            times[name].append(time.perf_counter() - t0)
            assert r == expected, (name, r, expected)
        k = rnd % len(saves)
        for name, fn in saves[k:] + saves[:k]:
            if os.path.exists(target[name]):
                os.remove(target[name])  # each write makes a new file, outside the timing
            gc.collect()
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
        assert os.path.getsize(out_sf) == size
        print("round %d: %s" % (rnd + 1, "  ".join("%s %.3fs" % (n, times[n][-1]) for n in times)), flush=True)
    with open(out_sf, "rb") as a, open(sf_path, "rb") as b:
        same = a.read() == b.read()

    med = {n: statistics.median(v) for n, v in times.items()}
    gib = size / (1 << 30)
    print()
    print("%-12s %9s %9s %9s  %s" % ("variant", "median s", "min s", "GiB/s", "(median; includes the pass for loads)"))
    for n, v in times.items():
        print("%-12s %9.3f %9.3f %9.2f" % (n, med[n], min(v), gib / med[n]))
    r_limit = med["readinto"] / med["load_file"]
    r_get = med["readinto"] / med["get_tensor"]
    r_torch = med["torch.load"] / med["load_file"]
    r_save = med["f.write"] / med["save_file"]
    print()
    print("load_file+pass  vs readinto+pass: %.2fx of the limit's throughput (target >= 0.7)  %s"
          % (r_limit, "ok" if r_limit >= 0.7 else "BELOW TARGET"))
    print("get_tensor+pass vs readinto+pass: %.2fx" % r_get)
    print("load_file+pass  vs torch.load+pass: %.2fx faster (target > 1)  %s"
          % (r_torch, "ok" if r_torch > 1 else "BELOW TARGET"))
    print("save_file vs one f.write: %.2fx of f.write's throughput (target >= 0.7)  %s"
          % (r_save, "ok" if r_save >= 0.7 else "BELOW TARGET"))
    print("save_file output identical to the first save_file: %s" % same)
    return 0


if __name__ == "__main__":
    sys.exit(main())
