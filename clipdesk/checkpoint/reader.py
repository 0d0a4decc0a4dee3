"""Read CLIP checkpoints of every supported format, safely and without torch, into an OpenAI-layout
state dict of numpy arrays.

Formats (`Checkpoint.source_format`):
  "openai-torchscript"  OpenAI's released TorchScript archives. Read WITHOUT torch.jit.load: data.pkl
                        goes through a restricted unpickler that builds arrays and inert placeholders
                        and refuses every other global; parameter/buffer names come from the
                        `__parameters__` / `__buffers__` lines of the archive's code, read as text.
  "state-dict"          torch.save'd dicts (.pt/.pth/.bin): the zip format (PyTorch 1.6 and later) through
                        the same restricted unpickler; OpenAI fp16 state dicts, OpenCLIP checkpoints
                        (`state_dict`/`model`/`module` wrappers, `module.` / `_orig_mod.` prefixes). The
                        legacy format needs torch.load(weights_only=True): the caller passes it in
                        (clipdesk/model/checkpoints.py) where torch is installed.
  "safetensors"         .safetensors files (OpenCLIP layout), clipdesk's trainer's included: their
                        metadata (weights_format.py) gives the exact activation and head counts.
  "huggingface"         transformers CLIPModel folders (config.json + model.safetensors,
                        pytorch_model.bin or a sharded *.index.json), converted by hf_names.

Nothing from a file is ever executed, and nothing is written. Every failure is a CheckpointError
whose message is one line: "<path>: <what is wrong>[; what to do]".
"""

from __future__ import annotations

import codecs
import io
import json
import mmap
import pickle
import re
import struct
import zipfile
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from clipdesk.checkpoint.architecture import config_from_state_dict
from clipdesk.errors import CheckpointError
from clipdesk.checkpoint.hf_names import ConversionError, convert_hf_clip, is_hf_clip_state_dict
from clipdesk.checkpoint.weights_format import read_weights_metadata

SOURCE_FORMATS = ("openai-torchscript", "state-dict", "safetensors", "huggingface")

# Plain numbers OpenAI's TorchScript models hold beside the weights; derivable from shapes.
METADATA_KEYS = ("input_resolution", "context_length", "vocab_size")
# Buffers some implementations register (or TorchScript records) that follow from the config.
_DERIVED_BUFFERS = ("attn_mask",)
_WRAPPER_KEYS = ("state_dict", "model", "module")
_PREFIXES = ("module.", "_orig_mod.")
_SHOWN = 3
_MAX_PICKLE_BYTES = 256 * 2**20  # data.pkl of a real model is tens of kB; refuse absurd ones
_MAX_CODE_BYTES = 256 * 2**20


@dataclass
class Checkpoint:
    """Weights in OpenAI's layout, ready for `build_model(state_dict, activation, vision_heads=...,
    text_heads=...)`."""

    # OpenAI key names; tensors as the file stores them (often read-only views of it): float32() widens one
    state_dict: dict[str, np.ndarray]
    activation: str | None  # "quick_gelu" / "gelu" when the file says so, else None
    source_format: str  # one of SOURCE_FORMATS
    source_dtype: str  # narrowest floating dtype in the file, e.g. "float16"
    vision_heads: int | None = None  # None: width // 64 (OpenAI's rule)
    text_heads: int | None = None

    @property
    def build_overrides(self) -> dict[str, int]:
        """Keyword arguments for build_model: the head counts the file states, if any."""
        return {name: value for name, value in (("vision_heads", self.vision_heads),
                                                ("text_heads", self.text_heads)) if value is not None}


class _Refusal(Exception):
    """Internal: a problem with the file; read_checkpoint prefixes the path."""


# numpy has no bfloat16: such tensors are read as this two-byte record type (the raw bits), which float32()
# widens.
BFLOAT16 = np.dtype([("bfloat16", "<u2")])

# Reads PyTorch's legacy (pre-1.6) format into plain containers of numpy arrays; only torch can, so the
# torch side passes one in (clipdesk/model/checkpoints.py). It raises CheckpointError for a bad file.
LegacyLoader = Callable[[Path], object]
# A pickle that starts by pickling this number is PyTorch's legacy format (torch/serialization.py).
_LEGACY_MAGIC = pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2)[2:]


def bfloat16_to_float32(bits: np.ndarray) -> np.ndarray:
    return (bits.view("<u2").astype(np.uint32) << 16).view(np.float32)


