"""PyTorch's zip archives without torch: torch.save checkpoints (PyTorch 1.6 and later) and TorchScript
archives, whose `data.pkl` is a pickle that rebuilds tensors from the storages beside it (`data/<key>`).

The pickle goes through a restricted unpickler that builds numpy arrays over those storages and inert
placeholders for TorchScript's module records, and refuses every other global before it is imported or
called: nothing from a file is ever run. A TorchScript archive's parameter and buffer names come from the
`__parameters__` / `__buffers__` lines of its code, read as text.
"""

from __future__ import annotations

import io
import pickle
import re
import struct
import zipfile
from collections import OrderedDict

import numpy as np

_MAX_PICKLE_BYTES = 256 * 2**20  # data.pkl of a real model is tens of kB; refuse absurd ones
_MAX_CODE_BYTES = 256 * 2**20


class Refusal(Exception):
    """A problem with the file, in one line without its path (the reader adds it)."""


# numpy has no bfloat16: such tensors are read as this two-byte record type (the raw bits), which float32()
# widens.
BFLOAT16 = np.dtype([("bfloat16", "<u2")])

def bfloat16_to_float32(bits: np.ndarray) -> np.ndarray:
    return (bits.view("<u2").astype(np.uint32) << 16).view(np.float32)


_STORAGE_DTYPES = {
    "HalfStorage": np.dtype("<f2"), "FloatStorage": np.dtype("<f4"), "DoubleStorage": np.dtype("<f8"),
    "BFloat16Storage": BFLOAT16, "LongStorage": np.dtype("<i8"), "IntStorage": np.dtype("<i4"),
    "ShortStorage": np.dtype("<i2"), "CharStorage": np.dtype("i1"), "ByteStorage": np.dtype("u1"),
    "BoolStorage": np.dtype("?"),
}


def torchscript_prefix(archive: zipfile.ZipFile) -> str | None:
    """The archive's top folder when it is a TorchScript archive (code/ or constants.pkl inside)."""
    for name in archive.namelist():
        parts = name.split("/")
        if len(parts) >= 2 and (parts[1] == "code" or (len(parts) == 2 and parts[1] == "constants.pkl")):
            return parts[0]
    return None


class _StorageType:
    __slots__ = ("name", "dtype")

    def __init__(self, name: str, dtype: np.dtype):
        self.name, self.dtype = name, dtype


class _Storage:
    """A storage read from the archive: a flat array of its elements."""

    __slots__ = ("flat",)

    def __init__(self, flat: np.ndarray):
        self.flat = flat


class _ScriptObject:
    """Inert stand-in for a TorchScript class instance: records the class name and its state."""

    _qualname = "?"

    def __new__(cls, *args, **kwargs):
        obj = object.__new__(cls)
        obj.__dict__["state"] = None
        obj.__dict__["args"] = args
        return obj

    def __init__(self, *args, **kwargs):
        pass

    def __setstate__(self, state):
        self.__dict__["state"] = state

    @property
    def qualname(self) -> str:
        return type(self)._qualname


