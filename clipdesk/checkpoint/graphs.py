"""CLIP's two towers as ONNX graphs, written from a ClipConfig and an OpenAI-layout state dict, without torch.

The graphs compute what clipdesk/model computes (ViT or ModifiedResNet image tower, causal text
Transformer, un-normalised outputs), with the package contract's names and dynamic axes
(runtime/package.py): `pixels` (batch, 3, R, R) → `image_embeds`, `input_ids` (batch, sequence ≤
context) int64 → `text_embeds`. Which tensors exist and their shapes come from architecture.py, the one
home of those facts; tests compare these graphs with the PyTorch model and with OpenAI's reference outputs.

Weights keep their state-dict names, except that Linear weights are stored transposed (for MatMul) as
`<name>__transposed`. Precision changes storage only; the arithmetic stays float32 on every provider:
  fp32  weights as they are;
  fp16  float weights of 1,024 values or more stored as float16 (`<name>__fp16`), widened by a Cast;
  int8  matrices and convolution kernels stored as int8 with one scale per output channel (symmetric),
        widened by DequantizeLinear; smaller tensors stay float32.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np

from clipdesk import __version__
from clipdesk.checkpoint import onnx_proto as proto
from clipdesk.checkpoint.architecture import ClipConfig, resnet_stages
from clipdesk.checkpoint.reader import float32
from clipdesk.runtime.package import IMAGE_INPUT, IMAGE_OUTPUT, TEXT_INPUT, TEXT_OUTPUT

PRECISIONS = ("fp32", "fp16", "int8")
FP16_SUFFIX = "__fp16"  # an fp16-stored initializer's name: its fp32 name + this
_SMALL = 1024  # tensors below this many values stay float32 whatever the precision
_LAYER_NORM_EPS = 1e-5  # OpenAI's (torch's default); HF configs with another are refused by hf_names
_BATCH_NORM_EPS = 1e-5
# protobuf caps a message at 2 GiB; a tower above this is refused rather than written broken.
MAX_GRAPH_BYTES = 2**31 - 64 * 2**20


class GraphTooLarge(ValueError):
    pass


class _Graph:
    """Nodes and initializers of one graph, with fresh names for intermediate values."""

    def __init__(self, weights: Mapping[str, np.ndarray], precision: str):
        self.weights, self.precision = weights, precision
        self.nodes: list[proto.Node] = []
        self.initializers: list[proto.Initializer] = []
        self._count = 0

    def _fresh(self, op: str) -> str:
        self._count += 1
        return f"{op.lower()}_{self._count}"

    def op(self, op: str, *inputs: str, **attributes) -> str:
        output = self._fresh(op)
        self.nodes.append(proto.Node(op, list(inputs), [output], output, attributes))
        return output

    def const(self, values, dtype=np.int64) -> str:
        name = self._fresh("const")
        self.initializers.append(proto.constant(name, np.asarray(values, dtype=dtype)))
        return name

    def weight(self, key: str, *, transpose: bool = False, channel_axis: int | None = None) -> str:
        """The graph value holding state-dict tensor `key` as float32; `channel_axis`: the output-channel
        axis of a matrix or kernel, which int8 quantises per channel (None: never quantised)."""
        source = self.weights[key]
        shape = tuple(reversed(source.shape)) if transpose else tuple(source.shape)
        name = key + "__transposed" if transpose else key

        def values() -> np.ndarray:
            array = float32(self.weights[key])
            return np.ascontiguousarray(array.T) if transpose else array

        count = int(np.prod(shape, dtype=np.int64))
        if self.precision == "int8" and channel_axis is not None and count >= _SMALL:
            return self._int8(name, shape, values, channel_axis)
        if self.precision == "fp16" and count >= _SMALL:
            stored = name + FP16_SUFFIX
            self.initializers.append(proto.Initializer(stored, np.dtype("<f2"), shape,
                                                       lambda: values().astype(np.float16)))
            self.nodes.append(proto.Node("Cast", [stored], [name], f"widen_{name}", {"to": proto.FLOAT}))
            return name
        self.initializers.append(proto.Initializer(name, np.dtype("<f4"), shape, values))
        return name

    def _int8(self, name: str, shape: tuple[int, ...], values: Callable[[], np.ndarray], axis: int) -> str:
        other_axes = tuple(i for i in range(len(shape)) if i != axis)
        cache: dict[str, np.ndarray] = {}

        def scales() -> np.ndarray:
            if "scale" not in cache:
                peak = np.abs(values()).max(axis=other_axes)
                cache["scale"] = np.where(peak > 0, peak / 127.0, 1.0).astype(np.float32)
            return cache["scale"]

        def quantised() -> np.ndarray:
            scale = np.expand_dims(scales(), other_axes)
            return np.clip(np.rint(values() / scale), -127, 127).astype(np.int8)

        channels = shape[axis]
        self.initializers += [
            proto.Initializer(name + "__int8", np.dtype("i1"), shape, quantised),
            proto.Initializer(name + "__scale", np.dtype("<f4"), (channels,), scales),
            proto.constant(name + "__zero", np.zeros(channels, np.int8)),
        ]
        self.nodes.append(proto.Node("DequantizeLinear", [name + "__int8", name + "__scale", name + "__zero"],
                                     [name], f"widen_{name}", {"axis": axis}))
        return name

    # Layers ------------------------------------------------------------------------------------

    def linear(self, x: str, prefix: str, weight: str = "weight", bias: str | None = "bias") -> str:
        """x @ W.T + b for torch's Linear weight W (out, in) stored at prefix + weight."""
        out = self.op("MatMul", x, self.weight(prefix + weight, transpose=True, channel_axis=1))
        return self.op("Add", out, self.weight(prefix + bias)) if bias else out

    def matmul(self, x: str, key: str) -> str:
        """x @ P for a projection P (in, out) stored as it is (CLIP's proj, text_projection)."""
        return self.op("MatMul", x, self.weight(key, channel_axis=1))

    def layer_norm(self, x: str, prefix: str) -> str:
        return self.op("LayerNormalization", x, self.weight(prefix + "weight"), self.weight(prefix + "bias"),
                       axis=-1, epsilon=_LAYER_NORM_EPS)

    def activation(self, x: str, kind: str) -> str:
        if kind == "quick_gelu":  # x * sigmoid(1.702 x)
            return self.op("Mul", x, self.op("Sigmoid", self.op("Mul", x, self.const(1.702, np.float32))))
        # exact GELU: x * (1 + erf(x / sqrt 2)) / 2
        erf = self.op("Erf", self.op("Mul", x, self.const(2 ** -0.5, np.float32)))
        return self.op("Mul", self.op("Mul", x, self.const(0.5, np.float32)),
                       self.op("Add", erf, self.const(1.0, np.float32)))

    def attention(self, q: str, k: str, v: str, head_dim: int, mask: str | None = None) -> str:
        """softmax((q / sqrt d) k^T + mask) v over (N, heads, L, d) tensors, as clipdesk/model's attend()."""
        scaled = self.op("Mul", q, self.const(head_dim ** -0.5, np.float32))
        scores = self.op("MatMul", scaled, self.op("Transpose", k, perm=[0, 1, 3, 2]))
        if mask is not None:
            scores = self.op("Add", scores, mask)
        return self.op("MatMul", self.op("Softmax", scores, axis=-1), v)

    def heads(self, x: str, heads: int, head_dim: int) -> str:
        """(N, L, heads * d) → (N, heads, L, d)."""
        return self.op("Transpose", self.op("Reshape", x, self.const([0, 0, heads, head_dim])), perm=[0, 2, 1, 3])

    def block(self, x: str, prefix: str, width: int, heads: int, activation: str, mask: str | None) -> str:
        """One pre-norm residual attention block (clipdesk/model/transformer.py)."""
        head_dim = width // heads
        qkv = self.linear(self.layer_norm(x, prefix + "ln_1."), prefix + "attn.", "in_proj_weight", "in_proj_bias")
        qkv = self.op("Transpose", self.op("Reshape", qkv, self.const([0, 0, 3, heads, head_dim])),
                      perm=[2, 0, 3, 1, 4])
        q, k, v = (self.op("Gather", qkv, self.const(i), axis=0) for i in range(3))
        out = self.attention(q, k, v, head_dim, mask)
        out = self.op("Reshape", self.op("Transpose", out, perm=[0, 2, 1, 3]), self.const([0, 0, width]))
        x = self.op("Add", x, self.linear(out, prefix + "attn.out_proj."))
        hidden = self.activation(self.linear(self.layer_norm(x, prefix + "ln_2."), prefix + "mlp.c_fc."), activation)
        return self.op("Add", x, self.linear(hidden, prefix + "mlp.c_proj."))

    def conv(self, x: str, key: str, kernel: int, stride: int = 1, padding: int = 0) -> str:
        return self.op("Conv", x, self.weight(key, channel_axis=0), kernel_shape=[kernel, kernel],
                       strides=[stride, stride], pads=[padding] * 4)

    def batch_norm(self, x: str, prefix: str) -> str:
        return self.op("BatchNormalization", x, *(self.weight(prefix + name) for name in (
            "weight", "bias", "running_mean", "running_var")), epsilon=_BATCH_NORM_EPS)

    def avg_pool(self, x: str, size: int) -> str:
        return self.op("AveragePool", x, kernel_shape=[size, size], strides=[size, size])

    def set_output(self, value: str, name: str) -> None:
        self.nodes.append(proto.Node("Identity", [value], [name], f"output_{name}"))


