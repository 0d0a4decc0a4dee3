"""The trainer's acceptance run: `clipdesk train --model tiny` learns coloured shapes, and torchrun works.

1. Writes a synthetic set of coloured shapes with captions (clipdesk.train.synthetic): 24 labels
   (6 colours x 4 shapes), two combinations kept out of training entirely.
2. `clipdesk train --model tiny` on it (the real command, one process).
3. Zero-shot top-1/top-5 of the exported package, through the run side (ONNX Runtime, the app's
   preprocessing): on held-out images of the trained labels, and on images of the two unseen
   combinations among all 24 labels; each against chance.
4. `torchrun --nproc_per_node=2 -m clipdesk.train` for one epoch on the CPU, which must write DIR/model/.

    .venv/bin/python benchmarks/train_acceptance.py OUT_DIR [--epochs 8] [--train 2000]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

TEMPLATES = ("a photo of a {}.", "a picture of a {}.", "{}")
UNSEEN = ("purple star", "green triangle")


def zero_shot(package_dir: Path, manifest: Path, labels: list[str]) -> dict:
    from clipdesk.runtime.encoders import load_model

    model = load_model(package_dir, device="cpu")
    rows = [json.loads(line) for line in manifest.read_text().splitlines() if line.strip()]
    images = model.image.encode_files([manifest.parent / row["image"] for row in rows])
    prompts = model.text.encode([t.format(label) for label in labels for t in TEMPLATES])
    classes = prompts.reshape(len(labels), len(TEMPLATES), -1).mean(1)
    classes /= np.linalg.norm(classes, axis=1, keepdims=True)
    ranked = np.argsort(-(images @ classes.T), axis=1)
    truth = np.array([labels.index(row["label"]) for row in rows])
    return {"images": len(rows), "labels": len(labels), "chance_top1": 1 / len(labels),
            "chance_top5": min(5, len(labels)) / len(labels), "top1": float(np.mean(ranked[:, 0] == truth)),
            "top5": float(np.mean((ranked[:, :5] == truth[:, None]).any(1)))}


def run(command: list[str], **kwargs) -> float:
    print("$ " + " ".join(command), flush=True)
    start = time.perf_counter()
    subprocess.run(command, check=True, **kwargs)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--train", type=int, default=2000)
    parser.add_argument("--val", type=int, default=480)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--skip-torchrun", action="store_true")
    args = parser.parse_args()

    from clipdesk.train.synthetic import labels as all_labels
    from clipdesk.train.synthetic import write_shapes_dataset

    data = write_shapes_dataset(args.out_dir / "shapes", train=args.train, val=args.val, unseen=UNSEEN)
    bin_dir = Path(sys.executable).parent
    single = args.out_dir / "tiny"
    seconds = run([str(bin_dir / "clipdesk"), "train", "--data", str(data["train"]), "--val-data", str(data["val"]),
                   "--model", "tiny", "--epochs", str(args.epochs), "--batch-size", str(args.batch_size),
                   "--out", str(single), "--name", "shapes-tiny"])
    summary = json.loads((single / "summary.json").read_text())
    trained_labels = [label for label in all_labels() if label not in UNSEEN]
    held_out = zero_shot(single / "model", data["val"], trained_labels)
    unseen = zero_shot(single / "model", data["val_unseen"], all_labels())
    print(f"\nsingle process: {summary['steps']} steps in {seconds:.0f} s ({summary['precision']})")
    print(f"trainer's final validation figures: {json.dumps(summary['final'])}")
    for name, r in (("held-out images, 22 trained labels", held_out), ("unseen combinations, all 24 labels", unseen)):
        print(f"zero-shot via the exported package, {name}: top-1 {100 * r['top1']:.1f}% "
              f"(chance {100 * r['chance_top1']:.1f}%), top-5 {100 * r['top5']:.1f}% "
              f"(chance {100 * r['chance_top5']:.1f}%) on {r['images']} images")

    if not args.skip_torchrun:
        distributed = args.out_dir / "tiny-torchrun"
        seconds = run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                       "-m", "clipdesk.train", "--data", str(data["train"]), "--val-data", str(data["val"]),
                       "--model", "tiny", "--epochs", "1", "--batch-size", str(args.batch_size),
                       "--out", str(distributed), "--workers", "1"], env={**os.environ, "OMP_NUM_THREADS": "1"})
        result = zero_shot(distributed / "model", data["val"], trained_labels)
        print(f"\ntorchrun, 2 processes, 1 epoch: {seconds:.0f} s; wrote {distributed / 'model'} "
              f"(zero-shot top-1 {100 * result['top1']:.1f}%, chance {100 * result['chance_top1']:.1f}%)")


if __name__ == "__main__":
    main()
