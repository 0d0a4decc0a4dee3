"""The catalog of models a user can get from the model hub: resources/catalog.json, plus `--catalog FILE`.

Schema (docs/catalog.md): each entry names a hub repository, a revision, a layout (how that repository
lays out its files: layouts.py) and the files for the image and text towers (ONNX layouts) or the weights
and their config (the `openclip` and `transformers` layouts, converted at install: clipdesk/checkpoint), with
what the manifest needs
that the files do not say (image size, context length, mean/std), its licence, pinned SHA-256s where the
public record has them, the download size, and the published ImageNet zero-shot accuracy. `variants`
override files, hashes and size for other precisions of the same model (transformers.js' fp16/quantized).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from clipdesk import paths
from clipdesk.errors import ClipdeskError
from clipdesk.runtime.package import check_model_name, check_relative_path
from clipdesk.runtime.preprocess import OPENAI_MEAN, OPENAI_STD

CATALOG_FILE = "catalog.json"
ONNX_LAYOUTS = ("rclip", "transformers.js", "immich")
# Weights only, converted without torch at install: OpenCLIP's hub folders (open_clip_model.safetensors or
# open_clip_pytorch_model.bin + open_clip_config.json) and transformers CLIPModel folders (config.json +
# model.safetensors or pytorch_model.bin). Files: {"weights": ..., "config": ...}; the architecture, image
# size and context length come from the weights.
WEIGHT_LAYOUTS = ("openclip", "transformers")
LAYOUTS = ("clipdesk", *ONNX_LAYOUTS, *WEIGHT_LAYOUTS)
REPO_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")  # OWNER/NAME
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_REQUIRED = ("name", "title", "about", "repo", "revision", "layout", "files", "image_size", "context_length",
             "licence", "download_mb")  # image_size and context_length: not for WEIGHT_LAYOUTS
_OPTIONAL = ("mean", "std", "licence_files", "sha256", "imagenet_zero_shot", "known_answer", "variants",
             "default_variant", "logit_scale", "languages", "recommended", "needs", "folders")
_VARIANT_KEYS = ("files", "sha256", "download_mb", "about")


class CatalogError(ClipdeskError):
    pass


@dataclass(frozen=True)
class CatalogEntry:
    name: str
    title: str
    about: str
    repo: str
    revision: str
    layout: str
    files: dict[str, str]  # role (image, text, tokenizer, ...) -> path in the repository
    image_size: int
    context_length: int
    licence: str
    download_mb: float
    mean: tuple[float, float, float] = OPENAI_MEAN
    std: tuple[float, float, float] = OPENAI_STD
    licence_files: tuple[str, ...] = ()
    sha256: dict[str, str] = field(default_factory=dict)  # role, or path in the repository -> pinned hash
    imagenet_zero_shot: dict[str, Any] | None = None  # {"top1": 63.3, "source": "..."}
    known_answer: bool = True
    variants: dict[str, dict[str, Any]] = field(default_factory=dict)
    default_variant: str | None = None
    logit_scale: float = 100.0
    languages: tuple[str, ...] = ("en",)
    recommended: bool = False
    needs: str = ""  # e.g. "a GPU": shown beside the entry
    folders: tuple[str, ...] = ()  # repository folders fetched whole (weights split over many files)
    variant: str | None = None  # the variant this entry stands for, once chosen

    def choose(self, variant: str | None) -> "CatalogEntry":
        """This entry with one variant's files, hashes and size (None: the default variant)."""
        variant = variant or self.default_variant
        if variant is None:
            if self.variants:
                raise CatalogError(f"{self.name}: choose a variant ({', '.join(self.variants)})")
            return self
        if variant not in self.variants:
            known = ", ".join(self.variants) or "none"
            raise CatalogError(f"{self.name} has no variant {variant!r} (variants: {known})")
        chosen = self.variants[variant]
        return replace(self, files={**self.files, **chosen.get("files", {})},
                       sha256={**self.sha256, **chosen.get("sha256", {})},
                       download_mb=chosen.get("download_mb", self.download_mb),
                       about=chosen.get("about", self.about), variant=variant)

    @property
    def package_name(self) -> str:
        return self.name if not self.variant or self.variant == self.default_variant else f"{self.name}-{self.variant}"

    def to_json(self) -> dict[str, Any]:
        data = {key: getattr(self, key) for key in self.__dataclass_fields__ if key != "variant"}
        data["mean"], data["std"] = list(self.mean), list(self.std)
        data["licence_files"], data["languages"] = list(self.licence_files), list(self.languages)
        data["folders"] = list(self.folders)
        return data