def _text_graph(g: _Graph, config: ClipConfig) -> None:
    ids = TEXT_INPUT
    width, context = config.text_width, config.context_length
    x = g.op("Gather", g.weight("token_embedding.weight", channel_axis=0), ids, axis=0)
    length = g.op("Shape", ids, start=1, end=2)  # the sequence may be cut short of context_length
    positions = g.op("Slice", g.weight("positional_embedding"), g.const([0]), length, g.const([0]))
    x = g.op("Add", x, positions)
    causal = np.triu(np.full((context, context), -np.inf, np.float32), 1)
    mask = g.op("Slice", g.const(causal, np.float32), g.const([0, 0]), g.op("Concat", length, length, axis=0),
                g.const([0, 1]))
    for i in range(config.text_layers):
        x = g.block(x, f"transformer.resblocks.{i}.", width, config.text_heads, config.activation, mask)
    x = g.layer_norm(x, "ln_final.")
    # Pooled at the end-of-text token: the largest id of each row (the vocabulary's last entry).
    eot = g.op("Unsqueeze", g.op("ArgMax", ids, axis=1, keepdims=0), g.const([1]))
    pooled = g.op("GatherND", x, eot, batch_dims=1)
    g.set_output(g.matmul(pooled, "text_projection"), TEXT_OUTPUT)


