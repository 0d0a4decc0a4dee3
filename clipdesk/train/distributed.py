"""Data-parallel training across processes (torchrun): gloo on CPUs, NCCL on GPUs.

Each process embeds its share of the global batch; embeddings are all-gathered *with* gradients and
each process scores its own rows against the whole batch (a local loss). Parameter gradients are then
averaged over processes, which makes one step equal to single-process training on the global batch.
"""

from __future__ import annotations

import datetime as _dt
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from clipdesk.errors import ClipdeskError


@dataclass
class Processes:
    """Where this process stands in the run; world_size 1 when not started by torchrun."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def pick_device(preference: str, local_rank: int = 0) -> torch.device:
    if preference == "cuda" and not torch.cuda.is_available():
        raise ClipdeskError("--device cuda: PyTorch sees no CUDA GPU here (use --device cpu)")
    if preference in ("auto", "cuda") and torch.cuda.is_available():
        return torch.device("cuda", local_rank % torch.cuda.device_count())
    return torch.device("cpu")


def start(device_preference: str = "auto") -> Processes:
    """Join the process group that torchrun describes in the environment, if any."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = pick_device(device_preference, local_rank)
    if world_size > 1 and not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo", timeout=_dt.timedelta(minutes=30))
    return Processes(rank, world_size, local_rank, device)


def stop(processes: Processes) -> None:
    if processes.enabled and dist.is_initialized():
        dist.destroy_process_group()


def row_counts(rows: int, processes: Processes) -> list[int]:
    """Rows of every process's share (shares shrink when images are skipped)."""
    if not processes.enabled:
        return [rows]
    counts = [torch.zeros(1, dtype=torch.long, device=processes.device) for _ in range(processes.world_size)]
    dist.all_gather(counts, torch.tensor([rows], dtype=torch.long, device=processes.device))
    return [int(c.item()) for c in counts]


class _GatherRows(torch.autograd.Function):
    """All-gather of equally sized blocks; the backward sums every process's gradient for this block."""

    @staticmethod
    def forward(ctx, block: torch.Tensor, rank: int, world_size: int) -> torch.Tensor:
        ctx.rank = rank
        parts = [torch.empty_like(block) for _ in range(world_size)]
        dist.all_gather(parts, block.contiguous())
        return torch.cat(parts)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        # Every process's loss reads every block, so the gradient of a block is the sum over processes.
        # all_reduce exists on every backend (gloo has no reduce_scatter).
        grad = grad.contiguous()
        dist.all_reduce(grad)
        return grad.chunk(dist.get_world_size())[ctx.rank], None, None


def gather_rows(local: torch.Tensor, counts: list[int], processes: Processes) -> torch.Tensor:
    """All processes' rows in rank order, differentiable; shares may differ in size."""
    if not processes.enabled:
        return local
    largest = max(counts)
    padded = torch.cat([local, local.new_zeros(largest - local.shape[0], *local.shape[1:])])
    gathered = _GatherRows.apply(padded, processes.rank, processes.world_size)
    keep = torch.cat([torch.arange(count, device=local.device) + rank * largest for rank, count in enumerate(counts)])
    return gathered.index_select(0, keep)


def average_gradients(parameters, processes: Processes) -> None:
    """Mean of the gradients over processes, flattened into one buffer per dtype (few collectives)."""
    if not processes.enabled:
        return
    parameters = [p for p in parameters if p.requires_grad]
    for p in parameters:
        if p.grad is None:  # a process whose share was empty: every process must send the same buffer
            p.grad = torch.zeros_like(p)
    grads = [p.grad for p in parameters]
    for dtype in {g.dtype for g in grads}:
        group = [g for g in grads if g.dtype == dtype]
        flat = torch.cat([g.reshape(-1) for g in group])
        dist.all_reduce(flat)
        flat /= processes.world_size
        for grad, part in zip(group, flat.split([g.numel() for g in group])):
            grad.copy_(part.view_as(grad))


def sum_values(values: list[float], processes: Processes) -> list[float]:
    if not processes.enabled:
        return list(values)
    tensor = torch.tensor(values, dtype=torch.float64, device=processes.device)
    dist.all_reduce(tensor)
    return tensor.tolist()


def any_flags(flags: list[bool], processes: Processes) -> list[bool]:
    """Flags raised by any process (stop requested, checkpoint due): all processes act on them together."""
    return [value > 0 for value in sum_values([float(f) for f in flags], processes)]


def barrier(processes: Processes) -> None:
    if processes.enabled:
        dist.barrier()