def read_checkpoint(path: str | Path, legacy_loader: LegacyLoader | None = None) -> Checkpoint:
    """Read a CLIP checkpoint file or folder. Raises CheckpointError (one line) on any problem."""
    path = Path(path)
    try:
        if not path.exists():
            raise _Refusal("no such file or folder")
        if path.is_dir():
            return _load_folder(path, legacy_loader)
        if not path.is_file():
            raise _Refusal("not a regular file")
        return _load_file(path, legacy_loader)
    except (_Refusal, ConversionError) as problem:
        raise CheckpointError(f"{path}: {_one_line(str(problem))}") from None
    except CheckpointError as error:
        message = str(error)
        if not message.startswith(str(path)):
            message = f"{path}: {message}"
        raise CheckpointError(_one_line(message)) from None
    except OSError as error:
        raise CheckpointError(f"{path}: cannot be read ({_one_line(error.strerror or str(error))})") from None


# ---------------------------------------------------------------------------------------- files


def _load_file(path: Path, legacy_loader: LegacyLoader | None) -> Checkpoint:
    kind = _sniff(path)
    if kind == "zip":
        with _open_zip(path) as archive:
            prefix = _torchscript_prefix(archive)
            if prefix is not None:
                raw, code = _read_torchscript(archive, prefix)
                return _finish(raw, activation=_activation_from_code(code),
                               source_format="openai-torchscript")
        return _from_loaded(path, _read_torch_file(path, legacy_loader), "state-dict")
    if kind == "pickle":
        return _from_loaded(path, _read_torch_file(path, legacy_loader), "state-dict")
    if kind == "safetensors":
        tensors, metadata = _safetensors_load(path)
        checkpoint = _from_loaded(path, tensors, "safetensors")
        _apply_recorded_config(metadata, checkpoint)
        return checkpoint
    raise _Refusal(kind)


def _read_torch_file(path: Path, legacy_loader: LegacyLoader | None):
    """What a torch.save'd file holds, with numpy arrays for its tensors."""
    with open(path, "rb") as f:
        head = f.read(len(_LEGACY_MAGIC) + 2)
    if head[:2] == b"\x80\x02" and head[2:] == _LEGACY_MAGIC:
        if legacy_loader is None:
            raise _Refusal("is in PyTorch's legacy format (before PyTorch 1.6), which needs clipdesk's training "
                           "components (pip install 'clipdesk[train]'); or re-save it with torch.save or as "
                           ".safetensors")
        return legacy_loader(path)
    if head[:1] == b"\x80":
        raise _Refusal("is a Python pickle but not a PyTorch checkpoint; not loaded")
    with _open_zip(path) as archive:
        pickles = [name for name in archive.namelist() if name.count("/") == 1 and name.endswith("/data.pkl")]
        if not pickles:
            raise _Refusal("is a zip archive but not a PyTorch checkpoint (no data.pkl inside)")
        return _unpickle_archive(archive, pickles[0].split("/")[0])


