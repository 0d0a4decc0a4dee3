"""The first pass of a search: int8 dot products of one query with every stored vector, on ONNX Runtime.

numpy has no fast int8 (or float16) matrix-vector product: converting 1M x 512 float16 vectors to float32
costs ~0.7-1.4 ns per value here, so a full float16 scan of a million photos takes 0.6-1 s. ONNX
Runtime's MatMulInteger multiplies uint8 rows by an int8 vector with SIMD integer kernels on all cores
and reads half the bytes. The graph is one node, written here as protobuf bytes because the run side
has no `onnx` package.

The int8 side (the query) is kept within [-63, 63]: without VNNI, x86 kernels add pairs of u8*s8
products in saturating int16, and 2 * 255 * 63 < 32767 keeps those sums exact (as ONNX Runtime's
`reduce_range` does for weights).
"""

from __future__ import annotations

import threading

import numpy as np

QUERY_LIMIT = 63  # |int8 query value|, see above
CODE_ZERO = 128  # stored codes are int8 values + 128, as uint8

_UINT8, _INT8, _INT32 = 2, 3, 6  # onnx.TensorProto element types
_IR_VERSION, _OPSET = 8, 13


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _field(number: int, payload: bytes | str | int) -> bytes:
    """One protobuf field: varint for ints, length-delimited for bytes and strings."""
    if isinstance(payload, int):
        return _varint(number << 3) + _varint(payload)
    if isinstance(payload, str):
        payload = payload.encode()
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _value_info(name: str, element_type: int, dims: tuple[str | int, ...]) -> bytes:
    shape = b"".join(_field(1, _field(2, dim) if isinstance(dim, str) else _field(1, dim)) for dim in dims)
    tensor_type = _field(1, element_type) + _field(2, shape)
    return _field(1, name) + _field(2, _field(1, tensor_type))


def matmul_integer_model() -> bytes:
    """ONNX model: scores (rows, queries) int32 = (codes uint8 (rows, dim) - zero) @ query int8 (dim, queries)."""
    node = b"".join(_field(1, name) for name in ("codes", "query", "zero")) + _field(2, "scores") \
        + _field(3, "scan") + _field(4, "MatMulInteger")
    graph = (_field(1, node) + _field(2, "coarse_scan")
             + _field(11, _value_info("codes", _UINT8, ("rows", "dim")))
             + _field(11, _value_info("query", _INT8, ("dim", "queries")))
             + _field(11, _value_info("zero", _UINT8, ()))
             + _field(12, _value_info("scores", _INT32, ("rows", "queries"))))
    return _field(1, _IR_VERSION) + _field(8, _field(2, _OPSET)) + _field(2, "clipdesk") + _field(7, graph)


class CoarseScanner:
    """int32 dot products of uint8 codes (zero point 128) with int8 queries; safe to share between threads."""

    # Rows per ONNX Runtime call: bounds the int32 output and lets a long scan be split without copying.
    BLOCK_ROWS = 1 << 18

    def __init__(self, threads: int | None = None):
        import onnxruntime as ort

        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        options.log_severity_level = 3
        # No busy-waiting between calls: searches are sporadic, and spinning threads would take the
        # cores from the text encoder and the GUI (and measured no faster on 2 shared cores).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self._session = ort.InferenceSession(matmul_integer_model(), options, providers=["CPUExecutionProvider"])
        self._zero = np.array(CODE_ZERO, np.uint8)

    def scan(self, codes: np.ndarray, query: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """codes uint8 (N, D), query int8 (D,) or (D, Q) -> int32 (N,) or (N, Q)."""
        single = query.ndim == 1
        query = np.ascontiguousarray(query.reshape(len(query), -1), np.int8)
        if np.abs(query.astype(np.int16)).max(initial=0) > QUERY_LIMIT:
            raise ValueError(f"query values must lie within [-{QUERY_LIMIT}, {QUERY_LIMIT}]")
        rows = len(codes)
        result = out if out is not None else np.empty((rows, query.shape[1]), np.int32)
        result = result.reshape(rows, query.shape[1])
        for start in range(0, rows, self.BLOCK_ROWS):
            stop = min(start + self.BLOCK_ROWS, rows)
            block = np.ascontiguousarray(codes[start:stop])
            result[start:stop] = self._session.run(None, {"codes": block, "query": query, "zero": self._zero})[0]
        return result[:, 0] if single else result


_shared: CoarseScanner | None = None
_shared_lock = threading.Lock()


def shared_scanner() -> CoarseScanner:
    """One session per process: creating it costs a few milliseconds and some memory."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = CoarseScanner()
        return _shared