class _ArchiveUnpickler(pickle.Unpickler):
    """data.pkl of a PyTorch zip archive (torch.save or TorchScript): builds numpy arrays and inert
    placeholders only; any other global is refused before it is imported or called."""

    def __init__(self, file, archive: zipfile.ZipFile, prefix: str):
        super().__init__(file)
        self._archive = archive
        self._prefix = prefix
        self._storages: dict[str, _Storage] = {}
        self._placeholders: dict[str, type] = {}
        self._storage_types = {name: _StorageType(name, dtype) for name, dtype in _STORAGE_DTYPES.items()}
        # Fresh bound methods per load: nothing a pickle does to them outlives this unpickler.
        self._allowed = {
            ("torch._utils", "_rebuild_tensor_v2"): self._rebuild_tensor_v2,
            ("torch._utils", "_rebuild_tensor"): self._rebuild_tensor,
            ("torch._utils", "_rebuild_parameter"): self._rebuild_parameter,
            ("collections", "OrderedDict"): self._ordered_dict,
            ("torch.jit._pickle", "build_intlist"): self._identity,
            ("torch.jit._pickle", "build_doublelist"): self._identity,
            ("torch.jit._pickle", "build_boollist"): self._identity,
            ("torch.jit._pickle", "build_tensorlist"): self._identity,
            ("torch.jit._pickle", "restore_type_tag"): self._restore_type_tag,
        }

    def find_class(self, module: str, name: str):
        allowed = self._allowed.get((module, name))
        if allowed is not None:
            return allowed
        if module == "torch" and name in self._storage_types:
            return self._storage_types[name]
        if module == "__torch__" or module.startswith("__torch__."):
            qualname = f"{module}.{name}"
            if module.startswith("__torch__.torch.classes"):
                raise Refusal(f"TorchScript archive uses a custom C++ class ({qualname}, e.g. quantized "
                               "or packed weights); not supported")
            cls = self._placeholders.get(qualname)
            if cls is None:
                cls = type("ScriptObject", (_ScriptObject,), {"_qualname": qualname})
                self._placeholders[qualname] = cls
            return cls
        raise Refusal(f"refused: its data.pkl would import {module}.{name}, which is not a tensor "
                       "or module record (nothing was run); the file is unsafe or not a CLIP archive")

    def persistent_load(self, pid):
        if (not isinstance(pid, tuple) or len(pid) != 5 or pid[0] != "storage"
                or not isinstance(pid[1], _StorageType) or not isinstance(pid[2], str)
                or not isinstance(pid[4], int) or isinstance(pid[4], bool) or pid[4] < 0):
            raise Refusal("data.pkl has an unexpected persistent record")
        storage_type, key, numel = pid[1], pid[2], pid[4]
        if not re.fullmatch(r"[0-9A-Za-z_]+", key):
            raise Refusal(f"data.pkl names an invalid storage {key!r}")
        cached = self._storages.get(key)
        if cached is not None:
            if cached.flat.dtype != storage_type.dtype:
                raise Refusal(f"storage {key} is used with two dtypes")
            return cached
        entry = f"{self._prefix}/data/{key}"
        try:
            info = self._archive.getinfo(entry)
        except KeyError:
            raise Refusal(f"is truncated or damaged: storage {entry} is missing") from None
        itemsize = storage_type.dtype.itemsize
        if info.file_size != numel * itemsize:
            raise Refusal(f"is truncated or damaged: storage {entry} holds {info.file_size} bytes, "
                           f"expected {numel * itemsize}")
        buffer = bytearray(info.file_size)
        with self._archive.open(info) as f:
            view, pos = memoryview(buffer), 0
            while pos < len(buffer):
                n = f.readinto(view[pos:])
                if not n:
                    raise Refusal(f"is truncated or damaged: storage {entry} ends early")
                pos += n
        flat = np.frombuffer(buffer, dtype=storage_type.dtype) if numel else np.empty(0, storage_type.dtype)
        storage = _Storage(flat)
        self._storages[key] = storage
        return storage

    # Allowed callables ---------------------------------------------------------------------

    @staticmethod
    def _ints(value, what: str) -> tuple[int, ...]:
        if (not isinstance(value, (tuple, list))
                or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value)):
            raise Refusal(f"data.pkl has an invalid tensor {what}")
        return tuple(value)

    def _rebuild_tensor_v2(self, storage, storage_offset, size, stride, requires_grad=False,
                           backward_hooks=None, metadata=None):
        return self._rebuild_tensor(storage, storage_offset, size, stride)

    def _rebuild_tensor(self, storage, storage_offset, size, stride):
        if not isinstance(storage, _Storage):
            raise Refusal("data.pkl builds a tensor from something that is not a storage")
        if not isinstance(storage_offset, int) or isinstance(storage_offset, bool) or storage_offset < 0:
            raise Refusal("data.pkl has an invalid tensor offset")
        size, stride = self._ints(size, "size"), self._ints(stride, "stride")
        if len(size) != len(stride):
            raise Refusal("data.pkl has a tensor whose size and stride disagree")
        numel = storage.flat.size
        if 0 not in size:
            last = storage_offset + sum((n - 1) * s for n, s in zip(size, stride))
            if last >= numel:
                raise Refusal("data.pkl has a tensor reaching past its storage")
        itemsize = storage.flat.dtype.itemsize
        return np.lib.stride_tricks.as_strided(storage.flat[storage_offset:], size,
                                               tuple(s * itemsize for s in stride), writeable=False)

    @staticmethod
    def _rebuild_parameter(data, requires_grad=False, backward_hooks=None):
        if not isinstance(data, np.ndarray):
            raise Refusal("data.pkl builds a parameter from something that is not a tensor")
        return data

    @staticmethod
    def _ordered_dict(*args):
        if args and not isinstance(args[0], (list, tuple, dict)):
            raise Refusal("data.pkl builds an OrderedDict from an invalid value")
        return OrderedDict(*args[:1])

    @staticmethod
    def _identity(value):
        return value

    @staticmethod
    def _restore_type_tag(value, type_str=None):
        return value