def _vit_graph(g: _Graph, config: ClipConfig) -> None:
    width, patch = config.vision_width, config.vision_patch_size
    x = g.op("Conv", IMAGE_INPUT, g.weight("visual.conv1.weight", channel_axis=0), kernel_shape=[patch, patch],
             strides=[patch, patch])
    x = g.op("Transpose", g.op("Reshape", x, g.const([0, 0, -1])), perm=[0, 2, 1])  # (N, grid², width)
    batch = g.op("Shape", IMAGE_INPUT, start=0, end=1)
    cls = g.op("Expand", g.op("Reshape", g.weight("visual.class_embedding"), g.const([1, 1, width])),
               g.op("Concat", batch, g.const([1, width]), axis=0))
    x = g.op("Add", g.op("Concat", cls, x, axis=1), g.weight("visual.positional_embedding"))
    x = g.layer_norm(x, "visual.ln_pre.")
    for i in range(config.vision_layers):
        x = g.block(x, f"visual.transformer.resblocks.{i}.", width, config.vision_heads, config.activation, None)
    x = g.layer_norm(g.op("Gather", x, g.const(0), axis=1), "visual.ln_post.")
    g.set_output(g.matmul(x, "visual.proj"), IMAGE_OUTPUT)


def _resnet_graph(g: _Graph, config: ClipConfig) -> None:
    x = IMAGE_INPUT
    for index, stride in ((1, 2), (2, 1), (3, 1)):
        x = g.op("Relu", g.batch_norm(g.conv(x, f"visual.conv{index}.weight", 3, stride, 1), f"visual.bn{index}."))
    x = g.avg_pool(x, 2)
    for stage, block, inplanes, planes, stride in resnet_stages(config.vision_layers, config.vision_width):
        p = f"visual.layer{stage}.{block}."
        out = g.op("Relu", g.batch_norm(g.conv(x, p + "conv1.weight", 1), p + "bn1."))
        out = g.op("Relu", g.batch_norm(g.conv(out, p + "conv2.weight", 3, 1, 1), p + "bn2."))
        if stride > 1:
            out = g.avg_pool(out, stride)
        out = g.batch_norm(g.conv(out, p + "conv3.weight", 1), p + "bn3.")
        identity = x
        if stride > 1 or inplanes != planes * 4:
            pooled = g.avg_pool(x, stride) if stride > 1 else x
            identity = g.batch_norm(g.conv(pooled, p + "downsample.0.weight", 1), p + "downsample.1.")
        x = g.op("Relu", g.op("Add", out, identity))
    # Attention pooling: the mean position (prepended) attends over all positions.
    channels, heads = config.vision_width * 32, config.vision_heads
    head_dim = channels // heads
    x = g.op("Transpose", g.op("Reshape", x, g.const([0, 0, -1])), perm=[0, 2, 1])  # (N, H*W, C)
    x = g.op("Concat", g.op("ReduceMean", x, g.const([1]), keepdims=1), x, axis=1)
    x = g.op("Add", x, g.weight("visual.attnpool.positional_embedding"))
    first = g.op("Slice", x, g.const([0]), g.const([1]), g.const([1]))
    q = g.heads(g.linear(first, "visual.attnpool.q_proj."), heads, head_dim)
    k = g.heads(g.linear(x, "visual.attnpool.k_proj."), heads, head_dim)
    v = g.heads(g.linear(x, "visual.attnpool.v_proj."), heads, head_dim)
    out = g.op("Reshape", g.attention(q, k, v, head_dim), g.const([0, -1]))
    g.set_output(g.linear(out, "visual.attnpool.c_proj."), IMAGE_OUTPUT)


