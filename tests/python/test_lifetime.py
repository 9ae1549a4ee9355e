"""Lifetime and privacy of returned tensors: a tensor outlives its closed, garbage-collected file
object; tensors are writable and writes never reach the file.  (Whether two reads of one tensor
from one open file share memory is left open: the reference's torch path returns views of one
private mapping, its numpy path copies.)"""
import gc
import os
import weakref

import pytest
import torch

from conftest import VALID, VALID_MANIFEST, file_sha256, sha256, torch_bytes, write_plain

LORA = VALID / "lora_metadata.safetensors"
BIG = "big_f32_64x64"
ALL = VALID / "all_dtypes.safetensors"


def _expected(name):
    return VALID_MANIFEST["all_dtypes.safetensors"]["tensors"][name]


def test_tensor_outlives_closed_collected_file(st):
    f = st.safe_open(ALL, framework="pt")
    ref = weakref.ref(f)
    with f:
        t = f.get_tensor(BIG)
        s = f.get_tensor("special_bfloat16")
    del f
    gc.collect()
    assert ref() is None, "the file object is still referenced"
    # allocate and free a lot so freed memory would be reused
    junk = [bytearray(1 << 16) for _ in range(64)]
    del junk
    assert sha256(torch_bytes(t)) == _expected(BIG)["sha256"]
    assert sha256(torch_bytes(s)) == _expected("special_bfloat16")["sha256"]
    assert float(t.sum()) == float(t.clone().sum())


@pytest.mark.parametrize("framework", ["pt", "np"])
def test_tensor_outlives_file_without_with(st, framework):
    def read():
        f = st.safe_open(str(ALL), framework=framework)
        return f.get_tensor(BIG), weakref.ref(f)

    t, ref = read()
    gc.collect()
    assert ref() is None
    raw = torch_bytes(t) if framework == "pt" else t.tobytes()
    assert sha256(raw) == _expected(BIG)["sha256"]


def test_load_file_tensors_survive(st):
    d = st.torch.load_file(ALL.as_posix().replace("all_dtypes", "lora_metadata"))
    gc.collect()
    m = VALID_MANIFEST["lora_metadata.safetensors"]["tensors"]
    for k, t in d.items():
        assert sha256(torch_bytes(t)) == m[k]["sha256"]


@pytest.mark.parametrize("framework", ["pt", "np"])
def test_writes_do_not_reach_the_file(st, tmp_path, framework):
    path = tmp_path / "w.safetensors"
    write_plain(path, {"a": torch.arange(1000, dtype=torch.float32), "b": torch.ones(3, 3, dtype=torch.int64)})
    before = file_sha256(path)
    with st.safe_open(path, framework=framework) as f:
        a = f.get_tensor("a")
        b = f.get_tensor("b")
        if framework == "np":
            assert a.flags.writeable and b.flags.writeable
        a[:] = -1
        b[1, 1] = 99
        sl = f.get_slice("a")[10:20]
        sl[0] = 7
        assert a[5] == -1.0 and b[1, 1] == 99 and sl[0] == 7
    del a, b, sl, f
    gc.collect()
    assert file_sha256(path) == before
    with st.safe_open(path, framework=framework) as f:
        assert f.get_tensor("a")[5] == 5.0
        assert f.get_tensor("b")[1, 1] == 1


def test_load_file_writes_do_not_reach_the_file(st, tmp_path):
    path = tmp_path / "w.safetensors"
    write_plain(path, {"a": torch.arange(4096, dtype=torch.float32).reshape(64, 64)})
    before = file_sha256(path)
    for load in (st.torch.load_file, st.numpy.load_file):
        d = load(path)
        d["a"][3] = 0
        d["a"] *= 2
        del d
        gc.collect()
        assert file_sha256(path) == before


def test_tensor_independent_of_file_replaced_on_disk(st, tmp_path):
    """The file is replaced (new inode, as editors and writers do); a tensor already read keeps
    the values it had."""
    path = tmp_path / "r.safetensors"
    write_plain(path, {"a": torch.full((256,), 3.0)})
    with st.safe_open(path, framework="pt") as f:
        t = f.get_tensor("a")
    tmp = tmp_path / "r2.safetensors"
    write_plain(tmp, {"a": torch.full((256,), 9.0)})
    os.replace(tmp, path)
    gc.collect()
    assert bool((t == 3.0).all())
    assert bool((st.torch.load_file(path)["a"] == 9.0).all())


def test_file_object_closed_after_with(st):
    with st.safe_open(ALL, framework="pt") as f:
        pass
    with pytest.raises(st.SafetensorError):
        f.keys()
    with pytest.raises(st.SafetensorError):
        f.get_tensor(BIG)


def test_no_read_only_buffer_warning(st, tmp_path):
    """torch warns when it wraps memory it cannot write; returned tensors must be writable."""
    import warnings

    path = write_plain(tmp_path / "w.safetensors", {"a": torch.arange(8.0)})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with st.safe_open(path, framework="pt") as f:
            t = f.get_tensor("a")
            s = f.get_slice("a")[2:4]
        d = st.torch.load_file(path)
        b = st.torch.load(path.read_bytes())
    for x in (t, s, d["a"], b["a"]):
        x.add_(1)


@pytest.mark.parametrize("framework", ["pt", "np"])
def test_load_bytes_outlives_its_input(st, framework):
    mod = st.torch if framework == "pt" else st.numpy
    data = bytearray((VALID / "single_special_float32.safetensors").read_bytes())
    d = mod.load(bytes(data))
    del data
    gc.collect()
    junk = [bytearray(1 << 16) for _ in range(64)]
    del junk
    raw = torch_bytes(d["special_float32"]) if framework == "pt" else d["special_float32"].tobytes()
    assert sha256(raw) == VALID_MANIFEST["single_special_float32.safetensors"]["tensors"]["special_float32"]["sha256"]
    d["special_float32"][0] = 1  # writable


def _maps_and_fds():
    with open("/proc/self/maps") as f:
        maps = sum(1 for _ in f)
    return maps, len(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not os.path.exists("/proc/self/maps"), reason="needs /proc")
def test_no_mapping_or_descriptor_leak(st, tmp_path):
    path = write_plain(tmp_path / "leak.safetensors", {"a": torch.arange(5000.0), "b": torch.ones(7, dtype=torch.int8)})
    for _ in range(3):  # warm up lazily created state
        with st.safe_open(path, framework="pt") as f:
            f.get_tensor("a")
    gc.collect()
    before = _maps_and_fds()
    for i in range(200):
        with st.safe_open(path, framework="pt" if i % 2 else "np") as f:
            t = f.get_tensor("a")
            s = f.get_slice("a")[10:20]
        d = st.torch.load_file(path)
        del t, s, d, f
    gc.collect()
    after = _maps_and_fds()
    assert after[0] - before[0] < 20, ("mappings leak", before, after)
    assert after[1] - before[1] < 5, ("file descriptors leak", before, after)