def _sniff(path: Path) -> str:
    """'zip', 'pickle', 'safetensors', or a sentence saying what the file is instead."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(512)
    if not head:
        return "is empty, not a checkpoint"
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return "zip"
    if len(head) >= 9:
        (header_len,) = struct.unpack("<Q", head[:8])
        if head[8:9] == b"{":
            if 8 + header_len > size:
                return "is a truncated safetensors file (its header runs past the end)"
            return "safetensors"
    if head[:1] == b"\x80":  # pickle PROTO opcode: torch's legacy format or a plain pickle
        return "pickle"
    for magic, what in ((b"\x89PNG", "a PNG image"), (b"\xff\xd8\xff", "a JPEG image"),
                        (b"GIF8", "a GIF image"), (b"\x1f\x8b", "a gzip file"),
                        (b"%PDF", "a PDF file"), (b"\x89HDF", "an HDF5 (Keras/TF) file")):
        if head.startswith(magic):
            return f"is {what}, not a checkpoint"
    if path.suffix.lower() == ".onnx":
        return "is an ONNX model, not a PyTorch checkpoint"
    if b"\x00" not in head:
        try:  # incremental: a multi-byte character cut at byte 512 is not an error
            text = codecs.getincrementaldecoder("utf-8")().decode(head, final=False).lstrip()
        except UnicodeDecodeError:
            text = None
        if text is not None:
            if text.startswith(("{", "[")):
                return ("is a JSON file, not a checkpoint; for a Hugging Face model give the folder "
                        "that holds config.json")
            return "is a text file, not a checkpoint"
    return "is not a checkpoint (unrecognised format: not PyTorch, safetensors or TorchScript)"


def _open_zip(path: Path) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, EOFError, ValueError) as error:
        raise _Refusal(f"is truncated or damaged (bad zip archive: {error})") from None


_SAFETENSORS_DTYPES = {
    "F64": np.dtype("<f8"), "F32": np.dtype("<f4"), "F16": np.dtype("<f2"), "BF16": BFLOAT16,
    "I64": np.dtype("<i8"), "I32": np.dtype("<i4"), "I16": np.dtype("<i2"), "I8": np.dtype("i1"),
    "U8": np.dtype("u1"), "BOOL": np.dtype("?"),
}
_MAX_SAFETENSORS_HEADER = 100 * 2**20  # the format's own limit


def _safetensors_load(path: Path) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """A safetensors file's tensors (read-only arrays over a memory map: nothing is copied until used)
    and its metadata. The format: an 8-byte little-endian header length, a JSON header naming each
    tensor's dtype, shape and byte range, then the bytes."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        (header_len,) = struct.unpack("<Q", f.read(8))
        if header_len > _MAX_SAFETENSORS_HEADER or 8 + header_len > size:
            raise _Refusal("is a truncated safetensors file (its header runs past the end)")
        try:
            header = json.loads(f.read(header_len))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise _Refusal(f"is truncated or damaged (safetensors header: {_first_line(str(error))})") from None
        if not isinstance(header, dict):
            raise _Refusal("is truncated or damaged (safetensors header is not a JSON object)")
        data = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) if size > 8 + header_len else b""
    metadata = header.pop("__metadata__", None) or {}
    body = 8 + header_len
    tensors = {}
    for name, entry in header.items():
        try:
            dtype = _SAFETENSORS_DTYPES[entry["dtype"]]
            shape = tuple(int(n) for n in entry["shape"])
            begin, end = (int(n) for n in entry["data_offsets"])
        except (KeyError, TypeError, ValueError):
            raise _Refusal(f"is truncated or damaged (safetensors entry {name!r} is invalid or has an "
                           "unsupported dtype)") from None
        count = int(np.prod(shape, dtype=np.int64))
        if min(shape, default=0) < 0 or end - begin != count * dtype.itemsize or begin < 0:
            raise _Refusal(f"is truncated or damaged (safetensors entry {name!r} has the wrong size)")
        if body + end > size:
            raise _Refusal(f"is truncated or damaged (safetensors tensor {name!r} runs past the end)")
        tensors[name] = np.frombuffer(data, dtype, count, body + begin).reshape(shape) if count else \
            np.zeros(shape, dtype)
    if not isinstance(metadata, dict):
        metadata = {}
    return tensors, metadata


def _apply_recorded_config(metadata: Mapping[str, str], checkpoint: Checkpoint) -> None:
    """A clipdesk weights file records its exact config: its activation and head counts, not guesses."""
    recorded = read_weights_metadata(metadata)
    if recorded is None:
        return
    config = recorded.config
    found = config_from_state_dict(checkpoint.state_dict, config.activation, vision_heads=config.vision_heads,
                                   text_heads=config.text_heads)
    wrong = [f"{name} {value!r} recorded, {getattr(found, name)!r} in the weights"
             for name, value in vars(config).items() if getattr(found, name) != value]
    if wrong:
        raise _Refusal(f"damaged clipdesk metadata: {'; '.join(wrong[:_SHOWN])}")
    checkpoint.activation = config.activation
    checkpoint.vision_heads, checkpoint.text_heads = config.vision_heads, config.text_heads


# -------------------------------------------------------------------------------------- folders


def _load_folder(folder: Path, legacy_loader: LegacyLoader | None) -> Checkpoint:
    config_path = folder / "config.json"
    hf_weights = _hf_weight_files(folder)
    if config_path.is_file() and hf_weights:
        return _load_hf(folder, config_path, hf_weights, legacy_loader)
    for name, kind in (("open_clip_model.safetensors", "safetensors"),
                       ("open_clip_pytorch_model.bin", "state-dict")):
        weights = folder / name
        if weights.is_file():
            loaded = (_safetensors_load(weights)[0] if kind == "safetensors"
                      else _read_torch_file(weights, legacy_loader))
            checkpoint = _from_loaded(weights, loaded, kind)
            _apply_open_clip_config(folder / "open_clip_config.json", checkpoint)
            return checkpoint
    if config_path.is_file():
        config = _read_json(config_path)
        model_type = config.get("model_type")
        if model_type not in (None, "clip"):
            raise _Refusal(f"is a Hugging Face {model_type!r} model; only CLIP (model_type 'clip') "
                           "is supported")
        others = [p.name for p in folder.iterdir() if p.suffix in (".h5", ".msgpack", ".onnx", ".ckpt")]
        extra = f" (found only {', '.join(sorted(others)[:_SHOWN])})" if others else ""
        raise _Refusal("is a Hugging Face folder without PyTorch weights (model.safetensors, "
                       f"pytorch_model.bin or a sharded *.index.json){extra}")
    if (folder / "manifest.json").is_file():
        raise _Refusal("is a clipdesk model package (ONNX), not a PyTorch checkpoint")
    raise _Refusal("is a folder but not a Hugging Face CLIP model (no config.json); give a checkpoint "
                   "file or a transformers CLIPModel folder")


