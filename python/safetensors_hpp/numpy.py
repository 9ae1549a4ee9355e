"""safetensors_hpp.numpy: save, save_file, load, load_file, as the reference's.

What copies: load_file and safe_open(..., framework="np").get_tensor copy nothing (arrays over
the file's private copy-on-write mapping: writable, writes never reach the file); load(data)
copies the bytes once; save/save_file write each array's bytes once (a non-contiguous array is
packed first, as the reference's tobytes() does).
"""

import os
import sys
from typing import Dict, List, Optional, Union

import numpy as np

from . import _NUMPY_NAMES, _as_numpy, _check_tensor_names, _core
from . import TensorSpec, deserialize, safe_open, serialize, serialize_file  # noqa: F401  (as the reference's module has them)

__all__ = ["save", "save_file", "load", "load_file"]


def save(tensor_dict: Dict[str, np.ndarray], metadata: Optional[Dict[str, str]] = None) -> bytes:
    """Saves a dictionary of arrays into raw bytes in safetensors format."""
    keep_alive_buffer: List = []
    return serialize(_flatten(tensor_dict, keep_alive_buffer), metadata=metadata)


def save_file(
    tensor_dict: Dict[str, np.ndarray], filename: Union[str, os.PathLike], metadata: Optional[Dict[str, str]] = None
) -> None:
    """Saves a dictionary of arrays to filename (replaced atomically; not fsynced, like the reference)."""
    keep_alive_buffer: List = []
    serialize_file(_flatten(tensor_dict, keep_alive_buffer), filename, metadata=metadata)


def load(data: bytes) -> Dict[str, np.ndarray]:
    """Every array of a file held in memory (the bytes copied once; the arrays view that copy)."""
    handle = _core.open_bytes(data)
    return {name: _as_numpy(array, dtype, shape) for name, (array, dtype, shape) in handle.raw_all()}


def load_file(filename: Union[str, os.PathLike]) -> Dict[str, np.ndarray]:
    """Every array of a file (or a sharded checkpoint), in file order, without copying."""
    with safe_open(filename, framework="np") as f:
        return f.get_tensors()


def _flatten(tensor_dict: Dict[str, np.ndarray], keep_alive_buffer: List) -> Dict[str, TensorSpec]:
    """The reference's 0.8 form for serialize(), which save and save_file use as its do: a
    TensorSpec per array (a dtype it does not know raises its error), over the array's
    little-endian, contiguous bytes (a copy where the array is neither), which
    keep_alive_buffer holds."""
    _check_tensor_names(tensor_dict)
    specs = {}
    for name, array in tensor_dict.items():
        if not _is_little_endian(array):
            array = array.byteswap(inplace=False)
        shape = tuple(array.shape)
        if not array.flags.c_contiguous:
            array = np.ascontiguousarray(array)  # packed, as the reference's tobytes() does
        data = array.reshape(-1).view(np.uint8)  # a 0-d array's bytes too
        keep_alive_buffer.append(data)
        specs[name] = TensorSpec(dtype=array.dtype.name, shape=shape, data_ptr=data.ctypes.data, data_len=data.nbytes)
    return specs


def _tobytes(tensor: np.ndarray) -> bytes:
    """The array's little-endian bytes (the reference's helper)."""
    if not _is_little_endian(tensor):
        tensor = tensor.byteswap(inplace=False)
    return tensor.tobytes()


def _is_little_endian(tensor: np.ndarray) -> bool:
    byteorder = tensor.dtype.byteorder
    if byteorder == "=":
        return sys.byteorder == "little"
    if byteorder in ("|", "<"):
        return True
    if byteorder == ">":
        return False
    raise ValueError(f"Unexpected byte order {byteorder}")


# The reference's dtype table and its deserialize() -> arrays helper (code written against the
# reference imports them too).
_TYPES = {name: getattr(np, attribute) for name, attribute in _NUMPY_NAMES.items() if attribute != "bool_"}
_TYPES["BOOL"] = bool


def _getdtype(dtype_str: str) -> np.dtype:
    return _TYPES[dtype_str]


def _view2np(safeview) -> Dict[str, np.ndarray]:
    """[(name, {"dtype", "shape", "data"})] as deserialize() returns it -> arrays over the data."""
    return {k: np.frombuffer(v["data"], dtype=_getdtype(v["dtype"])).reshape(v["shape"]) for k, v in safeview}
