"""PyTorch CLIP → model package (manifest + image.onnx + text.onnx), verified in ONNX Runtime.

The package is written into a hidden staging folder and only then moved into place, so a failed or
killed export leaves nothing half-written where the app looks for models.
"""

from __future__ import annotations

import logging
import shutil
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import torch
from torch import nn

from clipdesk.checkpoint.graphs import FP16_SUFFIX, PRECISIONS
from clipdesk.checkpoint.importer import clip_manifest, staged_package
from clipdesk.checkpoint.onnx_proto import IR_VERSION, OPSET
from clipdesk.checkpoint.verification import (
    MAX_ABS_DIFF_FP32, MIN_COSINE, VERIFY_CAPTIONS, compare, verification_images,
)
from clipdesk.errors import ClipdeskError
from clipdesk.model.clip import CLIP
from clipdesk.runtime.package import (
    IMAGE_FILE, IMAGE_INPUT, IMAGE_OUTPUT, LEXICON_FILE, TEXT_FILE, TEXT_INPUT, TEXT_OUTPUT, ModelPackage,
    check_templates, load_package, write_manifest,
)
from clipdesk.runtime.preprocess import OPENAI_MEAN, OPENAI_STD, preprocess_batch
from clipdesk.runtime.tokenizer import get_tokenizer


class _Tower(nn.Module):
    """One encoder of the model as a module of its own, so each exports to its own graph."""

    def __init__(self, model: CLIP, encode: str):
        super().__init__()
        self.model, self.encode = model, encode

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return getattr(self.model, self.encode)(inputs)


@dataclass
class VerificationReport:
    image_max_abs_diff: float
    text_max_abs_diff: float
    image_min_cosine: float
    text_min_cosine: float

    def line(self) -> str:
        return (f"max abs diff vs PyTorch: image {self.image_max_abs_diff:.2e}, text {self.text_max_abs_diff:.2e}; "
                f"min cosine: image {self.image_min_cosine:.6f}, text {self.text_min_cosine:.6f}")


def _export_tower(module: nn.Module, example: torch.Tensor, path: Path, input_name: str, output_name: str,
                  input_axes: dict[int, str]) -> None:
    module.eval()  # export restores the wrapper's train/eval flag onto its children
    # Grad mode stays on: under no_grad nn.MultiheadAttention takes its fused inference path, whose
    # operator has no ONNX export.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module, (example,), str(path), input_names=[input_name], output_names=[output_name],
            dynamic_axes={input_name: input_axes, output_name: {0: "batch"}},
            opset_version=OPSET, dynamo=False,
        )
    graph = onnx.load(str(path))
    graph.ir_version = min(graph.ir_version, IR_VERSION)
    onnx.save(graph, str(path))


def export_fp32_graphs(model: CLIP, folder: Path) -> None:
    """Both towers of `model` as fp32 ONNX graphs, IMAGE_FILE and TEXT_FILE in `folder`."""
    config = model.config
    resolution, context = config.image_resolution, config.context_length
    _export_tower(_Tower(model, "encode_image"), torch.zeros(2, 3, resolution, resolution), folder / IMAGE_FILE,
                  IMAGE_INPUT, IMAGE_OUTPUT, {0: "batch"})
    example_ids = torch.from_numpy(get_tokenizer()(["a photo", "two words"], context_length=context))
    # A dynamic sequence length (at most context_length): encode_text slices the positional embedding
    # and the causal mask to the input's length, so the runtime can cut the padding after the last
    # end token (TextEncoder) and pay for the tokens a query has, not for context_length.
    _export_tower(_Tower(model, "encode_text"), example_ids, folder / TEXT_FILE, TEXT_INPUT, TEXT_OUTPUT,
                  {0: "batch", 1: "sequence"})


def _store_weights_fp16(path: Path) -> None:
    """Halve the file: float32 weights stored as float16, widened back by a Cast when the graph loads.

    Compute stays float32, so the graph runs on every ONNX Runtime provider (many CPU kernels have no
    float16 version) and differs from fp32 only by the weights' rounding.
    """
    graph_model = onnx.load(str(path))
    graph = graph_model.graph
    casts = []
    for initializer in graph.initializer:
        if initializer.data_type != onnx.TensorProto.FLOAT or np.prod(initializer.dims) < 1024:
            continue
        values = onnx.numpy_helper.to_array(initializer).astype(np.float16)
        original = initializer.name
        stored = original + FP16_SUFFIX
        initializer.CopyFrom(onnx.numpy_helper.from_array(values, stored))
        casts.append(onnx.helper.make_node("Cast", [stored], [original], to=onnx.TensorProto.FLOAT,
                                           name=f"widen_{original}"))
    for node in reversed(casts):
        graph.node.insert(0, node)
    onnx.save(graph_model, str(path))


