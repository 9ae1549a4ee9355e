"""safetensors.torch's helpers that other libraries import (transformers: storage_ptr,
storage_size, _find_shared_tensors, _remove_duplicate_names), as the reference's own tests
(bindings/python/tests/test_pt_model.py, test_simple.py) check them."""
import torch


def test_is_complete(st):
    from safetensors_hpp.torch import _is_complete

    A = torch.zeros((3, 3))
    assert _is_complete(A)
    assert not _is_complete(A[:1, :])
    assert not _is_complete(A[::2, :])
    assert _is_complete(torch.zeros((2, 2), device=torch.device("meta")))


def test_find_shared_tensors(st):
    from safetensors_hpp.torch import _find_shared_tensors

    A = torch.zeros((3, 3))
    B = A[:1, :]
    assert _find_shared_tensors({"A": A, "B": B}) == [{"A", "B"}]
    assert _find_shared_tensors({"A": A}) == [{"A"}]
    assert _find_shared_tensors({"B": B}) == [{"B"}]
    C = torch.zeros((2, 2), device=torch.device("meta"))
    assert _find_shared_tensors({"C": C, "D": C[:1]}) == []


def test_find_shared_non_overlapping(st):
    from safetensors_hpp.torch import _find_shared_tensors

    A = torch.zeros((4,))
    assert _find_shared_tensors({"B": A[:2], "C": A[2:]}) == [{"B"}, {"C"}]
    assert _find_shared_tensors({"B": A[:2], "C": A[1:]}) == [{"B", "C"}]
    assert _find_shared_tensors({"B": A[:2], "C": A[2:], "D": A[:1]}) == [{"B", "D"}, {"C"}]


def test_end_ptr(st):
    from safetensors_hpp.torch import _end_ptr

    A = torch.zeros((4,))
    assert _end_ptr(A) - A.data_ptr() == 16
    A = torch.zeros((16,))[::4]
    assert _end_ptr(A) - A.data_ptr() == 16 * 3 + 4
    A = torch.zeros((16,), dtype=torch.float16)[::4]
    assert _end_ptr(A) - A.data_ptr() == 8 * 3 + 2


def test_remove_duplicate_names(st):
    import pytest
    from safetensors_hpp.torch import _remove_duplicate_names

    A = torch.zeros((3, 3))
    B = A[:1, :]
    assert _remove_duplicate_names({"A": A, "B": B}) == {"A": ["B"]}
    assert _remove_duplicate_names({"A": A, "B": B, "C": A}) == {"A": ["B", "C"]}
    with pytest.raises(RuntimeError):
        _remove_duplicate_names({"B": B})


def test_storage_ptr_size_overlapping_storage(st):
    from safetensors_hpp.torch import _find_shared_tensors, storage_ptr, storage_size

    m = torch.randn(10)
    n = torch.empty([], dtype=m.dtype)
    try:
        smaller = m.untyped_storage()[:16]
    except Exception:
        try:
            smaller = m.storage().untyped()[:16]  # torch 1.13
        except Exception:
            smaller = m.storage()._untyped()[:16]
    n.set_(source=smaller)
    assert storage_ptr(n) == storage_ptr(m)
    assert storage_size(n) == 16 and storage_size(m) == 40
    assert _find_shared_tensors({"m": m, "n": n}) == [{"m"}, {"n"}]


def test_reference_private_helpers_for_deserialize(st):
    # Code written against the reference turns deserialize() output into tensors with its
    # private helpers (_view2torch, _view2np, _getdtype, _TYPES); they are here too.
    import numpy as np

    tensors = {"a": torch.arange(6, dtype=torch.float32).reshape(2, 3), "b": torch.zeros((0, 4), dtype=torch.bfloat16),
               "m": torch.tensor([True, False])}
    got = st.torch._view2torch(st.deserialize(st.torch.save(tensors)))
    assert sorted(got) == ["a", "b", "m"]
    for name, tensor in tensors.items():
        assert got[name].dtype == tensor.dtype and got[name].shape == tensor.shape
        assert torch.equal(got[name], tensor)
    assert st.torch._getdtype("BF16") is torch.bfloat16 and st.torch._TYPES["BOOL"] is torch.bool
    assert "F4" not in st.torch._TYPES and "F8_E8M0" not in st.torch._TYPES  # as the reference's table
    arrays = {"x": np.arange(4, dtype=np.int16).reshape(2, 2), "y": np.array([1.5], dtype=np.float64), "z": np.array([True])}
    back = st.numpy._view2np(st.deserialize(st.numpy.save(arrays)))
    for name, array in arrays.items():
        assert back[name].dtype == array.dtype and np.array_equal(back[name], array)
    assert st.numpy._getdtype("BOOL") is bool and st.numpy._TYPES["U16"] is np.uint16 and st.numpy._TYPES["C64"] is np.complex64  # 0.8 added C64