def _hf_weight_files(folder: Path) -> list[Path] | None:
    for name in ("model.safetensors", "pytorch_model.bin"):
        if (folder / name).is_file():
            return [folder / name]
    for name in ("model.safetensors.index.json", "pytorch_model.bin.index.json"):
        index = folder / name
        if index.is_file():
            weight_map = _read_json(index).get("weight_map")
            if not isinstance(weight_map, Mapping) or not weight_map:
                raise _Refusal(f"{name} has no weight_map")
            shards = []
            for shard in dict.fromkeys(weight_map.values()):
                if (not isinstance(shard, str) or "/" in shard or "\\" in shard
                        or shard in ("", ".", "..")):
                    raise _Refusal(f"{name} names a shard outside the folder: {shard!r}")
                if not (folder / shard).is_file():
                    raise _Refusal(f"shard {shard} named in {name} is missing")
                shards.append(folder / shard)
            return shards
    return None


def _load_hf(folder: Path, config_path: Path, files: list[Path], legacy_loader: LegacyLoader | None
             ) -> Checkpoint:
    config = _read_json(config_path)
    hf_state: dict[str, np.ndarray] = {}
    for file in files:
        if file.name.endswith(".safetensors"):
            part = _safetensors_load(file)[0]
        else:
            part = _read_torch_file(file, legacy_loader)
        if not isinstance(part, Mapping):
            raise _Refusal(f"{file.name} holds a {type(part).__name__}, not a state dict")
        hf_state.update(part)
    source_dtype = _narrowest_dtype(hf_state)
    converted = convert_hf_clip(hf_state, config)
    checkpoint = _finish(converted.state_dict, activation=converted.activation,
                         source_format="huggingface", source_dtype=source_dtype)
    checkpoint.vision_heads = converted.vision_heads
    checkpoint.text_heads = converted.text_heads
    return checkpoint


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise _Refusal(f"{path.name} is not valid JSON ({_first_line(str(error))})") from None
    if not isinstance(data, dict):
        raise _Refusal(f"{path.name} is not a JSON object")
    return data


def _apply_open_clip_config(config_path: Path, checkpoint: Checkpoint) -> None:
    """OpenCLIP hub folders: activation and head counts from open_clip_config.json."""
    if not config_path.is_file():
        return
    model_cfg = _read_json(config_path).get("model_cfg")
    if not isinstance(model_cfg, Mapping):
        return
    vision, text = model_cfg.get("vision_cfg") or {}, model_cfg.get("text_cfg") or {}
    # Behaviour that changes the forward pass without changing the weights' names.
    for section, name, key, fine in (
            (text, "text_cfg", "pool_type", (None, "argmax")),
            (text, "text_cfg", "no_causal_mask", (None, False)),
            (vision, "vision_cfg", "pool_type", (None, "tok")),
            (vision, "vision_cfg", "final_ln_after_pool", (None, False)),
            (vision, "vision_cfg", "attentional_pool", (None, False)),
            (text, "text_cfg", "norm_kwargs", (None, {})),
            (vision, "vision_cfg", "norm_kwargs", (None, {})),
            (text, "text_cfg", "act_kwargs", (None, {})),
            (vision, "vision_cfg", "act_kwargs", (None, {}))):
        if section.get(key) not in fine:
            raise _Refusal(f"unsupported OpenCLIP model: {name}.{key} = {section.get(key)!r}")
    checkpoint.activation = "quick_gelu" if model_cfg.get("quick_gelu") else "gelu"
    head_width = vision.get("head_width", 64)
    width = vision.get("width")
    if isinstance(width, int) and isinstance(head_width, int) and head_width > 0:
        if isinstance(vision.get("layers"), int):
            checkpoint.vision_heads = width // head_width
        else:  # ModifiedResNet: the attention pool works on width * 32 channels
            checkpoint.vision_heads = width * 32 // head_width
    heads = text.get("heads", 8)
    if isinstance(heads, int) and heads > 0:
        checkpoint.text_heads = heads