def _quantize_int8(path: Path) -> None:
    """Dynamic int8 quantisation of the weights (activations quantised on the fly)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantized = path.with_suffix(".int8.onnx")
    logging.disable(logging.WARNING)  # the quantiser logs advice through the root logger
    try:
        quantize_dynamic(str(path), str(quantized), weight_type=QuantType.QInt8)
    finally:
        logging.disable(logging.NOTSET)
    graph = onnx.load(str(quantized))
    graph.ir_version = min(graph.ir_version, IR_VERSION)
    onnx.save(graph, str(path))
    quantized.unlink()


def verify_package(model: CLIP, package: ModelPackage, precision: str = "fp32") -> VerificationReport:
    """Run both ONNX files in ONNX Runtime on real inputs and compare with PyTorch in fp32."""
    from clipdesk.runtime.encoders import ImageEncoder, TextEncoder

    manifest = package.manifest
    pixels = preprocess_batch(verification_images(), manifest.image_resolution, manifest.mean, manifest.std)
    token_ids = get_tokenizer()(VERIFY_CAPTIONS, context_length=manifest.context_length)
    with torch.no_grad():
        expected_image = model.encode_image(torch.from_numpy(pixels)).float().numpy()
        expected_text = model.encode_text(torch.from_numpy(token_ids)).float().numpy()
    # Two batch sizes: a graph that froze the batch dimension fails here.
    image = ImageEncoder(package, device="cpu").encode_pixels(pixels, batch_size=3, normalize=False)
    image_diff, image_cos = compare(expected_image, image)
    # The text graph runs cut to each batch's longest caption: in batches of mixed lengths, and each
    # caption alone at its own length (2 tokens for "", all of context_length for the long one).
    text_encoder = TextEncoder(package, device="cpu")
    text_runs = [compare(expected_text, text_encoder.encode_ids(token_ids, batch_size=size, normalize=False))
                 for size in (4, 1)]
    text_diff, text_cos = max(diff for diff, _ in text_runs), min(cosine for _, cosine in text_runs)
    report = VerificationReport(image_diff, text_diff, image_cos, text_cos)
    scale = max(1.0, float(np.abs(expected_image).max()), float(np.abs(expected_text).max()))
    too_far = min(image_cos, text_cos) < MIN_COSINE[precision] or (
        precision == "fp32" and max(image_diff, text_diff) > MAX_ABS_DIFF_FP32 * scale)
    if too_far:
        raise ClipdeskError(f"exported ONNX model does not match PyTorch ({precision}): {report.line()}")
    return report


def export_package(
    model: CLIP,
    out_dir: str | Path,
    *,
    name: str,
    mean: tuple[float, float, float] = OPENAI_MEAN,
    std: tuple[float, float, float] = OPENAI_STD,
    precision: str = "fp32",
    provenance: dict | None = None,
    license: str = "unknown",
    description: str = "",
    templates: Sequence[str] = (),
    lexicon: str | Path | None = None,
    overwrite: bool = False,
    log: Callable[[str], None] = print,
) -> ModelPackage:
    """Export `model` as a verified model package at `out_dir` (which must not exist unless overwrite),
    with `lexicon` (a lexicon.json made for this model's training captions, data/lexicon.py) inside."""
    if precision not in PRECISIONS:
        raise ClipdeskError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    templates = check_templates(list(templates), "--template")  # before any work
    if lexicon is not None:
        from clipdesk.runtime.lexicon import Lexicon

        Lexicon.read(Path(lexicon))  # a bad file is refused before any work
    model = model.float().eval()
    manifest = clip_manifest(model.config, name=name, logit_scale=float(model.logit_scale.detach().exp().item()),
                             precision=precision, mean=mean, std=std, provenance=provenance, license=license,
                             description=description, templates=templates)
    with staged_package(Path(out_dir), overwrite) as staging:
        export_fp32_graphs(model, staging)
        if lexicon is not None:
            shutil.copyfile(lexicon, staging / LEXICON_FILE)
        for file_name in (IMAGE_FILE, TEXT_FILE):
            if precision == "fp16":
                _store_weights_fp16(staging / file_name)
            elif precision == "int8":
                _quantize_int8(staging / file_name)
        write_manifest(staging, manifest)
        report = verify_package(model, load_package(staging), precision)
        log(f"verified {name} ({precision}) in ONNX Runtime: {report.line()}")
        manifest.verification = {"inputs": f"{len(verification_images())} images, {len(VERIFY_CAPTIONS)} captions",
                                  **report.__dict__}
        write_manifest(staging, manifest)
    return load_package(out_dir)
