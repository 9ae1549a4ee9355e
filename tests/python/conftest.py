"""Shared helpers for the safetensors_hpp pytest suite.

Ground truth is tests/data/reference/ (files written and verdicts recorded by the official
`safetensors` 0.8.0 package; see its README.md).  Everything here reads those files with plain
Python (struct + json), never through the module under test, so a wrong module cannot make its
own expectations.

The module is imported from sys.path (CI sets PYTHONPATH to <build>/python); if it is missing the
suite fails at collection instead of being skipped.
"""
import ast
import hashlib
import json
import math
import os
import struct
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
# ctest passes SAFETENSORS_TEST_DATA_DIR (tests/data); the default is this checkout's copy.
REF = Path(os.environ.get("SAFETENSORS_TEST_DATA_DIR", ROOT / "tests" / "data")) / "reference"
VALID = REF / "valid"
MALFORMED = REF / "malformed"
MODEL = REF / "model"

VALID_MANIFEST = json.loads((VALID / "manifest.json").read_text())
MODEL_MANIFEST = json.loads((MODEL / "manifest.json").read_text())
VERDICTS = json.loads((MALFORMED / "verdicts.json").read_text())

# Files of the valid manifest that hold tensors described one by one (f4.safetensors only has a
# header and a file hash in the manifest).
VALID_FILES = sorted(k for k, v in VALID_MANIFEST.items() if "tensors" in v)


