"""Every reference fixture read through safe_open / load_file equals the reference's manifest:
keys (sorted), offset_keys (file order), metadata, and per tensor the dtype, shape, SHA-256 of
the raw bytes and the decoded values; dtypes this torch / numpy lacks raise the reference's error."""
import json

import numpy as np
import pytest
import torch

from conftest import (MODEL, MODEL_MANIFEST, VALID, VALID_FILES, VALID_MANIFEST, assert_values,
                      expect_missing_dtype, np_bytes, np_values, numpy_dtype, sha256, torch_bytes,
                      torch_dtype, torch_values)

FRAMEWORKS = ["pt", "np"]


def _available(st_dtype, framework):
    if framework == "pt":
        return torch_dtype(st_dtype) is not None and st_dtype != "F4"
    return numpy_dtype(st_dtype) is not None


def check_tensor(t, info, framework, with_values=True):
    if framework == "pt":
        assert isinstance(t, torch.Tensor)
        assert t.dtype == torch_dtype(info["dtype"])
        assert t.device.type == "cpu"
        raw, values = torch_bytes(t), (torch_values(t) if with_values else None)
    else:
        assert isinstance(t, np.ndarray)
        assert t.dtype == np.dtype(numpy_dtype(info["dtype"]))
        raw, values = np_bytes(t), (np_values(t) if with_values else None)
    assert list(t.shape) == info["shape"]
    assert sha256(raw) == info["sha256"]
    if with_values and info.get("values") is not None:
        assert_values(values, info["values"])


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("name", VALID_FILES)
def test_valid_fixture_get_tensor(st, name, framework):
    m = VALID_MANIFEST[name]
    with st.safe_open(str(VALID / name), framework=framework) as f:
        keys = f.keys()
        assert isinstance(keys, list)
        assert keys == sorted(m["tensors"])
        assert f.offset_keys() == m["key_order_in_file"]
        assert f.metadata() == m["metadata"]
        for k, info in m["tensors"].items():
            if _available(info["dtype"], framework):
                check_tensor(f.get_tensor(k), info, framework)
            else:
                types, text = expect_missing_dtype(info["dtype"], framework)
                with pytest.raises(types, match=text):
                    f.get_tensor(k)


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("name", VALID_FILES)
def test_valid_fixture_get_slice(st, name, framework):
    """get_slice of every tensor: shape and dtype name (any dtype), and [...] / [:] give the whole
    tensor's bytes where the framework has the dtype."""
    m = VALID_MANIFEST[name]
    with st.safe_open(VALID / name, framework=framework) as f:
        for k, info in m["tensors"].items():
            s = f.get_slice(k)
            assert s.get_shape() == info["shape"]
            assert isinstance(s.get_shape(), list)
            assert s.get_dtype() == info["dtype"]
            if not _available(info["dtype"], framework):
                continue
            check_tensor(s[...], info, framework)
            if info["shape"]:
                check_tensor(s[:], info, framework)


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("name", VALID_FILES)
def test_valid_fixture_load_file(st, name, framework):
    m = VALID_MANIFEST[name]
    load_file = st.torch.load_file if framework == "pt" else st.numpy.load_file
    if all(_available(i["dtype"], framework) for i in m["tensors"].values()):
        d = load_file(str(VALID / name))
        assert isinstance(d, dict)
        assert sorted(d) == sorted(m["tensors"])
        for k, info in m["tensors"].items():
            check_tensor(d[k], info, framework)
    else:
        missing = sorted(i["dtype"] for i in m["tensors"].values() if not _available(i["dtype"], framework))
        types = tuple({t for dt in missing for t in expect_missing_dtype(dt, framework)[0]})
        with pytest.raises(types):
            load_file(str(VALID / name))


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_valid_fixture_load_bytes(st, framework):
    """torch.load / numpy.load of a file's bytes give the same tensors."""
    name = "slicing.safetensors" if framework == "pt" else "complex64.safetensors"
    m = VALID_MANIFEST[name]
    load = st.torch.load if framework == "pt" else st.numpy.load
    d = load((VALID / name).read_bytes())
    assert sorted(d) == sorted(m["tensors"])
    for k, info in m["tensors"].items():
        check_tensor(d[k], info, framework)


