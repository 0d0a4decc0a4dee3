"""Image and text encoders on ONNX Runtime: batches in, L2-normalised float32 embeddings out.

Provider choice: onnxruntime-gpu lists CUDA among the available providers even where CUDA cannot run
(no GPU, missing libraries), so the only reliable test is to create a session and read back the
providers it actually got. That probe runs with ONNX Runtime's logging silenced, so a machine without
CUDA sees no error wall.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from functools import cached_property, lru_cache
from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image

from clipdesk import paths
from clipdesk.errors import ModelPackageError
from clipdesk.runtime.package import IMAGE_INPUT, TEXT_INPUT, ModelPackage
from clipdesk.runtime.preprocess import load_image, preprocess_batch

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"
DEVICE_PREFERENCES = ("auto", "cpu", "cuda")

_SILENT, _ERRORS_ONLY = 4, 3


def provider_label(providers: Sequence[str]) -> str:
    return "CUDA" if providers and providers[0] == CUDA else "CPU"


def _session_options(intra_op_threads: int | None) -> ort.SessionOptions:
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if intra_op_threads:
        options.intra_op_num_threads = intra_op_threads
    # Idle ORT threads otherwise spin on the cores that decoding threads, the GUI and the text encoder
    # need; measured here: +60% indexing throughput with a small model, +12% with ViT-B/32.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options


def create_session(model_path: Path, device: str = "auto", intra_op_threads: int | None = None) -> ort.InferenceSession:
    """An inference session on CUDA when asked for (or 'auto') and really working, else on the CPU."""
    if device not in DEVICE_PREFERENCES:
        raise ModelPackageError(f"unknown device {device!r}; choose one of {', '.join(DEVICE_PREFERENCES)}")
    try_cuda = device in ("auto", "cuda") and CUDA in ort.get_available_providers()
    try:
        if try_cuda:
            ort.set_default_logger_severity(_SILENT)
            try:
                options = _session_options(intra_op_threads)
                options.log_severity_level = _SILENT
                session = ort.InferenceSession(str(model_path), options, providers=[CUDA, CPU])
            finally:
                ort.set_default_logger_severity(_ERRORS_ONLY)
            if session.get_providers()[0] == CUDA:
                return session
        ort.set_default_logger_severity(_ERRORS_ONLY)
        return ort.InferenceSession(str(model_path), _session_options(intra_op_threads), providers=[CPU])
    except (ort.capi.onnxruntime_pybind11_state.Fail, ort.capi.onnxruntime_pybind11_state.InvalidGraph,
            ort.capi.onnxruntime_pybind11_state.InvalidProtobuf, ort.capi.onnxruntime_pybind11_state.NoSuchFile) as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelPackageError(f"{model_path}: ONNX Runtime cannot load it ({first_line[:200]})") from None


def l2_normalize(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    # An all-zero vector stays zero instead of becoming NaN.
    return vectors / np.maximum(norms, np.finfo(np.float32).tiny)


def _batches(count: int, batch_size: int) -> Iterable[slice]:
    for start in range(0, count, batch_size):
        yield slice(start, min(start + batch_size, count))


class _OnnxTower:
    def __init__(self, path: Path, input_name: str, device: str, intra_op_threads: int | None):
        self.session = create_session(path, device, intra_op_threads)
        inputs = [item.name for item in self.session.get_inputs()]
        if input_name not in inputs:
            raise ModelPackageError(f"{path}: expected an input named {input_name!r}, found {inputs}")
        self.input_name = input_name

    @property
    def providers(self) -> list[str]:
        return self.session.get_providers()

    def run(self, array: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: array})[0]


class ImageEncoder:
    def __init__(self, package: ModelPackage, device: str = "auto", intra_op_threads: int | None = None):
        self.package = package
        self._tower = _OnnxTower(package.image_path, IMAGE_INPUT, device, intra_op_threads)

    @property
    def providers(self) -> list[str]:
        return self._tower.providers

    def encode_pixels(self, pixels: np.ndarray, batch_size: int = 32, normalize: bool = True) -> np.ndarray:
        """Embeddings of preprocessed pixels (N, 3, R, R)."""
        pixels = np.ascontiguousarray(pixels, dtype=np.float32)
        outputs = [self._tower.run(pixels[part]) for part in _batches(len(pixels), batch_size)]
        embeddings = np.concatenate(outputs) if outputs else np.zeros((0, self.package.manifest.embed_dim), np.float32)
        return l2_normalize(embeddings) if normalize else embeddings.astype(np.float32)

    def preprocess(self, images: Sequence[Image.Image]) -> np.ndarray:
        manifest = self.package.manifest
        return preprocess_batch(images, manifest.image_resolution, manifest.mean, manifest.std)

    def encode_images(self, images: Sequence[Image.Image], batch_size: int = 32, normalize: bool = True) -> np.ndarray:
        outputs = [
            self.encode_pixels(self.preprocess(images[part]), batch_size, normalize)
            for part in _batches(len(images), batch_size)
        ]
        return np.concatenate(outputs) if outputs else np.zeros((0, self.package.manifest.embed_dim), np.float32)

    def encode_files(self, files: Sequence[str | os.PathLike], batch_size: int = 32, normalize: bool = True) -> np.ndarray:
        """Embeddings of image files, rows in the given order; a bad file raises ClipdeskError naming it."""
        outputs = []
        for part in _batches(len(files), batch_size):
            images = [load_image(path) for path in files[part]]
            outputs.append(self.encode_images(images, batch_size, normalize))
        return np.concatenate(outputs) if outputs else np.zeros((0, self.package.manifest.embed_dim), np.float32)


class TextEncoder:
    """Text features from token ids, with the padding cut off where the graph allows it.

    CLIP's text transformer is causal and its feature is read at the end token (the largest id of a
    row), so nothing after a row's end token changes it. Graphs exported with a dynamic sequence
    length therefore run on each batch cut to its longest row: a short query costs a few tokens'
    work instead of context_length's. Graphs with a fixed length (packages exported before) get the
    full rows, as before.
    """

    def __init__(self, package: ModelPackage, device: str = "auto", intra_op_threads: int | None = None):
        self.package = package
        # Imported here: the tokenizer (ftfy, regex) takes ~60 ms to import, which
        # indexing, the image side only, never needs.
        from clipdesk.runtime.tokenizer import get_tokenizer

        self._tower = _OnnxTower(package.text_path, TEXT_INPUT, device, intra_op_threads)
        self._tokenizer = get_tokenizer()
        length = next(item for item in self._tower.session.get_inputs() if item.name == TEXT_INPUT).shape[-1]
        # A symbolic dimension reads back as a name (or None), a fixed one as an int.
        self.trims_padding = not isinstance(length, int)

    @property
    def providers(self) -> list[str]:
        return self._tower.providers

    def tokenize(self, texts: Sequence[str]) -> np.ndarray:
        return self._tokenizer(list(texts), context_length=self.package.manifest.context_length)

    def encode_ids(self, token_ids: np.ndarray, batch_size: int = 64, normalize: bool = True) -> np.ndarray:
        """Features of (N, context_length) token id rows, in the given order."""
        token_ids = np.ascontiguousarray(token_ids, dtype=np.int64)
        embeddings = np.zeros((len(token_ids), self.package.manifest.embed_dim), np.float32)
        if not self.trims_padding:
            for part in _batches(len(token_ids), batch_size):
                embeddings[part] = self._tower.run(token_ids[part])
        else:
            # Rows sorted by length share batches with rows of like length, so little padding is left
            # to run when many texts are encoded at once (label sets, prompt templates).
            lengths = token_ids.argmax(axis=1) + 1
            order = np.argsort(lengths, kind="stable")
            for part in _batches(len(token_ids), batch_size):
                rows = order[part]
                embeddings[rows] = self._tower.run(np.ascontiguousarray(token_ids[rows, :lengths[rows].max()]))
        return l2_normalize(embeddings) if normalize else embeddings

    @cached_property
    def lexicon(self):
        """The package's lexicon (runtime/lexicon.py), read on first use; None when it has none."""
        from clipdesk.runtime.lexicon import Lexicon

        path = self.package.lexicon_path
        return Lexicon.read(path) if path is not None else None

    def unread(self, texts: Iterable[str]) -> list[tuple[str, str | None]]:
        """The words of these texts the model never read, with what its lexicon reads them as
        (Lexicon.unread_in); none for a package without a lexicon."""
        return self.lexicon.unread_in(texts) if self.lexicon is not None else []

    def encode(self, texts: Sequence[str], batch_size: int = 64, normalize: bool = True) -> np.ndarray:
        """One embedding per text. With a lexicon, a text holding words the model never read is the
        normalised mean of its variants' unit embeddings (the text itself among them); raw features
        (normalize=False) are always of the texts exactly as given."""
        if self.lexicon is None or not normalize:
            return self.encode_ids(self.tokenize(texts), batch_size, normalize)
        variants = [self.lexicon.variants(text) for text in texts]
        flat = [variant for group in variants for variant in group]
        embeddings = self.encode_ids(self.tokenize(flat), batch_size)
        if len(flat) == len(texts):
            return embeddings
        owners = np.repeat(np.arange(len(texts)), [len(group) for group in variants])
        sums = np.zeros((len(texts), embeddings.shape[1]), np.float32)
        np.add.at(sums, owners, embeddings)
        return l2_normalize(sums)


class ClipModel:
    """Both encoders of one package; each ONNX session is created on first use (search needs only text)."""

    def __init__(self, package: ModelPackage, device: str = "auto", intra_op_threads: int | None = None):
        self.package = package
        self.device = device
        self.intra_op_threads = intra_op_threads

    @property
    def name(self) -> str:
        return self.package.name

    @cached_property
    def image(self) -> ImageEncoder:
        return ImageEncoder(self.package, self.device, self.intra_op_threads)

    @cached_property
    def text(self) -> TextEncoder:
        return TextEncoder(self.package, self.device, self.intra_op_threads)

    @property
    def logit_scale(self) -> float:
        return float(self.package.manifest.logit_scale)


def load_model(name_or_dir: str | os.PathLike | None = None, device: str = "auto") -> ClipModel:
    from clipdesk.runtime.registry import resolve_model

    return ClipModel(resolve_model(name_or_dir), device)


@lru_cache(maxsize=None)
def runtime_device(device: str = "auto") -> str:
    """'CUDA' or 'CPU': where sessions for this preference really run, probed on a one-node graph."""
    return provider_label(create_session(paths.resources_dir() / "onnx" / "device-probe.onnx", device).get_providers())
