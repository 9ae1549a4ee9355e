"""The tensors a GPU load_file returns are views into one arena per file (torch.py's
_arena_views). Checked here on a CPU arena, so that machines without a GPU test it too: every
dtype of the fixtures, scalars, empty tensors and an arena whose size is no multiple of 8."""
import pytest
import torch

from conftest import VALID, torch_bytes


def _arena_of(tensors):
    """The loader's layout: file order, each tensor 256-byte aligned, no padding after the last."""
    entries, offset, chunks = [], 0, []
    for name, (t, dtype) in tensors.items():
        data = torch_bytes(t)
        if not data:
            entries.append((name, -1, 0, 0, dtype, tuple(t.shape)))
            continue
        offset = (offset + 255) // 256 * 256
        entries.append((name, 0, offset, len(data), dtype, tuple(t.shape)))
        chunks.append((offset, data))
        offset += len(data)
    arena = torch.zeros(offset, dtype=torch.uint8)
    for at, data in chunks:
        arena[at : at + len(data)] = torch.frombuffer(bytearray(data), dtype=torch.uint8)
    return arena, entries


def test_views_equal_the_files_tensors(st):
    from safetensors_hpp.torch import _arena_views

    tensors = {}
    with st.safe_open(VALID / "all_dtypes.safetensors", framework="pt") as f:
        for name in f.offset_keys():
            try:
                tensors[name] = (f.get_tensor(name), f.get_slice(name).get_dtype())
            except AttributeError:  # a dtype this torch lacks (Debian 12's has no uint16, float8)
                continue
    tensors["tail_u8_odd"] = (torch.arange(7, dtype=torch.uint8), "U8")  # the arena ends off any alignment
    arena, entries = _arena_of(tensors)
    assert arena.numel() % 8 != 0
    got = _arena_views([arena], entries, torch.empty(0, dtype=torch.uint8))
    assert list(got) == list(tensors)
    assert {d for _, d in tensors.values()} >= {"F64", "F32", "F16", "BF16", "I64", "I8", "U8", "BOOL"}
    for name, (want, _) in tensors.items():
        t = got[name]
        assert t.dtype == want.dtype and t.shape == want.shape, name
        assert t.is_contiguous(), name
        assert torch_bytes(t) == torch_bytes(want), name
        if t.numel():  # a view into the arena, not a copy
            assert arena.data_ptr() <= t.data_ptr() < arena.data_ptr() + arena.numel(), name


def test_views_share_the_arena_and_stay_apart(st):
    from safetensors_hpp.torch import _arena_views

    tensors = {"a": (torch.zeros(3, 5), "F32"), "b": (torch.zeros(2, 2, 2, dtype=torch.float64), "F64")}
    arena, entries = _arena_of(tensors)
    got = _arena_views([arena], entries, torch.empty(0, dtype=torch.uint8))
    got["a"].fill_(1.0)
    assert torch.equal(got["b"], torch.zeros(2, 2, 2, dtype=torch.float64))  # writes stay inside "a"
    assert arena[:60].view(torch.float32).eq(1.0).all() and arena[60:].eq(0).all()


def test_an_unknown_dtype_raises_as_get_tensor_does(st):
    from safetensors_hpp.torch import _arena_views

    with pytest.raises(st.SafetensorError, match="Dtype not understood: F6"):
        _arena_views([torch.zeros(256, dtype=torch.uint8)], [("x", 0, 0, 3, "F6", (4,))],
                     torch.empty(0, dtype=torch.uint8))
