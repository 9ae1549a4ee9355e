#!/usr/bin/env python3
"""Load one tensor of a .safetensors file into torch through DLPack, without copying.

    python3 examples/dlpack/to_torch.py build/libsafetensors_dlpack.so FILE NAME

The C++ library (safetensors_dlpack.cpp) returns a DLManagedTensor*; this script wraps it in a
PyCapsule named "dltensor" (the DLPack Python protocol) and hands it to torch.from_dlpack,
which renames the capsule "used_dltensor" and calls the deleter when the torch tensor dies.
A capsule nobody consumed is released by its destructor. Without torch it prints the
DLTensor's fields read through ctypes instead.

The tensor's memory is the file's read-only mapping: do not write to the torch tensor
(.clone() it first).
"""
import ctypes
import sys


class DLDevice(ctypes.Structure):
    _fields_ = [("device_type", ctypes.c_int), ("device_id", ctypes.c_int)]


class DLDataType(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint8), ("bits", ctypes.c_uint8), ("lanes", ctypes.c_uint16)]


class DLTensor(ctypes.Structure):
    _fields_ = [("data", ctypes.c_void_p), ("device", DLDevice), ("ndim", ctypes.c_int),
                ("dtype", DLDataType), ("shape", ctypes.POINTER(ctypes.c_int64)),
                ("strides", ctypes.POINTER(ctypes.c_int64)), ("byte_offset", ctypes.c_uint64)]


class DLManagedTensor(ctypes.Structure):
    _fields_ = [("dl_tensor", DLTensor), ("manager_ctx", ctypes.c_void_p), ("deleter", ctypes.c_void_p)]


def main():
    if len(sys.argv) != 4:
        sys.exit("usage: to_torch.py LIBRARY FILE NAME")
    lib = ctypes.CDLL(sys.argv[1])
    lib.safetensors_dlpack_export.restype = ctypes.c_void_p
    lib.safetensors_dlpack_export.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_size_t]
    lib.safetensors_dlpack_free.restype = None
    lib.safetensors_dlpack_free.argtypes = [ctypes.c_void_p]

    error = ctypes.create_string_buffer(1024)
    ptr = lib.safetensors_dlpack_export(sys.argv[2].encode(), sys.argv[3].encode(), error, len(error))
    if not ptr:
        sys.exit("error: " + error.value.decode(errors="replace"))

    api = ctypes.pythonapi
    api.PyCapsule_IsValid.restype = ctypes.c_int
    api.PyCapsule_IsValid.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
    api.PyCapsule_GetPointer.restype = ctypes.c_void_p
    api.PyCapsule_GetPointer.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
    destructor_t = ctypes.CFUNCTYPE(None, ctypes.c_void_p)

    # Runs when the capsule dies; a consumer renamed it, so only an unconsumed one is freed.
    @destructor_t
    def release_unconsumed(capsule):
        if api.PyCapsule_IsValid(capsule, b"dltensor"):
            lib.safetensors_dlpack_free(api.PyCapsule_GetPointer(capsule, b"dltensor"))

    api.PyCapsule_New.restype = ctypes.py_object
    api.PyCapsule_New.argtypes = [ctypes.c_void_p, ctypes.c_char_p, destructor_t]
    capsule = api.PyCapsule_New(ptr, b"dltensor", release_unconsumed)

    try:
        import torch
    except ImportError:
        t = ctypes.cast(ptr, ctypes.POINTER(DLManagedTensor)).contents.dl_tensor
        shape = [t.shape[i] for i in range(t.ndim)]
        strides = [t.strides[i] for i in range(t.ndim)] if t.strides else None
        print(f"torch not installed; DLTensor: data=0x{t.data or 0:x} device={t.device.device_type}:{t.device.device_id} "
              f"dtype=({t.dtype.code}, {t.dtype.bits}, {t.dtype.lanes}) ndim={t.ndim} shape={shape} "
              f"strides={strides} byte_offset={t.byte_offset}")
        del capsule  # unconsumed: the destructor calls the deleter
        return

    tensor = torch.from_dlpack(capsule)
    print(f"{sys.argv[3]}: {tensor.dtype} {tuple(tensor.shape)} at 0x{tensor.data_ptr():x}")
    print(tensor.float().flatten()[:8])


if __name__ == "__main__":
    main()
