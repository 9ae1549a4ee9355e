"""GPU loads (skipped where torch has no CUDA device): whole tensors, slices and load_file land in
memory torch owns (its caching allocator sees them, `del` gives them back), with the CPU's bytes."""
import gc

import pytest
import torch

from conftest import VALID, VALID_MANIFEST, torch_bytes, write_plain

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
