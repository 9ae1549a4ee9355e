"""safetensors_hpp.torch: save, save_file, load, load_file, save_model, load_model, as the reference's.

What copies (see the README's "Python" section):
- load_file / safe_open(...).get_tensor on the CPU: nothing. Tensors point into the file's private
  copy-on-write mapping: writable, writes never reach the file, valid after the file is closed.
- load_file(path, device="cuda:N"): every byte once, file -> pinned ring -> one torch allocation,
  through the CUDA loader's single pipeline.
- load(data): the bytes once (a bytes object is immutable); the tensors are views of that copy.
- save / save_file: each tensor's bytes once, straight from the tensor's memory (CPU tensors;
  others are moved to the CPU first, as the reference does).
"""

import os
import sys
from collections import defaultdict
from typing import Any, Dict, List, Optional, Set, Tuple, Union

import torch

from . import _TORCH_NAMES, _as_torch, _check_metadata, _check_tensor_names, _core, _path, _torch_dtype
from . import TensorSpec, deserialize, safe_open, serialize, serialize_file  # noqa: F401  (as the reference's module has them)

__all__ = ["save", "save_file", "load", "load_file", "save_model", "load_model"]

_SIZE = {
    torch.int64: 8, torch.float32: 4, torch.int32: 4, torch.bfloat16: 2, torch.float16: 2, torch.int16: 2,
    torch.uint8: 1, torch.int8: 1, torch.bool: 1, torch.float64: 8, torch.complex64: 8,
}
for _name, _size in (("uint16", 2), ("uint32", 4), ("uint64", 8), ("float8_e4m3fn", 1), ("float8_e4m3fnuz", 1),
                     ("float8_e5m2", 1), ("float8_e5m2fnuz", 1), ("float8_e8m0fnu", 1), ("float4_e2m1fn_x2", 1)):
    if hasattr(torch, _name):
        _SIZE[getattr(torch, _name)] = _size


# ---------------------------------------------------------------------------------------------
# Shared tensors (the reference's rules, so save_model/load_model pick the same names)
# ---------------------------------------------------------------------------------------------
def storage_ptr(tensor: torch.Tensor) -> int:
    try:
        return tensor.untyped_storage().data_ptr()
    except Exception:
        try:
            return tensor.storage().data_ptr()  # torch < 2.0
        except NotImplementedError:
            return 0  # meta storage


def _end_ptr(tensor: torch.Tensor) -> int:
    if tensor.nelement():
        return tensor.view(-1)[-1].data_ptr() + _SIZE[tensor.dtype]
    return tensor.data_ptr()


def storage_size(tensor: torch.Tensor) -> int:
    try:
        return tensor.untyped_storage().nbytes()
    except AttributeError:
        try:
            return tensor.storage().size() * _SIZE[tensor.dtype]  # torch < 2.0
        except NotImplementedError:
            return tensor.nelement() * _SIZE[tensor.dtype]


def _filter_shared_not_shared(tensors: List[Set[str]], state_dict: Dict[str, torch.Tensor]) -> List[Set[str]]:
    filtered = []
    for shared in tensors:
        if len(shared) < 2:
            filtered.append(shared)
            continue
        areas = sorted((state_dict[name].data_ptr(), _end_ptr(state_dict[name]), name) for name in shared)
        _, last_stop, last_name = areas[0]
        filtered.append({last_name})
        for start, stop, name in areas[1:]:
            if start >= last_stop:
                filtered.append({name})
            else:
                filtered[-1].add(name)
            last_stop = stop
    return filtered


def _find_shared_tensors(state_dict: Dict[str, torch.Tensor]) -> List[Set[str]]:
    tensors = defaultdict(set)
    for k, v in state_dict.items():
        if v.device != torch.device("meta") and storage_ptr(v) != 0 and storage_size(v) != 0:
            tensors[(v.device, storage_ptr(v), storage_size(v))].add(k)
    return _filter_shared_not_shared(list(sorted(tensors.values())), state_dict)


def _is_complete(tensor: torch.Tensor) -> bool:
    return tensor.data_ptr() == storage_ptr(tensor) and tensor.nelement() * _SIZE[tensor.dtype] == storage_size(tensor)


