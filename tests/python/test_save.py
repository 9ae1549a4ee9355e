"""Writers: save / save_file (torch and numpy) of the reference fixtures' tensors and metadata give
the reference's bytes; round trips; save_model / load_model; the reference's input errors."""
import os
import struct

import numpy as np
import pytest
import torch

from conftest import (MODEL, MODEL_MANIFEST, SPECIALS, VALID, VALID_FILES, VALID_MANIFEST,
                      assert_same_file, file_sha256, numpy_tensors_of,
                      torch_tensors_of)

ALL_REF_FILES = [VALID / n for n in VALID_FILES] + [MODEL / n for n in sorted(MODEL_MANIFEST)]
IDS = [p.parent.name + "/" + p.name for p in ALL_REF_FILES]


def _metadata(path):
    name = path.parent.name + "/" + path.name
    if path.parent == VALID:
        return VALID_MANIFEST[path.name]["metadata"]
    return MODEL_MANIFEST[name]["metadata"]


# ----------------------------------------------------------------------------------------------
# The reference's files, rewritten from their own bytes
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("framework", ["torch", "numpy"])
@pytest.mark.parametrize("path", ALL_REF_FILES, ids=IDS)
def test_save_file_reproduces_reference(st, tmp_path, path, framework):
    tensors = (torch_tensors_of if framework == "torch" else numpy_tensors_of)(path)
    if tensors is None:
        lacking = "torch %s" % torch.__version__ if framework == "torch" else "numpy"
        pytest.skip("%s lacks a dtype of %s" % (lacking, path.name))
    module = getattr(st, framework)
    out = tmp_path / "out.safetensors"
    assert module.save_file(tensors, str(out), metadata=_metadata(path)) is None
    assert_same_file(out.read_bytes(), path)
    b = module.save(tensors, metadata=_metadata(path))
    assert isinstance(b, bytes)
    assert_same_file(b, path)


# On torch 1.13 (no F8, no U16-U64) most fixtures must still be rewritten (checked at collection)
assert len([p for p in ALL_REF_FILES if torch_tensors_of(p) is not None]) >= 18


# ----------------------------------------------------------------------------------------------
# The reference's files, rebuilt from generate.py's own expressions
# ----------------------------------------------------------------------------------------------
def _generate_py_files():
    out = {}
    src = torch.arange(4 * 6 * 5, dtype=torch.float32).reshape(4, 6, 5)
    out["slicing.safetensors"] = ({
        "x_f32": src, "x_i16": torch.arange(4 * 6 * 5, dtype=torch.int16).reshape(4, 6, 5),
        "x_bf16": src.to(torch.bfloat16), "v": torch.arange(10, dtype=torch.int64)}, None)
    out["many_tensors.safetensors"] = ({
        f"model.layers.{i}.mlp.{w}.weight": torch.full((3, 2), float(i), dtype=torch.float32 if i % 3 else torch.bfloat16)
        for i in range(300) for w in ["gate_proj", "up_proj"]}, None)
    out["no_tensors.safetensors"] = ({}, None)
    out["no_tensors_with_metadata.safetensors"] = ({}, {"a": "b"})
    out["complex64.safetensors"] = ({"c": torch.tensor([1 + 2j, -3.5 + 0.25j], dtype=torch.complex64)}, None)
    floats = torch.tensor(SPECIALS, dtype=torch.float64)
    for name in ["float16", "bfloat16", "float32", "float64"]:
        out[f"single_special_{name}.safetensors"] = ({f"special_{name}": floats.to(getattr(torch, name))}, None)
    out["single_mask_bool_2x5.safetensors"] = (
        {"mask_bool_2x5": torch.tensor([[True, False, True, True, False], [False, False, True, False, True]])}, None)
    out["single_scalar_f32.safetensors"] = ({"scalar_f32": torch.tensor(42.5, dtype=torch.float32)}, None)
    out["single_scalar_i64.safetensors"] = ({"scalar_i64": torch.tensor(-7, dtype=torch.int64)}, None)
    out["single_empty_f32_0x3.safetensors"] = ({"empty_f32_0x3": torch.zeros((0, 3), dtype=torch.float32)}, None)
    out["single_empty_i8_0.safetensors"] = ({"empty_i8_0": torch.zeros((0,), dtype=torch.int8)}, None)
    return out


GENERATED = _generate_py_files()