# ------------------------------------------------------------------------ state dict → Checkpoint


def _from_loaded(path: Path, obj, source_format: str) -> Checkpoint:
    state = _unwrap(obj)
    state = _strip_prefixes(state)
    if is_hf_clip_state_dict(state):
        config_path = path.parent / "config.json"
        if not config_path.is_file():
            raise _Refusal("holds Hugging Face transformers CLIP weights but no config.json is beside "
                           "it; give the model folder")
        source_dtype = _narrowest_dtype(state)
        converted = convert_hf_clip(state, _read_json(config_path))
        checkpoint = _finish(converted.state_dict, activation=converted.activation,
                             source_format="huggingface", source_dtype=source_dtype)
        checkpoint.vision_heads = converted.vision_heads
        checkpoint.text_heads = converted.text_heads
        return checkpoint
    return _finish(state, activation=None, source_format=source_format)


def _unwrap(obj) -> dict:
    for _ in range(3):  # e.g. {"state_dict": {"module": {...}}} at worst
        if not isinstance(obj, Mapping):
            raise _Refusal(f"holds a {type(obj).__name__}, not a state dict")
        inner = next((obj[k] for k in _WRAPPER_KEYS if isinstance(obj.get(k), Mapping)), None)
        if inner is None:
            break
        obj = inner
    tensors = {k: v for k, v in obj.items() if isinstance(v, np.ndarray)}
    if not tensors:
        raise _Refusal("holds a dict without tensors, not a state dict")
    non_string = [k for k in obj if not isinstance(k, str)]
    if non_string:
        raise _Refusal(f"holds a dict keyed by {type(non_string[0]).__name__}, not a state dict")
    # Keep tensors and the plain metadata numbers; anything else means this is not a state dict.
    others = [k for k in obj if k not in tensors and k.rsplit(".", 1)[-1] not in METADATA_KEYS]
    if others:
        shown = ", ".join(others[:_SHOWN])
        raise _Refusal(f"holds a dict mixing tensors with other values ({shown}), not a state dict")
    return dict(obj)


def _strip_prefixes(state: dict) -> dict:
    changed = True
    while changed:
        changed = False
        for prefix in _PREFIXES:
            if state and all(k.startswith(prefix) for k in state):
                state = {k[len(prefix):]: v for k, v in state.items()}
                changed = True
    return state


_BLOCK = (r"(?:attn\.(?:in_proj_weight|in_proj_bias|out_proj\.weight|out_proj\.bias)"
          r"|ln_[12]\.(?:weight|bias)|mlp\.c_(?:fc|proj)\.(?:weight|bias))")
_BN = r"(?:weight|bias|running_mean|running_var|num_batches_tracked)"
_OPENAI_KEY = re.compile(
    "|".join([
        r"(?:positional_embedding|text_projection|logit_scale|token_embedding\.weight"
        r"|ln_final\.(?:weight|bias))",
        r"transformer\.resblocks\.\d+\." + _BLOCK,
        # ViT image tower
        r"visual\.(?:class_embedding|positional_embedding|proj|conv1\.weight"
        r"|ln_pre\.(?:weight|bias)|ln_post\.(?:weight|bias))",
        r"visual\.transformer\.resblocks\.\d+\." + _BLOCK,
        # ModifiedResNet image tower
        r"visual\.conv[123]\.weight",
        r"visual\.bn[123]\." + _BN,
        r"visual\.layer[1-4]\.\d+\.(?:conv[123]\.weight|bn[123]\." + _BN
        + r"|downsample\.0\.weight|downsample\.1\." + _BN + ")",
        r"visual\.attnpool\.(?:positional_embedding|[qkvc]_proj\.(?:weight|bias))",
    ])
)
_REQUIRED = ("token_embedding.weight", "positional_embedding", "ln_final.weight", "text_projection",
             "logit_scale")

