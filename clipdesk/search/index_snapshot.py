"""The vector index saved to the cache folder, so that a new process need not rebuild it from the database.

Rebuilding reads every embedding from SQLite and quantises it: tens of seconds for a million photos on
two cores. A snapshot is opened as a copy-on-write memory map instead (pages are read on first use,
changes stay in the process), then brought up to date from the store's change log like any index.

File layout: 8 bytes of little-endian header length, a JSON header (format, what it was made from, the
change marker it is current to, each array's dtype, shape and offset), then the arrays, each at a 4 KiB
boundary. A snapshot is written beside its final name and renamed into place, so readers see the old
file or the new one, never half of one.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

import numpy as np

from clipdesk import paths
from clipdesk.search.vector_index import VectorIndex

# Bump when VectorIndex's arrays change meaning: older snapshots are then rebuilt, never misread.
FORMAT = 1
_ALIGN = 4096
_LENGTH_BYTES = 8


def snapshot_path(database: Path, model: str) -> Path:
    key = hashlib.sha256(f"{os.path.realpath(database)}\0{model}".encode()).hexdigest()[:20]
    return paths.cache_dir() / "search" / f"{key}.index"


def save_snapshot(path: Path, index: VectorIndex, facts: dict) -> None:
    arrays = index.arrays()
    layout, offset = {}, 0
    for name, array in arrays.items():
        layout[name] = {"dtype": array.dtype.str, "shape": list(array.shape), "offset": offset}
        offset += -(-array.nbytes // _ALIGN) * _ALIGN
    header = json.dumps({"format": FORMAT, **facts, "arrays": layout}).encode()
    data_start = -(-(_LENGTH_BYTES + len(header)) // _ALIGN) * _ALIGN
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(len(header).to_bytes(_LENGTH_BYTES, "little") + header)
            for name, array in arrays.items():
                out.seek(data_start + layout[name]["offset"])
                out.write(np.ascontiguousarray(array).data)
            out.truncate(data_start + offset)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


def load_snapshot(path: Path, resident: bool = False) -> tuple[VectorIndex, dict] | None:
    """(index, header) or None when there is no usable snapshot (missing, damaged, other format).

    By default the arrays are mapped: a one-shot command reads only the pages it needs. `resident` reads
    them into ordinary memory instead, for a process that searches many times (the app). Measured at
    1M x 512: the codes, which every search reads whole, scanned 1.4x slower through the map's 4 KiB
    pages (41-43 against 29-30 ms) than from memory that numpy backs with huge pages, and each query's
    pass 2 touches a few hundred residual rows that a map reads from disk on first use (5-20 ms)."""
    try:
        with open(path, "rb") as source:
            length = int.from_bytes(source.read(_LENGTH_BYTES), "little")
            header = json.loads(source.read(length)) if 0 < length < 1 << 20 else None
            if not isinstance(header, dict) or header.get("format") != FORMAT:
                return None
            data_start = -(-(_LENGTH_BYTES + length) // _ALIGN) * _ALIGN
            size = os.path.getsize(path)
            arrays = {}
            for name in VectorIndex.ARRAY_NAMES:
                info = header["arrays"][name]
                dtype, shape = np.dtype(info["dtype"]), tuple(info["shape"])
                start = data_start + info["offset"]
                if start + dtype.itemsize * int(np.prod(shape)) > size:
                    return None  # truncated
                if resident:
                    arrays[name] = np.empty(shape, dtype)
                    source.seek(start)
                    if source.readinto(memoryview(arrays[name]).cast("B")) != arrays[name].nbytes:
                        return None
                else:
                    # Zero rows cannot be memory-mapped; an empty index snapshot is never written anyway.
                    arrays[name] = np.memmap(path, dtype, "c", start, shape)
        return VectorIndex.from_arrays(arrays), header
    except (OSError, ValueError, KeyError, TypeError):
        return None
