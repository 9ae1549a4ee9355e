"""Errors: the reference's exception types and messages for missing files, unknown frameworks,
devices and tensor names; SafetensorError carries the C++ message; a CUDA device without CUDA
gives a clear error."""
import pickle

import numpy as np
import pytest
import torch

from conftest import MALFORMED, VALID, write_plain

F32 = VALID / "single_special_float32.safetensors"


@pytest.mark.parametrize("how", ["safe_open", "torch.load_file", "numpy.load_file"])
def test_missing_file(st, tmp_path, how):
    missing = tmp_path / "notafile.safetensors"
    with pytest.raises(FileNotFoundError) as e:
        if how == "safe_open":
            with st.safe_open(str(missing), framework="pt"):
                pass
        elif how == "torch.load_file":
            st.torch.load_file(missing)
        else:
            st.numpy.load_file(str(missing))
    assert str(e.value) == f"No such file or directory: {missing}"  # the reference's words
    assert isinstance(e.value, st.SafetensorError) and e.value.path == str(missing)


def test_missing_shard_names_the_shard(st, tmp_path):
    index = tmp_path / "model.safetensors.index.json"
    index.write_text('{"metadata": {}, "weight_map": {"a": "model-00001-of-00001.safetensors"}}')
    with st.safe_open(index, framework="pt") as f:  # shards open when first used
        with pytest.raises(st.SafetensorError) as e:
            f.get_tensor("a")
    assert 'missing shard "model-00001-of-00001.safetensors"' in str(e.value)


def test_safetensor_error_type(st):
    assert issubclass(st.SafetensorError, Exception)
    assert st.SafetensorError.__name__ == "SafetensorError"
    with pytest.raises(st.SafetensorError) as e:
        st.safe_open(MALFORMED / "header_len_huge.safetensors", framework="pt")
    msg = str(e.value)
    assert "header" in msg and "large" in msg, msg
    e2 = pickle.loads(pickle.dumps(e.value))
    assert type(e2) is st.SafetensorError and str(e2) == msg


def test_safetensor_error_names_the_problem(st):
    cases = {
        "overlap": "offset",
        "header_invalid_utf8": "UTF-8",
        "metadata_value_number": "metadata",
        "missing_shape": "shape",
        "lowercase_dtype": "f32",
        "file_7_bytes": "small",
    }
    for name, part in cases.items():
        with pytest.raises(st.SafetensorError) as e:
            st.safe_open(str(MALFORMED / (name + ".safetensors")), framework="np")
        assert part.lower() in str(e.value).lower(), (name, str(e.value))


@pytest.mark.parametrize("framework", ["tf2", "", "PT", "jaxx"])
def test_unknown_framework(st, framework):
    with pytest.raises(st.SafetensorError) as e:
        st.safe_open(F32, framework=framework)
    assert str(e.value) == "framework %s is invalid" % framework


@pytest.mark.parametrize("framework", ["pt", "np"])
def test_missing_tensor(st, framework):
    with st.safe_open(F32, framework=framework) as f:
        # the reference says "File does not contain tensor nope"; here the C++ message, naming it
        with pytest.raises(st.SafetensorError, match="nope"):
            f.get_tensor("nope")
        with pytest.raises(st.SafetensorError, match="nope"):
            f.get_slice("nope")


@pytest.mark.parametrize("device", ["gpu", "cuda:0:1", "tpu:0"])
def test_invalid_device(st, device):
    with pytest.raises(st.SafetensorError) as e:
        with st.safe_open(F32, framework="pt", device=device) as f:
            f.get_tensor("special_float32")
    assert "device" in str(e.value).lower()


def test_device_for_numpy_refused(st):
    with pytest.raises(st.SafetensorError) as e:
        st.safe_open(F32, framework="np", device="cuda:0")
    assert str(e.value) == "Device cuda:0 is not supported for framework numpy"  # 0.8's words
    for device, shown in ((0, "0"), ("cuda", "cuda:0"), ("mps", "mps"), ("npu", "npu:0"), ("xpu:1", "xpu:1")):
        with pytest.raises(st.SafetensorError) as e:
            st.safe_open(F32, framework="numpy", device=device)
        assert str(e.value) == f"Device {shown} is not supported for framework numpy"


def test_other_devices_spelled_as_the_reference(st):
    with pytest.raises(st.SafetensorError) as e:
        st.safe_open(F32, framework="pt", device="mps:1")
    assert str(e.value) == "device mps:1 is invalid: only mps or mps:0 is supported"
    for device in ("npu:0:1", "xpu:a", "musa:"):
        with pytest.raises(st.SafetensorError) as e:
            st.safe_open(F32, framework="pt", device=device)
        assert str(e.value) == f"device {device} is invalid"


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
@pytest.mark.parametrize("device", ["cuda", "cuda:0", 0, "cuda:1"])
def test_cuda_without_cuda_is_a_clear_error(st, device):
    with pytest.raises(Exception) as e:
        with st.safe_open(F32, framework="pt", device=device) as f:
            f.get_tensor("special_float32")
    assert "cuda" in str(e.value).lower(), str(e.value)
    with pytest.raises(Exception) as e:
        st.torch.load_file(F32, device=device)
    assert "cuda" in str(e.value).lower(), str(e.value)


