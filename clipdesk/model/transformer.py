"""The pre-norm Transformer shared by CLIP's text tower and its ViT image tower.

Parameter names follow OpenAI's checkpoints (`resblocks.N.attn.in_proj_weight`, `ln_1`, `mlp.c_fc`, ...).
Tensors here are batch-first (N, L, D); OpenAI runs sequence-first, which changes no parameter.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn


class LayerNorm(nn.LayerNorm):
    """Normalises in fp32 and casts back, so fp16/bf16 activations keep a stable mean and variance."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.float()).to(x.dtype)


class QuickGELU(nn.Module):
    """OpenAI's sigmoid approximation of GELU; their weights were trained with it, so keep it exact."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(1.702 * x)


def make_activation(name: str) -> nn.Module:
    return QuickGELU() if name == "quick_gelu" else nn.GELU()


def causal_mask(length: int) -> torch.Tensor:
    """Additive mask letting each text position see only itself and earlier positions."""
    return torch.full((length, length), float("-inf")).triu_(1)


def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, attn_mask: torch.Tensor | None,
           fused: bool) -> torch.Tensor:
    """Scaled dot-product attention over (N, heads, L, head_width) tensors.

    On CPU plain matmul + softmax trained the tiny and small configs 1.6x faster than torch's fused
    kernel (benchmarks/train_step_speed.py). On GPUs `fused` picks the fused kernel, which never
    materialises the L x L scores (not measured here: no GPU on the development machines).
    """
    if fused:
        mask = None if attn_mask is None else attn_mask.to(q.dtype)
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    scores = (q * q.shape[-1] ** -0.5) @ k.transpose(-2, -1)
    if attn_mask is not None:
        scores = scores + attn_mask
    return scores.softmax(dim=-1).to(v.dtype) @ v


class ResidualAttentionBlock(nn.Module):
    def __init__(self, width: int, heads: int, activation: str = "quick_gelu"):
        super().__init__()
        self.attn = nn.MultiheadAttention(width, heads, batch_first=True)
        self.ln_1 = LayerNorm(width)
        self.mlp = nn.Sequential(OrderedDict([
            ("c_fc", nn.Linear(width, width * 4)),
            ("gelu", make_activation(activation)),
            ("c_proj", nn.Linear(width * 4, width)),
        ]))
        self.ln_2 = LayerNorm(width)

    def attention(self, x: torch.Tensor, attn_mask: torch.Tensor | None) -> torch.Tensor:
        # nn.MultiheadAttention holds the weights (OpenAI's names and default init); its forward is
        # not used so that attend() can pick the faster kernel.
        # unflatten/flatten rather than view(n, ...): no batch size gets frozen into an ONNX export.
        qkv = F.linear(x, self.attn.in_proj_weight, self.attn.in_proj_bias)
        q, k, v = qkv.unflatten(-1, (3, self.attn.num_heads, -1)).permute(2, 0, 3, 1, 4).unbind(0)
        out = attend(q, k, v, attn_mask, fused=x.device.type != "cpu")
        return self.attn.out_proj(out.transpose(1, 2).flatten(2))

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor | None = None) -> torch.Tensor:
        x = x + self.attention(self.ln_1(x), attn_mask)
        return x + self.mlp(self.ln_2(x))


class Transformer(nn.Module):
    def __init__(self, width: int, layers: int, heads: int, activation: str = "quick_gelu"):
        super().__init__()
        self.width = width
        self.layers = layers
        # A ModuleList (not Sequential) so the mask can be passed to every block; same names.
        self.resblocks = nn.ModuleList(
            ResidualAttentionBlock(width, heads, activation) for _ in range(layers)
        )

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor | None = None) -> torch.Tensor:
        for block in self.resblocks:
            x = block(x, attn_mask)
        return x
