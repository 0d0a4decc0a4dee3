"""Model packages: the one contract between the train side and the run side.

A package is a folder holding `manifest.json`, `image.onnx` and `text.onnx`. The image graph maps
`pixels` (N, 3, R, R) float32, already preprocessed, to `image_embeds` (N, D); the text graph maps
`input_ids` (N, L) int64 to `text_embeds` (N, D), where L is context_length in older packages and any
length up to it (each row's end token included) in packages with a symbolic sequence dimension. Both
outputs are un-normalised, as CLIP's encode_image / encode_text return them; the runtime normalises.
A package may also hold `lexicon.json` (runtime/lexicon.py), listed in the manifest's files like the graphs.

Packages that wrap ONNX encoders made elsewhere (rclip, transformers.js, Immich exports: catalog.py) carry
an `io` block that says where their graphs lie and how to call them (runtime/package_io.py); without it a
package is exactly the above.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from clipdesk.atomic import write_atomically
from clipdesk.errors import ModelPackageError

MANIFEST = "manifest.json"
IMAGE_FILE = "image.onnx"
TEXT_FILE = "text.onnx"
LEXICON_FILE = "lexicon.json"  # optional: words the model never read, and what to say instead
FORMAT_VERSION = 1
TOKENIZER_CLIP_BPE = "clip-bpe-49408"
TOKENIZER_HF = "hf-tokenizers"  # a tokenizer.json run by Hugging Face's tokenizers library (io block names it)
TOKENIZERS = (TOKENIZER_CLIP_BPE, TOKENIZER_HF)

# provenance[PROVENANCE_CHECKPOINT]: the absolute path of the PyTorch checkpoint a package was made from,
# which `clipdesk train --init NAME` fine-tunes. Written only into packages that stay on the machine that
# made them (`clipdesk train`'s run folder, `model import` into the store); `model export` makes packages
# for elsewhere and records the checkpoint's name and SHA-256 instead (source, source_sha256).
PROVENANCE_CHECKPOINT = "checkpoint"

IMAGE_INPUT, IMAGE_OUTPUT = "pixels", "image_embeds"
TEXT_INPUT, TEXT_OUTPUT = "input_ids", "text_embeds"

_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,99}$")


def check_model_name(name: str) -> str:
    """Model names double as folder names: keep them portable and free of path separators."""
    if not _NAME_PATTERN.match(name):
        raise ModelPackageError(
            f"invalid model name {name!r}: use letters, digits and . _ @ + - (at most 100 characters)"
        )
    return name


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass
class Manifest:
    name: str
    architecture: dict[str, Any]  # the ClipConfig of the model, as JSON
    embed_dim: int
    image_resolution: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    context_length: int
    logit_scale: float
    tokenizer: str = TOKENIZER_CLIP_BPE
    precision: str = "fp32"
    files: dict[str, dict[str, Any]] = field(default_factory=dict)  # file name -> {sha256, bytes}
    provenance: dict[str, Any] = field(default_factory=dict)
    license: str = "unknown"
    description: str = ""
    verification: dict[str, Any] = field(default_factory=dict)
    # Prompt templates ({} = the label) this model was measured best with; the tagging side's "model"
    # templates. Empty: the model names none (imported photo models), and "a photo of a {}." applies.
    templates: list[str] = field(default_factory=list)
    # Graphs made elsewhere: file paths, input/output names, dtypes, fixed shapes, normalised outputs and
    # image preprocessing (runtime/package_io.py). None: clipdesk's own layout.
    io: dict[str, Any] | None = None
    # How tagging turns this model's cosine scores into confidences, fitted on held-out labelled images
    # (clipdesk/tagging/calibration.py): {"temperature", "none_bias", and how it was fitted and measured}.
    # None: the model's logit scale, no bias.
    calibration: dict[str, Any] | None = None
    format_version: int = FORMAT_VERSION

    def to_json(self) -> str:
        data = {key: getattr(self, key) for key in self.__dataclass_fields__}
        data["mean"], data["std"] = list(self.mean), list(self.std)
        for optional in ("io", "calibration"):
            if data[optional] is None:
                del data[optional]
        return json.dumps(data, indent=2, ensure_ascii=False) + "\n"

    @classmethod
    def from_json(cls, text: str, source: str) -> "Manifest":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ModelPackageError(f"{source}: manifest is not valid JSON ({exc.msg}, line {exc.lineno})") from None
        if not isinstance(data, dict):
            raise ModelPackageError(f"{source}: manifest is not a JSON object")
        if data.get("format_version", FORMAT_VERSION) > FORMAT_VERSION:
            raise ModelPackageError(
                f"{source}: model package format {data['format_version']} is newer than this clipdesk "
                f"understands ({FORMAT_VERSION}); update clipdesk"
            )
        known = set(cls.__dataclass_fields__)
        required = {"name", "architecture", "embed_dim", "image_resolution", "mean", "std", "context_length", "logit_scale"}
        missing = sorted(required - set(data))
        if missing:
            raise ModelPackageError(f"{source}: manifest lacks {', '.join(missing)}")
        manifest = cls(**{key: value for key, value in data.items() if key in known})
        manifest.mean, manifest.std = tuple(manifest.mean), tuple(manifest.std)
        if len(manifest.mean) != 3 or len(manifest.std) != 3:
            raise ModelPackageError(f"{source}: manifest mean and std need three values each")
        if manifest.tokenizer not in TOKENIZERS:
            raise ModelPackageError(f"{source}: unknown tokenizer {manifest.tokenizer!r}")
        manifest.templates = check_templates(manifest.templates, source)
        if not isinstance(manifest.files, dict) or not all(isinstance(v, dict) for v in manifest.files.values()):
            raise ModelPackageError(f"{source}: manifest files must map file names to {{sha256, bytes}}")
        for file_name in manifest.files:
            check_relative_path(file_name, source)
        from clipdesk.runtime.package_io import PackageIO

        PackageIO.from_manifest(manifest, source)  # a bad io block is refused here, not at first use
        return manifest


def check_relative_path(name: object, source: str) -> str:
    """A file named by an untrusted manifest: a relative path with '/' separators that stays inside the package."""
    parts = name.split("/") if isinstance(name, str) else []
    if (not parts or any(part in ("", ".", "..") for part in parts) or "\\" in name or ":" in name
            or any(ord(c) < 32 for c in name) or len(name) > 300):
        raise ModelPackageError(f"{source}: unsafe file name {name!r} in the manifest (must stay inside the package)")
    return name


def check_templates(templates, source: str) -> list[str]:
    """A model's prompt templates: a list of strings, each with exactly one {} where the label goes."""
    if not isinstance(templates, (list, tuple)) or not all(
            isinstance(template, str) and template.count("{}") == 1 for template in templates):
        raise ModelPackageError(f"{source}: templates must be a list of texts with one {{}} each where the label "
                                f"goes, e.g. 'a photo of a {{}}.' (got {templates!r})")
    return [template.strip() for template in templates]


