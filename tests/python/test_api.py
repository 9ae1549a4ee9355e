"""The reference package's API surface: names, keyword arguments, defaults and return types, so
that a program written against `safetensors` runs with only its import line changed."""
import importlib
import os
import pathlib
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import MODEL, VALID, VALID_MANIFEST, sha256, torch_bytes

F32 = VALID / "single_special_float32.safetensors"


def test_layout(st):
    assert isinstance(st.__version__, str) and st.__version__
    for name in ("safe_open", "SafetensorError", "torch", "numpy"):
        assert hasattr(st, name), name
    t = importlib.import_module("safetensors_hpp.torch")
    n = importlib.import_module("safetensors_hpp.numpy")
    for name in ("save", "save_file", "load", "load_file", "save_model", "load_model"):
        assert callable(getattr(t, name)), name
    for name in ("save", "save_file", "load", "load_file"):
        assert callable(getattr(n, name)), name
    from safetensors_hpp import SafetensorError, safe_open  # noqa: F401
    from safetensors_hpp.numpy import load_file as np_load_file  # noqa: F401
    from safetensors_hpp.torch import load_file, save_file  # noqa: F401


def test_reference_import_pattern(tmp_path):
    """The README of the reference, with only the import lines changed."""
    import safetensors_hpp as safetensors
    from safetensors_hpp import safe_open
    from safetensors_hpp.torch import load_file, save_file

    tensors = {"embedding": torch.zeros((2, 2)), "attention": torch.zeros((2, 3), dtype=torch.uint8)}
    save_file(tensors, str(tmp_path / "model.safetensors"))
    loaded = load_file(str(tmp_path / "model.safetensors"))
    assert all(torch.equal(loaded[k], v) for k, v in tensors.items())
    with safe_open(str(tmp_path / "model.safetensors"), framework="pt", device="cpu") as f:
        hidden = 1
        part = f.get_slice("embedding")[:, :hidden]
        assert list(part.shape) == [2, 1]
    assert issubclass(safetensors.SafetensorError, Exception)


def test_keyword_arguments(st, tmp_path):
    p = str(tmp_path / "k.safetensors")
    t = {"a": torch.arange(4.0)}
    assert st.torch.save_file(tensors=t, filename=p, metadata={"m": "1"}) is None
    b = st.torch.save(tensors=t, metadata={"m": "1"})
    assert b == Path(p).read_bytes()
    assert torch.equal(st.torch.load(data=b)["a"], t["a"])
    assert torch.equal(st.torch.load_file(filename=p, device="cpu")["a"], t["a"])
    with st.safe_open(filename=p, framework="pt", device="cpu") as f:
        assert f.metadata() == {"m": "1"}
    n = {"a": np.arange(4.0, dtype=np.float32)}
    assert st.numpy.save_file(tensor_dict=n, filename=p, metadata={"m": "1"}) is None
    assert st.numpy.save(tensor_dict=n, metadata={"m": "1"}) == b
    assert np.array_equal(st.numpy.load(data=b)["a"], n["a"])
    assert np.array_equal(st.numpy.load_file(filename=p)["a"], n["a"])
    m = torch.nn.Linear(2, 2)
    st.torch.save_model(model=m, filename=p, metadata={"x": "y"}, force_contiguous=True)
    missing, unexpected = st.torch.load_model(model=torch.nn.Linear(2, 2), filename=p, strict=True, device="cpu")
    assert not missing and unexpected == []  # the reference returns missing as a set


def test_positional_arguments(st, tmp_path):
    p = str(tmp_path / "k.safetensors")
    st.torch.save_file({"a": torch.ones(1)}, p, {"m": "2"})
    with st.safe_open(p, "pt", "cpu") as f:
        assert f.metadata() == {"m": "2"}
    st.numpy.save_file({"a": np.ones(1, dtype=np.float32)}, p, None)
    with st.safe_open(p, "np") as f:
        assert f.metadata() is None