def entry_from_json(data: Any, source: str) -> CatalogEntry:
    """One catalog entry from its JSON, checked as in a catalog file."""
    if not isinstance(data, dict):
        raise CatalogError(f"{source}: each model must be a JSON object")
    where = f"{source}: model {data.get('name', '?')!r}"
    optional = ("image_size", "context_length") if data.get("layout") in WEIGHT_LAYOUTS else ()
    missing = [key for key in _REQUIRED if key not in data and key not in optional]
    if missing:
        raise CatalogError(f"{where} lacks {', '.join(missing)}")
    unknown = sorted(set(data) - set(_REQUIRED) - set(_OPTIONAL))
    if unknown:
        raise CatalogError(f"{where}: unknown keys {', '.join(unknown)}")
    try:
        check_model_name(data["name"])
    except ClipdeskError as exc:
        raise CatalogError(f"{where}: {exc}") from None
    if not isinstance(data["repo"], str) or not REPO_PATTERN.match(data["repo"]):
        raise CatalogError(f"{where}: repo must be OWNER/NAME, not {data['repo']!r}")
    if data["layout"] not in LAYOUTS:
        raise CatalogError(f"{where}: unknown layout {data['layout']!r} (known: {', '.join(LAYOUTS)})")
    weights = data["layout"] in WEIGHT_LAYOUTS
    for key in ("image_size", "context_length"):
        if weights and key not in data:
            data = {**data, key: 0}  # read from the weights
        elif not isinstance(data[key], int) or isinstance(data[key], bool) or not 1 < data[key] <= 4096:
            raise CatalogError(f"{where}: {key} must be a positive whole number")
    _check_files(data["files"], where, needs=("weights",) if weights else ("image", "text")
                 if data["layout"] != "clipdesk" else ())
    _check_hashes(data.get("sha256", {}), where)
    variants = data.get("variants", {})
    if not isinstance(variants, dict):
        raise CatalogError(f"{where}: variants must map a variant name to its files")
    for variant, info in variants.items():
        if not isinstance(info, dict) or set(info) - set(_VARIANT_KEYS):
            raise CatalogError(f"{where}: variant {variant!r} may set only {', '.join(_VARIANT_KEYS)}")
        _check_files(info.get("files", {}), f"{where}, variant {variant!r}", needs=())
        _check_hashes(info.get("sha256", {}), f"{where}, variant {variant!r}")
    if data.get("default_variant") is not None and data["default_variant"] not in variants:
        raise CatalogError(f"{where}: default_variant {data['default_variant']!r} is not among its variants")
    for key in ("mean", "std"):
        value = data.get(key, [0.5] * 3)
        if not (isinstance(value, list) and len(value) == 3 and all(isinstance(v, (int, float)) for v in value)):
            raise CatalogError(f"{where}: {key} needs three numbers")
    licence_files = data.get("licence_files", [])
    for name in licence_files:
        _safe_path(name, where)
    fields_ = {key: data[key] for key in (*_REQUIRED, *_OPTIONAL) if key in data}
    for name in data.get("folders", []):
        _safe_path(name, where)
    for key in ("mean", "std", "licence_files", "languages", "folders"):
        if key in fields_:
            fields_[key] = tuple(fields_[key])
    return CatalogEntry(**fields_)


def _safe_path(name: Any, where: str) -> str:
    try:
        return check_relative_path(name, where)
    except ClipdeskError as exc:
        raise CatalogError(str(exc)) from None


def _check_files(files: Any, where: str, needs: tuple[str, ...]) -> None:
    if not isinstance(files, dict) or not all(isinstance(k, str) for k in files):
        raise CatalogError(f"{where}: files must map roles (image, text, ...) to paths in the repository")
    if not set(needs) <= set(files):
        raise CatalogError(f"{where}: files needs at least {' and '.join(needs)}")
    for path in files.values():
        _safe_path(path, where)


def _check_hashes(hashes: Any, where: str) -> None:
    if not isinstance(hashes, dict) or not all(isinstance(v, str) and _SHA256.match(v) for v in hashes.values()):
        raise CatalogError(f"{where}: sha256 must map roles to 64 lower-case hex digits")


def read_catalog(path: Path) -> dict[str, CatalogEntry]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CatalogError(f"{path}: no such catalog file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CatalogError(f"{path}: cannot read the catalog ({exc})") from None
    except json.JSONDecodeError as exc:
        raise CatalogError(f"{path}: catalog is not valid JSON ({exc.msg}, line {exc.lineno})") from None
    if not isinstance(data, dict) or not isinstance(data.get("models"), list):
        raise CatalogError(f"{path}: a catalog is a JSON object with a list of models")
    entries = {}
    for item in data["models"]:
        entry = entry_from_json(item, str(path))
        entries[entry.name] = entry
    return entries


def shipped_catalog_path() -> Path:
    return paths.resources_dir() / CATALOG_FILE


def load_catalog(extra: str | Path | None = None) -> dict[str, CatalogEntry]:
    """The shipped catalog, with `extra`'s entries added (a same-named entry replaces the shipped one)."""
    entries = read_catalog(shipped_catalog_path())
    if extra is not None:
        entries.update(read_catalog(Path(extra)))
    return entries


def find_entry(name: str, catalog: dict[str, CatalogEntry]) -> CatalogEntry:
    if name in catalog:
        return catalog[name]
    folded = {key.lower(): entry for key, entry in catalog.items()}
    if name.lower() in folded:
        return folded[name.lower()]
    raise CatalogError(f"no model {name!r} in the catalog; `clipdesk model catalog` lists them "
                       f"({', '.join(catalog)})")
