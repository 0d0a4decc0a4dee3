"""Whole training runs: the CLI, exported packages, exact resumption, fine-tuning and torchrun."""

import csv
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from clipdesk.cli import main
from clipdesk.errors import ClipdeskError
from clipdesk.progress import Progress
from clipdesk.train.checkpoint import model_from_weights
from clipdesk.train.evaluate import DEFAULT_TEMPLATES
from clipdesk.train.options import TrainOptions
from clipdesk.train.trainer import run
from test_train_support import MICRO, micro_model, shapes, write_micro_config  # noqa: F401  (fixture)


def steps_of(out: Path) -> list[dict]:
    with open(out / "steps.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def quiet(_):
    pass


def options(shapes, out, config, **changes) -> TrainOptions:
    values = dict(data=str(shapes["train"]), out=str(out), epochs=2, batch_size=16, model=str(config), workers=0,
                  export=False, precision="fp32")
    return TrainOptions(**{**values, **changes}).check()


def test_cli_trains_evaluates_logs_and_exports_a_package(shapes, tmp_path, capsys):
    from clipdesk.runtime.encoders import load_model

    config = write_micro_config(tmp_path)
    # The training rows plus a missing and a damaged image: skipped, counted, never fatal.
    rows = [json.loads(line) for line in shapes["train"].read_text().splitlines()][:47]
    for row in rows:
        row["image"] = str(shapes["train"].parent / row["image"])
    (tmp_path / "damaged.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    rows += [{"image": "missing.png", "caption": "x"}, {"image": "damaged.png", "caption": "y"}]
    manifest = tmp_path / "train.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "run"
    code = main(["train", "--data", str(manifest), "--val-data", str(shapes["val"]), "--labels", str(shapes["labels"]),
                 "--model", str(config), "--epochs", "2", "--batch-size", "16", "--out", str(out), "--workers", "0",
                 "--name", "shapes-micro"])
    assert code == 0, capsys.readouterr().err
    steps = steps_of(out)
    assert [int(r["step"]) for r in steps] == list(range(1, 7))  # 48 rows that exist → 3 batches of 16 per epoch
    assert sum(int(r["rows_skipped"]) for r in steps) == 2  # the damaged image, met once per epoch
    assert sorted(int(r["batch_rows"]) for r in steps) == [15, 15, 16, 16, 16, 16]
    assert all(1 < float(r["logit_scale"]) <= 100 for r in steps)
    epochs = [json.loads(line) for line in (out / "epochs.jsonl").read_text().splitlines()]
    assert [e["epoch"] for e in epochs] == [0, 1, 2] and epochs[0]["zero_shot_labels"] == 24
    assert {"zero_shot_top1", "zero_shot_top5", "image_to_text_r10", "text_to_image_r1"} <= set(epochs[-1])
    assert sorted(p.name for p in (out / "plots").iterdir()) == ["loss.png", "retrieval.png", "temperature.png",
                                                                 "zero_shot.png"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["rows_skipped"] == 2 and "1 missing image" in summary["rows_skipped_summary"]
    assert len(list((out / "checkpoints").iterdir())) == 2  # the newest two are kept

    # The weights rebuild with the exact config (2 heads of width 32, which shapes alone cannot tell).
    model, mean, std = model_from_weights(out / "model.safetensors")
    assert model.config.to_dict() == MICRO and model.visual.transformer.resblocks[0].attn.num_heads == 2
    # The package works on the run side and gives the zero-shot figure the trainer measured.
    clip = load_model(out / "model", device="cpu")
    manifest_data = clip.package.manifest
    assert manifest_data.name == "shapes-micro" and manifest_data.architecture == MICRO
    assert manifest_data.provenance["checkpoint"] == str((out / "model.safetensors").resolve())
    val = [json.loads(line) for line in shapes["val"].read_text().splitlines()]
    labels = shapes["labels"].read_text().split("\n")[:-1]
    images = clip.image.encode_files([shapes["val"].parent / r["image"] for r in val])
    prompts = clip.text.encode([t.format(label) for label in labels for t in DEFAULT_TEMPLATES])
    classes = prompts.reshape(len(labels), len(DEFAULT_TEMPLATES), -1).mean(1)
    classes /= np.linalg.norm(classes, axis=1, keepdims=True)
    predicted = (images @ classes.T).argmax(1)
    top1 = np.mean([labels[p] == r["label"] for p, r in zip(predicted, val)])
    assert top1 == pytest.approx(summary["final"]["zero_shot_top1"], abs=1.5 / len(val))


class InterruptAt(Progress):
    """Sends this process a real SIGINT (as Ctrl-C does) after the given step."""

    def __init__(self, step: int):
        super().__init__()
        self.step = step

    def update(self, done, total, **facts):
        if done == self.step:
            os.kill(os.getpid(), signal.SIGINT)


def test_ctrl_c_saves_a_checkpoint_and_resume_continues_exactly(shapes, tmp_path, capsys):
    config = write_micro_config(tmp_path)
    straight = run(options(shapes, tmp_path / "straight", config), log=quiet)
    assert straight.completed and straight.step == 6

    out = tmp_path / "interrupted"
    # Other worker counts than the straight run: the data must not depend on them.
    stopped = run(options(shapes, out, config, workers=1), progress=InterruptAt(1), log=quiet)
    assert not stopped.completed and stopped.step == 2  # the step in progress finishes, then the checkpoint
    assert (out / "checkpoints" / "step-00000002" / "state.pt").is_file()
    assert main(["train", "--out", str(out), "--resume", "--batch-size", "8"]) == 1
    assert "--batch-size 8 differs from the run's 16" in capsys.readouterr().err
    assert main(["train", "--data", str(shapes["train"]), "--model", str(config), "--epochs", "1",
                 "--batch-size", "16", "--out", str(out)]) == 1
    assert "already holds a training run" in capsys.readouterr().err
    assert main(["train", "--out", str(tmp_path / "empty"), "--resume"]) == 1
    assert "no checkpoint to resume from" in capsys.readouterr().err

    assert main(["train", "--out", str(out), "--resume", "--workers", "0", "--no-export"]) == 0
    assert [r["loss"] for r in steps_of(out)] == [r["loss"] for r in steps_of(tmp_path / "straight")]
    expected = load_file(tmp_path / "straight" / "model.safetensors")
    resumed = load_file(out / "model.safetensors")
    for name, tensor in expected.items():
        assert torch.equal(resumed[name], tensor), name


def test_fine_tuning_starts_from_our_weights_or_an_openai_layout_checkpoint(shapes, tmp_path, capsys):
    config = write_micro_config(tmp_path)
    first = tmp_path / "first"
    run(options(shapes, first, config, epochs=1), log=quiet)
    trained, _, _ = model_from_weights(first / "model.safetensors")

    # From a training folder: the run's weights and exact config.
    tuned = run(options(shapes, tmp_path / "tuned", None, epochs=1, model=None, init=str(first), lr=1e-5), log=quiet)
    assert tuned.completed
    started = json.loads((tmp_path / "tuned" / "summary.json").read_text())["init"]
    assert started == str(first / "model.safetensors")
    tuned_model, _, _ = model_from_weights(tmp_path / "tuned" / "model.safetensors")
    assert tuned_model.config == trained.config
    change = max((a - b).abs().max().item() for a, b in zip(tuned_model.parameters(), trained.parameters()))
    assert 0 < change < 0.01  # fine-tuned at a small rate: moved, but not far

    # From an OpenAI-layout state dict (head counts inferred as width / 64, as for OpenAI's files).
    torch.save(micro_model().state_dict(), tmp_path / "openai-layout.pt")
    assert run(options(shapes, tmp_path / "from-pt", None, epochs=1, model=None,
                       init=str(tmp_path / "openai-layout.pt")), log=quiet).completed

    # --model must agree with the checkpoint's architecture.
    assert main(["train", "--data", str(shapes["train"]), "--model", "tiny", "--init", str(first), "--epochs", "1",
                 "--batch-size", "16", "--out", str(tmp_path / "x"), "--workers", "0"]) == 1
    assert "differs from the architecture of --init" in capsys.readouterr().err


def test_a_model_package_without_its_checkpoint_fine_tunes_from_its_graphs(shapes, tmp_path, capsys,
                                                                           tiny_model_package):
    from clipdesk.runtime.package import load_package
    from clipdesk.runtime.encoders import ClipModel

    assert main(["model", "import", str(tiny_model_package)]) == 0
    code = main(["train", "--data", str(shapes["train"]), "--init", "tiny-random", "--epochs", "1", "--lr", "1e-5",
                 "--batch-size", "16", "--workers", "0", "--out", str(tmp_path / "x"), "--name", "tuned"])
    captured = capsys.readouterr()
    output = captured.out + captured.err
    assert code == 0, captured.err
    assert "'tiny-random': it names no checkpoint; reading its weights back from its ONNX graphs (fp32)" in output
    summary = json.loads((tmp_path / "x" / "summary.json").read_text())
    assert "weights read from its fp32 ONNX graphs" in summary["init"]
    # It started from the package's weights: a short run at a small rate ends close to them.
    before, after = (ClipModel(load_package(path), device="cpu") for path in (tiny_model_package, tmp_path / "x" / "model"))
    texts = ["a red circle", "two blue squares"]
    assert (before.text.encode(texts) * after.text.encode(texts)).sum(1).min() > 0.99


def test_imported_checkpoints_record_their_path_and_fine_tune_by_name(tmp_path, monkeypatch, capsys):
    """`model import` records the checkpoint's absolute path in the manifest; `--init NAME` reads it back
    with the package's architecture (what the import knew beyond the file: here --activation gelu)."""
    from dataclasses import replace

    from clipdesk.model import ClipConfig, create_model
    from clipdesk.runtime.package import PROVENANCE_CHECKPOINT
    from clipdesk.runtime.preprocess import OPENAI_MEAN, OPENAI_STD
    from clipdesk.runtime.registry import resolve_model
    from clipdesk.train.checkpoint import save_weights
    from clipdesk.train.pretrained import load_initial_model

    monkeypatch.chdir(tmp_path)  # relative paths given, absolute ones recorded
    config = ClipConfig(**{**MICRO, "activation": "gelu"})
    torch.manual_seed(0)
    trained = create_model(config)
    (tmp_path / "run").mkdir()
    save_weights(trained, tmp_path / "run" / "model.safetensors", OPENAI_MEAN, OPENAI_STD)
    plain = create_model(replace(config, vision_heads=1, text_heads=1))  # heads of width 64, as OpenAI's
    torch.save(plain.state_dict(), "plain.pt")
    for args in (["run/model.safetensors", "--name", "trained"], ["plain.pt", "--name", "plain", "--activation", "gelu"]):
        assert main(["model", "import", *args]) == 0, capsys.readouterr().err
    for name, source, model in (("trained", tmp_path / "run" / "model.safetensors", trained),
                                ("plain", tmp_path / "plain.pt", plain)):
        provenance = resolve_model(name).manifest.provenance
        assert provenance[PROVENANCE_CHECKPOINT] == str(source.resolve()) and provenance["source"] == source.name
        initial = load_initial_model(name, log=quiet)
        assert initial.model.config == model.config and initial.model.config.activation == "gelu"
        assert all(torch.equal(a, b) for a, b in zip(initial.model.state_dict().values(), model.state_dict().values()))

    # The checkpoint replaced by one of another architecture: refused in one line.
    torch.save(create_model(replace(config, embed_dim=16, vision_heads=1, text_heads=1)).state_dict(), "plain.pt")
    with pytest.raises(ClipdeskError, match="'plain': the weights in .*plain.pt are not the architecture") as error:
        load_initial_model("plain", log=quiet)
    assert "\n" not in str(error.value)


def test_torchrun_with_two_processes_trains_like_one_and_writes_the_model(shapes, tmp_path, clipdesk_home):
    config = write_micro_config(tmp_path)
    single = run(options(shapes, tmp_path / "single", config, epochs=1), log=quiet)
    out = tmp_path / "torchrun"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
               "-m", "clipdesk.train", "--data", str(shapes["train"]), "--model", str(config), "--epochs", "1",
               "--batch-size", "16", "--out", str(out), "--workers", "0", "--precision", "fp32"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300,
                            env={**os.environ, "CLIPDESK_HOME": str(clipdesk_home), "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    assert (out / "model" / "manifest.json").is_file() and (out / "model" / "image.onnx").is_file()
    steps, reference = steps_of(out), steps_of(single.out_dir)
    assert [int(r["batch_rows"]) for r in steps] == [16, 16, 16]
    # Same initial weights, same global batches: every step's loss is the single process's, so the two
    # processes' gradients were combined into the same update (step 1 alone would not show that).
    assert [float(row["loss"]) for row in steps] == pytest.approx([float(row["loss"]) for row in reference], rel=1e-4)
    assert "2 process(es)" in result.stderr


def test_the_train_command_loads_no_torch_until_it_runs():
    code = ("import sys; from clipdesk.cli import build_parser; "
            "build_parser().parse_args(['train', '--data', 'x.jsonl', '--model', 'tiny']); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'torch'))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_model_configs_by_name_file_or_package_manifest(tmp_path):
    from clipdesk.errors import ClipdeskError
    from clipdesk.model import get_config
    from clipdesk.train.trainer import resolve_config

    assert resolve_config("tiny") == get_config("tiny")
    assert resolve_config(str(write_micro_config(tmp_path))).to_dict() == MICRO
    (tmp_path / "manifest.json").write_text(json.dumps({"name": "x", "architecture": MICRO}))
    assert resolve_config(str(tmp_path / "manifest.json")).to_dict() == MICRO
    with pytest.raises(ClipdeskError, match="unknown model config 'huge'"):
        resolve_config("huge")
    (tmp_path / "bad.json").write_text(json.dumps({**MICRO, "vision_heads": 3}))
    with pytest.raises(ClipdeskError, match="not divisible by vision_heads 3"):
        resolve_config(str(tmp_path / "bad.json"))
