"""get_slice: every index expression of the reference fixtures gives the reference's result
(shape, SHA-256 of the bytes, values, or IndexError), and a grid of further expressions equals
torch / numpy indexing of the whole tensor."""
import itertools

import numpy as np
import pytest
import torch

from conftest import (SLICES, VALID, VALID_MANIFEST, assert_values, np_bytes, np_values, sha256,
                      slice_index, torch_bytes, torch_values, write_plain)

SLICING = VALID / "slicing.safetensors"
EXPECTED = VALID_MANIFEST["slicing.safetensors"]["slices"]
CASES = [(t, s) for t in sorted(EXPECTED) for s in sorted(EXPECTED[t])]


# the fixture holds generate.py's 20 expressions for each tensor (checked at collection)
assert len(SLICES) == 20
assert all(sorted(EXPECTED[t]) == sorted(SLICES) for t in ("x_f32", "x_i16", "x_bf16"))


@pytest.mark.parametrize("tensor,sname", CASES, ids=["%s-%s" % c for c in CASES])
def test_reference_slice_pt(st, tensor, sname):
    expected = EXPECTED[tensor][sname]
    idx = slice_index(SLICES[sname])
    with st.safe_open(SLICING, framework="pt") as f:
        sl = f.get_slice(tensor)
        if "error" in expected:
            assert expected["error"].startswith("IndexError")
            with pytest.raises(IndexError):
                sl[idx]
            return
        t = sl[idx]
    assert isinstance(t, torch.Tensor)
    assert t.dtype == {"x_f32": torch.float32, "x_i16": torch.int16, "x_bf16": torch.bfloat16}[tensor]
    assert list(t.shape) == expected["shape"]
    assert sha256(torch_bytes(t)) == expected["sha256"]
    assert_values(torch_values(t), expected["values"])


NP_CASES = [c for c in CASES if c[0] != "x_bf16"]


# What the reference's NumPy path (its Rust slicer) refuses where torch clamps: a slice past the
# end of its dimension; its message.
NP_REFUSED = {
    "s_0_100": "Error during slicing [0:100] with shape [4, 6, 5]: index 99 out of bounds for tensor dimension #0 of size 4",
    "s_5_end": "Error during slicing [5:] with shape [4, 6, 5]: index 5 out of bounds for tensor dimension #0 of size 4",
}


@pytest.mark.parametrize("tensor,sname", NP_CASES, ids=["%s-%s" % c for c in NP_CASES])
def test_reference_slice_np(st, tensor, sname):
    """The same expressions through framework="np" (numpy indexing agrees with torch on all of
    them but those the reference's NumPy path refuses).  Out of range: IndexError, or
    SafetensorError as the reference's numpy path raises (the error is both)."""
    expected = EXPECTED[tensor][sname]
    idx = slice_index(SLICES[sname])
    with st.safe_open(SLICING, framework="np") as f:
        sl = f.get_slice(tensor)
        if sname in NP_REFUSED:
            with pytest.raises(st.SafetensorError) as e:
                sl[idx]
            assert str(e.value) == NP_REFUSED[sname] and isinstance(e.value, IndexError)
            return
        if "error" in expected:
            with pytest.raises((IndexError, st.SafetensorError)):
                sl[idx]
            return
        a = sl[idx]
    assert isinstance(a, np.ndarray)
    assert a.dtype == {"x_f32": np.float32, "x_i16": np.int16}[tensor]
    assert list(a.shape) == expected["shape"]
    assert sha256(np_bytes(a)) == expected["sha256"]
    assert_values(np_values(a), expected["values"])


def test_bf16_slice_np_gives_reference_error(st):
    with st.safe_open(SLICING, framework="np") as f:
        with pytest.raises(TypeError, match="bfloat16"):
            f.get_slice("x_bf16")[0]


def test_slice_shape_dtype(st):
    with st.safe_open(SLICING, framework="pt") as f:
        for name, dt in [("x_f32", "F32"), ("x_i16", "I16"), ("x_bf16", "BF16"), ("v", "I64")]:
            s = f.get_slice(name)
            assert s.get_dtype() == dt
            assert s.get_shape() == ([10] if name == "v" else [4, 6, 5])


# A grid of basic indexing on a [5, 4, 6] tensor, compared with torch's own indexing of the whole
# tensor (the reference's pt path is torch's __getitem__).
_DIM = [slice(None), slice(1, 3), slice(-3, None), slice(None, -1), slice(None, None, 2),
        slice(1, None, 3), slice(-4, -1, 2), slice(2, 100), slice(7, 9), 0, -1, 2]


def _grid():
    out = []
    for a, b in itertools.product(_DIM, _DIM[:8]):
        out.append((a, b))
    for a, c in itertools.product(_DIM[::2], _DIM[::3]):
        out.append((a, Ellipsis, c))
        out.append((a, slice(None), c))
    out += [(Ellipsis,), Ellipsis, slice(None), (Ellipsis, 1), (1, Ellipsis), (1, 2, 3), (-5, -4, -6),
            (slice(None, None, 5), slice(None, None, 3), slice(None, None, 4))]
    return out