def _remove_duplicate_names(
    state_dict: Dict[str, torch.Tensor],
    *,
    preferred_names: Optional[List[str]] = None,
    discard_names: Optional[List[str]] = None,
) -> Dict[str, List[str]]:
    preferred_names = set(preferred_names or [])
    discard_names = set(discard_names or [])
    to_remove = defaultdict(list)
    for shared in _find_shared_tensors(state_dict):
        complete_names = {name for name in shared if _is_complete(state_dict[name])}
        if not complete_names:
            raise RuntimeError(
                "Error while trying to find names to remove to save state dict, but found no suitable name to keep"
                f" for saving amongst: {shared}. None is covering the entire storage.Refusing to save/load the model"
                " since you could be storing much more memory than needed. Please refer to"
                " https://huggingface.co/docs/safetensors/torch_shared_tensors for more information. Or open an"
                " issue."
            )
        keep_name = sorted(complete_names)[0]
        preferred = complete_names.difference(discard_names)
        if preferred:
            keep_name = sorted(preferred)[0]
        if preferred_names:
            preferred = preferred_names.intersection(complete_names)
            if preferred:
                keep_name = sorted(preferred)[0]
        for name in sorted(shared):
            if name != keep_name:
                to_remove[keep_name].append(name)
    return to_remove


# ---------------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------------
def _checked_items(tensors: Dict[str, torch.Tensor]) -> list:
    """The reference's checks, then [(name, dtype, shape, (address, bytes), tensor)] for the C++
    writer; the last element keeps the (CPU) tensor alive while it writes."""
    if not isinstance(tensors, dict):
        raise ValueError(f"Expected a dict of [str, torch.Tensor] but received {type(tensors)}")
    invalid_tensors = []
    for k, v in tensors.items():
        if not isinstance(v, torch.Tensor):
            raise ValueError(f"Key `{k}` is invalid, expected torch.Tensor but received {type(v)}")
        if v.layout != torch.strided:
            invalid_tensors.append(k)
    if invalid_tensors:
        raise ValueError(
            f"You are trying to save a sparse tensors: `{invalid_tensors}` which this library does not support."
            " You can make it a dense tensor before saving with `.to_dense()` but be aware this might"
            " make a much larger file than needed."
        )
    failing = [names for names in _find_shared_tensors(tensors) if len(names) > 1]
    if failing:
        raise RuntimeError(
            f"""
            Some tensors share memory, this will lead to duplicate memory on disk and potential differences when loading them again: {failing}.
            A potential way to correctly save your model is to use `save_model`.
            More information at https://huggingface.co/docs/safetensors/torch_shared_tensors
            """
        )
    items = []
    for name, tensor in tensors.items():
        if not tensor.is_contiguous():
            raise ValueError(
                f"You are trying to save a non contiguous tensor: `{name}` which is not allowed. It either means you"
                " are trying to save tensors which are reference of each other in which case it's recommended to save"
                " only the full tensors, and reslice at load time, or simply call `.contiguous()` on your tensor to"
                " pack it before saving."
            )
        if tensor.device.type != "cpu":
            tensor = tensor.to("cpu")  # as the reference: the writer reads host memory
        if tensor.dtype not in _SIZE:
            raise KeyError(tensor.dtype)  # the reference's error for a dtype the format lacks (complex128, ...)
        size = tensor.numel() * tensor.element_size()
        dtype, shape = str(tensor.dtype).split(".")[-1], tuple(tensor.shape)
        if dtype == "float4_e2m1fn_x2" and shape:
            shape = shape[:-1] + (shape[-1] * 2,)  # two F4 elements per torch item
        items.append((name, dtype, shape, (tensor.data_ptr(), size), tensor))
    _check_tensor_names(tensors)
    return items


def _tobytes(tensor: torch.Tensor, name: str) -> bytes:
    """The tensor's bytes (the reference's helper; this module's writers do not copy through it)."""
    (_, _, _, (address, size), tensor), = _checked_items({name: tensor})
    import ctypes

    return ctypes.string_at(address, size) if size else b""


