"""Threads: several threads reading one open file (get_tensor, get_slice) get the right bytes."""
import numpy as np
import torch

from conftest import run_threads, sha256, torch_bytes, write_plain

N_TENSORS = 24


def _make(tmp_path):
    g = torch.Generator().manual_seed(3)
    tensors = {}
    for i in range(N_TENSORS):
        dt = [torch.float32, torch.bfloat16, torch.int16, torch.float64][i % 4]
        tensors["t%02d" % i] = (torch.randn(64, 96 + i, generator=g) * 100).to(dt)
    path = write_plain(tmp_path / "threads.safetensors", tensors)
    return path, tensors


def test_two_threads_one_open_file(st, tmp_path):
    path, tensors = _make(tmp_path)
    want = {k: sha256(torch_bytes(v)) for k, v in tensors.items()}
    want_rows = {k: sha256(torch_bytes(v[5:40:3, 7:])) for k, v in tensors.items()}
    with st.safe_open(path, framework="pt") as f:
        def reader(order):
            def run():
                for _ in range(6):
                    for k in order:
                        assert sha256(torch_bytes(f.get_tensor(k))) == want[k], k
                        assert sha256(torch_bytes(f.get_slice(k)[5:40:3, 7:])) == want_rows[k], k
            return run

        keys = sorted(tensors)
        run_threads([reader(keys), reader(keys[::-1])])


def test_threads_numpy_and_load_file(st, tmp_path):
    path, tensors = _make(tmp_path)
    want = {k: sha256(torch_bytes(v)) for k, v in tensors.items() if v.dtype != torch.bfloat16}
    with st.safe_open(path, framework="np") as f:
        def np_reader():
            for _ in range(4):
                for k in want:
                    a = f.get_tensor(k)
                    assert isinstance(a, np.ndarray)
                    assert sha256(a.tobytes()) == want[k], k

        def loader():
            for _ in range(3):
                d = st.torch.load_file(path)
                for k, v in tensors.items():
                    assert torch.equal(d[k], v), k

        run_threads([np_reader, np_reader, loader])