GRID = _grid()


def test_grid_pt_np_equals_framework_indexing(st, tmp_path):
    full = torch.arange(5 * 4 * 6, dtype=torch.float32).reshape(5, 4, 6) * 0.5 - 7
    path = tmp_path / "grid.safetensors"
    write_plain(path, {"g": full, "i": full.to(torch.int32)})
    full_np = full.numpy()
    with st.safe_open(path, framework="pt") as fp, st.safe_open(path, framework="np") as fn:
        sp, si, sn = fp.get_slice("g"), fp.get_slice("i"), fn.get_slice("g")
        for idx in GRID:
            want = full[idx]
            got = sp[idx]
            assert got.dtype == torch.float32, idx
            assert list(got.shape) == list(want.shape), idx
            assert torch.equal(got, want), idx
            assert torch.equal(si[idx], full.to(torch.int32)[idx]), idx
            items = idx if isinstance(idx, tuple) else (idx,)
            bounds = [b for i in items if isinstance(i, slice) for b in (i.start, i.stop) if b is not None]
            if any(i in (slice(2, 100), slice(7, 9)) for i in items) and Ellipsis not in items and min(bounds) >= 0:
                # the reference's NumPy path refuses a slice past the end of its dimension (where
                # every bound is positive; a negative one keeps NumPy's meaning here)
                with pytest.raises(st.SafetensorError, match="out of bounds for tensor dimension"):
                    sn[idx]
                continue
            got_np = sn[idx]
            assert isinstance(got_np, np.ndarray)
            assert got_np.shape == full_np[idx].shape, idx
            assert np.array_equal(got_np, full_np[idx]), idx


@pytest.mark.parametrize("idx", [5, -6, (0, 4), (0, 0, 6), (0, -5), (slice(None), slice(None), -7)],
                         ids=str)
def test_index_out_of_range_raises_index_error(st, tmp_path, idx):
    path = tmp_path / "oob.safetensors"
    write_plain(path, {"g": torch.zeros(5, 4, 6)})
    with pytest.raises(IndexError):
        torch.zeros(5, 4, 6)[idx]  # the reference's behaviour is torch's
    with st.safe_open(path, framework="pt") as f:
        with pytest.raises(IndexError):
            f.get_slice("g")[idx]


@pytest.mark.parametrize("idx", [(0, 0, 0), (0, 0, 0, 0)], ids=str)
def test_too_many_indices(st, tmp_path, idx):
    """More indices than dimensions: an IndexError, as the framework's own indexing gives."""
    full = torch.arange(6).reshape(2, 3)
    path = write_plain(tmp_path / "many.safetensors", {"g": full})
    for framework, whole in (("pt", full), ("np", full.numpy())):
        with pytest.raises(IndexError):
            whole[idx]
        with st.safe_open(path, framework=framework) as f:
            with pytest.raises(IndexError):
                f.get_slice("g")[idx]


@pytest.mark.parametrize("idx", [(Ellipsis, 0, Ellipsis), (Ellipsis, Ellipsis)], ids=str)
def test_two_ellipses_raise_index_error(st, tmp_path, idx):
    """Several ellipses: an IndexError in both frameworks, as NumPy (and torch 2) raise. torch 1.13
    alone accepts them; the slicer keeps one rule for every framework."""
    path = write_plain(tmp_path / "many.safetensors", {"g": torch.arange(6).reshape(2, 3)})
    with pytest.raises(IndexError):
        torch.arange(6).reshape(2, 3).numpy()[idx]
    for framework in ("pt", "np"):
        with st.safe_open(path, framework=framework) as f:
            with pytest.raises(IndexError):
                f.get_slice("g")[idx]


def test_slice_of_scalar_and_empty(st):
    with st.safe_open(VALID / "all_dtypes.safetensors", framework="pt") as f:
        s = f.get_slice("scalar_f32")
        assert s.get_shape() == []
        t = s[...]
        assert list(t.shape) == [] and t.item() == 42.5
        e = f.get_slice("empty_f32_0x3")[:, 1:]
        assert list(e.shape) == [0, 2] and e.dtype == torch.float32
        b = f.get_slice("big_f32_64x64")[10:20, ::7]
        assert torch.equal(b, f.get_tensor("big_f32_64x64")[10:20, ::7])


def test_slice_result_is_writable_and_file_unchanged(st):
    before = (SLICING).read_bytes()
    with st.safe_open(SLICING, framework="pt") as f:
        a = f.get_slice("x_f32")[1:3]
        a += 1000
        assert a[0, 0, 0].item() == 1030.0
    del a, f
    assert SLICING.read_bytes() == before
    with st.safe_open(SLICING, framework="pt") as f:
        assert f.get_slice("x_f32")[1:3][0, 0, 0].item() == 30.0


