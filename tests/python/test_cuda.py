"""GPU loads (skipped where torch has no CUDA device): whole tensors, slices and load_file land in
memory torch owns (its caching allocator sees them, `del` gives them back), with the CPU's bytes."""
import gc

import pytest
import torch

from conftest import MODEL, VALID, VALID_MANIFEST, run_threads, torch_bytes, write_plain

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device for torch")

SLICING = VALID / "slicing.safetensors"


@pytest.mark.parametrize("device", [0, "cuda", "cuda:0"])
def test_get_tensor_and_slice_on_gpu(st, device):
    with st.safe_open(SLICING, framework="pt") as cpu, st.safe_open(SLICING, framework="pt", device=device) as gpu:
        for k in cpu.keys():
            t = gpu.get_tensor(k)
            assert t.device == torch.device("cuda:0")
            assert t.dtype == cpu.get_tensor(k).dtype
            assert torch.equal(t.cpu(), cpu.get_tensor(k))
        for idx in [(slice(1, 3),), (slice(None), slice(2, 4)), (Ellipsis, slice(None, None, 2)), (1, slice(None), 3)]:
            idx = idx if len(idx) > 1 else idx[0]
            g = gpu.get_slice("x_bf16")[idx]
            assert g.device.type == "cuda"
            assert torch.equal(g.cpu(), cpu.get_slice("x_bf16")[idx])


def test_load_file_gpu_memory_owned_by_torch(st, tmp_path):
    tensors = {"w%d" % i: torch.randn(256, 1024) for i in range(8)}
    path = write_plain(tmp_path / "g.safetensors", tensors)
    torch.cuda.synchronize()
    gc.collect()
    base = torch.cuda.memory_allocated(0)
    d = st.torch.load_file(path, device="cuda:0")
    torch.cuda.synchronize()
    assert torch.cuda.memory_allocated(0) - base >= 8 * 256 * 1024 * 4
    for k, v in tensors.items():
        assert d[k].device == torch.device("cuda:0")
        assert torch.equal(d[k].cpu(), v)
    del d
    gc.collect()
    torch.cuda.synchronize()
    assert torch.cuda.memory_allocated(0) == base


def test_all_dtypes_on_gpu(st):
    m = VALID_MANIFEST["all_dtypes.safetensors"]["tensors"]
    with st.safe_open(VALID / "all_dtypes.safetensors", framework="pt") as cpu, \
            st.safe_open(VALID / "all_dtypes.safetensors", framework="pt", device="cuda:0") as gpu:
        for k, info in m.items():
            try:
                want = cpu.get_tensor(k)
            except AttributeError:  # a dtype this torch lacks: the same error on the GPU
                with pytest.raises(AttributeError):
                    gpu.get_tensor(k)
                continue
            got = gpu.get_tensor(k)
            assert got.device.type == "cuda" and list(got.shape) == info["shape"]
            assert got.dtype == want.dtype
            assert torch_bytes(got.cpu()) == torch_bytes(want), k


def test_sharded_checkpoint_to_gpu(st):
    index = MODEL / "gpt2_tiny_sharded" / "model.safetensors.index.json"
    cpu = st.torch.load_file(index)
    gpu = st.torch.load_file(index, device="cuda:0")  # one pipeline per shard
    assert list(gpu) == list(cpu)
    for k, v in cpu.items():
        assert gpu[k].device == torch.device("cuda:0") and torch.equal(gpu[k].cpu(), v), k
    with st.safe_open(index, framework="pt", device=0) as f:
        assert torch.equal(f.get_slice("transformer.wte.weight")[3:9, 1:].cpu(), cpu["transformer.wte.weight"][3:9, 1:])


def test_empty_and_scalar_tensors_on_gpu(st, tmp_path):
    tensors = {"empty": torch.zeros(0, 4), "scalar": torch.tensor(2.5), "x": torch.arange(12.0).reshape(3, 4)}
    path = write_plain(tmp_path / "small.safetensors", tensors)
    d = st.torch.load_file(path, device="cuda:0")
    with st.safe_open(path, framework="pt", device="cuda:0") as f:
        one = {k: f.get_tensor(k) for k in f.keys()}
        part = f.get_slice("x")[:, 4:]  # empty slice
    for got in (d, one):
        for k, v in tensors.items():
            assert got[k].device.type == "cuda" and got[k].shape == v.shape and torch.equal(got[k].cpu(), v), k
    assert part.device.type == "cuda" and part.shape == (3, 0)


def test_threads_upload_the_right_bytes(st, tmp_path):
    g = torch.Generator().manual_seed(5)
    tensors = {"t%02d" % i: torch.randn(128, 64 + i, generator=g) for i in range(16)}
    path = write_plain(tmp_path / "threads.safetensors", tensors)
    with st.safe_open(path, framework="pt", device=0) as f:
        def work(names):
            def run():
                for _ in range(3):
                    for k in names:
                        assert torch.equal(f.get_tensor(k).cpu(), tensors[k]), k
                        assert torch.equal(f.get_slice(k)[1::3, 2:].cpu(), tensors[k][1::3, 2:]), k
            return run

        names = sorted(tensors)
        run_threads([work(names[i::4]) for i in range(4)], timeout=120)


def test_load_after_queued_work_on_torchs_stream(st, tmp_path):
    # Memory torch frees while a kernel still reads it is handed out again at once: the loader,
    # copying on its own stream, must not write it before that kernel is done.
    tensors = {"w": torch.full((4096, 4096), 3.0)}
    path = write_plain(tmp_path / "w.safetensors", tensors)
    for _ in range(3):
        a = torch.ones(4096, 4096, device="cuda:0")
        b = a @ a  # queued on torch's stream, reading a
        del a  # a's block is free for the next allocation on this stream
        d = st.torch.load_file(path, device="cuda:0")
        assert torch.equal(d["w"].cpu(), tensors["w"])
        assert float(b[0, 0]) == 4096.0