def _flatten(tensors: Dict[str, torch.Tensor]) -> Dict[str, Dict[str, Any]]:
    """{name: {"dtype", "shape", "data": bytes}}: the reference's helper before 0.8 (its serialize()
    took these); copies. 0.8 builds TensorSpecs instead (_flatten_as_ptr)."""
    import ctypes

    return {
        name: {"dtype": dtype, "shape": list(shape), "data": ctypes.string_at(address, size) if size else b""}
        for name, dtype, shape, (address, size), _ in _checked_items(tensors)
    }


def _flatten_as_ptr(tensors: Dict[str, torch.Tensor], keep_alive_buffer: List) -> Dict[str, TensorSpec]:
    """The reference's 0.8 form for serialize(): a TensorSpec per tensor, over its (CPU) memory,
    which keep_alive_buffer holds while it is written."""
    specs = {}
    for name, dtype, _, (address, size), tensor in _checked_items(tensors):
        keep_alive_buffer.append(tensor)
        # torch's shape, as the reference passes it (TensorSpec doubles F4's last dimension)
        specs[name] = TensorSpec(dtype=dtype, shape=tensor.shape, data_ptr=address, data_len=size)
    return specs


def _refs(items: list) -> list:
    return [item[:4] for item in items]


def save(tensors: Dict[str, torch.Tensor], metadata: Optional[Dict[str, str]] = None) -> bytes:
    """Saves a dictionary of tensors into raw bytes in safetensors format."""
    items = _checked_items(tensors)
    _check_metadata(metadata)
    return _core.serialize(_refs(items), metadata)


def save_file(
    tensors: Dict[str, torch.Tensor],
    filename: Union[str, os.PathLike],
    metadata: Optional[Dict[str, str]] = None,
) -> None:
    """Saves a dictionary of tensors to filename (replaced atomically; not fsynced, like the reference)."""
    items = _checked_items(tensors)
    _check_metadata(metadata)
    _core.serialize_file(_refs(items), _path(filename), metadata)


def save_model(
    model: torch.nn.Module, filename: str, metadata: Optional[Dict[str, str]] = None, force_contiguous: bool = True
):
    """Saves model.state_dict(), dropping the duplicate names of shared tensors (recorded in metadata)."""
    state_dict = model.state_dict()
    to_removes = _remove_duplicate_names(state_dict)
    for kept_name, to_remove_group in to_removes.items():
        for to_remove in to_remove_group:
            if metadata is None:
                metadata = {}
            if to_remove not in metadata:
                metadata[to_remove] = kept_name  # do not override user data
            del state_dict[to_remove]
    if force_contiguous:
        state_dict = {k: v.contiguous() for k, v in state_dict.items()}
    try:
        save_file(state_dict, filename, metadata=metadata)
    except ValueError as e:
        msg = str(e)
        msg += " Or use save_model(..., force_contiguous=True), read the docs for potential caveats."
        raise ValueError(msg)


# ---------------------------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------------------------
def load_file(filename: Union[str, os.PathLike], device: Union[str, int] = "cpu") -> Dict[str, torch.Tensor]:
    """Every tensor of a file (or a sharded checkpoint), in file order.

    On the CPU nothing is copied: the file is mapped and each tensor points into the private
    mapping (pages are read when first touched; pre-faulting them measured no faster). device="cuda:N" loads the file through the
    CUDA loader in one pipeline into one torch allocation.
    """
    with safe_open(filename, framework="pt", device=device) as f:
        return f.get_tensors()


def _load_cuda(handle, index: int) -> Dict[str, torch.Tensor]:
    """One CUDA-loader pipeline per file (per shard of a checkpoint), each into one torch allocation."""
    arenas = []

    def allocate(size: int) -> int:
        arena = torch.empty(size, dtype=torch.uint8, device=f"cuda:{index}")
        arenas.append(arena)
        # The loader copies on its own stream, while the caching allocator hands out memory in
        # the order of torch's stream: work queued there on a freed block (a kernel still
        # reading it) must be done before the copies write it.
        torch.cuda.current_stream(index).synchronize()
        return arena.data_ptr()

    entries = handle.load_cuda(index, allocate)
    return _arena_views(arenas, entries, torch.empty(0, dtype=torch.uint8, device=f"cuda:{index}"))


