"""Write ONNX model files without the onnx package: the few protobuf messages a graph needs, encoded by hand.

The installed app has ONNX Runtime but not the `onnx` package (a train-side dependency), and a model file
is a protobuf message (onnx/onnx.proto). Only what graphs.py uses is here: ModelProto, GraphProto,
NodeProto, AttributeProto (ints, floats, int, float, tensor), TensorProto (raw_data), ValueInfoProto.

The file is streamed: every message's length is known before its bytes are written, so the weights go
from their arrays to the file one at a time and a model needs no second copy of itself in memory.
Field numbers are onnx.proto's; tests read the files back with the onnx package and its checker.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import BinaryIO

import numpy as np

# ONNX Runtime 1.2x-1.3x reads IR versions up to 10-13; newer onnx packages write 14 by default.
IR_VERSION = 10
OPSET = 18

# TensorProto.DataType
FLOAT, UINT8, INT8, INT32, INT64, BOOL, FLOAT16 = 1, 2, 3, 6, 7, 9, 10
_DATA_TYPES = {np.dtype("<f4"): FLOAT, np.dtype("u1"): UINT8, np.dtype("i1"): INT8, np.dtype("<i4"): INT32,
               np.dtype("<i8"): INT64, np.dtype("?"): BOOL, np.dtype("<f2"): FLOAT16}
# AttributeProto.AttributeType
_ATTR_FLOAT, _ATTR_INT, _ATTR_STRING, _ATTR_TENSOR, _ATTR_FLOATS, _ATTR_INTS = 1, 2, 3, 4, 6, 7

_VARINT, _FIXED32, _BYTES = 0, 5, 2


def _varint(value: int) -> bytes:
    value &= (1 << 64) - 1  # negative int64s are ten bytes of two's complement
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _key(number: int, wire: int) -> bytes:
    return _varint(number << 3 | wire)


def _int(number: int, value: int) -> bytes:
    return _key(number, _VARINT) + _varint(value)


def _float(number: int, value: float) -> bytes:
    return _key(number, _FIXED32) + struct.pack("<f", value)


def _bytes(number: int, value: bytes) -> bytes:
    return _key(number, _BYTES) + _varint(len(value)) + value


def _text(number: int, value: str) -> bytes:
    return _bytes(number, value.encode("utf-8"))


def data_type(dtype: np.dtype) -> int:
    try:
        return _DATA_TYPES[np.dtype(dtype)]
    except KeyError:
        raise ValueError(f"no ONNX tensor type for {dtype}") from None


@dataclass
class Initializer:
    """A weight: its name, dtype and shape now, its values only when the file is written (`values()`)."""

    name: str
    dtype: np.dtype
    shape: tuple[int, ...]
    values: Callable[[], np.ndarray]

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) * np.dtype(self.dtype).itemsize

    def _head(self) -> bytes:
        """The TensorProto's fields before raw_data's bytes."""
        dims = b"".join(_int(1, n) for n in self.shape)
        return (dims + _int(2, data_type(self.dtype)) + _text(8, self.name)
                + _key(9, _BYTES) + _varint(self.nbytes))

    def message_size(self) -> int:
        return len(self._head()) + self.nbytes

    def write(self, out: BinaryIO) -> None:
        values = np.asarray(self.values())
        if values.shape != self.shape or values.dtype != np.dtype(self.dtype):
            raise ValueError(f"initializer {self.name}: got {values.dtype}{list(values.shape)}, "
                             f"declared {np.dtype(self.dtype)}{list(self.shape)}")
        out.write(self._head())
        out.write(np.ascontiguousarray(values).astype(values.dtype.newbyteorder("<"), copy=False).tobytes())


def constant(name: str, values) -> Initializer:
    """A small initializer given by value (shapes, scalars, masks)."""
    array = np.asarray(values)
    return Initializer(name, array.dtype, array.shape, lambda: array)


def _attribute(name: str, value) -> bytes:
    body = _text(1, name)
    if isinstance(value, bool) or isinstance(value, int):
        body += _int(3, int(value)) + _int(20, _ATTR_INT)
    elif isinstance(value, float):
        body += _float(2, value) + _int(20, _ATTR_FLOAT)
    elif isinstance(value, str):
        body += _bytes(4, value.encode("utf-8")) + _int(20, _ATTR_STRING)
    elif isinstance(value, (list, tuple)) and all(isinstance(v, int) for v in value):
        body += b"".join(_int(8, v) for v in value) + _int(20, _ATTR_INTS)
    elif isinstance(value, (list, tuple)):
        body += b"".join(_float(7, float(v)) for v in value) + _int(20, _ATTR_FLOATS)
    else:
        raise TypeError(f"attribute {name}: unsupported value {value!r}")
    return body


@dataclass
class Node:
    op: str
    inputs: list[str]
    outputs: list[str]
    name: str
    attributes: dict = field(default_factory=dict)

    def encode(self) -> bytes:
        body = b"".join(_text(1, i) for i in self.inputs) + b"".join(_text(2, o) for o in self.outputs)
        body += _text(3, self.name) + _text(4, self.op)
        body += b"".join(_bytes(5, _attribute(k, v)) for k, v in self.attributes.items())
        return body


def value_info(name: str, elem_type: int, dims: Iterable[int | str]) -> bytes:
    """A graph input or output: a tensor of `elem_type` whose dims are sizes or symbolic names."""
    shape = b"".join(_bytes(1, _text(2, d) if isinstance(d, str) else _int(1, d)) for d in dims)
    tensor_type = _int(1, elem_type) + _bytes(2, shape)
    return _text(1, name) + _bytes(2, _bytes(1, tensor_type))


def write_model(out: BinaryIO, *, name: str, nodes: list[Node], initializers: list[Initializer],
                inputs: list[bytes], outputs: list[bytes], producer: str, producer_version: str) -> None:
    """A ModelProto with one graph, its initializers stored inline (a graph file must stay under protobuf's
    2 GiB; callers check)."""
    graph_head = b"".join(_bytes(1, node.encode()) for node in nodes) + _text(2, name)
    graph_tail = b"".join(_bytes(11, i) for i in inputs) + b"".join(_bytes(12, o) for o in outputs)
    sizes = [init.message_size() for init in initializers]
    graph_size = len(graph_head) + len(graph_tail) + sum(
        len(_key(5, _BYTES)) + len(_varint(size)) + size for size in sizes)
    out.write(_int(1, IR_VERSION) + _text(2, producer) + _text(3, producer_version))
    out.write(_bytes(8, _text(1, "") + _int(2, OPSET)))
    out.write(_key(7, _BYTES) + _varint(graph_size))
    out.write(graph_head)
    for init, size in zip(initializers, sizes):
        out.write(_key(5, _BYTES) + _varint(size))
        init.write(out)
    out.write(graph_tail)


def graph_size(initializers: list[Initializer]) -> int:
    """Bytes the weights take in the file (to keep a graph within protobuf's 2 GiB)."""
    return sum(init.nbytes for init in initializers)
