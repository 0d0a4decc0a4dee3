"""Read CLIP checkpoints of every supported format, safely and without torch, into an OpenAI-layout
state dict of numpy arrays.

Formats (`Checkpoint.source_format`):
  "openai-torchscript"  OpenAI's released TorchScript archives, read WITHOUT torch.jit.load: data.pkl
                        goes through a restricted unpickler that builds arrays and inert placeholders
                        and refuses every other global (torch_archive.py).
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
import json
import mmap
import pickle
import re
import struct
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from clipdesk.checkpoint.architecture import config_from_state_dict
from clipdesk.checkpoint.hf_names import ConversionError, convert_hf_clip, is_hf_clip_state_dict
from clipdesk.checkpoint.torch_archive import (
    BFLOAT16, Refusal, activation_from_code, bfloat16_to_float32, first_line, read_torchscript, torchscript_prefix,
    unpickle_archive,
)
from clipdesk.checkpoint.weights_format import read_weights_metadata
from clipdesk.errors import CheckpointError

SOURCE_FORMATS = ("openai-torchscript", "state-dict", "safetensors", "huggingface")

# Plain numbers OpenAI's TorchScript models hold beside the weights; derivable from shapes.
METADATA_KEYS = ("input_resolution", "context_length", "vocab_size")
# Buffers some implementations register (or TorchScript records) that follow from the config.
_DERIVED_BUFFERS = ("attn_mask",)
_WRAPPER_KEYS = ("state_dict", "model", "module")
_PREFIXES = ("module.", "_orig_mod.")
_SHOWN = 3


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


# Reads PyTorch's legacy (pre-1.6) format into plain containers of numpy arrays; only torch can, so the
# torch side passes one in (clipdesk/model/checkpoints.py). It raises CheckpointError for a bad file.
LegacyLoader = Callable[[Path], object]
# A pickle that starts by pickling this number is PyTorch's legacy format (torch/serialization.py).
_LEGACY_MAGIC = pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2)[2:]


def read_checkpoint(path: str | Path, legacy_loader: LegacyLoader | None = None) -> Checkpoint:
    """Read a CLIP checkpoint file or folder. Raises CheckpointError (one line) on any problem."""
    path = Path(path)
    try:
        if not path.exists():
            raise Refusal("no such file or folder")
        if path.is_dir():
            return _load_folder(path, legacy_loader)
        if not path.is_file():
            raise Refusal("not a regular file")
        return _load_file(path, legacy_loader)
    except (Refusal, ConversionError) as problem:
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
            prefix = torchscript_prefix(archive)
            if prefix is not None:
                raw, code = read_torchscript(archive, prefix)
                return _finish(raw, activation=activation_from_code(code),
                               source_format="openai-torchscript")
        return _from_loaded(path, _read_torch_file(path, legacy_loader), "state-dict")
    if kind == "pickle":
        return _from_loaded(path, _read_torch_file(path, legacy_loader), "state-dict")
    if kind == "safetensors":
        tensors, metadata = _safetensors_load(path)
        checkpoint = _from_loaded(path, tensors, "safetensors")
        _apply_recorded_config(metadata, checkpoint)
        return checkpoint
    raise Refusal(kind)


def _read_torch_file(path: Path, legacy_loader: LegacyLoader | None):
    """What a torch.save'd file holds, with numpy arrays for its tensors."""
    with open(path, "rb") as f:
        head = f.read(len(_LEGACY_MAGIC) + 2)
    if head[:2] == b"\x80\x02" and head[2:] == _LEGACY_MAGIC:
        if legacy_loader is None:
            raise Refusal("is in PyTorch's legacy format (before PyTorch 1.6), which needs clipdesk's training "
                           "components (pip install 'clipdesk[train]'); or re-save it with torch.save or as "
                           ".safetensors")
        return legacy_loader(path)
    if head[:1] == b"\x80":
        raise Refusal("is a Python pickle but not a PyTorch checkpoint; not loaded")
    with _open_zip(path) as archive:
        pickles = [name for name in archive.namelist() if name.count("/") == 1 and name.endswith("/data.pkl")]
        if not pickles:
            raise Refusal("is a zip archive but not a PyTorch checkpoint (no data.pkl inside)")
        return unpickle_archive(archive, pickles[0].split("/")[0])


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
        raise Refusal(f"is truncated or damaged (bad zip archive: {error})") from None


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
            raise Refusal("is a truncated safetensors file (its header runs past the end)")
        try:
            header = json.loads(f.read(header_len))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise Refusal(f"is truncated or damaged (safetensors header: {first_line(str(error))})") from None
        if not isinstance(header, dict):
            raise Refusal("is truncated or damaged (safetensors header is not a JSON object)")
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
            raise Refusal(f"is truncated or damaged (safetensors entry {name!r} is invalid or has an "
                           "unsupported dtype)") from None
        count = int(np.prod(shape, dtype=np.int64))
        if min(shape, default=0) < 0 or end - begin != count * dtype.itemsize or begin < 0:
            raise Refusal(f"is truncated or damaged (safetensors entry {name!r} has the wrong size)")
        if body + end > size:
            raise Refusal(f"is truncated or damaged (safetensors tensor {name!r} runs past the end)")
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
        raise Refusal(f"damaged clipdesk metadata: {'; '.join(wrong[:_SHOWN])}")
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
            raise Refusal(f"is a Hugging Face {model_type!r} model; only CLIP (model_type 'clip') "
                           "is supported")
        others = [p.name for p in folder.iterdir() if p.suffix in (".h5", ".msgpack", ".onnx", ".ckpt")]
        extra = f" (found only {', '.join(sorted(others)[:_SHOWN])})" if others else ""
        raise Refusal("is a Hugging Face folder without PyTorch weights (model.safetensors, "
                       f"pytorch_model.bin or a sharded *.index.json){extra}")
    if (folder / "manifest.json").is_file():
        raise Refusal("is a clipdesk model package (ONNX), not a PyTorch checkpoint")
    raise Refusal("is a folder but not a Hugging Face CLIP model (no config.json); give a checkpoint "
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
                raise Refusal(f"{name} has no weight_map")
            shards = []
            for shard in dict.fromkeys(weight_map.values()):
                if (not isinstance(shard, str) or "/" in shard or "\\" in shard
                        or shard in ("", ".", "..")):
                    raise Refusal(f"{name} names a shard outside the folder: {shard!r}")
                if not (folder / shard).is_file():
                    raise Refusal(f"shard {shard} named in {name} is missing")
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
            raise Refusal(f"{file.name} holds a {type(part).__name__}, not a state dict")
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
        raise Refusal(f"{path.name} is not valid JSON ({first_line(str(error))})") from None
    if not isinstance(data, dict):
        raise Refusal(f"{path.name} is not a JSON object")
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
            raise Refusal(f"unsupported OpenCLIP model: {name}.{key} = {section.get(key)!r}")
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
            raise Refusal("holds Hugging Face transformers CLIP weights but no config.json is beside "
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
            raise Refusal(f"holds a {type(obj).__name__}, not a state dict")
        inner = next((obj[k] for k in _WRAPPER_KEYS if isinstance(obj.get(k), Mapping)), None)
        if inner is None:
            break
        obj = inner
    tensors = {k: v for k, v in obj.items() if isinstance(v, np.ndarray)}
    if not tensors:
        raise Refusal("holds a dict without tensors, not a state dict")
    non_string = [k for k in obj if not isinstance(k, str)]
    if non_string:
        raise Refusal(f"holds a dict keyed by {type(non_string[0]).__name__}, not a state dict")
    # Keep tensors and the plain metadata numbers; anything else means this is not a state dict.
    others = [k for k in obj if k not in tensors and k.rsplit(".", 1)[-1] not in METADATA_KEYS]
    if others:
        shown = ", ".join(others[:_SHOWN])
        raise Refusal(f"holds a dict mixing tensors with other values ({shown}), not a state dict")
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
            raise Refusal(f"{key!r} is a {type(value).__name__}, not a tensor")
    keys = list(state)
    for test, what in _UNSUPPORTED:
        if any(test(k) for k in keys):
            example = next(k for k in keys if test(k))
            raise Refusal(f"unsupported model layout: {what}, e.g. key {example!r}; clipdesk reads "
                           "OpenAI-layout CLIP (ViT or ModifiedResNet image tower, Transformer text tower)")
    known = [k for k in keys if _OPENAI_KEY.fullmatch(k)]
    if not known:
        shown = ", ".join(repr(k) for k in keys[:_SHOWN])
        raise Refusal(f"has no CLIP weights (keys like 'token_embedding.weight', 'visual.conv1.weight'); "
                       f"found {shown}")
    unknown = [k for k in keys if not _OPENAI_KEY.fullmatch(k)]
    if unknown:
        more = f" and {len(unknown) - _SHOWN} more" if len(unknown) > _SHOWN else ""
        raise Refusal(f"unsupported model layout: unexpected keys {', '.join(unknown[:_SHOWN])}{more}")
    missing = [k for k in _REQUIRED if k not in state]
    if not any(k.startswith("visual.") for k in keys):
        missing.append("visual.*")
    if missing:
        raise Refusal(f"is an incomplete CLIP checkpoint: missing {', '.join(missing)}")
    for key, value in state.items():
        if value.dtype not in _READABLE_DTYPES:
            raise Refusal(f"{key!r} has unsupported dtype {_dtype_name(value.dtype)}")
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


def read_torchscript_state_dict(path: str | Path) -> dict[str, np.ndarray]:
    """A TorchScript archive's parameters and buffers (as `module.state_dict()` would list them,
    non-persistent buffers included), in their stored dtypes, without running anything from it.
    Raises CheckpointError when the file is not a readable TorchScript archive."""
    path = Path(path)
    try:
        if not path.is_file():
            raise Refusal("no such file")
        with _open_zip(path) as archive:
            prefix = torchscript_prefix(archive)
            if prefix is None:
                raise Refusal("is not a TorchScript archive (no code/ or constants.pkl)")
            return read_torchscript(archive, prefix)[0]
    except Refusal as problem:
        raise CheckpointError(f"{path}: {_one_line(str(problem))}") from None
    except OSError as error:
        raise CheckpointError(f"{path}: cannot be read ({_one_line(error.strerror or str(error))})") from None


# ------------------------------------------------------------------------------------ helpers


def _one_line(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= 400 else text[:397] + "..."
