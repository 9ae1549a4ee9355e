"""safetensors_hpp: the reference `safetensors` package's API on the safetensors-hpp C++ core.

Switching is one import line: ``import safetensors_hpp as safetensors``, or
``from safetensors_hpp.torch import load_file``. See the README's "Python" section for what
copies and what does not, and for the deviations from the reference.
"""

import numbers
import os
import sys
from typing import Any, Dict, List, Optional, Sequence, Tuple

from . import _core
from ._core import (  # noqa: F401  (re-exported)
    SafetensorError,
    SafetensorFileNotFoundError,
    SafetensorIndexError,
    SafetensorOSError,
)

__version__ = _core.__version__
__all__ = ["safe_open", "SafetensorError", "TensorSpec", "serialize", "serialize_file", "deserialize", "__version__"]

_FRAMEWORKS = {"pt": "pt", "torch": "pt", "pytorch": "pt", "np": "np", "numpy": "np"}
_FRAMEWORK_NAMES = {"pt": "pytorch", "np": "numpy"}  # as the reference's messages name them
_OTHER_DEVICES = ("mps", "npu", "xpu", "xla", "mlu", "hpu", "musa")


# ---------------------------------------------------------------------------------------------
# dtypes: the reference's mapping, and its errors where the installed torch/NumPy lacks a type
# ---------------------------------------------------------------------------------------------
_TORCH_NAMES = {
    "F64": "float64", "F32": "float32", "F16": "float16", "BF16": "bfloat16", "C64": "complex64",
    "I64": "int64", "I32": "int32", "I16": "int16", "I8": "int8", "U8": "uint8", "BOOL": "bool",
    "U64": "uint64", "U32": "uint32", "U16": "uint16",
    "F8_E4M3": "float8_e4m3fn", "F8_E5M2": "float8_e5m2", "F8_E8M0": "float8_e8m0fnu",
    "F8_E4M3FNUZ": "float8_e4m3fnuz", "F8_E5M2FNUZ": "float8_e5m2fnuz",
    "F4": "float4_e2m1fn_x2",  # two elements per item: the last dimension halves
}
_NUMPY_NAMES = {
    "F64": "float64", "F32": "float32", "F16": "float16", "C64": "complex64",
    "I64": "int64", "I32": "int32", "I16": "int16", "I8": "int8",
    "U64": "uint64", "U32": "uint32", "U16": "uint16", "U8": "uint8", "BOOL": "bool_",
}
_torch_dtypes: Dict[str, Any] = {}


def _torch_dtype(name: str):
    dtype = _torch_dtypes.get(name)
    if dtype is not None:
        return dtype
    import torch

    attribute = _TORCH_NAMES.get(name)
    if attribute is None:  # F6: no torch name at all
        raise SafetensorError(f"Dtype not understood: {name}")
    dtype = getattr(torch, attribute)  # AttributeError where this torch lacks it, as the reference
    _torch_dtypes[name] = dtype
    return dtype


def _numpy_dtype(name: str):
    import numpy

    if name == "BF16":
        return numpy.dtype("bfloat16")  # TypeError: NumPy has no bfloat16 (the reference's error)
    attribute = _NUMPY_NAMES.get(name)
    if attribute is not None:
        return getattr(numpy, attribute)
    attribute = _TORCH_NAMES.get(name)  # the F8/F4 types: numpy.float8_e4m3fn etc. (AttributeError)
    if attribute is None:
        raise SafetensorError(f"Dtype not understood: {name}")
    return getattr(numpy, attribute)


