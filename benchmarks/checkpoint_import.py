"""Checkpoint import: the torch-free path (clipdesk/checkpoint, what `clipdesk model import` runs) against the
PyTorch path (build the torch model, torch.onnx.export, verify against PyTorch: clipdesk/model/onnx_export.py).

Both start from the same ViT-B/32-shaped checkpoint with random weights (fp16 state dict, as OpenAI
releases them, 151 M parameters), write an fp32 package, and run it on the verification inputs. Each run
is a fresh process; its wall time and peak resident memory (ru_maxrss) are printed, and the medians.
Then the two packages themselves: file sizes, graph nodes, and how long ONNX Runtime takes to load each
graph (what every start of the app pays), medians of five loads in this process.

    .venv/bin/python benchmarks/checkpoint_import.py [--repeats 3] [--config ViT-B/32] [--format pt|safetensors]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = """
import json, resource, sys, time
path, out, mode = sys.argv[1:4]
started = time.perf_counter()
if mode == "torch-free":
    sys.modules["torch"] = None  # as in the installed app
    from clipdesk.checkpoint.importer import export_checkpoint
    export_checkpoint(path, out, log=lambda message: None)
else:
    from clipdesk.model.checkpoint_import import model_from_checkpoint
    from clipdesk.model.onnx_export import export_package
    model, provenance = model_from_checkpoint(path, log=lambda message: None)
    export_package(model, out, name="bench", provenance=provenance, log=lambda message: None)
seconds = time.perf_counter() - started
print(json.dumps({"seconds": seconds, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def make_checkpoint(folder: Path, config_name: str, file_format: str) -> Path:
    import torch

    from clipdesk.checkpoint.architecture import get_config, state_dict_shapes

    generator = torch.Generator().manual_seed(0)
    state = {}
    for key, shape in state_dict_shapes(get_config(config_name)).items():
        if key.endswith("num_batches_tracked"):
            state[key] = torch.zeros((), dtype=torch.long)
        elif key.endswith("running_var"):
            state[key] = torch.ones(shape, dtype=torch.float16)
        else:
            state[key] = (torch.randn(shape, generator=generator) * 0.02).half()
    state["logit_scale"] = torch.tensor(4.6052)
    if file_format == "safetensors":
        from safetensors.torch import save_file

        path = folder / "model.safetensors"
        save_file(state, str(path))
    else:
        path = folder / "model.pt"
        torch.save(state, path)
    return path


def run(path: Path, out: Path, mode: str) -> dict:
    shutil.rmtree(out, ignore_errors=True)
    result = subprocess.run([sys.executable, "-c", CHILD, str(path), str(out), mode], capture_output=True,
                            text=True)
    if result.returncode:
        raise SystemExit(f"{mode} failed:\n{result.stderr}")
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    figures["package_mb"] = sum(f.stat().st_size for f in out.iterdir()) / 2**20
    return figures


def graph_facts(path: Path) -> tuple[float, int, float]:
    """(MB, nodes, median seconds to create an ONNX Runtime session on the CPU)."""
    import time

    import onnx

    from clipdesk.runtime.encoders import create_session

    nodes = len(onnx.load(str(path), load_external_data=False).graph.node)
    loads = []
    for _ in range(5):
        started = time.perf_counter()
        create_session(path, "cpu")
        loads.append(time.perf_counter() - started)
    return path.stat().st_size / 2**20, nodes, statistics.median(loads)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--config", default="ViT-B/32")
    parser.add_argument("--format", choices=("pt", "safetensors"), default="pt")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        checkpoint = make_checkpoint(scratch, args.config, args.format)
        print(f"{args.config}-shaped random checkpoint, {args.format}, "
              f"{checkpoint.stat().st_size / 2**20:.0f} MB; {args.repeats} runs each, alternating")
        runs: dict[str, list[dict]] = {"torch-free": [], "torch": []}
        for _ in range(args.repeats):
            for mode in runs:  # alternate, so background load hits both alike
                runs[mode].append(run(checkpoint, scratch / f"out-{mode}", mode))
                print(f"  {mode:<10} {runs[mode][-1]['seconds']:6.1f} s  {runs[mode][-1]['peak_mb']:6.0f} MB peak")
        print(f"{'path':<12}{'median s':>10}{'peak MB':>10}{'package MB':>12}")
        for mode, figures in runs.items():
            print(f"{mode:<12}{statistics.median(f['seconds'] for f in figures):>10.1f}"
                  f"{statistics.median(f['peak_mb'] for f in figures):>10.0f}"
                  f"{statistics.median(f['package_mb'] for f in figures):>12.0f}")
        ratio = (statistics.median(f["seconds"] for f in runs["torch"])
                 / statistics.median(f["seconds"] for f in runs["torch-free"]))
        print(f"torch-free is {ratio:.1f}x faster")
        print(f"{'graph':<22}{'MB':>8}{'nodes':>8}{'load s':>8}")
        for mode in runs:
            for graph in ("image.onnx", "text.onnx"):
                path = scratch / f"out-{mode}" / graph
                mb, nodes, load = graph_facts(path)
                print(f"{mode + ' ' + graph:<22}{mb:>8.0f}{nodes:>8}{load:>8.2f}")


if __name__ == "__main__":
    main()
