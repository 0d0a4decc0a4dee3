"""Trainable weights read back out of a model package's ONNX graphs, so a package can be fine-tuned
when the PyTorch checkpoint it was made from is gone (a fresh clone has only resources/models/).

The exporter keeps most parameters under their own names but folds Linear weights into transposed
initializers with generated names ('onnx::MatMul_448'), and merges initializers of equal values (the
zero biases of an untrained model) into one. Rather than guess, a probe model of the package's
architecture, with distinct random values in every parameter, is exported the same way; each probe
initializer is matched to the parameter it equals, as is or transposed, and found again in the
package's graph by the node input that reads it (fp16 packages read it through a Cast). The recovered model is then run against the package in ONNX Runtime, so
graphs from another exporter fail loudly instead of training from wrong weights.

fp32 packages give their weights back exactly, fp16 packages rounded to fp16; int8 packages and
graphs that fold several parameters into one (BatchNorm into convolutions, in the ResNet towers)
cannot be read back.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import numpy as np
import onnx
import onnx.numpy_helper
import torch

from clipdesk.errors import ClipdeskError
from clipdesk.model.clip import CLIP
from clipdesk.checkpoint.architecture import ClipConfig
from clipdesk.model.onnx_export import FP16_SUFFIX, export_fp32_graphs, verify_package
from clipdesk.runtime.package import IMAGE_FILE, TEXT_FILE, ModelPackage

# (parameter name, transposed): where a graph input's values come from.
_Source = tuple[str, bool]
# A place in a graph that reads an initializer: (node name, input index).
_Slot = tuple[str, int]


def _initializers(path: Path) -> tuple[dict[str, np.ndarray], dict[_Slot, str]]:
    """A graph's initializers by name, and the initializer each node input reads.

    Reads go through the nodes that only pass an initializer on: the Identity nodes of merged equal
    initializers, and the Casts that widen fp16-stored ones.
    """
    graph = onnx.load(str(path)).graph
    values = {tensor.name: onnx.numpy_helper.to_array(tensor) for tensor in graph.initializer}
    passing = [node for node in graph.node
               if node.op_type == "Identity" or (node.op_type == "Cast" and node.input[0] == node.output[0] + FP16_SUFFIX)]
    source = {node.output[0]: node.input[0] for node in passing}
    skipped = {node.name for node in passing}
    slots = {}
    for node in graph.node:
        if node.name in skipped:
            continue
        for index, name in enumerate(node.input):
            while name in source:
                name = source[name]
            if name in values:
                slots[(node.name, index)] = name
    return values, slots


def _probe_map(config: ClipConfig) -> dict[str, dict[_Slot, _Source]]:
    """For each graph file, node input → the parameter it reads."""
    generator = torch.Generator().manual_seed(0)
    probe = CLIP(config).float().eval()
    with torch.no_grad():
        for parameter in probe.parameters():  # distinct values: ones and zeros would match many
            parameter.copy_(torch.randn(parameter.shape, generator=generator))
    parameters = {name: value.detach().numpy() for name, value in probe.named_parameters()}
    by_shape: dict[tuple, list[str]] = {}
    for name, value in parameters.items():
        by_shape.setdefault(value.shape, []).append(name)
    maps = {}
    with tempfile.TemporaryDirectory(prefix="clipdesk-probe-") as folder:
        export_fp32_graphs(probe, Path(folder))
        for file_name in (IMAGE_FILE, TEXT_FILE):
            values, slots = _initializers(Path(folder) / file_name)
            sources: dict[str, _Source] = {}
            for name, array in values.items():
                for transposed in (False, True):
                    if transposed and array.ndim != 2:
                        continue
                    wanted = array.T if transposed else array
                    match = next((candidate for candidate in by_shape.get(wanted.shape, [])
                                  if np.array_equal(parameters[candidate], wanted)), None)
                    if match is not None:
                        sources[name] = (match, transposed)
                        break
            maps[file_name] = {slot: sources[name] for slot, name in slots.items() if name in sources}
    return maps


def model_from_package(package: ModelPackage) -> CLIP:
    """The package's model in PyTorch (fp32), its weights read from its graphs and checked against them."""
    manifest = package.manifest
    if manifest.io is not None:
        raise ClipdeskError(f"model {package.name!r} wraps ONNX graphs made elsewhere "
                            f"({manifest.architecture.get('layout', 'another layout')}): clipdesk cannot read "
                            "its weights back for training; train from its original checkpoint instead")
    if manifest.precision not in ("fp32", "fp16"):
        raise ClipdeskError(f"model {package.name!r} is stored as {manifest.precision}: its weights were quantised "
                            "and cannot be read back for training; use an fp32 or fp16 package or its checkpoint")
    config = ClipConfig.from_dict(manifest.architecture)
    maps = _probe_map(config)
    model = CLIP(config).float().eval()
    named = dict(model.named_parameters())
    # logit_scale is no graph input: the manifest records its exponent.
    read = {parameter for sources in maps.values() for parameter, _ in sources.values()}
    missing = set(named) - read - {"logit_scale"}
    if missing:
        raise ClipdeskError(f"model {package.name!r}: the exported graphs do not hold {len(missing)} parameters "
                            f"as they are (e.g. {sorted(missing)[0]!r}); its weights cannot be read back")
    with torch.no_grad():
        named["logit_scale"].fill_(math.log(manifest.logit_scale))
        for file_name, sources in maps.items():
            values, slots = _initializers(package.path / file_name)
            for slot, (parameter, transposed) in sources.items():
                if slot not in slots:
                    raise ClipdeskError(f"model {package.name!r}: no initializer feeds input {slot[1]} of node "
                                        f"{slot[0]!r} in {file_name}; it was written by another exporter, and its "
                                        "weights cannot be read back")
                array = values[slots[slot]].astype(np.float32)
                named[parameter].copy_(torch.from_numpy(np.ascontiguousarray(array.T if transposed else array)))
    # Same numbers in, same embeddings out, or the map was wrong (raises ClipdeskError).
    verify_package(model, package, manifest.precision)
    return model