def test_slice_outlives_file_object(st):
    import gc

    f = st.safe_open(SLICING, framework="pt")
    s = f.get_slice("x_i16")
    with f:
        pass
    del f
    gc.collect()
    # the reference keeps a slice usable after its file object is gone
    t = s[2, 1:3]
    assert t.tolist() == [[65, 66, 67, 68, 69], [70, 71, 72, 73, 74]]


def test_negative_step(st, tmp_path):
    """torch refuses a negative step (ValueError); numpy reverses."""
    full = torch.arange(24, dtype=torch.int32).reshape(4, 6)
    path = write_plain(tmp_path / "n.safetensors", {"g": full})
    with pytest.raises(ValueError):
        full[::-1]
    with st.safe_open(path, framework="pt") as f:
        with pytest.raises(ValueError):
            f.get_slice("g")[::-1]
    with st.safe_open(path, framework="np") as f:
        a = f.get_slice("g")[::-1, 4:1:-2]
        assert np.array_equal(a, full.numpy()[::-1, 4:1:-2])


def test_advanced_indexing_follows_the_framework(st, tmp_path):
    """Indexes beyond ints, slices and ... (None, lists, bool masks): the framework's semantics."""
    full = torch.arange(60, dtype=torch.float32).reshape(3, 4, 5)
    path = write_plain(tmp_path / "a.safetensors", {"g": full})
    exprs = [(None, 1), ([0, 2],), (slice(None), [3, 0]), (Ellipsis, None), (torch.tensor([True, False, True]),)]
    with st.safe_open(path, framework="pt") as f:
        s = f.get_slice("g")
        for idx in exprs:
            assert torch.equal(s[idx], full[idx]), idx
    with st.safe_open(path, framework="np") as f:
        s = f.get_slice("g")
        for idx in exprs[:4]:
            assert np.array_equal(s[idx], full.numpy()[idx]), idx


def test_every_dtype_slices_like_its_tensor(st):
    """Element sizes 1, 2, 4, 8 and complex: slices of every fixture tensor equal indexing of the
    whole tensor."""
    exprs = [slice(1, None), slice(None, None, 2), -1, (Ellipsis, slice(0, 1)), (slice(None), slice(None, None, 3)),
             np.int64(0), (np.int32(1), slice(None))]
    with st.safe_open(VALID / "all_dtypes.safetensors", framework="pt") as f:
        for k in f.keys():
            try:
                full = f.get_tensor(k)
            except AttributeError:  # a dtype this torch lacks
                continue
            s = f.get_slice(k)
            if full.dim() == 0:
                assert torch.equal(s[()], full[()]), k
                continue
            for idx in exprs:
                try:
                    want = full[idx]
                except IndexError:
                    with pytest.raises(IndexError):
                        s[idx]
                    continue
                got = s[idx]
                assert got.dtype == want.dtype and got.shape == want.shape, (k, idx)
                assert torch_bytes(got) == torch_bytes(want), (k, idx)


def test_numpy_path_refuses_as_the_reference(st, tmp_path):
    """framework="np": the reference slices with its Rust slicer, which refuses what NumPy would
    clamp or gather; the same errors (SafetensorError, here also IndexError) and messages."""
    path = tmp_path / "a.safetensors"
    st.numpy.save_file({"a": np.zeros((10, 5))}, path)
    s = st.safe_open(path, framework="np").get_slice("a")
    cases = [
        ((slice(2, None), -6), "Invalid index -6 for dimension 1 of size 5"),
        ((slice(2, None), 20), "Error during slicing [2:, 20] with shape [10, 5]: index 20 out of bounds for tensor dimension #1 of size 5"),
        (slice(None, 20), "Error during slicing [:20] with shape [10, 5]: index 19 out of bounds for tensor dimension #0 of size 10"),
        ((slice(None), slice(None, 20)), "Error during slicing [:, :20] with shape [10, 5]: index 19 out of bounds for tensor dimension #1 of size 5"),
        ((slice(12, 14), slice(None, 20)), "Error during slicing [12:14, :20] with shape [10, 5]: index 19 out of bounds for tensor dimension #1 of size 5"),
        ((-1, slice(5, None)), "Error during slicing [9, 5:] with shape [10, 5]: index 5 out of bounds for tensor dimension #1 of size 5"),
    ]
    for idx, message in cases:
        with pytest.raises(st.SafetensorError) as e:
            s[idx]
        assert str(e.value) == message and isinstance(e.value, IndexError), idx
    with pytest.raises(st.SafetensorError) as e:
        s[[0, 1]]
    assert str(e.value) == "Non empty lists are not implemented"
    assert s[[]].shape == (0, 5) and s[2:, -5].shape == (8,) and s[:10, :5].shape == (10, 5)
    with st.safe_open(path, framework="pt") as f:  # torch's path clamps, as torch does
        assert tuple(f.get_slice("a")[:20, :20].shape) == (10, 5)