@pytest.mark.parametrize("name", sorted(GENERATED))
def test_generate_py_save_file_is_byte_identical(st, tmp_path, name):
    tensors, metadata = GENERATED[name]
    out = tmp_path / name
    st.torch.save_file(tensors, out, metadata=metadata)
    assert file_sha256(out) == VALID_MANIFEST[name]["file_sha256"]


def test_generate_py_save_bytes_api(st):
    b = st.torch.save({"z": torch.ones(3)}, metadata={"x": "y"})
    assert b == (VALID / "from_bytes_api.safetensors").read_bytes()


def test_generate_py_numpy_files(st, tmp_path):
    out = tmp_path / "c.safetensors"
    st.numpy.save_file({"c": np.array([1 + 2j, -3.5 + 0.25j], dtype=np.complex64)}, out)
    assert file_sha256(out) == VALID_MANIFEST["complex64.safetensors"]["file_sha256"]
    b = st.numpy.save({"special_float32": np.array(SPECIALS, dtype=np.float64).astype(np.float32)})
    assert b == (VALID / "single_special_float32.safetensors").read_bytes()
    b = st.numpy.save({"mask_bool_2x5": np.array([[1, 0, 1, 1, 0], [0, 0, 1, 0, 1]], dtype=bool)})
    assert b == (VALID / "single_mask_bool_2x5.safetensors").read_bytes()


# ----------------------------------------------------------------------------------------------
# The reference's own writer tests (bindings/python/tests/test_pt_comparison.py, test_simple.py)
# ----------------------------------------------------------------------------------------------
I32_ZEROS = (b'@\x00\x00\x00\x00\x00\x00\x00{"test":{"dtype":"I32","shape":[2,2],"data_offsets":[0,16]}}   '
             b" \x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00")


def test_reference_serialization_torch(st, tmp_path):
    data = torch.zeros((2, 2), dtype=torch.int32)
    assert st.torch.save({"test": data}) == I32_ZEROS
    st.torch.save_file({"test": data}, tmp_path / "s.safetensors")
    assert (tmp_path / "s.safetensors").read_bytes() == I32_ZEROS
    data[1, 1] = 1
    assert st.torch.save({"test": data}) == I32_ZEROS[:-4] + b"\x01\x00\x00\x00"
    data = torch.ones((2, 2), dtype=torch.bfloat16)
    data[0, 0] = 2.25
    assert st.torch.save({"test": data}) == (
        b'@\x00\x00\x00\x00\x00\x00\x00{"test":{"dtype":"BF16","shape":[2,2],"data_offsets":[0,8]}}    \x10@\x80?\x80?\x80?')
    assert st.torch.save({"test": torch.zeros((2, 2), dtype=torch.float32)}) == I32_ZEROS.replace(b"I32", b"F32")


def test_reference_serialization_numpy(st):
    data = np.zeros((2, 2), dtype=np.int32)
    assert st.numpy.save({"test": data}) == I32_ZEROS
    data2 = np.zeros((2, 2), dtype=np.float16)
    out1 = st.numpy.save({"test1": data, "test2": data2})
    out2 = st.numpy.save({"test2": data2, "test1": data})
    assert out1 == out2 == (
        b'\x80\x00\x00\x00\x00\x00\x00\x00{"test1":{"dtype":"I32","shape":[2,2],"data_offsets":[0,16]},"test2":{"dtype":"F16","shape":[2,2],"data_offsets":[16,24]}}'
        b"      " + b"\x00" * 24)
    out = st.numpy.save({"test1": data}, metadata={"framework": "pt"})
    assert out == (b'`\x00\x00\x00\x00\x00\x00\x00{"__metadata__":{"framework":"pt"},"test1":{"dtype":"I32","shape":[2,2],"data_offsets":[0,16]}}'
                   b" " + b"\x00" * 16)


def test_alignment_order(st):
    """The reference orders tensors by alignment (larger dtypes first), then name."""
    b = st.torch.save({"a": torch.zeros(3, dtype=torch.uint8), "b": torch.zeros(1, dtype=torch.float64),
                       "c": torch.zeros(1, dtype=torch.float16)})
    n = struct.unpack("<Q", b[:8])[0]
    assert b[8:8 + n].rstrip() == (b'{"b":{"dtype":"F64","shape":[1],"data_offsets":[0,8]},'
                                   b'"c":{"dtype":"F16","shape":[1],"data_offsets":[8,10]},'
                                   b'"a":{"dtype":"U8","shape":[3],"data_offsets":[10,13]}}')
    assert n % 8 == 0


