"""No byte copied that is not needed: whole tensors come over the file's private mapping, and a
slice reads only what it selects.  Checked on a sparse 2 GiB file (no disk space used): a copy of
the tensor would add 2 GiB of anonymous memory to the process, a private mapping adds none until
it is written."""
import json
import os
import struct
import time

import numpy as np
import pytest
import torch

ROWS, COLS = 16384, 32768  # F32: 2 GiB
LIMIT = 256 << 20          # resident growth allowed per call


def _resident():
    """Anonymous resident memory (RssAnon): what a copy allocates.  Pages of the file mapped in
    (RssFile) are not copies; load_file may fault its whole mapping in at once."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no RssAnon in /proc/self/status")


def _reset_peak():
    """Resets VmHWM (peak resident set, file pages included); False where the kernel refuses."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _peak():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


@pytest.fixture(scope="module")
def sparse_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("sparse") / "big.safetensors"
    size = ROWS * COLS * 4
    header = {"__metadata__": {"format": "pt"},
              "big": {"dtype": "F32", "shape": [ROWS, COLS], "data_offsets": [0, size]},
              "tail": {"dtype": "I64", "shape": [2], "data_offsets": [size, size + 16]}}
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h)
        f.seek(8 + len(h) + size)
        f.write(struct.pack("<2q", 7, -9))
    return path


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs /proc")
@pytest.mark.parametrize("framework", ["pt", "np"])
def test_get_tensor_and_slices_copy_nothing_extra(st, sparse_file, framework):
    before = _resident()
    t0 = time.perf_counter()
    with st.safe_open(sparse_file, framework=framework) as f:
        big = f.get_tensor("big")
        assert list(big.shape) == [ROWS, COLS]
        assert _resident() - before < LIMIT, "get_tensor copied the tensor"
        del big
        peak_ok = _reset_peak()
        peak_before = _peak()
        rows = f.get_slice("big")[5:7]
        assert list(rows.shape) == [2, COLS]
        one = f.get_slice("big")[12345, 678:680]
        assert list(one.shape) == [2] and float(one[0]) == 0.0
        cols = f.get_slice("big")[::4096, 1]
        assert list(cols.shape) == [4]
        assert _resident() - before < LIMIT, "get_slice copied more than it selects"
        if peak_ok:
            assert _peak() - peak_before < LIMIT, "get_slice read (or mapped in) more than it selects"
        big = f.get_tensor("big")
        tail = f.get_tensor("tail")
        assert tail.tolist() == [7, -9]
        assert float(big[ROWS - 1, COLS - 1]) == 0.0
        big[0, 0] = 5  # writable, privately
        assert float(big[0, 0]) == 5.0
    del big, rows
    assert time.perf_counter() - t0 < 10
    with st.safe_open(sparse_file, framework=framework) as f:
        assert float(f.get_slice("big")[0, :1][0]) == 0.0


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs /proc")
def test_load_file_copies_nothing(st, sparse_file):
    before = _resident()
    d = st.torch.load_file(sparse_file)
    assert d["tail"].tolist() == [7, -9] and d["big"].dtype == torch.float32
    assert _resident() - before < LIMIT, "torch.load_file copied the tensors"
    del d
    d = st.numpy.load_file(sparse_file)
    assert d["tail"].tolist() == [7, -9] and d["big"].dtype == np.float32
    assert _resident() - before < LIMIT, "numpy.load_file copied the tensors"