def test_safe_open_types(st):
    m = VALID_MANIFEST["lora_metadata.safetensors"]
    path = VALID / "lora_metadata.safetensors"
    with st.safe_open(path, framework="pt") as f:
        assert isinstance(f, st.safe_open)
        assert type(f.keys()) is list and all(type(k) is str for k in f.keys())
        assert type(f.offset_keys()) is list
        md = f.metadata()
        assert type(md) is dict and md == m["metadata"]
        assert all(type(k) is str and type(v) is str for k, v in md.items())
        s = f.get_slice(f.keys()[0])
        assert type(s.get_shape()) is list and type(s.get_dtype()) is str
        t = f.get_tensor(f.keys()[0])
        assert type(t) is torch.Tensor or isinstance(t, torch.Tensor)
    with st.safe_open(VALID / "no_tensors.safetensors", framework="np") as f:
        assert f.keys() == [] and f.offset_keys() == [] and f.metadata() is None


def test_safe_open_without_context_manager(st):
    f = st.safe_open(F32, framework="pt")
    info = VALID_MANIFEST["single_special_float32.safetensors"]["tensors"]["special_float32"]
    assert sha256(torch_bytes(f.get_tensor("special_float32"))) == info["sha256"]


@pytest.mark.parametrize("kind", ["str", "Path", "PurePath", "fspath-object", "bytes-free"])
def test_pathlike_filenames(st, tmp_path, kind):
    class P(os.PathLike):
        def __init__(self, p):
            self.p = p

        def __fspath__(self):
            return str(self.p)

    target = tmp_path / ("dir \u00e9 x" if kind == "bytes-free" else "d") / "f.safetensors"
    target.parent.mkdir()
    wrap = {"str": str, "Path": pathlib.Path, "PurePath": pathlib.PurePath, "fspath-object": P,
            "bytes-free": str}[kind]
    t = {"a": torch.arange(3, dtype=torch.int32)}
    st.torch.save_file(t, wrap(target))
    assert torch.equal(st.torch.load_file(wrap(target))["a"], t["a"])
    with st.safe_open(wrap(target), framework="pt") as f:
        assert f.keys() == ["a"]
    st.numpy.save_file({"a": np.arange(3, dtype=np.int32)}, wrap(target))
    assert st.numpy.load_file(wrap(target))["a"].tolist() == [0, 1, 2]
    model = torch.nn.Linear(1, 1)
    st.torch.save_model(model, wrap(target))
    st.torch.load_model(torch.nn.Linear(1, 1), wrap(target))


def test_metadata_values(st, tmp_path):
    md = {"empty": "", "json": '{"a": [1, 2]}', "unicode \u4e2d": "\u2713 \"q\" \\ \n\t", "format": "pt"}
    p = tmp_path / "m.safetensors"
    st.torch.save_file({"a": torch.zeros(1)}, p, metadata=md)
    with st.safe_open(p, framework="np") as f:
        assert f.metadata() == md


def test_bf16_values_through_torch(st):
    with st.safe_open(VALID / "slicing.safetensors", framework="pt") as f:
        t = f.get_tensor("x_bf16")
        assert t.dtype == torch.bfloat16
        assert t.to(torch.float32).reshape(-1).tolist() == [float(i) for i in range(120)]


def test_returned_tensors_are_ordinary(st, tmp_path):
    """What programs do with loaded tensors: torch.save them, pickle, deepcopy, .numpy(), make them
    Parameters, load them into a model, share them between processes."""
    import copy
    import io
    import pickle

    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))
    p = tmp_path / "m.safetensors"
    st.torch.save_file(model.state_dict(), p)
    d = st.torch.load_file(p)
    for k, t in d.items():
        assert t.is_contiguous() and not t.requires_grad and t.device.type == "cpu"
        buf = io.BytesIO()
        torch.save(t, buf)
        buf.seek(0)
        assert torch.equal(torch.load(buf), t)
        assert torch.equal(pickle.loads(pickle.dumps(t)), t)
        assert torch.equal(copy.deepcopy(t), t)
        assert np.array_equal(t.numpy(), model.state_dict()[k].numpy())
        assert torch.equal(torch.nn.Parameter(t).data, t)
    model2 = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))
    model2.load_state_dict(d)
    x = torch.randn(5, 4)
    assert torch.equal(model(x), model2(x))
    with st.safe_open(p, framework="pt") as f:
        t = f.get_tensor("0.weight")
    t.share_memory_()
    assert torch.equal(t, model.state_dict()["0.weight"])
    a = st.numpy.load_file(p)["0.weight"]
    assert a.flags.c_contiguous and np.array_equal(pickle.loads(pickle.dumps(a)), a)