# OpenCLIP (and other) layouts that differ from OpenAI's: (test on the key set, what to call it).
_UNSUPPORTED = (
    (lambda k: k.startswith("text_decoder.") or k.startswith("visual.attn_pool."),
     "OpenCLIP CoCa model (text_decoder / attentional pooler)"),
    (lambda k: k == "logit_bias", "SigLIP-style model (logit_bias)"),
    (lambda k: k.startswith("visual.trunk."), "timm image tower (visual.trunk.)"),
    (lambda k: k.startswith("text.transformer.") and not k.startswith("text.transformer.resblocks."),
     "Hugging Face text tower (text.transformer.)"),
    (lambda k: k.startswith("text."), "OpenCLIP CustomTextCLIP (text tower under text.)"),
    (lambda k: ".ls_1." in k or ".ls_2." in k, "layer scale blocks (ls_1 / ls_2)"),
    (lambda k: ".ln_attn." in k or ".mlp.ln." in k or k.endswith(("attn.head_scale", "attn.logit_scale")),
     "NormFormer / scaled-cosine attention blocks"),
    (lambda k: k.startswith(("visual.blocks.", "visual.patch_embed.", "visual.rope")),
     "EVA / timm-style ViT image tower"),
    (lambda k: k.startswith("visual.attnpool.") and k.endswith("in_proj_weight"),
     "packed-projection attention pool"),
)


def _finish(raw: Mapping, activation: str | None, source_format: str,
            source_dtype: str | None = None) -> Checkpoint:
    """Validate an (unwrapped, unprefixed) OpenAI-layout state dict. Tensors stay as stored: a model is
    written one tensor at a time, so widening each as it is written keeps one copy of the weights in memory."""
    state = {k: v for k, v in raw.items() if k not in METADATA_KEYS
             and k.rsplit(".", 1)[-1] not in _DERIVED_BUFFERS}
    for key, value in state.items():
        if not isinstance(value, np.ndarray):
            raise _Refusal(f"{key!r} is a {type(value).__name__}, not a tensor")
    keys = list(state)
    for test, what in _UNSUPPORTED:
        if any(test(k) for k in keys):
            example = next(k for k in keys if test(k))
            raise _Refusal(f"unsupported model layout: {what}, e.g. key {example!r}; clipdesk reads "
                           "OpenAI-layout CLIP (ViT or ModifiedResNet image tower, Transformer text tower)")
    known = [k for k in keys if _OPENAI_KEY.fullmatch(k)]
    if not known:
        shown = ", ".join(repr(k) for k in keys[:_SHOWN])
        raise _Refusal(f"has no CLIP weights (keys like 'token_embedding.weight', 'visual.conv1.weight'); "
                       f"found {shown}")
    unknown = [k for k in keys if not _OPENAI_KEY.fullmatch(k)]
    if unknown:
        more = f" and {len(unknown) - _SHOWN} more" if len(unknown) > _SHOWN else ""
        raise _Refusal(f"unsupported model layout: unexpected keys {', '.join(unknown[:_SHOWN])}{more}")
    missing = [k for k in _REQUIRED if k not in state]
    if not any(k.startswith("visual.") for k in keys):
        missing.append("visual.*")
    if missing:
        raise _Refusal(f"is an incomplete CLIP checkpoint: missing {', '.join(missing)}")
    for key, value in state.items():
        if value.dtype not in _READABLE_DTYPES:
            raise _Refusal(f"{key!r} has unsupported dtype {_dtype_name(value.dtype)}")
    if source_dtype is None:
        source_dtype = _narrowest_dtype(state)
    return Checkpoint(state, activation, source_format, source_dtype)


_FLOATS = (BFLOAT16, np.dtype("<f2"), np.dtype("<f4"), np.dtype("<f8"))  # narrowest first
_READABLE_DTYPES = _FLOATS + tuple(np.dtype(d) for d in ("<i8", "<i4", "<i2", "i1", "u1", "?"))


def _dtype_name(dtype: np.dtype) -> str:
    return "bfloat16" if dtype == BFLOAT16 else {"f2": "float16", "f4": "float32", "f8": "float64"}.get(
        dtype.str[1:], dtype.name)


def float32(value: np.ndarray) -> np.ndarray:
    """A floating tensor of a checkpoint as a new float32 array (bfloat16 included)."""
    if value.dtype == BFLOAT16:
        return bfloat16_to_float32(np.array(value, order="C"))
    return np.array(value, dtype=np.float32, order="C")


def is_floating(value: np.ndarray) -> bool:
    return value.dtype in _FLOATS


def _narrowest_dtype(state: Mapping) -> str:
    """The narrowest floating dtype among the tensors (OpenAI's fp16 releases keep embeddings and
    LayerNorms in fp32 but are "float16" checkpoints)."""
    dtypes = {v.dtype for v in state.values() if isinstance(v, np.ndarray)}
    return _dtype_name(next((d for d in _FLOATS if d in dtypes), np.dtype("<f4")))


