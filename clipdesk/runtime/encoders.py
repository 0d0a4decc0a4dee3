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
from clipdesk.runtime.package import ModelPackage
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


_NUMPY_TYPES = {"tensor(float)": np.dtype(np.float32), "tensor(float16)": np.dtype(np.float16),
                "tensor(int64)": np.dtype(np.int64), "tensor(int32)": np.dtype(np.int32)}


class _OnnxTower:
    """One graph called as the package's io block says: input and output by name, a fixed batch filled
    up with copies of the last row (and the extra rows dropped)."""

    def __init__(self, path: Path, io, device: str, intra_op_threads: int | None):
        self.session = create_session(path, device, intra_op_threads)
        self.io = io
        inputs = {item.name: item for item in self.session.get_inputs()}
        outputs = [item.name for item in self.session.get_outputs()]
        for wanted in (io.input, *([io.attention_mask] if io.attention_mask else [])):
            if wanted not in inputs:
                raise ModelPackageError(f"{path}: expected an input named {wanted!r}, found {sorted(inputs)}")
        if io.output not in outputs:
            raise ModelPackageError(f"{path}: expected an output named {io.output!r}, found {outputs}")
        shape = inputs[io.input].shape
        # The graph is the authority on its shapes: a batch it fixes is honoured even if the block said none.
        self.batch = shape[0] if shape and isinstance(shape[0], int) and shape[0] > 0 else io.batch
        self.sequence = shape[-1] if len(shape) == 2 and isinstance(shape[-1], int) else None
        # Exports differ in input types (int32 or int64 ids, float16 pixels): cast to what the graph takes.
        self._types = {name: _NUMPY_TYPES.get(item.type) for name, item in inputs.items()}

    @property
    def providers(self) -> list[str]:
        return self.session.get_providers()

    def run(self, array: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
        if self.batch is None or len(array) == self.batch:
            return self._run(array, mask)
        rows = []
        for start in range(0, len(array), self.batch):
            part = array[start:start + self.batch]
            part_mask = None if mask is None else mask[start:start + self.batch]
            missing = self.batch - len(part)
            if missing:
                part = np.concatenate([part, np.repeat(part[-1:], missing, axis=0)])
                if part_mask is not None:
                    part_mask = np.concatenate([part_mask, np.repeat(part_mask[-1:], missing, axis=0)])
            rows.append(self._run(part, part_mask)[:self.batch - missing])
        return np.concatenate(rows)

    def _run(self, array: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
        feeds = {self.io.input: array}
        if self.io.attention_mask:
            feeds[self.io.attention_mask] = mask
        feeds = {name: value if self._types[name] in (None, value.dtype) else value.astype(self._types[name])
                 for name, value in feeds.items()}
        return np.asarray(self.session.run([self.io.output], feeds)[0], dtype=np.float32)


class ImageEncoder:
    def __init__(self, package: ModelPackage, device: str = "auto", intra_op_threads: int | None = None):
        self.package = package
        self._preprocessing = package.preprocessing()
        self._tower = _OnnxTower(package.image_path, package.io.image, device, intra_op_threads)

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
        return preprocess_batch(images, **self._preprocessing)

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
    row), so nothing after a row's end token changes it; encoders that take an attention mask ignore
    padding by construction. Graphs exported with a dynamic sequence length therefore run on each batch
    cut to its longest row: a short query costs a few tokens' work instead of context_length's. Graphs
    with a fixed length get full rows.
    """

    def __init__(self, package: ModelPackage, device: str = "auto", intra_op_threads: int | None = None):
        self.package = package
        io = package.io
        self._tower = _OnnxTower(package.text_path, io.text, device, intra_op_threads)
        self._tokenizer = package_tokenizer(package)
        self._dtype = np.int32 if io.text.dtype == "int32" else np.int64
        self.trims_padding = self._tower.sequence is None

    @property
    def providers(self) -> list[str]:
        return self._tower.providers

    def tokenize(self, texts: Sequence[str]) -> np.ndarray:
        return self._tokenizer(list(texts), context_length=self.package.manifest.context_length)

    def encode_ids(self, token_ids: np.ndarray, batch_size: int = 64, normalize: bool = True) -> np.ndarray:
        """Features of (N, context_length) token id rows (as `tokenize` makes them), in the given order."""
        token_ids = np.ascontiguousarray(token_ids, dtype=self._dtype)
        embeddings = np.zeros((len(token_ids), self.package.manifest.embed_dim), np.float32)
        lengths = self._tokenizer.lengths(token_ids)
        if not self.trims_padding:
            width = self._tower.sequence
            if token_ids.shape[1] != width:
                raise ModelPackageError(f"{self.package.text_path}: the graph takes {width} tokens a row, the "
                                        f"manifest's context length is {token_ids.shape[1]}")
            for part in _batches(len(token_ids), batch_size):
                embeddings[part] = self._run(token_ids[part], lengths[part])
        else:
            # Rows sorted by length share batches with rows of like length, so little padding is left
            # to run when many texts are encoded at once (label sets, prompt templates).
            order = np.argsort(lengths, kind="stable")
            for part in _batches(len(token_ids), batch_size):
                rows = order[part]
                width = int(lengths[rows].max())
                embeddings[rows] = self._run(np.ascontiguousarray(token_ids[rows, :width]), lengths[rows])
        return l2_normalize(embeddings) if normalize else embeddings

    def _run(self, token_ids: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        if not self._tower.io.attention_mask:
            return self._tower.run(token_ids)
        mask = (np.arange(token_ids.shape[1])[None, :] < lengths[:, None]).astype(self._dtype)
        return self._tower.run(token_ids, mask)

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


def package_tokenizer(package: ModelPackage):
    """The tokenizer a package names: CLIP's BPE (shared), or its own tokenizer.json."""
    from clipdesk.runtime.package import TOKENIZER_HF

    if package.manifest.tokenizer == TOKENIZER_HF:
        from clipdesk.runtime.hf_tokenizer import HFTokenizer

        return HFTokenizer(package.path / package.io.tokenizer_file, pad_id=package.io.text.pad_id)
    # Imported here: the tokenizer (ftfy, regex) takes ~60 ms to import, which indexing never needs.
    from clipdesk.runtime.tokenizer import get_tokenizer

    return get_tokenizer()


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