def write_tower(path: Path, tower: str, config: ClipConfig, weights: Mapping[str, np.ndarray],
                precision: str = "fp32") -> None:
    """Write the "image" or "text" tower of `config` with `weights` (OpenAI names) as an ONNX file."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}")
    g = _Graph(weights, precision)
    if tower == "text":
        _text_graph(g, config)
        inputs = [proto.value_info(TEXT_INPUT, proto.INT64, ["batch", "sequence"])]
        outputs = [proto.value_info(TEXT_OUTPUT, proto.FLOAT, ["batch", config.embed_dim])]
    else:
        (_vit_graph if config.is_vit else _resnet_graph)(g, config)
        side = config.image_resolution
        inputs = [proto.value_info(IMAGE_INPUT, proto.FLOAT, ["batch", 3, side, side])]
        outputs = [proto.value_info(IMAGE_OUTPUT, proto.FLOAT, ["batch", config.embed_dim])]
    size = proto.graph_size(g.initializers)
    if size > MAX_GRAPH_BYTES:
        raise GraphTooLarge(f"the {tower} tower's weights take {size / 2**30:.1f} GiB at {precision}, more than "
                            "an ONNX file holds (2 GiB); import it with --precision fp16")
    with open(path, "wb") as out:
        proto.write_model(out, name=f"clipdesk-{tower}", nodes=g.nodes, initializers=g.initializers,
                          inputs=inputs, outputs=outputs, producer="clipdesk", producer_version=__version__)