# ------------------------------------------------------------------------------- TorchScript

_STORAGE_DTYPES = {
    "HalfStorage": np.dtype("<f2"), "FloatStorage": np.dtype("<f4"), "DoubleStorage": np.dtype("<f8"),
    "BFloat16Storage": BFLOAT16, "LongStorage": np.dtype("<i8"), "IntStorage": np.dtype("<i4"),
    "ShortStorage": np.dtype("<i2"), "CharStorage": np.dtype("i1"), "ByteStorage": np.dtype("u1"),
    "BoolStorage": np.dtype("?"),
}


def _torchscript_prefix(archive: zipfile.ZipFile) -> str | None:
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
                raise _Refusal(f"TorchScript archive uses a custom C++ class ({qualname}, e.g. quantized "
                               "or packed weights); not supported")
            cls = self._placeholders.get(qualname)
            if cls is None:
                cls = type("ScriptObject", (_ScriptObject,), {"_qualname": qualname})
                self._placeholders[qualname] = cls
            return cls
        raise _Refusal(f"refused: its data.pkl would import {module}.{name}, which is not a tensor "
                       "or module record (nothing was run); the file is unsafe or not a CLIP archive")

    def persistent_load(self, pid):
        if (not isinstance(pid, tuple) or len(pid) != 5 or pid[0] != "storage"
                or not isinstance(pid[1], _StorageType) or not isinstance(pid[2], str)
                or not isinstance(pid[4], int) or isinstance(pid[4], bool) or pid[4] < 0):
            raise _Refusal("data.pkl has an unexpected persistent record")
        storage_type, key, numel = pid[1], pid[2], pid[4]
        if not re.fullmatch(r"[0-9A-Za-z_]+", key):
            raise _Refusal(f"data.pkl names an invalid storage {key!r}")
        cached = self._storages.get(key)
        if cached is not None:
            if cached.flat.dtype != storage_type.dtype:
                raise _Refusal(f"storage {key} is used with two dtypes")
            return cached
        entry = f"{self._prefix}/data/{key}"
        try:
            info = self._archive.getinfo(entry)
        except KeyError:
            raise _Refusal(f"is truncated or damaged: storage {entry} is missing") from None
        itemsize = storage_type.dtype.itemsize
        if info.file_size != numel * itemsize:
            raise _Refusal(f"is truncated or damaged: storage {entry} holds {info.file_size} bytes, "
                           f"expected {numel * itemsize}")
        buffer = bytearray(info.file_size)
        with self._archive.open(info) as f:
            view, pos = memoryview(buffer), 0
            while pos < len(buffer):
                n = f.readinto(view[pos:])
                if not n:
                    raise _Refusal(f"is truncated or damaged: storage {entry} ends early")
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
            raise _Refusal(f"data.pkl has an invalid tensor {what}")
        return tuple(value)

    def _rebuild_tensor_v2(self, storage, storage_offset, size, stride, requires_grad=False,
                           backward_hooks=None, metadata=None):
        return self._rebuild_tensor(storage, storage_offset, size, stride)

    def _rebuild_tensor(self, storage, storage_offset, size, stride):
        if not isinstance(storage, _Storage):
            raise _Refusal("data.pkl builds a tensor from something that is not a storage")
        if not isinstance(storage_offset, int) or isinstance(storage_offset, bool) or storage_offset < 0:
            raise _Refusal("data.pkl has an invalid tensor offset")
        size, stride = self._ints(size, "size"), self._ints(stride, "stride")
        if len(size) != len(stride):
            raise _Refusal("data.pkl has a tensor whose size and stride disagree")
        numel = storage.flat.size
        if 0 not in size:
            last = storage_offset + sum((n - 1) * s for n, s in zip(size, stride))
            if last >= numel:
                raise _Refusal("data.pkl has a tensor reaching past its storage")
        itemsize = storage.flat.dtype.itemsize
        return np.lib.stride_tricks.as_strided(storage.flat[storage_offset:], size,
                                               tuple(s * itemsize for s in stride), writeable=False)

    @staticmethod
    def _rebuild_parameter(data, requires_grad=False, backward_hooks=None):
        if not isinstance(data, np.ndarray):
            raise _Refusal("data.pkl builds a parameter from something that is not a tensor")
        return data

    @staticmethod
    def _ordered_dict(*args):
        if args and not isinstance(args[0], (list, tuple, dict)):
            raise _Refusal("data.pkl builds an OrderedDict from an invalid value")
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
            raise _Refusal("TorchScript archive's code is implausibly large")
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


