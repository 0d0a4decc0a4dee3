"""Training throughput and peak memory of `clipdesk train`'s step, per config, batch and chunk size.

Each measurement runs in a fresh process so that its peak resident memory is its own. One step is
exactly the trainer's: 8-bit pixels normalised through the run side's table, both towers under the
run's precision (bf16 autocast where supported), the contrastive loss (gradient caching when a chunk
size is given), gradient clipping, fused AdamW and the temperature clamp. Inputs are random pixels
and captions, so the figures leave image decoding out; `--data` adds the decoding pipeline's own
rate on synthetic PNGs, to show whether it keeps up.

    .venv/bin/python benchmarks/train_throughput.py                      # tiny and small, batch 256
    .venv/bin/python benchmarks/train_throughput.py --configs small --batch 1024 --chunks 0 128
    .venv/bin/python benchmarks/train_throughput.py --configs ViT-B/32 --device cuda   # where a GPU is
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

EOT = 49407


def rss_mib() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def measure(config_name: str, batch: int, chunk: int, steps: int, warmup: int, device_name: str,
            precision: str, threads: int) -> dict:
    import torch

    if threads:
        torch.set_num_threads(threads)
    from clipdesk.model import create_model, get_config
    from clipdesk.runtime.preprocess import OPENAI_MEAN, OPENAI_STD
    from clipdesk.train.augment import NormalisationTable
    from clipdesk.train.gradcache import backward_step
    from clipdesk.train.schedule import clamp_logit_scale, make_optimizer
    from clipdesk.train.trainer import resolve_precision

    device = torch.device(device_name)
    config = get_config(config_name)
    torch.manual_seed(0)
    model = create_model(config).to(device).train()
    optimizer = make_optimizer(model, lr=5e-4, weight_decay=0.2)
    precision = resolve_precision(precision, device)
    generator = torch.Generator().manual_seed(0)
    size = config.image_resolution
    pixels = torch.randint(0, 256, (batch, size, size, 3), dtype=torch.uint8, generator=generator)
    ids = torch.zeros(batch, config.context_length, dtype=torch.long)
    lengths = torch.randint(4, min(20, config.context_length), (batch,), generator=generator)
    for row, length in enumerate(lengths.tolist()):
        ids[row, 0] = EOT - 1
        ids[row, 1:length - 1] = torch.randint(1, EOT - 1, (length - 2,), generator=generator)
        ids[row, length - 1] = EOT
    table = NormalisationTable(OPENAI_MEAN, OPENAI_STD)

    def autocast():
        return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")

    setup_rss = rss_mib()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    times = []
    for step in range(warmup + steps):
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        loss = backward_step(model, pixels, ids, chunk, autocast=autocast, prepare_pixels=lambda p: table(p, device),
                             prepare_ids=lambda i: i.to(device))
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        clamp_logit_scale(model)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if step >= warmup:
            times.append(time.perf_counter() - start)
    result = {
        "config": config_name, "params_m": sum(p.numel() for p in model.parameters()) / 1e6, "batch": batch,
        "chunk": chunk, "precision": precision, "device": str(device), "threads": torch.get_num_threads(),
        "median_step_s": statistics.median(times), "samples_per_s": batch / statistics.median(times),
        "best_samples_per_s": batch / min(times), "loss": float(loss),
        "setup_rss_mib": setup_rss, "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    if device.type == "cuda":
        result["peak_gpu_mib"] = torch.cuda.max_memory_allocated(device) / 2**20
    return result


def measure_data(config_name: str, rows: int, workers: int) -> dict:
    """Rows per second from the training data pipeline (decode, crop, jitter, tokenise) on synthetic PNGs."""
    from clipdesk.model import get_config
    from clipdesk.train.data import EpochBatches, TrainingSet, make_loader, read_source
    from clipdesk.train.synthetic import write_shapes_dataset

    config = get_config(config_name)
    with tempfile.TemporaryDirectory() as folder:
        paths = write_shapes_dataset(Path(folder), train=rows, val=0, size=2 * config.image_resolution)
        dataset = TrainingSet(read_source(str(paths["train"])).samples, config.image_resolution,
                              config.context_length, seed=0, min_crop_scale=0.7)
        batches = EpochBatches(rows, 64, seed=0)
        loader = make_loader(dataset, workers, batch_sampler=batches)
        start = time.perf_counter()
        count = sum(len(batch.second) for batch in loader)
        elapsed = time.perf_counter() - start
    return {"config": config_name, "workers": workers, "rows": count, "rows_per_s": count / elapsed,
            "image_px": 2 * config.image_resolution}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="+", default=["tiny", "small"])
    parser.add_argument("--batch", type=int, nargs="+", default=[256])
    parser.add_argument("--chunks", type=int, nargs="+", default=[0], help="gradient-caching chunk sizes (0: off)")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default="auto", choices=("auto", "bf16", "fp32"))
    parser.add_argument("--threads", type=int, default=0,
                        help="torch threads (default: torch's choice; 1 avoids oversubscription on a busy machine)")
    parser.add_argument("--data", type=int, default=0, metavar="ROWS",
                        help="also time the decoding pipeline on this many synthetic images (0: skip)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(**json.loads(args.child))))
        return

    print(f"{'config':<9} {'params':>7} {'batch':>6} {'chunk':>6} {'prec':>5} {'thr':>3} {'samples/s':>10} "
          f"{'step s':>7} {'setup MiB':>10} {'peak MiB':>9}")
    for config in args.configs:
        for batch in args.batch:
            for chunk in args.chunks:
                job = dict(config_name=config, batch=batch, chunk=chunk, steps=args.steps, warmup=args.warmup,
                           device_name=args.device, precision=args.precision, threads=args.threads)
                out = subprocess.run([sys.executable, __file__, "--child", json.dumps(job)], capture_output=True,
                                     text=True)
                if out.returncode:
                    print(f"{config} batch {batch} chunk {chunk}: failed: {out.stderr.strip().splitlines()[-1]}")
                    continue
                r = json.loads(out.stdout.strip().splitlines()[-1])
                gpu = f"  gpu peak {r['peak_gpu_mib']:.0f} MiB" if "peak_gpu_mib" in r else ""
                print(f"{config:<9} {r['params_m']:>6.1f}M {batch:>6} {chunk or '-':>6} {r['precision']:>5} "
                      f"{r['threads']:>3} {r['samples_per_s']:>10.1f} {r['median_step_s']:>7.2f} "
                      f"{r['setup_rss_mib']:>10.0f} {r['peak_rss_mib']:>9.0f}{gpu}", flush=True)
    if args.data:
        for config in args.configs:
            for workers in (0, 2):
                r = measure_data(config, args.data, workers)
                print(f"data pipeline, {config} ({r['image_px']} px PNGs to {get_resolution(config)} px): "
                      f"{workers} workers {r['rows_per_s']:.0f} rows/s", flush=True)


def get_resolution(config: str) -> int:
    from clipdesk.model import get_config

    return get_config(config).image_resolution


if __name__ == "__main__":
    main()