def test_f4_fixture(st):
    """F4: torch's float4_e2m1fn_x2 [2,2] is written as F4 [2,4]."""
    header = json.loads(VALID_MANIFEST["f4.safetensors"]["header"])
    with st.safe_open(VALID / "f4.safetensors", framework="pt") as f:
        assert f.keys() == ["q"]
        s = f.get_slice("q")
        assert s.get_dtype() == "F4" == header["q"]["dtype"]
        assert s.get_shape() == [2, 4] == header["q"]["shape"]
        if torch_dtype("F4") is None:
            with pytest.raises(AttributeError, match="float4_e2m1fn_x2"):
                f.get_tensor("q")
        else:
            t = f.get_tensor("q")
            assert t.dtype == torch_dtype("F4") and list(t.shape) == [2, 2]
            assert torch_bytes(t.view(torch.uint8)) == bytes([0x12, 0x34, 0xF0, 0x0F])


def test_fnuz_fixture(st):
    expected = json.loads((VALID / "fnuz_manifest.json").read_text())
    with st.safe_open(VALID / "fnuz.safetensors", framework="pt") as f:
        assert f.keys() == sorted(expected)
        assert f.offset_keys() == ["float8_e5m2fnuz", "float8_e4m3fnuz"]
        for name, e in expected.items():
            st_dtype = "F8_E4M3FNUZ" if "e4m3" in name else "F8_E5M2FNUZ"
            assert f.get_slice(name).get_dtype() == st_dtype
            assert f.get_slice(name).get_shape() == [12]
            if torch_dtype(st_dtype) is None:
                with pytest.raises(AttributeError, match=name):
                    f.get_tensor(name)
            else:
                t = f.get_tensor(name)
                assert t.view(torch.uint8).numpy().tobytes().hex() == e["bytes_hex"]
                assert_values(torch_values(t), e["values"])


MODEL_FILES = sorted(MODEL_MANIFEST)


@pytest.mark.parametrize("name", MODEL_FILES)
def test_model_fixture(st, name):
    m = MODEL_MANIFEST[name]
    with st.safe_open(MODEL / name, framework="pt") as f:
        assert f.keys() == sorted(m["tensors"])
        assert f.offset_keys() == m["key_order_in_file"]
        assert f.metadata() == m["metadata"] == {"format": "pt"}
        for k, info in m["tensors"].items():
            check_tensor(f.get_tensor(k), info, "pt", with_values=False)


@pytest.mark.parametrize("framework", ["pt", "torch", "np", "numpy"])
def test_framework_aliases(st, framework):
    info = VALID_MANIFEST["single_special_float32.safetensors"]["tensors"]["special_float32"]
    with st.safe_open(VALID / "single_special_float32.safetensors", framework) as f:
        t = f.get_tensor("special_float32")
    check_tensor(t, info, "pt" if framework in ("pt", "torch") else "np")


def test_many_tensors_every_tensor(st):
    """600 tensors with long names: bytes of each one, through get_tensor and load_file."""
    m = VALID_MANIFEST["many_tensors.safetensors"]
    path = VALID / "many_tensors.safetensors"
    loaded = st.torch.load_file(path)
    with st.safe_open(path, framework="pt") as f:
        assert len(f.keys()) == 600
        for k, info in m["tensors"].items():
            i = int(k.split(".")[2])
            t = f.get_tensor(k)
            assert sha256(torch_bytes(t)) == info["sha256"]
            assert torch.equal(loaded[k], t)
            assert t.dtype == (torch.float32 if i % 3 else torch.bfloat16)
            assert bool((t == float(i)).all())