@dataclass
class ModelPackage:
    path: Path
    manifest: Manifest

    @property
    def name(self) -> str:
        return self.manifest.name

    @property
    def io(self):
        """How to call this package's graphs (runtime/package_io.py), defaults filled in."""
        from clipdesk.runtime.package_io import PackageIO

        return PackageIO.from_manifest(self.manifest, str(self.path))

    def preprocessing(self) -> dict[str, Any]:
        """The image preprocessing's arguments (runtime/preprocess.py's preprocess) for this model."""
        manifest, options = self.manifest, self.io.preprocess
        return {"resolution": manifest.image_resolution, "mean": manifest.mean, "std": manifest.std,
                "resize": options.resize, "interpolation": options.interpolation}

    @property
    def image_path(self) -> Path:
        return self.path / self.io.image.file

    @property
    def text_path(self) -> Path:
        return self.path / self.io.text.file

    @property
    def lexicon_path(self) -> Path | None:
        return self.path / LEXICON_FILE if LEXICON_FILE in self.manifest.files else None

    def verify_hashes(self) -> None:
        """Full check of every file against the manifest's SHA-256 (reads the whole package)."""
        for file_name, info in self.manifest.files.items():
            actual = sha256_of(self.path / file_name)
            if actual != info.get("sha256"):
                raise ModelPackageError(
                    f"{self.path / file_name}: checksum does not match the manifest (file damaged or replaced); "
                    "re-import or re-export the model"
                )


def load_package(path: str | os.PathLike) -> ModelPackage:
    """Open a package folder; checks that its files are present with the sizes the manifest gives.

    Sizes catch truncated copies cheaply; `ModelPackage.verify_hashes` does the full check.
    """
    folder = Path(path)
    manifest_path = folder / MANIFEST
    if not folder.is_dir():
        raise ModelPackageError(f"{folder}: not a model package folder (no such directory)")
    if not manifest_path.is_file():
        raise ModelPackageError(f"{folder}: not a model package folder (no {MANIFEST})")
    manifest = Manifest.from_json(manifest_path.read_text(encoding="utf-8"), str(manifest_path))
    package = ModelPackage(folder, manifest)
    needed = dict.fromkeys([package.io.image.file, package.io.text.file, *package.io.extra_files, *manifest.files])
    root = folder.resolve()
    for file_name in needed:
        file_path = folder / file_name
        if not file_path.resolve().is_relative_to(root):  # a link out of the package
            raise ModelPackageError(f"{folder}: {file_name} points outside the model package")
        if not file_path.is_file():
            raise ModelPackageError(f"{folder}: model package is incomplete (no {file_name})")
        expected = manifest.files.get(file_name, {}).get("bytes")
        if expected is not None and file_path.stat().st_size != expected:
            raise ModelPackageError(
                f"{file_path}: size {file_path.stat().st_size} bytes, manifest says {expected}: the file is "
                "damaged; re-import or re-export the model"
            )
    return package


def write_manifest(folder: Path, manifest: Manifest, files: list[str] | None = None) -> None:
    """Record the hash and size of `files` (paths in the package; default: each ONNX file and the
    lexicon at its top), then write the manifest (last, so its presence means done)."""
    if files is None:
        files = [name for name in sorted(os.listdir(folder))
                 if name.endswith((".onnx", ".onnx.data")) or name == LEXICON_FILE]
    manifest.files = {}
    for file_name in files:
        file_path = folder / file_name
        manifest.files[file_name] = {"sha256": sha256_of(file_path), "bytes": file_path.stat().st_size}
    save_manifest(folder, manifest)


def save_manifest(folder: Path, manifest: Manifest) -> None:
    """Write the manifest as it is, in one rename (its presence means the package is complete)."""
    write_atomically(str(folder / MANIFEST), manifest.to_json().encode("utf-8"))