def test_cpu_device_spellings(st):
    for device in ("cpu", None):
        kwargs = {} if device is None else {"device": device}
        with st.safe_open(F32, framework="pt", **kwargs) as f:
            assert f.get_tensor("special_float32").device == torch.device("cpu")
        assert st.torch.load_file(F32, **kwargs)["special_float32"].device == torch.device("cpu")


def test_load_garbage_bytes(st):
    for load in (st.torch.load, st.numpy.load):
        with pytest.raises(st.SafetensorError):
            load(b"\x10\x00\x00\x00\x00\x00\x00")
        with pytest.raises(st.SafetensorError):
            load(b"")


def test_save_into_missing_directory(st, tmp_path):
    with pytest.raises((OSError, st.SafetensorError)):
        st.torch.save_file({"a": torch.zeros(2)}, tmp_path / "no" / "such" / "dir.safetensors")
    with pytest.raises((OSError, st.SafetensorError)):
        st.numpy.save_file({"a": np.zeros(2)}, str(tmp_path / "no" / "dir.safetensors"))


def test_truncated_after_header_check(st, tmp_path):
    """A file whose data section is shorter than the header says: refused at open."""
    path = write_plain(tmp_path / "t.safetensors", {"a": torch.arange(100.0)})
    b = path.read_bytes()
    path.write_bytes(b[:-4])
    with pytest.raises(st.SafetensorError):
        st.safe_open(path, framework="pt")


def test_error_codes(st, tmp_path):
    """SafetensorError carries the C++ errc as .code (include/safetensors/error.hpp)."""
    codes = {"file_7_bytes": 200, "header_len_huge": 201, "header_len_beyond_file": 202,
             "header_invalid_utf8": 203, "trailing_comma": 204, "header_not_object_array": 206,
             "metadata_value_number": 207, "missing_shape": 209, "lowercase_dtype": 210,
             "duplicate_key": 211, "overlap": 212, "shape_product_overflow": 213,
             "size_mismatch_short": 215, "trailing_bytes_after_data": 216}
    for name, code in codes.items():
        with pytest.raises(st.SafetensorError) as e:
            st.safe_open(MALFORMED / (name + ".safetensors"), framework="pt")
        assert e.value.code == code, (name, e.value.code, str(e.value))
    with st.safe_open(F32, framework="pt") as f:
        with pytest.raises(st.SafetensorError) as e:
            f.get_tensor("nope")
        assert e.value.code == 300


def test_directory_without_checkpoint(st, tmp_path):
    (tmp_path / "x.txt").write_text("not a checkpoint")
    with pytest.raises((OSError, st.SafetensorError)) as e:
        st.safe_open(tmp_path, framework="pt")
    assert str(tmp_path) in str(e.value)
    with pytest.raises((OSError, st.SafetensorError)):
        st.torch.load_file(tmp_path)


def test_arguments_of_the_wrong_type_raise_typeerror_in_pyo3_words(st, tmp_path):
    # The reference converts its arguments with PyO3, which raises TypeError naming the argument.
    path = tmp_path / "a.safetensors"
    st.torch.save_file({"a": torch.zeros(2)}, path)
    with st.safe_open(path, framework="pt") as f:
        for call in (f.get_tensor, f.get_slice):
            with pytest.raises(TypeError) as e:
                call(0)
            assert str(e.value) == "argument 'name': 'int' object cannot be converted to 'PyString'"
    cases = [
        (lambda: st.torch.save_file({1: torch.zeros(2)}, path), "argument 'tensor_dict': 'int' object cannot be converted to 'PyString'"),
        (lambda: st.serialize({"a": [1]}), "argument 'tensor_dict': 'list' object cannot be converted to 'TensorSpec'"),
        (lambda: st.serialize([]), "argument 'tensor_dict': 'list' object cannot be converted to 'PyDict'"),
        (lambda: st.torch.save({"a": torch.zeros(2)}, metadata={"k": 1}), "argument 'metadata': 'int' object cannot be converted to 'PyString'"),
    ]
    for call, message in cases:
        with pytest.raises(TypeError) as e:
            call()
        assert str(e.value) == message
    with pytest.raises(TypeError) as e:
        st.numpy.save({2: np.zeros(2)})
    assert str(e.value) == "argument 'tensor_dict': 'int' object cannot be converted to 'PyString'"