def _module_classes(archive: zipfile.ZipFile, prefix: str) -> tuple[dict[str, tuple | None], str]:
    """{qualified class name: (parameter names, buffer names), or None for a class that is not a
    Module} from the archive's code files, read as text (never run), plus all the code text."""
    classes: dict[str, tuple | None] = {}
    code_root = f"{prefix}/code/"
    texts, total = [], 0
    for info in archive.infolist():
        if not (info.filename.startswith(code_root) and info.filename.endswith(".py")):
            continue
        total += info.file_size
        if total > _MAX_CODE_BYTES:
            raise Refusal("TorchScript archive's code is implausibly large")
        text = archive.read(info).decode("utf-8", errors="replace")
        texts.append(text)
        module = info.filename[len(code_root):-3].replace("/", ".")
        current = None
        for line in text.splitlines():
            match = re.match(r"class (\w+)\((\w+)\):", line)
            if match:
                qualname = f"{module}.{match.group(1)}"
                current = qualname if match.group(2) == "Module" else None
                classes[qualname] = ([], []) if current else None
                continue
            if current is None or not line.startswith("  "):
                if not line.startswith(" "):
                    current = None
                continue
            match = re.match(r"\s+__(parameters|buffers)__ = \[(.*)\]\s*$", line)
            if match:
                names = re.findall(r'"([^"\\]*)"', match.group(2))
                classes[current][0 if match.group(1) == "parameters" else 1].extend(names)
    return classes, "\n".join(texts)


def unpickle_archive(archive: zipfile.ZipFile, prefix: str):
    """What `prefix`/data.pkl holds, its tensors as numpy arrays over the archive's storages."""
    byteorder = f"{prefix}/byteorder"
    if byteorder in archive.namelist():
        order = archive.read(byteorder).decode("ascii", errors="replace").strip()
        if order != "little":
            raise Refusal(f"archive is {order}-endian; only little-endian is supported")
    try:
        info = archive.getinfo(f"{prefix}/data.pkl")
    except KeyError:
        raise Refusal("TorchScript archive has no data.pkl (an older or unknown layout); "
                       "re-save its state_dict() with torch.save") from None
    if info.file_size > _MAX_PICKLE_BYTES:
        raise Refusal("data.pkl is implausibly large")
    unpickler = _ArchiveUnpickler(io.BytesIO(archive.read(info)), archive, prefix)
    try:
        return unpickler.load()
    except Refusal:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, KeyError,
            IndexError, RuntimeError, struct.error, zipfile.BadZipFile, MemoryError) as error:
        raise Refusal(f"data.pkl cannot be read ({type(error).__name__}: "
                       f"{first_line(str(error))})") from None


def read_torchscript(archive: zipfile.ZipFile, prefix: str) -> tuple[dict[str, np.ndarray], str]:
    classes, code = _module_classes(archive, prefix)
    root = unpickle_archive(archive, prefix)
    if not isinstance(root, _ScriptObject):
        raise Refusal("TorchScript data.pkl does not hold a module")
    return _collect(root, classes), code


def _collect(root: _ScriptObject, classes: dict[str, tuple | None]) -> dict[str, np.ndarray]:
    """Parameters and buffers under their dotted names, in state_dict order."""
    out: dict[str, np.ndarray] = {}
    ancestors: set[int] = set()

    def walk(obj: _ScriptObject, prefix: str, depth: int) -> None:
        if id(obj) in ancestors or depth > 64:
            raise Refusal("TorchScript module tree has a cycle or is implausibly deep")
        if obj.qualname not in classes:
            raise Refusal(f"TorchScript archive has no code for class {obj.qualname}; "
                           "cannot tell its parameters from other attributes")
        entry = classes[obj.qualname]
        if entry is None:
            return  # a scripted non-Module class: holds no parameters
        ancestors.add(id(obj))
        state = obj.state
        if not isinstance(state, dict):
            raise Refusal(f"TorchScript module {prefix.rstrip('.') or '(root)'} has no attribute table")
        params, buffers = entry
        for name in params + buffers:
            value = state.get(name)
            if value is None:
                continue  # e.g. an Optional bias that is None
            if not isinstance(value, np.ndarray):
                raise Refusal(f"TorchScript parameter {prefix}{name} is not a tensor")
            out[prefix + name] = value
        for name, value in state.items():
            if isinstance(value, _ScriptObject):
                walk(value, f"{prefix}{name}.", depth + 1)
        ancestors.discard(id(obj))

    if classes.get(root.qualname, ()) is None:
        raise Refusal("TorchScript data.pkl does not hold a module")
    walk(root, "", 0)
    return out


def activation_from_code(code: str) -> str | None:
    """What the archive's code says about the MLP activation, when it says one thing only.

    Exact GELU shows as `torch.gelu(`; QuickGELU as a QuickGELU class or x * sigmoid(x * c). A
    heuristic on code text: None when neither or both are seen.
    """
    gelu = re.search(r"\btorch\.gelu\(", code) is not None
    quick = (re.search(r"\bclass QuickGELU\(", code) is not None
             or re.search(r"torch\.sigmoid\(torch\.mul\(", code) is not None)
    if gelu == quick:
        return None
    return "gelu" if gelu else "quick_gelu"


def first_line(text: str) -> str:
    for line in text.strip().splitlines():
        if line.strip():
            return line.strip()[:200]
    return "no details"