def test_metadata_is_a_fresh_dict(st):
    with st.safe_open(VALID / "no_tensors_with_metadata.safetensors", framework="pt") as f:
        md = f.metadata()
        md["a"] = "changed"
        assert f.metadata() == {"a": "b"}


def test_raw_serialize_deserialize(st):
    """The reference's raw functions, as its test_simple.py uses them."""
    zeros = (b'@\x00\x00\x00\x00\x00\x00\x00{"test":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}}    '
             + b"\x00" * 16)
    data = np.zeros(4, dtype=np.float32)
    spec = st.TensorSpec(dtype="float32", shape=[2, 2], data_ptr=data.ctypes.data, data_len=data.nbytes)
    assert st.serialize({"test": spec}) == zeros
    out = st.deserialize(zeros)
    assert out == [("test", {"shape": [2, 2], "dtype": "F32", "data": bytearray(16)})]
    assert isinstance(out[0][1]["data"], bytearray)
    with pytest.raises(st.SafetensorError):  # test_simple.py's test_exception
        st.TensorSpec(dtype="nonsense", shape=[1], data_ptr=0, data_len=0)
    with pytest.raises(TypeError):  # a dict is no TensorSpec
        st.serialize({"test": {"dtype": "float32", "shape": [1], "data_ptr": 0, "data_len": 0}})


# ---------------------------------------------------------------------------------------------
# What the reference added in 0.8: TensorSpec for serialize(), safe_open.get_tensors()
# ---------------------------------------------------------------------------------------------
def test_tensor_spec(st):
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    spec = st.TensorSpec(dtype="float32", shape=a.shape, data_ptr=a.ctypes.data, data_len=a.nbytes)
    assert (spec.dtype, spec.shape, spec.data_ptr, spec.data_len) == ("F32", [2, 3], a.ctypes.data, 24)
    assert repr(spec) == f"TensorSpec(dtype='F32', shape=[2, 3], data_ptr={a.ctypes.data}, data_len=24)"
    f4 = st.TensorSpec(dtype="float4_e2m1fn_x2", shape=torch.Size([2, 3]), data_ptr=0, data_len=0)
    assert (f4.dtype, f4.shape) == ("F4", [2, 6])  # torch's shape in, the header's out
    with pytest.raises(AttributeError):
        spec.dtype = "F64"
    with pytest.raises(TypeError):  # keyword-only, as the reference's
        st.TensorSpec("float32", [1], 0, 0)
    with pytest.raises(st.SafetensorError) as e:
        st.TensorSpec(dtype="F32", shape=[1], data_ptr=0, data_len=0)
    assert str(e.value) == (
        'Unknown dtype "F32". Supported dtypes: bool, int8, uint8, int16, uint16, int32, uint32, int64, uint64, '
        "float16, float32, float64, bfloat16, float8_e4m3fn, float8_e4m3fnuz, float8_e5m2, float8_e5m2fnuz, "
        "float8_e8m0fnu, float4_e2m1fn_x2, complex64"
    )
    with pytest.raises(OverflowError):
        st.TensorSpec(dtype="float32", shape=[-1], data_ptr=0, data_len=0)