def _as_torch(array, dtype: str, shape):
    """A uint8 NumPy array (or torch tensor) over the bytes -> a torch tensor; no copy."""
    import torch

    target = _torch_dtype(dtype)
    tensor = array if isinstance(array, torch.Tensor) else torch.from_numpy(array)
    if target is not torch.uint8:
        tensor = tensor.view(target)
    if dtype == "F4" and shape:
        shape = tuple(shape[:-1]) + (shape[-1] // 2,)
    return tensor.reshape(shape)


def _as_numpy(array, dtype: str, shape):
    return array.view(_numpy_dtype(dtype)).reshape(shape)


# ---------------------------------------------------------------------------------------------
# Devices
# ---------------------------------------------------------------------------------------------
def _parse_device(device) -> Tuple[str, Any]:
    """("cpu", None), ("cuda", index) or ("other", name); the reference's messages otherwise."""
    if isinstance(device, bool):
        raise SafetensorError(f"device {device} is invalid")
    if isinstance(device, int):
        return ("cuda", device)
    name = str(device) if type(device).__name__ == "device" else device
    if not isinstance(name, str):
        raise SafetensorError(f"device {device} is invalid")
    if name == "cpu":
        return ("cpu", None)
    if name == "cuda":
        return ("cuda", 0)
    if name.startswith("cuda:"):
        try:
            return ("cuda", int(name.split(":", 1)[1]))
        except ValueError:
            raise SafetensorError(f"device {name} is invalid") from None
    kind, colon, index = name.partition(":")
    if kind in _OTHER_DEVICES:
        if colon and not index.isdigit():
            raise SafetensorError(f"device {name} is invalid")
        if kind == "mps" and index and int(index) != 0:
            raise SafetensorError(f"device {name} is invalid: only mps or mps:0 is supported")
        return ("other", name)
    raise SafetensorError(f"device {name} is invalid")


def _device_name(device, parsed) -> str:
    """The device as the reference's messages write it: 0, cuda:0, mps, npu:0."""
    if isinstance(device, int):
        return str(device)
    if parsed[0] == "cuda":
        return f"cuda:{parsed[1]}"
    kind, _, index = parsed[1].partition(":")
    return "mps" if kind == "mps" else f"{kind}:{index or 0}"


def _require_cuda(device) -> None:
    if not _core.has_cuda:
        raise SafetensorError(
            f"device {device}: this safetensors_hpp was built without the CUDA loader (no CUDA toolkit when it "
            "was compiled); rebuild it where the CUDA toolkit is installed, or load to \"cpu\" and call .to()"
        )


def _path(filename) -> str:
    path = os.fspath(filename)  # TypeError for anything but str, bytes and os.PathLike
    return os.fsdecode(path) if isinstance(path, bytes) else path


# ---------------------------------------------------------------------------------------------
# Slicing
# ---------------------------------------------------------------------------------------------
def _is_index_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and -(2**63) <= value < 2**63


def _index_items(index, framework: str) -> Optional[List[Any]]:
    """The index as the C++ slicer's items, or None when only the framework can do it
    (None/newaxis, lists, bools, tensors, integers beyond 64 bits, NumPy's negative steps)."""
    items = list(index) if isinstance(index, tuple) else [index]
    out: List[Any] = []
    for item in items:
        if item is Ellipsis:
            out.append(Ellipsis)
        elif isinstance(item, slice):
            parts = []
            for part in (item.start, item.stop, item.step):
                if part is None or _is_index_int(part):
                    parts.append(None if part is None else int(part))
                else:
                    return None
            if parts[2] is not None and parts[2] <= 0:
                if framework == "np":
                    return None  # NumPy reverses; its own indexing does it
                raise ValueError("step must be greater than zero")  # torch's answer
            out.append(tuple(parts))
        elif _is_index_int(item):
            out.append(int(item))
        else:
            return None
    return out


_INVALID_SLICE = 305  # safetensors::errc::invalid_slice


def _slice_error(message: str) -> SafetensorError:
    """The reference's SafetensorError for an index out of range, also an IndexError (NumPy's type)."""
    error = SafetensorIndexError(message)
    error.code, error.path = _INVALID_SLICE, None
    return error


def _check_numpy_index(index, shape) -> None:
    """What the reference's NumPy path (its Rust slicer) refuses, with its messages, where NumPy
    would clamp or gather instead: an integer out of range, a slice that starts at or ends past
    the end of its dimension, a non-empty list. (Negative slice bounds and steps, which that
    path refuses or ignores, keep NumPy's meaning here.)"""
    if isinstance(index, list):
        if index:
            raise SafetensorError("Non empty lists are not implemented")
        return
    items = index if isinstance(index, tuple) else (index,)
    if not all(isinstance(item, slice) or _is_index_int(item) for item in items):
        return  # Ellipsis, None, arrays: beyond what the reference's path takes
    spans = []  # (text as the reference prints it, start, stop) per dimension
    for dim_index, (item, dim) in enumerate(zip(items, shape)):
        if isinstance(item, slice):
            if any(b is not None and (not _is_index_int(b) or b < 0) for b in (item.start, item.stop)):
                return
            start = 0 if item.start is None else int(item.start)
            stop = dim if item.stop is None else int(item.stop)
            text = f"{'' if item.start is None else start}:{'' if item.stop is None else stop}"
        else:
            start = int(item) + dim if item < 0 else int(item)
            if start < 0:
                raise _slice_error(f"Invalid index {int(item)} for dimension {dim_index} of size {dim}")
            stop, text = start + 1, str(start)
        spans.append((text, start, stop))
    for dim_index in reversed(range(len(spans))):  # the reference checks the last dimension first
        _, start, stop = spans[dim_index]
        dim = shape[dim_index]
        if dim == 0 and start == 0 and stop == 0:
            continue  # [:] of an empty dimension: the reference refuses it too (its bug #861); not here
        if start >= dim or stop > dim:
            asked = start if start >= dim else stop - 1
            raise _slice_error(
                f"Error during slicing [{', '.join(t for t, _, _ in spans)}] with shape {list(shape)}: "
                f"index {asked} out of bounds for tensor dimension #{dim_index} of size {dim}"
            )


def _not_found(error, name):
    """The reference's message for an unknown tensor (the C++ one, with its "did you mean", is the cause)."""
    if getattr(error, "code", None) == 300:
        replacement = SafetensorError(f"File does not contain tensor {name}")
        replacement.code, replacement.path = error.code, error.path
        return replacement
    return error


class _SafeSlice:
    """What get_slice returns: get_shape(), get_dtype(), and [...] reading only what it selects.
    Like the reference's, it stays usable after its file object is closed."""

    def __init__(self, owner: "safe_open", name: str):
        self._owner = owner._detached()
        self._name = name
        try:
            self._dtype, self._shape = self._owner._handle.info(name)
        except SafetensorError as e:
            raise _not_found(e, name) from e

    def get_shape(self) -> List[int]:
        return list(self._shape)

    def get_dtype(self) -> str:
        return self._dtype

    def __getitem__(self, index):
        owner = self._owner
        if owner._framework == "np":
            _check_numpy_index(index, self._shape)
        items = _index_items(index, owner._framework)
        if items is None:
            return owner.get_tensor(self._name)[index]
        handle = owner._handle_or_raise()
        if owner._device[0] == "cuda":
            return owner._upload(self._name, items)
        array, dtype, shape = handle.slice(self._name, items)
        return owner._convert(array, dtype, shape)


# ---------------------------------------------------------------------------------------------
# safe_open
# ---------------------------------------------------------------------------------------------
class safe_open:
    """Opens a safetensors file (or a sharded checkpoint: its index or its folder) lazily.

    Args:
        filename (`str`, or `os.PathLike`): the file to open.
        framework (`str`): "pt"/"torch" or "np"/"numpy".
        device (`str`, `int`, defaults to "cpu"): where the tensors go ("cpu", 0, "cuda", "cuda:1").
    """

    def __init__(self, filename, framework, device="cpu"):
        fw = _FRAMEWORKS.get(framework) if isinstance(framework, str) else None
        if fw is None:
            raise SafetensorError(f"framework {framework} is invalid")
        parsed = _parse_device(device)
        if parsed[0] != "cpu" and fw != "pt":
            raise SafetensorError(
                f"Device {_device_name(device, parsed)} is not supported for framework {_FRAMEWORK_NAMES[fw]}"
            )
        if parsed[0] == "cuda":
            _require_cuda(device)
        self._framework = fw
        self._device = parsed
        if fw == "pt":
            import torch  # noqa: F401  (fail here, as the reference does, when torch is missing)
        else:
            import numpy  # noqa: F401
        path = _path(filename)
        try:
            self._handle = _core.Handle(path, False)
        except SafetensorFileNotFoundError as e:
            if e.path != path:
                raise  # a shard that an index names: the C++ message, naming it
            missing = SafetensorFileNotFoundError(f"No such file or directory: {path}")  # the reference's words
            missing.code, missing.path = e.code, e.path
            raise missing from None

    def _detached(self) -> "safe_open":
        """A copy that keeps this file open whatever happens to self (for slices)."""
        copy = object.__new__(safe_open)
        copy._framework, copy._device, copy._handle = self._framework, self._device, self._handle_or_raise()
        return copy

    def _handle_or_raise(self):
        handle = self._handle
        if handle is None:
            raise SafetensorError("File is closed")
        return handle

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc_value, traceback):
        self._handle = None

    def metadata(self) -> Optional[Dict[str, str]]:
        return self._handle_or_raise().metadata()

    def keys(self) -> List[str]:
        """Tensor names, sorted."""
        return self._handle_or_raise().keys(True)

    def offset_keys(self) -> List[str]:
        """Tensor names in file order (by data offset)."""
        return self._handle_or_raise().keys(False)

    def get_tensor(self, name: str):
        _check_name(name)
        handle = self._handle_or_raise()
        try:
            if self._device[0] == "cuda":
                return self._upload(name, None)
            array, dtype, shape = handle.raw(name)
        except SafetensorError as e:
            raise _not_found(e, name) from e
        return self._convert(array, dtype, shape)

    def get_tensors(self) -> Dict[str, Any]:
        """Every tensor, keyed by name, in file order (``offset_keys()``), each as get_tensor gives
        it: on the CPU nothing is copied; to a CUDA device the whole file (each shard of a
        checkpoint) goes through the CUDA loader in one pipeline, into one torch allocation."""
        handle = self._handle_or_raise()
        if self._device[0] == "cuda":
            from .torch import _load_cuda

            return _load_cuda(handle, self._device[1])
        return {name: self._convert(array, dtype, shape) for name, (array, dtype, shape) in handle.raw_all()}

    def get_slice(self, name: str) -> _SafeSlice:
        _check_name(name)
        return _SafeSlice(self, name)

    def _convert(self, array, dtype, shape):
        if self._framework == "np":
            return _as_numpy(array, dtype, shape)
        tensor = _as_torch(array, dtype, shape)
        if self._device[0] == "other":
            tensor = tensor.to(self._device[1])
        return tensor

    def _upload(self, name, items):
        """A tensor or slice straight into torch-allocated device memory (the CUDA loader)."""
        import torch

        index = self._device[1]
        handle = self._handle_or_raise()
        dtype, shape, size = handle.plan(name, items)
        target = _torch_dtype(dtype)  # the dtype error before any device work
        buffer = torch.empty(size, dtype=torch.uint8, device=f"cuda:{index}")
        if size:
            stream = torch.cuda.current_stream(index).cuda_stream
            handle.upload(name, items, index, buffer.data_ptr(), stream)
        return (buffer.view(target) if target is not torch.uint8 else buffer).reshape(shape)