# ----------------------------------------------------------------------------------------------
# Round trips
# ----------------------------------------------------------------------------------------------
def _torch_sample():
    g = torch.Generator().manual_seed(7)
    d = {
        "f32": torch.randn(3, 5, generator=g), "f64": torch.randn(4, generator=g, dtype=torch.float64),
        "f16": torch.randn(2, 3, generator=g).half(), "bf16": torch.randn(7, generator=g).bfloat16(),
        "i8": torch.randint(-128, 127, (9,), generator=g, dtype=torch.int8),
        "u8": torch.randint(0, 255, (2, 2, 2), generator=g, dtype=torch.uint8),
        "i16": torch.randint(-999, 999, (3,), generator=g, dtype=torch.int16),
        "i32": torch.randint(-99999, 99999, (3,), generator=g, dtype=torch.int32),
        "i64": torch.tensor([-2 ** 62, 2 ** 62 + 1, 0]), "bool": torch.tensor([True, False, True]),
        "c64": torch.tensor([1 - 1j, 0.5j], dtype=torch.complex64),
        "scalar": torch.tensor(3.0), "empty": torch.zeros(2, 0), "empty2": torch.zeros(0, dtype=torch.int16),
    }
    return d


def test_torch_round_trip(st, tmp_path):
    d = _torch_sample()
    md = {"format": "pt", "k": "v\u00e9"}
    path = tmp_path / "rt.safetensors"
    st.torch.save_file(d, path, md)
    for loaded in (st.torch.load_file(path), st.torch.load(path.read_bytes()),
                   st.torch.load(st.torch.save(d, metadata=md))):
        assert sorted(loaded) == sorted(d)
        for k, v in d.items():
            assert loaded[k].dtype == v.dtype and loaded[k].shape == v.shape, k
            assert torch.equal(loaded[k], v), k
    with st.safe_open(path, framework="pt") as f:
        assert f.metadata() == md


def test_numpy_round_trip(st, tmp_path):
    d = {k: v.numpy() for k, v in _torch_sample().items() if v.dtype != torch.bfloat16}
    d["u16"] = np.array([1, 65535], dtype=np.uint16)
    d["u32"] = np.array([[7, 2 ** 32 - 1]], dtype=np.uint32)
    d["u64"] = np.array([2 ** 64 - 1], dtype=np.uint64)
    d["fortran"] = np.asfortranarray(np.arange(6, dtype=np.float32).reshape(2, 3))
    path = tmp_path / "rt.safetensors"
    st.numpy.save_file(d, path)
    for loaded in (st.numpy.load_file(path), st.numpy.load(path.read_bytes()), st.numpy.load(st.numpy.save(d))):
        assert sorted(loaded) == sorted(d)
        for k, v in d.items():
            assert isinstance(loaded[k], np.ndarray)
            assert loaded[k].dtype == v.dtype and loaded[k].shape == v.shape, k
            assert np.array_equal(loaded[k], v), k


def test_torch_file_readable_by_numpy_and_back(st, tmp_path):
    path = tmp_path / "x.safetensors"
    st.torch.save_file({"a": torch.arange(6.0).reshape(2, 3)}, path)
    a = st.numpy.load_file(path)["a"]
    assert a.dtype == np.float32 and a.tolist() == [[0, 1, 2], [3, 4, 5]]


def test_save_file_pathlike_and_overwrite(st, tmp_path):
    path = tmp_path / "p.safetensors"
    path.write_bytes(b"x" * 10000)
    st.torch.save_file({"a": torch.ones(2)}, path)  # pathlib.Path, truncates what was there
    assert path.read_bytes() == st.torch.save({"a": torch.ones(2)})
    st.numpy.save_file({"a": np.ones(2, dtype=np.float32)}, os.fspath(path))
    assert path.read_bytes() == st.torch.save({"a": torch.ones(2)})


# ----------------------------------------------------------------------------------------------
# Input errors, as the reference raises them
# ----------------------------------------------------------------------------------------------
def test_non_contiguous_refused(st, tmp_path):
    x = torch.arange(6, dtype=torch.float32).reshape((1, 2, 3))[:, :, 1]
    assert not x.is_contiguous()
    with pytest.raises(ValueError):
        st.torch.save_file({"test": x}, tmp_path / "o.safetensors")
    with pytest.raises(ValueError):
        st.torch.save({"test": x})
    assert not (tmp_path / "o.safetensors").exists()


def test_shared_storage_refused(st, tmp_path):
    A = torch.arange(6, dtype=torch.float32).reshape((2, 3))
    for B in (A[:1], A[1:], A):
        with pytest.raises(RuntimeError):
            st.torch.save_file({"A": A, "B": B}, tmp_path / "o.safetensors")