def test_serialize_tensor_specs(st, tmp_path):
    """0.8's serialize: {name: TensorSpec}; the same bytes as save() of the same arrays."""
    arrays = {"a": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.array([True, False]),
              "c": np.array(7, dtype=np.int64)}
    specs = {k: st.TensorSpec(dtype=v.dtype.name, shape=v.shape, data_ptr=v.ctypes.data, data_len=v.nbytes)
             for k, v in arrays.items()}
    expected = st.numpy.save(arrays, metadata={"k": "v"})
    assert st.serialize(specs, metadata={"k": "v"}) == expected
    st.serialize_file(specs, tmp_path / "s.safetensors", metadata={"k": "v"})
    assert (tmp_path / "s.safetensors").read_bytes() == expected
    as_07 = {k: {"dtype": v.dtype.name, "shape": list(v.shape), "data_ptr": v.ctypes.data, "data_len": v.nbytes}
             for k, v in arrays.items()}  # 0.7's dicts of pointers: refused by 0.8, as here
    with pytest.raises(TypeError) as e:
        st.serialize(as_07)
    assert str(e.value) == "argument 'tensor_dict': 'dict' object cannot be converted to 'TensorSpec'"
    short = st.TensorSpec(dtype="float32", shape=[3, 3], data_ptr=arrays["a"].ctypes.data, data_len=24)
    with pytest.raises(st.SafetensorError) as e:
        st.serialize({"a": short})
    assert str(e.value) == 'tensor "a": 24 bytes given, but dtype F32 with shape [3, 3] needs 36'
    with pytest.raises(st.SafetensorError) as e:
        st.serialize({"a": st.TensorSpec(dtype="uint8", shape=[4], data_ptr=0, data_len=4)})
    assert str(e.value) == 'tensor "a": data_ptr is 0 for 4 bytes'


def test_flatten_helpers_make_tensor_specs(st):
    """The reference's own save paths: torch._flatten_as_ptr and numpy._flatten build TensorSpecs."""
    tensors = {"w": torch.arange(6, dtype=torch.bfloat16).reshape(2, 3), "f": torch.zeros(2, 4, dtype=torch.uint8)}
    if hasattr(torch, "float4_e2m1fn_x2"):
        tensors["f"] = tensors["f"].view(torch.float4_e2m1fn_x2)
    keep = []
    specs = st.torch._flatten_as_ptr(tensors, keep)
    assert specs["w"].dtype == "BF16" and specs["w"].shape == [2, 3] and len(keep) == 2
    assert st.serialize(specs) == st.torch.save(tensors)
    arrays = {"a": np.arange(12, dtype=">i4").reshape(3, 4)[:, ::2], "b": np.array([True])}
    specs = st.numpy._flatten(arrays, keep)
    assert specs["a"].dtype == "I32" and specs["b"].dtype == "BOOL"
    assert st.serialize(specs) == st.numpy.save(arrays)
    assert st.numpy._getdtype("C64") is np.complex64  # 0.8's table has it


@pytest.mark.parametrize("framework, path", [("pt", VALID / "many_tensors.safetensors"),
                                             ("np", MODEL / "gpt2_tiny" / "model.safetensors")])
def test_get_tensors(st, framework, path):
    """Every tensor in file order, each as get_tensor gives it; load_file is the same dict."""
    with st.safe_open(path, framework=framework) as f:
        got = f.get_tensors()
        assert list(got) == f.offset_keys()
        for key, value in got.items():
            one = f.get_tensor(key)
            assert value.dtype == one.dtype and tuple(value.shape) == tuple(one.shape), key
            assert bytes(_raw(value)) == bytes(_raw(one)), key
    loaded = (st.torch if framework == "pt" else st.numpy).load_file(path)
    assert list(loaded) == list(got)
    with pytest.raises(st.SafetensorError, match="File is closed"):
        f.get_tensors()


def _raw(value):
    return value.contiguous().view(torch.uint8).numpy() if isinstance(value, torch.Tensor) else value.view(np.uint8)


def test_safe_open_handle_over_a_file_object(st):
    with open(F32, "rb") as file:
        with st._safe_open_handle(file, framework="pt") as f:
            assert f.keys() == ["special_float32"]
            got = f.get_tensor("special_float32")
            assert bytes(_raw(got)) == bytes(_raw(st.torch.load_file(F32)["special_float32"]))
    with pytest.raises(AttributeError):
        st._safe_open_handle(str(F32), framework="pt")
