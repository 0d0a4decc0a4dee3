"""Training throughput of a CLIP config on this machine's CPU.

One step = forward under bf16 autocast, symmetric contrastive loss, backward, AdamW update, on random
pixels and random captions. Prints the median samples/s over the timed steps.

    .venv/bin/python benchmarks/train_step_speed.py --config tiny --batch 256
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from clipdesk.model import create_model, get_config

EOT = 49407  # CLIP's <|endoftext|>, the largest id: encode_text pools where it sits


def random_batch(config, batch: int, generator: torch.Generator):
    size = config.image_resolution
    pixels = torch.randn(batch, 3, size, size, generator=generator)
    ids = torch.zeros(batch, config.context_length, dtype=torch.long)
    lengths = torch.randint(3, config.context_length, (batch,), generator=generator)
    for row, length in enumerate(lengths.tolist()):
        ids[row, 0] = EOT - 1  # <|startoftext|>
        ids[row, 1:length - 1] = torch.randint(1, EOT - 1, (length - 2,), generator=generator)
        ids[row, length - 1] = EOT
    return pixels, ids


def contrastive_loss(image, text, scale):
    logits = scale * image @ text.t()
    labels = torch.arange(logits.shape[0])
    return (F.cross_entropy(logits, labels) + F.cross_entropy(logits.t(), labels)) / 2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="tiny")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--steps", type=int, default=10, help="timed steps")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--fp32", action="store_true", help="no bf16 autocast")
    args = parser.parse_args()

    config = get_config(args.config)
    torch.manual_seed(0)
    model = create_model(config).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-4, weight_decay=0.1)
    pixels, ids = random_batch(config, args.batch, torch.Generator().manual_seed(0))
    params = sum(p.numel() for p in model.parameters())
    print(f"config {args.config}: {params / 1e6:.1f}M parameters, batch {args.batch}, "
          f"{torch.get_num_threads()} threads, {'fp32' if args.fp32 else 'bf16 autocast'}")

    rates = []
    for step in range(args.warmup + args.steps):
        start = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=not args.fp32):
            loss = contrastive_loss(*model(pixels, ids))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        elapsed = time.perf_counter() - start
        if step >= args.warmup:
            rates.append(args.batch / elapsed)
    print(f"median {statistics.median(rates):.0f} samples/s "
          f"(min {min(rates):.0f}, max {max(rates):.0f}, {args.steps} steps; loss {loss.item():.3f})")


if __name__ == "__main__":
    main()