def _unpickle_archive(archive: zipfile.ZipFile, prefix: str):
    """What `prefix`/data.pkl holds, its tensors as numpy arrays over the archive's storages."""
    byteorder = f"{prefix}/byteorder"
    if byteorder in archive.namelist():
        order = archive.read(byteorder).decode("ascii", errors="replace").strip()
        if order != "little":
            raise _Refusal(f"archive is {order}-endian; only little-endian is supported")
    try:
        info = archive.getinfo(f"{prefix}/data.pkl")
    except KeyError:
        raise _Refusal("TorchScript archive has no data.pkl (an older or unknown layout); "
                       "re-save its state_dict() with torch.save") from None
    if info.file_size > _MAX_PICKLE_BYTES:
        raise _Refusal("data.pkl is implausibly large")
    unpickler = _ArchiveUnpickler(io.BytesIO(archive.read(info)), archive, prefix)
    try:
        return unpickler.load()
    except _Refusal:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, KeyError,
            IndexError, RuntimeError, struct.error, zipfile.BadZipFile, MemoryError) as error:
        raise _Refusal(f"data.pkl cannot be read ({type(error).__name__}: "
                       f"{_first_line(str(error))})") from None


def _read_torchscript(archive: zipfile.ZipFile, prefix: str) -> tuple[dict[str, np.ndarray], str]:
    classes, code = _module_classes(archive, prefix)
    root = _unpickle_archive(archive, prefix)
    if not isinstance(root, _ScriptObject):
        raise _Refusal("TorchScript data.pkl does not hold a module")
    return _collect(root, classes), code


def _collect(root: _ScriptObject, classes: dict[str, tuple | None]) -> dict[str, np.ndarray]:
    """Parameters and buffers under their dotted names, in state_dict order."""
    out: dict[str, np.ndarray] = {}
    ancestors: set[int] = set()

    def walk(obj: _ScriptObject, prefix: str, depth: int) -> None:
        if id(obj) in ancestors or depth > 64:
            raise _Refusal("TorchScript module tree has a cycle or is implausibly deep")
        if obj.qualname not in classes:
            raise _Refusal(f"TorchScript archive has no code for class {obj.qualname}; "
                           "cannot tell its parameters from other attributes")
        entry = classes[obj.qualname]
        if entry is None:
            return  # a scripted non-Module class: holds no parameters
        ancestors.add(id(obj))
        state = obj.state
        if not isinstance(state, dict):
            raise _Refusal(f"TorchScript module {prefix.rstrip('.') or '(root)'} has no attribute table")
        params, buffers = entry
        for name in params + buffers:
            value = state.get(name)
            if value is None:
                continue  # e.g. an Optional bias that is None
            if not isinstance(value, np.ndarray):
                raise _Refusal(f"TorchScript parameter {prefix}{name} is not a tensor")
            out[prefix + name] = value
        for name, value in state.items():
            if isinstance(value, _ScriptObject):
                walk(value, f"{prefix}{name}.", depth + 1)
        ancestors.discard(id(obj))

    if classes.get(root.qualname, ()) is None:
        raise _Refusal("TorchScript data.pkl does not hold a module")
    walk(root, "", 0)
    return out


def read_torchscript_state_dict(path: str | Path) -> dict[str, np.ndarray]:
    """A TorchScript archive's parameters and buffers (as `module.state_dict()` would list them,
    non-persistent buffers included), in their stored dtypes, without running anything from it.
    Raises CheckpointError when the file is not a readable TorchScript archive."""
    path = Path(path)
    try:
        if not path.is_file():
            raise _Refusal("no such file")
        with _open_zip(path) as archive:
            prefix = _torchscript_prefix(archive)
            if prefix is None:
                raise _Refusal("is not a TorchScript archive (no code/ or constants.pkl)")
            return _read_torchscript(archive, prefix)[0]
    except _Refusal as problem:
        raise CheckpointError(f"{path}: {_one_line(str(problem))}") from None
    except OSError as error:
        raise CheckpointError(f"{path}: cannot be read ({_one_line(error.strerror or str(error))})") from None


def _activation_from_code(code: str) -> str | None:
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


# ------------------------------------------------------------------------------------ helpers


def _first_line(text: str) -> str:
    for line in text.strip().splitlines():
        if line.strip():
            return line.strip()[:200]
    return "no details"


def _one_line(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= 400 else text[:397] + "..."