class _safe_open_handle(safe_open):
    """The reference's safe_open over an open file object: it opens the file by its name."""

    def __init__(self, f, framework, device="cpu"):
        f.fileno  # noqa: B018  (AttributeError for an object that is not a file, as the reference)
        super().__init__(f.name, framework, device)


# ---------------------------------------------------------------------------------------------
# The reference's raw API: serialize, serialize_file, deserialize
# ---------------------------------------------------------------------------------------------
def _not_converted(argument: str, value, target: str) -> TypeError:
    # PyO3's words, which the reference's argument conversion raises.
    return TypeError(f"argument '{argument}': '{type(value).__name__}' object cannot be converted to '{target}'")


def _check_name(name) -> None:
    if not isinstance(name, str):
        raise _not_converted("name", name, "PyString")


def _check_tensor_names(names) -> None:
    """After the framework checks, as the reference's conversion of its flattened dict."""
    for name in names:
        if not isinstance(name, str):
            raise _not_converted("tensor_dict", name, "PyString")


def _check_metadata(metadata) -> None:
    if metadata is None:
        return
    if not isinstance(metadata, dict):
        raise _not_converted("metadata", metadata, "PyDict")
    for key, value in metadata.items():
        for item in (key, value):
            if not isinstance(item, str):
                raise _not_converted("metadata", item, "PyString")


