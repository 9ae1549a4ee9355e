"""A sharded checkpoint (its index file, or its folder) opens through safe_open like one file: a
documented extension beyond the reference."""
import json

import pytest

from conftest import MODEL, MODEL_MANIFEST, sha256, torch_bytes

SHARDED = MODEL / "gpt2_tiny_sharded"
INDEX = json.loads((SHARDED / "model.safetensors.index.json").read_text())


def _expected():
    out = {}
    for name, m in MODEL_MANIFEST.items():
        if name.startswith("gpt2_tiny_sharded/"):
            for k, info in m["tensors"].items():
                out[k] = (name.split("/")[1], info)
    return out


EXPECTED = _expected()


assert {k: v[0] for k, v in EXPECTED.items()} == INDEX["weight_map"]  # fixture check, at collection


@pytest.mark.parametrize("how", ["index", "index-str", "folder"])
def test_sharded_open(st, how):
    target = {"index": SHARDED / "model.safetensors.index.json",
              "index-str": str(SHARDED / "model.safetensors.index.json"), "folder": SHARDED}[how]
    with st.safe_open(target, framework="pt") as f:
        assert f.keys() == sorted(INDEX["weight_map"])
        assert sorted(f.offset_keys()) == sorted(INDEX["weight_map"])
        for k, (shard, info) in EXPECTED.items():
            t = f.get_tensor(k)
            assert list(t.shape) == info["shape"], k
            assert sha256(torch_bytes(t)) == info["sha256"], k
        w = f.get_tensor("transformer.wte.weight")
        s = f.get_slice("transformer.wte.weight")
        assert s.get_shape() == [300, 32] and s.get_dtype() == "F32"
        assert bool((s[10:20, ::3] == w[10:20, ::3]).all())
        with pytest.raises(st.SafetensorError):
            f.get_tensor("lm_head.weight")


def test_sharded_open_numpy(st):
    with st.safe_open(SHARDED, framework="np") as f:
        for k, (shard, info) in EXPECTED.items():
            assert sha256(f.get_tensor(k).tobytes()) == info["sha256"], k


def test_single_file_folder(st):
    m = MODEL_MANIFEST["gpt2_tiny/model.safetensors"]
    with st.safe_open(MODEL / "gpt2_tiny", framework="pt") as f:
        assert f.keys() == sorted(m["tensors"])
        for k, info in m["tensors"].items():
            assert sha256(torch_bytes(f.get_tensor(k))) == info["sha256"], k


def test_sharded_missing_shard(st, tmp_path):
    for p in SHARDED.iterdir():
        if p.name != "model-00003-of-00005.safetensors":
            (tmp_path / p.name).write_bytes(p.read_bytes())
    with st.safe_open(tmp_path, framework="pt") as f:
        assert f.keys() == sorted(INDEX["weight_map"])
        t = f.get_tensor("transformer.wte.weight")  # in a shard that is there
        assert list(t.shape) == [300, 32]
        missing = [k for k, v in INDEX["weight_map"].items() if v == "model-00003-of-00005.safetensors"]
        with pytest.raises((st.SafetensorError, FileNotFoundError)):
            f.get_tensor(missing[0])


@pytest.mark.parametrize("framework", ["pt", "np"])
def test_sharded_load_file(st, framework):
    mod = st.torch if framework == "pt" else st.numpy
    for target in (SHARDED, SHARDED / "model.safetensors.index.json"):
        d = mod.load_file(target)
        assert sorted(d) == sorted(INDEX["weight_map"])
        for k, (shard, info) in EXPECTED.items():
            raw = torch_bytes(d[k]) if framework == "pt" else d[k].tobytes()
            assert sha256(raw) == info["sha256"], k
