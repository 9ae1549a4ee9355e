#!/usr/bin/env python3
"""`safetensors dump FILE NAME` for every tensor of every valid reference fixture (651 of them,
600 in many_tensors.safetensors), each compared with the bytes the file holds at the tensor's
offsets, which this script finds with its own reading of the header.

ctest runs it as tool.dump_sweep in builds without sanitizers (the gcc stage); under the
sanitizers each run of the tool costs about 50 ms, and unit.inspect.long dumps one tensor in
eight of many_tensors there.

usage: dump_sweep.py TOOL FIXTURE_DIR...
"""
import json
import pathlib
import struct
import subprocess
import sys


def tensors_of(path: pathlib.Path):
    """(name, begin, end) in file order, begin and end absolute in the file."""
    data = path.read_bytes()
    (length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + length])
    start = 8 + length
    entries = [(name, info["data_offsets"]) for name, info in header.items() if name != "__metadata__"]
    entries.sort(key=lambda item: item[1][0])
    return data, [(name, start + offsets[0], start + offsets[1]) for name, offsets in entries]


def main() -> int:
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    tool = sys.argv[1]
    files = sorted(p for folder in sys.argv[2:] for p in pathlib.Path(folder).rglob("*.safetensors"))
    dumped = failed = 0
    for path in files:
        data, entries = tensors_of(path)
        for name, begin, end in entries:
            run = subprocess.run([tool, "dump", str(path), name], capture_output=True, timeout=60)
            dumped += 1
            if run.returncode != 0 or run.stderr or run.stdout != data[begin:end]:
                failed += 1
                print(f"FAIL {path} {name!r}: status {run.returncode}, {len(run.stdout)} bytes "
                      f"(want {end - begin}), stderr {run.stderr[:200]!r}")
    print(f"{dumped} tensors of {len(files)} files dumped, {failed} wrong")
    return 1 if failed or dumped < 600 else 0


if __name__ == "__main__":
    sys.exit(main())