# TensorSpec's dtype names -> the format's, in the order of the reference's message.
_SPEC_DTYPES = {
    _TORCH_NAMES[code]: code
    for code in ("BOOL", "I8", "U8", "I16", "U16", "I32", "U32", "I64", "U64", "F16", "F32", "F64", "BF16", "F8_E4M3",
                 "F8_E4M3FNUZ", "F8_E5M2", "F8_E5M2FNUZ", "F8_E8M0", "F4", "C64")
}


def _rust_repr(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _unsigned(argument: str, value) -> int:
    if isinstance(value, (str, bytes)) or not isinstance(value, numbers.Integral):
        raise _not_converted(argument, value, "PyInt")
    if value < 0:
        raise OverflowError("can't convert negative int to unsigned")
    return int(value)


class TensorSpec:
    """One tensor for serialize() / serialize_file() (the reference's 0.8 form): its dtype by
    torch's name ("float32", "bfloat16"), its shape, and the address and length of its
    contiguous bytes, which the caller keeps alive while they are written. For
    "float4_e2m1fn_x2" the shape is torch's (two elements per item) and the last dimension is
    doubled, as the reference does, so that ``shape`` is the header's."""

    __slots__ = ("_dtype", "_shape", "_data_ptr", "_data_len")

    def __init__(self, *, dtype: str, shape: Sequence[int], data_ptr: int, data_len: int) -> None:
        if not isinstance(dtype, str):
            raise _not_converted("dtype", dtype, "PyString")
        code = _SPEC_DTYPES.get(dtype)
        if code is None:
            raise SafetensorError(
                f"Unknown dtype {_rust_repr(dtype)}. Supported dtypes: {', '.join(_SPEC_DTYPES)}"
            )
        if isinstance(shape, (str, bytes)):
            raise TypeError("argument 'shape': Can't extract `str` to `Vec`")
        dims = [_unsigned("shape", d) for d in shape]
        if code == "F4" and dims:
            dims[-1] *= 2
        for slot, value in (("_dtype", code), ("_shape", dims), ("_data_ptr", _unsigned("data_ptr", data_ptr)),
                            ("_data_len", _unsigned("data_len", data_len))):
            object.__setattr__(self, slot, value)

    def __setattr__(self, name, value):
        raise AttributeError(f"attribute '{name}' of 'TensorSpec' objects is not writable")

    @property
    def dtype(self) -> str:
        """The format's name of the dtype ("F32", "BF16"), as the header writes it."""
        return self._dtype

    @property
    def shape(self) -> List[int]:
        return list(self._shape)

    @property
    def data_ptr(self) -> int:
        return self._data_ptr

    @property
    def data_len(self) -> int:
        return self._data_len

    def __repr__(self) -> str:
        return (f"TensorSpec(dtype='{self._dtype}', shape={self._shape}, data_ptr={self._data_ptr}, "
                f"data_len={self._data_len})")


def _raw_items(tensor_dict) -> list:
    """[(name, dtype, shape, (address, length))] for the C++ writer from {name: TensorSpec}."""
    if not isinstance(tensor_dict, dict):
        raise _not_converted("tensor_dict", tensor_dict, "PyDict")
    items = []
    for name, spec in tensor_dict.items():
        if not isinstance(name, str):
            raise _not_converted("tensor_dict", name, "PyString")
        if not isinstance(spec, TensorSpec):  # 0.8 takes nothing else (no more dicts of bytes or pointers)
            raise _not_converted("tensor_dict", spec, "TensorSpec")
        if spec.data_ptr == 0 and spec.data_len:
            raise SafetensorError(f'tensor "{name}": data_ptr is 0 for {spec.data_len} bytes')
        items.append((name, spec.dtype, spec.shape, (spec.data_ptr, spec.data_len)))
    return items


def serialize(tensor_dict: Dict[str, TensorSpec], metadata: Optional[Dict[str, str]] = None) -> bytes:
    """{"name": TensorSpec(dtype="float32", shape=[2, 3], data_ptr=..., data_len=24)} -> the file's
    bytes. The caller keeps each TensorSpec's memory alive until it returns."""
    items = _raw_items(tensor_dict)
    _check_metadata(metadata)
    return _core.serialize(items, metadata)


def serialize_file(tensor_dict: Dict[str, TensorSpec], filename, metadata: Optional[Dict[str, str]] = None) -> None:
    items = _raw_items(tensor_dict)
    _check_metadata(metadata)
    _core.serialize_file(items, _path(filename), metadata)


def deserialize(bytes) -> List[Tuple[str, Dict[str, Any]]]:  # noqa: A002  (the reference's name)
    """The file's bytes -> [(name, {"shape": [...], "dtype": "F32", "data": bytearray})], file order."""
    return _core.deserialize(bytes)


if sys.byteorder != "little":  # pragma: no cover
    raise ImportError("safetensors_hpp supports little-endian hosts only")


def __getattr__(name: str):
    # safetensors_hpp.torch / .numpy without an explicit import (and without importing torch
    # for the NumPy-only user until it is asked for).
    if name in ("torch", "numpy"):
        import importlib

        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
