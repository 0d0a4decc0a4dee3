"""AdamW as CLIP was trained: decoupled weight decay on weight matrices only, warm-up then cosine.

The learning rate is a pure function of the step, so a resumed run needs only the step number to
continue the schedule exactly.
"""

from __future__ import annotations

import math

import torch
from torch import nn

MAX_LOGIT_SCALE = math.log(100.0)  # the paper clamps the temperature's inverse at 100
BETAS = (0.9, 0.98)  # the paper's values; beta2 below 0.999 steadies large-batch training
EPSILON = 1e-6


def takes_weight_decay(name: str, parameter: nn.Parameter) -> bool:
    """Weight matrices decay; gains, biases, embeddings and the logit scale do not.

    Gains and biases are the 1-D parameters (LayerNorm, BatchNorm, Linear biases, ViT's class
    embedding); the embeddings are the token and positional tables.
    """
    return parameter.ndim >= 2 and "embedding" not in name and name != "logit_scale"


def make_optimizer(model: nn.Module, lr: float, weight_decay: float) -> torch.optim.AdamW:
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    decay = [p for n, p in named if takes_weight_decay(n, p)]
    no_decay = [p for n, p in named if not takes_weight_decay(n, p)]
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    # The fused kernel updates the 49,408-row token table 5x faster than the per-tensor loop on a CPU
    # (45 vs 250 ms a step for `tiny`), where that loop otherwise costs as much as the model itself.
    fused = all(p.device.type in ("cpu", "cuda") and p.is_floating_point() for _, p in named)
    return torch.optim.AdamW(groups, lr=lr, betas=BETAS, eps=EPSILON, fused=fused)


def learning_rate(step: int, peak: float, warmup: int, total: int) -> float:
    """Linear warm-up from peak/warmup to peak over `warmup` steps, then cosine decay to 0 at `total`.

    `step` counts from 0 (the rate used for the first update).
    """
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * peak * (1 + math.cos(math.pi * min(1.0, progress)))


def set_learning_rate(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


def default_warmup(total_steps: int) -> int:
    return max(1, round(0.05 * total_steps))


@torch.no_grad()
def clamp_logit_scale(model: nn.Module) -> None:
    model.logit_scale.clamp_(0, MAX_LOGIT_SCALE)