def test_disjoint_shared_storage_accepted(st, tmp_path):
    A = torch.arange(100.0).reshape(10, 10)
    st.torch.save_file({"test": A[1:], "test2": A[:1]}, tmp_path / "o.safetensors")
    d = st.torch.load_file(tmp_path / "o.safetensors")
    assert torch.equal(d["test"], A[1:]) and torch.equal(d["test2"], A[:1])


def test_bogus_inputs(st, tmp_path):
    local = tmp_path / "o.safetensors"
    with pytest.raises(ValueError) as e:
        st.torch.save_file({"test": {"some": "thing"}}, local)
    assert str(e.value) == "Key `test` is invalid, expected torch.Tensor but received <class 'dict'>"
    with pytest.raises(ValueError) as e:
        st.torch.save_file("notadict", local)
    assert str(e.value) == "Expected a dict of [str, torch.Tensor] but received <class 'str'>"


def test_dtypes_the_format_lacks(st, tmp_path):
    """The reference's errors: torch's size table has no entry (KeyError); NumPy's dtype name is
    not one TensorSpec knows (SafetensorError). Nothing is written."""
    local = tmp_path / "o.safetensors"
    with pytest.raises(KeyError) as e:
        st.torch.save_file({"a": torch.zeros(2, dtype=torch.complex128)}, local)
    assert e.value.args == (torch.complex128,)
    with pytest.raises(st.SafetensorError) as e:
        st.numpy.save_file({"a": np.zeros(2, dtype=np.complex128)}, local)
    assert str(e.value).startswith('Unknown dtype "complex128". Supported dtypes: bool, int8, ')
    assert not local.exists()


def test_sparse_refused(st, tmp_path):
    with pytest.raises(ValueError) as e:
        st.torch.save_file({"test": torch.sparse_coo_tensor(size=(2, 3))}, tmp_path / "o.safetensors")
    assert str(e.value) == (
        "You are trying to save a sparse tensors: `['test']` which this library does not support. You can make it"
        " a dense tensor before saving with `.to_dense()` but be aware this might make a much larger file than"
        " needed.")


