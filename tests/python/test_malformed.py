"""Malformed fixtures: safe_open(framework="pt") accepts what the reference accepted (same keys,
metadata, dtypes, shapes and bytes) and raises SafetensorError, when the file is opened, where the
reference refused the header.  Documented deviation (README, "Deliberate deviations from the
reference"): a tensor name given twice is refused, where the reference keeps the last entry."""
import numpy as np
import pytest
import torch

from conftest import MALFORMED, VERDICTS, expect_missing_dtype, sha256, torch_bytes, torch_dtype

DEVIATIONS = {"duplicate_key", "duplicate_key_different"}
NAMES = sorted(VERDICTS)


# the fixture set this suite was written against (checked at collection)
assert len(NAMES) == 56
assert sum(v["safe_open"]["ok"] for v in VERDICTS.values()) == 15
assert sum(v["deserialize"]["ok"] for v in VERDICTS.values()) == 16


@pytest.mark.parametrize("name", NAMES)
def test_malformed_verdict(st, name):
    path = str(MALFORMED / (name + ".safetensors"))
    verdict = VERDICTS[name]["safe_open"]
    if name in DEVIATIONS:
        assert verdict["ok"]
        with pytest.raises(st.SafetensorError, match="duplicate"):
            st.safe_open(path, framework="pt")
        return
    if not verdict["ok"] and verdict["error"].startswith("SafetensorError: Error while deserializing header"):
        # the reference refuses these when the file is opened, before any tensor is read
        with pytest.raises(st.SafetensorError) as e:
            st.safe_open(path, framework="pt")
        assert str(e.value)
        return
    with st.safe_open(path, framework="pt") as f:
        if not verdict["ok"]:
            # a dtype the reference cannot give to torch (F6_E2M3): refused at get_tensor
            assert verdict["error"] == "SafetensorError: Dtype not understood: F6_E2M3"
            assert f.keys() == ["t"]
            with pytest.raises(st.SafetensorError, match="F6_E2M3"):
                f.get_tensor("t")
            return
        assert f.keys() == verdict["keys"]
        assert f.metadata() == verdict["metadata"]
        expected = VERDICTS[name]["deserialize"]["tensors"]
        for k in f.keys():
            st_dtype, shape, digest = expected[k]
            if torch_dtype(st_dtype) is None or (st_dtype == "F4" and not hasattr(torch, "float4_e2m1fn_x2")):
                types, text = expect_missing_dtype(st_dtype, "pt")
                with pytest.raises(types, match=text):
                    f.get_tensor(k)
                continue
            t = f.get_tensor(k)
            tdtype, tshape, tdigest = verdict["tensors"][k]
            assert str(t.dtype) == tdtype
            assert list(t.shape) == tshape
            assert sha256(torch_bytes(t)) == tdigest == digest


@pytest.mark.parametrize("name", [n for n in NAMES if VERDICTS[n]["deserialize"]["ok"] and n not in DEVIATIONS])
def test_accepted_files_through_numpy(st, name):
    """Files the format accepts, read with framework="np": same bytes where numpy has the dtype."""
    expected = VERDICTS[name]["deserialize"]["tensors"]
    with st.safe_open(MALFORMED / (name + ".safetensors"), framework="np") as f:
        assert f.keys() == sorted(expected)
        for k, (st_dtype, shape, digest) in expected.items():
            assert f.get_slice(k).get_dtype() == st_dtype
            assert f.get_slice(k).get_shape() == shape
            if st_dtype in ("F4", "F6_E2M3", "F6_E3M2", "F8_E8M0", "F8_E4M3", "F8_E5M2", "BF16"):
                continue
            a = f.get_tensor(k)
            assert isinstance(a, np.ndarray) and list(a.shape) == shape
            assert sha256(a.tobytes()) == digest


@pytest.mark.parametrize("name", ["header_len_huge", "file_empty", "offsets_reversed", "comment_in_json"])
def test_malformed_through_load_file(st, name):
    path = MALFORMED / (name + ".safetensors")
    with pytest.raises(st.SafetensorError):
        st.torch.load_file(path)
    with pytest.raises(st.SafetensorError):
        st.numpy.load_file(path)
    with pytest.raises(st.SafetensorError):
        st.torch.load(path.read_bytes())
    with pytest.raises(st.SafetensorError):
        st.numpy.load(path.read_bytes())