def _arena_views(arenas: List[torch.Tensor], entries, empty: torch.Tensor) -> Dict[str, torch.Tensor]:
    """{name: tensor} over the uint8 arenas, from (name, arena index, byte offset, bytes, dtype, shape)
    entries (arena -1: an empty tensor, over `empty`). One as_strided per tensor over the arena
    viewed once per dtype: a third of the Python work of slice, view and reshape each, which
    is the part of a GPU load_file that does not overlap the transfer."""
    result = {}
    typed = {}  # (arena, dtype) -> (the arena as that dtype, its element size)
    for name, arena, offset, size, dtype, shape in entries:
        if arena < 0 or dtype == "F4" or offset % 8:  # nothing to view; two F4 per item; unaligned
            data = empty if arena < 0 else arenas[arena][offset : offset + size]
            result[name] = _as_torch(data, dtype, shape)
            continue
        whole = typed.get((arena, dtype))
        if whole is None:
            target = _torch_dtype(dtype)
            item = _SIZE[target]
            data = arenas[arena]
            data = data[: data.numel() // item * item]
            whole = typed[(arena, dtype)] = (data if target is torch.uint8 else data.view(target), item)
        strides, step = [], 1
        for n in reversed(shape):
            strides.append(step)
            step *= n
        result[name] = whole[0].as_strided(shape, strides[::-1], offset // whole[1])
    return result


# The reference's dtype table and its deserialize() -> tensors helper (code written against the
# reference imports them too): the types this torch has, as the reference lists them.
_TYPES = {
    name: getattr(torch, _TORCH_NAMES[name])
    for name in ("F64", "F32", "F16", "BF16", "I64", "I32", "I16", "I8", "U8", "BOOL", "F8_E4M3", "F8_E4M3FNUZ",
                 "F8_E5M2", "F8_E5M2FNUZ", "C64", "U64", "U32", "U16")
    if hasattr(torch, _TORCH_NAMES[name])
}


def _getdtype(dtype_str: str) -> torch.dtype:
    return _TYPES[dtype_str]


def _view2torch(safeview) -> Dict[str, torch.Tensor]:
    """[(name, {"dtype", "shape", "data"})] as deserialize() returns it -> tensors over the data."""
    result = {}
    for k, v in safeview:
        dtype = _getdtype(v["dtype"])
        if len(v["data"]) == 0:  # frombuffer refuses an empty buffer
            result[k] = torch.empty(v["shape"], dtype=dtype)
        else:
            result[k] = torch.frombuffer(v["data"], dtype=dtype).reshape(v["shape"])
    return result


def load(data: bytes) -> Dict[str, torch.Tensor]:
    """Every tensor of a file held in memory; the bytes are copied once, the tensors view that copy."""
    handle = _core.open_bytes(data)
    return {name: _as_torch(array, dtype, shape) for name, (array, dtype, shape) in handle.raw_all()}


def load_model(
    model: torch.nn.Module, filename: Union[str, os.PathLike], strict: bool = True, device: Union[str, int] = "cpu"
) -> Tuple[List[str], List[str]]:
    """Loads filename onto model, restoring shared tensors; returns (missing, unexpected)."""
    state_dict = load_file(filename, device=device)
    model_state_dict = model.state_dict()
    to_removes = _remove_duplicate_names(model_state_dict, preferred_names=state_dict.keys())
    missing, unexpected = model.load_state_dict(state_dict, strict=False)
    missing = set(missing)
    for to_remove_group in to_removes.values():
        for to_remove in to_remove_group:
            if to_remove not in missing:
                unexpected.append(to_remove)
            else:
                missing.remove(to_remove)
    if strict and (missing or unexpected):
        missing_keys = ", ".join([f'"{k}"' for k in sorted(missing)])
        unexpected_keys = ", ".join([f'"{k}"' for k in sorted(unexpected)])
        error = f"Error(s) in loading state_dict for {model.__class__.__name__}:"
        if missing:
            error += f"\n    Missing key(s) in state_dict: {missing_keys}"
        if unexpected:
            error += f"\n    Unexpected key(s) in state_dict: {unexpected_keys}"
        raise RuntimeError(error)
    return missing, unexpected


if sys.byteorder != "little":  # pragma: no cover
    raise ImportError("safetensors_hpp supports little-endian hosts only")
