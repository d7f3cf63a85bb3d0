"""Open Inference Protocol tensors ↔ NumPy arrays, without per-element Python.

Raw contents (`raw_input_contents`, what tritonclient sends) are little-endian
bytes read with `np.frombuffer`; BYTES elements are each prefixed by their
length as a 4-byte little-endian integer, as the protocol specifies.
"""

from __future__ import annotations

import math
import struct

import numpy as np

from inference import grpc_predict_v2_pb2 as oip
from rxcast.runtime.errors import InvalidArgument

#: OIP datatype → (NumPy little-endian dtype, InferTensorContents field).
DATATYPES: dict[str, tuple[str, str]] = {
    "BOOL": ("?", "bool_contents"),
    "INT8": ("<i1", "int_contents"),
    "INT16": ("<i2", "int_contents"),
    "INT32": ("<i4", "int_contents"),
    "INT64": ("<i8", "int64_contents"),
    "UINT8": ("<u1", "uint_contents"),
    "UINT16": ("<u2", "uint_contents"),
    "UINT32": ("<u4", "uint_contents"),
    "UINT64": ("<u8", "uint64_contents"),
    "FP16": ("<f2", ""),
    "FP32": ("<f4", "fp32_contents"),
    "FP64": ("<f8", "fp64_contents"),
}
# Resolved once: a request's path should not look dtypes up by name.
_DTYPE = {name: np.dtype(code) for name, (code, _) in DATATYPES.items()}


def _shape(tensor, where: str) -> tuple[int, ...]:
    shape = tuple(tensor.shape)
    if shape and min(shape) < 0:
        raise InvalidArgument(f"{where}.shape: dimensions must be >= 0, got {list(shape)}")
    return shape


def decode_bytes_elements(raw: bytes, count: int, where: str) -> np.ndarray:
    """BYTES raw contents → str array of `count` elements."""
    out = []
    offset = 0
    size = len(raw)
    for _ in range(count):
        if offset + 4 > size:
            raise InvalidArgument(f"{where}: raw BYTES contents end before element {len(out)}")
        (length,) = struct.unpack_from("<I", raw, offset)
        offset += 4
        if offset + length > size:
            raise InvalidArgument(f"{where}: raw BYTES element {len(out)} overruns the contents")
        out.append(raw[offset : offset + length].decode("utf-8", errors="replace"))
        offset += length
    if offset != size:
        raise InvalidArgument(f"{where}: raw BYTES contents hold more than {count} elements")
    return np.asarray(out, dtype=str)


def encode_bytes_elements(values: np.ndarray) -> bytes:
    parts = []
    for value in np.asarray(values, dtype=str).ravel():
        data = value.encode("utf-8")
        parts.append(struct.pack("<I", len(data)))
        parts.append(data)
    return b"".join(parts)


def input_array(tensor, raw: bytes | None, where: str) -> np.ndarray:
    """One input tensor as an array of its declared shape."""
    shape = _shape(tensor, where)
    count = math.prod(shape)
    datatype = tensor.datatype
    if datatype == "BYTES":
        if raw is not None:
            values = decode_bytes_elements(raw, count, where)
        else:
            values = np.asarray([b.decode("utf-8", errors="replace") for b in tensor.contents.bytes_contents], dtype=str)
    elif datatype in DATATYPES:
        dtype, field = _DTYPE[datatype], DATATYPES[datatype][1]
        if raw is not None:
            itemsize = dtype.itemsize
            if len(raw) != count * itemsize:
                raise InvalidArgument(
                    f"{where}: raw contents hold {len(raw)} bytes, shape {list(shape)} of {datatype} needs {count * itemsize}"
                )
            values = np.frombuffer(raw, dtype=dtype)
        elif field:
            values = np.asarray(getattr(tensor.contents, field), dtype=dtype)
        else:
            raise InvalidArgument(f"{where}: {datatype} needs raw contents (the protocol has no typed field for it)")
    else:
        raise InvalidArgument(f"{where}.datatype: unsupported {datatype!r}; use one of {', '.join([*DATATYPES, 'BYTES'])}")
    if values.size != count:
        raise InvalidArgument(f"{where}: {values.size} values for shape {list(shape)} ({count} expected)")
    return values.reshape(shape)


def inputs_by_name(request: oip.ModelInferRequest) -> dict[str, np.ndarray]:
    """Every input tensor of a request, decoded, by name."""
    raw = request.raw_input_contents
    if raw and len(raw) != len(request.inputs):
        raise InvalidArgument(
            f"raw_input_contents: {len(raw)} entries for {len(request.inputs)} inputs; send one per input or none"
        )
    arrays: dict[str, np.ndarray] = {}
    for i, tensor in enumerate(request.inputs):
        where = f"inputs[{i}] ({tensor.name!r})"
        if not tensor.name:
            raise InvalidArgument(f"inputs[{i}].name: must not be empty")
        if tensor.name in arrays:
            raise InvalidArgument(f"{where}: the input is given twice")
        arrays[tensor.name] = input_array(tensor, raw[i] if raw else None, where)
    return arrays


def output_tensor(name: str, values: np.ndarray, datatype: str, raw: bool, response: oip.ModelInferResponse) -> None:
    """Append one output to `response`, as raw contents or typed contents."""
    tensor = response.outputs.add(name=name, datatype=datatype, shape=values.shape)
    array = values if values.dtype == _DTYPE[datatype] else values.astype(_DTYPE[datatype])
    if raw:
        response.raw_output_contents.append(array.tobytes())
    else:
        getattr(tensor.contents, DATATYPES[datatype][1]).extend(array.ravel().tolist())