# ---------------------------------------------------------------------------------------------
# generate.py's own expressions (SLICES, SPECIALS), evaluated without importing generate.py
# (it imports the reference package at its top).
# ---------------------------------------------------------------------------------------------
def _generate_py_constant(name):
    tree = ast.parse((REF / "generate.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == name for t in node.targets):
            code = compile(ast.Expression(node.value), "generate.py", "eval")
            return eval(code, {"__builtins__": {}, "slice": slice, "Ellipsis": Ellipsis, "float": float})
    raise LookupError(name)


SLICES = _generate_py_constant("SLICES")
SPECIALS = _generate_py_constant("SPECIALS")


def slice_index(idx):
    """generate.py indexes with `idx if len(idx) > 1 else idx[0]`."""
    return idx if len(idx) > 1 else idx[0]


# ---------------------------------------------------------------------------------------------
# Bytes and hashes
# ---------------------------------------------------------------------------------------------
def sha256(b):
    return hashlib.sha256(b).hexdigest()


def file_sha256(path):
    return sha256(Path(path).read_bytes())


def torch_bytes(t):
    """Raw little-endian bytes of a CPU torch tensor, in row-major order."""
    t = t.detach().contiguous().cpu().reshape(-1)
    if t.numel() == 0:
        return b""
    try:
        return t.numpy().tobytes()
    except TypeError:  # a dtype numpy lacks (bfloat16, float8_*, ...): its bytes as uint8
        return t.view(torch.uint8).numpy().tobytes()


def np_bytes(a):
    return np.ascontiguousarray(a).tobytes()


def read_raw(path):
    """(header_len, header_bytes, header_dict, data_bytes) of a safetensors file, by hand."""
    b = Path(path).read_bytes()
    n = struct.unpack("<Q", b[:8])[0]
    h = b[8:8 + n]
    return n, h, json.loads(h), b[8 + n:]


# ---------------------------------------------------------------------------------------------
# Dtypes: the safetensors name, torch's name for it, and what this machine's torch / numpy have
# ---------------------------------------------------------------------------------------------
TORCH_NAME = {
    "F64": "float64", "F32": "float32", "F16": "float16", "BF16": "bfloat16",
    "I64": "int64", "I32": "int32", "I16": "int16", "I8": "int8",
    "U64": "uint64", "U32": "uint32", "U16": "uint16", "U8": "uint8", "BOOL": "bool",
    "F8_E4M3": "float8_e4m3fn", "F8_E5M2": "float8_e5m2", "F8_E8M0": "float8_e8m0fnu",
    "F8_E4M3FNUZ": "float8_e4m3fnuz", "F8_E5M2FNUZ": "float8_e5m2fnuz",
    "F4": "float4_e2m1fn_x2", "C64": "complex64",
}
NUMPY_DTYPE = {
    "F64": np.float64, "F32": np.float32, "F16": np.float16,
    "I64": np.int64, "I32": np.int32, "I16": np.int16, "I8": np.int8,
    "U64": np.uint64, "U32": np.uint32, "U16": np.uint16, "U8": np.uint8,
    "BOOL": np.bool_, "C64": np.complex64,
}


def torch_dtype(st_dtype):
    """torch's dtype for a safetensors dtype, or None where this torch lacks it."""
    name = TORCH_NAME.get(st_dtype)
    return getattr(torch, name, None) if name else None


def numpy_dtype(st_dtype):
    return NUMPY_DTYPE.get(st_dtype)


def expect_missing_dtype(st_dtype, framework):
    """What the reference raises for a dtype the framework lacks: (exception types, message part).

    The reference maps dtypes with getattr(torch, "<torch name>") (AttributeError when this torch
    has no such dtype), numpy BF16 with numpy.dtype("bfloat16") (TypeError), the F8/F4 types in
    numpy with getattr or numpy.dtype (AttributeError or TypeError depending on the version), and
    raises SafetensorError("Dtype not understood: F6_E2M3") for dtypes it has no name for."""
    import safetensors_hpp

    name = TORCH_NAME.get(st_dtype)
    if name is None:
        return (safetensors_hpp.SafetensorError,), "Dtype not understood: " + st_dtype
    if framework == "pt":
        return (AttributeError,), name
    if st_dtype == "BF16":
        return (TypeError,), "bfloat16"
    return (AttributeError, TypeError), name


# ---------------------------------------------------------------------------------------------
# Values as the manifest stores them (float64, "nan"/"inf"/"-inf" strings, [re, im] for complex)
# ---------------------------------------------------------------------------------------------
def _num(x):
    if isinstance(x, str):
        return float(x)
    return x


def assert_values(actual_list, expected):
    """actual_list: flat Python list from .tolist() of a float64/int/bool/complex tensor."""
    assert len(actual_list) == len(expected)
    for i, (a, e) in enumerate(zip(actual_list, expected)):
        if isinstance(e, list):  # complex
            assert complex(a) == complex(_num(e[0]), _num(e[1])), (i, a, e)
        elif isinstance(e, bool):
            assert bool(a) is e and isinstance(a, bool), (i, a, e)
        elif isinstance(e, int) and not isinstance(e, bool):
            assert int(a) == e and not isinstance(a, float), (i, a, e)
        else:
            e = _num(e)
            if math.isnan(e):
                assert math.isnan(a), (i, a, e)
            else:
                assert a == e, (i, a, e)
                if e == 0.0:
                    assert math.copysign(1.0, a) == math.copysign(1.0, e), (i, a, e)


def torch_values(t):
    t = t.detach().contiguous().cpu().reshape(-1)
    if t.dtype == torch.bool:
        return t.tolist()
    if t.dtype.is_complex:
        return t.tolist()
    if t.dtype.is_floating_point:
        return t.to(torch.float64).tolist()
    return t.tolist()


def np_values(a):
    a = np.ascontiguousarray(a).reshape(-1)
    if a.dtype == np.bool_:
        return a.tolist()
    if np.issubdtype(a.dtype, np.complexfloating):
        return a.tolist()
    if np.issubdtype(a.dtype, np.floating):
        return a.astype(np.float64).tolist()
    return a.tolist()


# ---------------------------------------------------------------------------------------------
# Building tensors from a reference file's raw bytes, independently of the module
# ---------------------------------------------------------------------------------------------
def torch_tensors_of(path):
    """{name: torch tensor} read by hand from `path`, or None if this torch lacks a dtype."""
    _, _, header, data = read_raw(path)
    out = {}
    for k, info in header.items():
        if k == "__metadata__":
            continue
        dt = torch_dtype(info["dtype"])
        if dt is None or info["dtype"] == "F4":
            return None
        b, e = info["data_offsets"]
        if e == b:
            out[k] = torch.empty(info["shape"], dtype=dt)
        else:
            out[k] = torch.frombuffer(bytearray(data[b:e]), dtype=dt).reshape(info["shape"])
    return out


def numpy_tensors_of(path):
    _, _, header, data = read_raw(path)
    out = {}
    for k, info in header.items():
        if k == "__metadata__":
            continue
        dt = numpy_dtype(info["dtype"])
        if dt is None:
            return None
        b, e = info["data_offsets"]
        out[k] = np.frombuffer(bytearray(data[b:e]), dtype=dt).reshape(info["shape"])
    return out


def assert_same_file(written, reference):
    """`written` (bytes) equals the reference file's bytes.

    The reference keeps `__metadata__` in a hash map, so with two or more metadata keys its order
    in the header is arbitrary; there the metadata object is compared as JSON and every other byte
    exactly.  With zero or one key the files must be byte-identical."""
    ref = Path(reference).read_bytes()
    if written == ref:
        return
    n_ref = struct.unpack("<Q", ref[:8])[0]
    header_ref = json.loads(ref[8:8 + n_ref])
    md = header_ref.get("__metadata__") or {}
    assert len(md) >= 2, "files differ (sha256 %s written, %s reference)" % (sha256(written), sha256(ref))
    assert len(written) == len(ref), (len(written), len(ref))
    assert written[:8] == ref[:8], "header length differs"
    assert written[8 + n_ref:] == ref[8 + n_ref:], "data section differs"
    hw, hr = written[8:8 + n_ref], ref[8:8 + n_ref]
    assert json.loads(hw) == header_ref

    def without_metadata(h):
        prefix = b'{"__metadata__":'
        assert h.startswith(prefix), h[:40]
        text = h.decode("utf-8")
        _, end = json.JSONDecoder().raw_decode(text, len(prefix))
        return text[end:]

    assert without_metadata(hw) == without_metadata(hr)


# ---------------------------------------------------------------------------------------------
# Fixtures
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def st():
    import safetensors_hpp

    return safetensors_hpp


def write_plain(path, tensors, metadata=None):
    """A valid safetensors file written by hand (no alignment padding beyond 8 bytes), so tests of
    the reader do not depend on the module's writer.  tensors: {name: torch tensor or ndarray}."""
    header, chunks, off = {}, [], 0
    if metadata is not None:
        header["__metadata__"] = metadata
    st_of_torch = {getattr(torch, v): k for k, v in TORCH_NAME.items() if hasattr(torch, v)}
    st_of_np = {np.dtype(v): k for k, v in NUMPY_DTYPE.items()}
    for name, t in tensors.items():
        if isinstance(t, torch.Tensor):
            dt, raw = st_of_torch[t.dtype], torch_bytes(t)
        else:
            dt, raw = st_of_np[t.dtype], np_bytes(t)
        header[name] = {"dtype": dt, "shape": list(t.shape), "data_offsets": [off, off + len(raw)]}
        chunks.append(raw)
        off += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    Path(path).write_bytes(struct.pack("<Q", len(h)) + h + b"".join(chunks))
    return Path(path)


def run_threads(workers, timeout=60):
    """Runs each of workers (callables) on its own thread; the first error any raised is raised here."""
    errors = []

    def wrap(fn):
        def body():
            try:
                fn()
            except BaseException as e:  # collected and re-raised in the main thread
                errors.append(e)
        return body

    threads = [threading.Thread(target=wrap(w)) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
        assert not t.is_alive()
    if errors:
        raise errors[0]