# ----------------------------------------------------------------------------------------------
# save_model / load_model (bindings/python/tests/test_pt_model.py)
# ----------------------------------------------------------------------------------------------
class OnesModel(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.a = torch.nn.Linear(4, 4)
        self.a.weight = torch.nn.Parameter(torch.ones((4, 4)))
        self.a.bias = torch.nn.Parameter(torch.ones((4,)))
        self.b = self.a


class Model(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.a = torch.nn.Linear(10, 10)
        self.b = self.a


class NonContiguousModel(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.a = torch.nn.Linear(10, 10)
        self.a.weight = torch.nn.Parameter(torch.arange(100.0).reshape(10, 10).transpose(0, 1))


class NoSharedModel(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.a = torch.nn.Linear(10, 10)
        self.b = torch.nn.Linear(10, 10)


def _same_state(m1, m2):
    s = m1.state_dict()
    for k, v in m2.state_dict().items():
        assert torch.equal(v, s[k]), k


def test_save_model_shared(st, tmp_path):
    p = tmp_path / "ones.safetensors"
    model = OnesModel()
    st.torch.save_model(model, p)
    with st.safe_open(p, framework="pt") as f:
        assert f.metadata() == {"b.bias": "a.bias", "b.weight": "a.weight"}
        assert f.keys() == ["a.bias", "a.weight"]
    assert p.read_bytes()[192:] == b"\x00\x00\x80?" * 20
    model2 = OnesModel()
    with torch.no_grad():
        model2.a.weight.zero_()
    missing, unexpected = st.torch.load_model(model2, p)
    assert len(missing) == 0 and unexpected == []
    _same_state(model, model2)
    assert model2.a.weight.data_ptr() == model2.b.weight.data_ptr()


def test_save_model_plain_save_file_refuses(st, tmp_path):
    with pytest.raises(RuntimeError):
        st.torch.save_file(Model().state_dict(), tmp_path / "m.safetensors")


def test_load_model_other_names_on_file(st, tmp_path):
    model = Model()
    sd = model.state_dict()
    sd.pop("a.weight")
    sd.pop("a.bias")
    st.torch.save_file(sd, tmp_path / "m.safetensors")
    model2 = Model()
    st.torch.load_model(model2, str(tmp_path / "m.safetensors"))
    _same_state(model, model2)


def test_save_model_non_contiguous(st, tmp_path):
    model = NonContiguousModel()
    with pytest.raises(ValueError) as e:
        st.torch.save_model(model, tmp_path / "c.safetensors", force_contiguous=False)
    assert "use save_model(..., force_contiguous=True)" in str(e.value)
    st.torch.save_model(model, tmp_path / "c.safetensors")  # force_contiguous=True by default, as in 0.8
    model2 = NonContiguousModel()
    with torch.no_grad():
        model2.a.weight.zero_()
    st.torch.load_model(model2, tmp_path / "c.safetensors")
    _same_state(model, model2)


def test_load_model_strict_and_not(st, tmp_path):
    p = tmp_path / "m.safetensors"
    st.torch.save_model(Model(), p)
    model2 = NoSharedModel()
    with pytest.raises(RuntimeError) as e:
        st.torch.load_model(model2, p)
    assert 'Missing key(s) in state_dict: "b.bias", "b.weight"' in str(e.value)
    missing, unexpected = st.torch.load_model(model2, p, strict=False)
    assert sorted(missing) == ["b.bias", "b.weight"] and unexpected == []

    p3 = tmp_path / "m3.safetensors"
    st.torch.save_model(NoSharedModel(), p3)
    with pytest.raises(RuntimeError) as e:
        st.torch.load_model(Model(), p3)
    assert 'Unexpected key(s) in state_dict: "b.bias", "b.weight"' in str(e.value)


def test_metadata_must_be_strings(st, tmp_path):
    for md in ({"a": 1}, {1: "a"}, {"a": None}):
        with pytest.raises(TypeError):
            st.torch.save_file({"a": torch.zeros(1)}, tmp_path / "m.safetensors", metadata=md)
        with pytest.raises(TypeError):
            st.numpy.save({"a": np.zeros(1)}, metadata=md)


def test_unicode_names_order(st):
    """Names sort by their UTF-8 bytes within a dtype, as the reference's BTreeMap/sort does."""
    d = {"\u00e9": torch.zeros(1), "z": torch.zeros(1), "A": torch.zeros(1), "\u4e2d": torch.zeros(1)}
    b = st.torch.save(d)
    n = struct.unpack("<Q", b[:8])[0]
    import json
    order = sorted(json.loads(b[8:8 + n]), key=lambda k: json.loads(b[8:8 + n])[k]["data_offsets"][0])
    assert order == ["A", "z", "\u00e9", "\u4e2d"]
    assert {k: v.tolist() for k, v in st.torch.load(b).items()} == {k: [0.0] for k in d}


def test_reference_numpy_extras(st, tmp_path):
    """test_simple.py: a 0-d bool, a big-endian array (written little-endian), order invariance."""
    for tensors in ({"a": np.asarray(False)}, {"a": np.asarray(True), "b": np.float64(2.5) * np.ones(())}):
        p = tmp_path / "b.safetensors"
        st.numpy.save_file(tensors, p)
        for loaded in (st.numpy.load_file(p), st.numpy.load(st.numpy.save(tensors))):
            for k, v in tensors.items():
                assert loaded[k].shape == () and loaded[k].dtype == v.dtype and loaded[k] == v
    big = np.array([1, 2, -3], dtype=">i4")
    out = st.numpy.save({"test1": big}, metadata={"framework": "pt"})
    assert out == st.numpy.save({"test1": big.astype("<i4")}, metadata={"framework": "pt"})
    assert st.numpy.load(out)["test1"].tolist() == [1, 2, -3]
    data = np.zeros((2, 2), dtype=np.int32)
    assert st.numpy.save({"test1": data, "test2": data}) == st.numpy.save({"test2": data, "test1": data})


def test_torch_special_inputs(st, tmp_path):
    p = tmp_path / "s.safetensors"
    w = torch.nn.Parameter(torch.arange(6.0).reshape(2, 3))  # requires_grad
    st.torch.save_file({"w": w, "z": torch.zeros((2, 0)), "z2": torch.zeros((0, 4))}, p)
    d = st.torch.load_file(p)
    assert torch.equal(d["w"], w.detach()) and not d["w"].requires_grad
    assert d["z"].shape == (2, 0) and d["z2"].shape == (0, 4)
    assert list(st.torch.load(p.read_bytes())) == list(st.torch.load(p.read_bytes()))
    with pytest.raises(RuntimeError) as e:
        st.torch.save_file({"test": torch.zeros((10, 10), device=torch.device("meta"))}, tmp_path / "m.safetensors")
    assert "meta" in str(e.value)
