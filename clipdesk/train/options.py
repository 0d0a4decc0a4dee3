"""The options of a training run, defined once for `clipdesk train` and `python -m clipdesk.train`.

No torch here: the CLI builds its parser from this module without loading the train side.
Every argument defaults to None so that `--resume` can tell the options a person typed from the ones
the run was started with; `DEFAULTS` fills in the rest.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from clipdesk.errors import ClipdeskError

PRECISIONS = ("auto", "bf16", "fp32")
DEVICES = ("auto", "cpu", "cuda")

DEFAULTS = {
    "lr": 5e-4,
    "weight_decay": 0.2,  # the paper's value for its ViTs
    "warmup": None,  # None: 5 % of all steps
    "grad_clip": 1.0,
    "chunk_size": 0,  # 0: no gradient caching
    "precision": "auto",
    "device": "auto",
    "workers": 2,
    "seed": 0,
    "eval_every": 1,
    "save_every_minutes": 15.0,
    "min_crop_scale": 0.7,
    "templates": None,  # None: evaluate.DEFAULT_TEMPLATES
}

# Options that define what is trained: a resumed run must keep them or it would not continue exactly.
# The others (evaluation, workers, device, chunk size) may change between sessions; a new chunk size
# changes only float rounding under bf16 (other matrix shapes), so it is allowed for a smaller machine.
RUN_DEFINING = ("data", "model", "init", "activation", "epochs", "batch_size", "lr", "weight_decay", "warmup",
                "grad_clip", "precision", "seed", "min_crop_scale")
# Options holding paths, stored absolute so that a run resumes from any working directory.
PATH_OPTIONS = ("data", "val_data", "out")


@dataclass
class TrainOptions:
    data: str
    out: str
    epochs: int
    batch_size: int  # the global contrastive batch, split over the processes of a torchrun
    model: str | None = None
    init: str | None = None
    activation: str | None = None
    val_data: str | None = None
    labels: str | None = None
    templates: list[str] | None = None
    name: str | None = None
    lr: float = DEFAULTS["lr"]
    weight_decay: float = DEFAULTS["weight_decay"]
    warmup: int | None = DEFAULTS["warmup"]
    grad_clip: float = DEFAULTS["grad_clip"]
    chunk_size: int = DEFAULTS["chunk_size"]
    precision: str = DEFAULTS["precision"]
    device: str = DEFAULTS["device"]
    workers: int = DEFAULTS["workers"]
    seed: int = DEFAULTS["seed"]
    eval_every: int = DEFAULTS["eval_every"]
    save_every_minutes: float = DEFAULTS["save_every_minutes"]
    min_crop_scale: float = DEFAULTS["min_crop_scale"]
    export: bool = True

    def to_dict(self) -> dict:
        return asdict(self)

    def check(self) -> TrainOptions:
        problems = [
            (self.epochs < 1, "--epochs must be at least 1"),
            (self.batch_size < 2, "--batch-size must be at least 2 (a contrastive batch needs negatives)"),
            (self.lr <= 0, "--lr must be positive"),
            (self.weight_decay < 0, "--weight-decay must not be negative"),
            (self.warmup is not None and self.warmup < 0, "--warmup must not be negative"),
            (self.grad_clip < 0, "--grad-clip must not be negative (0 switches clipping off)"),
            (self.chunk_size < 0, "--chunk-size must not be negative (0 switches gradient caching off)"),
            (self.workers < 0, "--workers must not be negative"),
            (self.eval_every < 1, "--eval-every must be at least 1"),
            (self.save_every_minutes <= 0, "--save-every-minutes must be positive"),
            (not 0.05 <= self.min_crop_scale <= 1, "--min-crop-scale must lie between 0.05 and 1"),
            (self.model is None and self.init is None, "give --model CONFIG (e.g. tiny) or --init MODEL"),
        ]
        for failed, message in problems:
            if failed:
                raise ClipdeskError(message)
        for template in self.templates or ():
            if "{}" not in template:
                raise ClipdeskError(f"--template {template!r} has no {{}} where the label goes")
        return self


def add_arguments(parser: argparse.ArgumentParser) -> None:
    data = parser.add_argument_group("data")
    data.add_argument("--data", metavar="TRAIN",
                      help="training data: a JSONL manifest (rows with 'image' relative to the manifest and "
                           "'caption' or 'captions'), a .tar shard, shards as a pattern "
                           "(train-{000..009}.tar) or a folder of .tar shards")
    data.add_argument("--val-data", metavar="VAL", help="validation data for zero-shot and retrieval figures")
    data.add_argument("--labels", metavar="FILE_OR_LIST",
                      help="zero-shot label set: a file (one label per line) or a comma-separated list "
                           "(default: the 'label' values of the validation rows)")
    data.add_argument("--template", dest="templates", action="append", metavar="T",
                      help="zero-shot prompt template with {} for the label (repeatable; default: a small "
                           "ensemble starting with 'a photo of a {}.')")
    data.add_argument("--min-crop-scale", type=float, metavar="S",
                      help=f"smallest area fraction kept by the random crop (default {DEFAULTS['min_crop_scale']})")

    model = parser.add_argument_group("model")
    model.add_argument("--model", metavar="CONFIG",
                       help="named config (tiny, small, ViT-B/32, ...) or a JSON config file")
    model.add_argument("--init", metavar="NAME_OR_CHECKPOINT",
                       help="start from trained weights: a checkpoint (clipdesk .safetensors, OpenAI, OpenCLIP, "
                            "Hugging Face), a training folder, or a model whose checkpoint is known")
    model.add_argument("--activation", choices=("quick_gelu", "gelu"),
                       help="MLP activation of an --init checkpoint that does not record it")

    run = parser.add_argument_group("run")
    run.add_argument("--epochs", type=int, metavar="E")
    run.add_argument("--batch-size", type=int, metavar="B",
                     help="contrastive batch over all processes (split between torchrun's processes)")
    run.add_argument("--out", metavar="DIR", help="output folder: checkpoints, logs, plots and DIR/model/")
    run.add_argument("--resume", action="store_true", help="continue the run in --out where it stopped")
    run.add_argument("--name", help="name of the exported model (default: the --out folder's name)")
    run.add_argument("--no-export", dest="export", action="store_false", default=None,
                     help="do not export DIR/model/ at the end")
    run.add_argument("--seed", type=int)
    run.add_argument("--workers", type=int, help=f"image decoding processes (default {DEFAULTS['workers']})")
    run.add_argument("--device", choices=DEVICES, help="default: cuda when available")
    run.add_argument("--eval-every", type=int, metavar="EPOCHS")
    run.add_argument("--save-every-minutes", type=float, metavar="M",
                     help=f"checkpoint interval within epochs (default {DEFAULTS['save_every_minutes']:g})")

    optim = parser.add_argument_group("optimisation")
    optim.add_argument("--lr", type=float, help=f"peak learning rate (default {DEFAULTS['lr']:g})")
    optim.add_argument("--weight-decay", type=float,
                       help=f"AdamW decoupled weight decay (default {DEFAULTS['weight_decay']:g})")
    optim.add_argument("--warmup", type=int, metavar="STEPS", help="linear warm-up steps (default 5%% of all steps)")
    optim.add_argument("--grad-clip", type=float, metavar="NORM",
                       help=f"gradient norm limit, 0 for none (default {DEFAULTS['grad_clip']:g})")
    optim.add_argument("--chunk-size", type=int, metavar="N",
                       help="gradient caching: embed and back-propagate N rows at a time, so that the batch can be "
                            "far larger than fits in memory (default 0: whole batch at once)")
    optim.add_argument("--precision", choices=PRECISIONS, help="bf16 autocast where supported (auto), or fp32")


def _typed_values(args: argparse.Namespace) -> dict:
    """The options given on the command line (not None), paths made absolute."""
    given = {f.name: getattr(args, f.name, None) for f in fields(TrainOptions)}
    given = {key: value for key, value in given.items() if value is not None}
    for key in PATH_OPTIONS:
        if key in given:
            given[key] = absolute(given[key])
    for key in ("model", "init"):  # a config file or checkpoint path; a name stays a name
        if key in given and Path(given[key]).exists():
            given[key] = absolute(given[key])
    return given


def absolute(path: str) -> str:
    return str(Path(path).expanduser().resolve())


def options_from_args(args: argparse.Namespace) -> TrainOptions:
    """Options for a new run; missing required ones are named in the error."""
    given = _typed_values(args)
    missing = [flag for key, flag in (("data", "--data"), ("out", "--out"), ("epochs", "--epochs"),
                                      ("batch_size", "--batch-size")) if key not in given]
    if missing:
        raise ClipdeskError(f"missing {', '.join(missing)} (see `clipdesk train --help`)")
    return TrainOptions(**given).check()


def resumed_options(args: argparse.Namespace, stored: dict) -> TrainOptions:
    """The stored run's options, updated with those given now; a run-defining change is refused."""
    given = _typed_values(args)
    merged = {f.name: stored.get(f.name, getattr(TrainOptions, f.name, None)) for f in fields(TrainOptions)}
    for key, value in given.items():
        if key in RUN_DEFINING and value != merged.get(key):
            flag = "--" + key.replace("_", "-")
            raise ClipdeskError(f"--resume: {flag} {value} differs from the run's {merged.get(key)}; resume with the "
                                "same options or start a new run in another --out folder")
        merged[key] = value
    return TrainOptions(**merged).check()


def options_json(options: TrainOptions) -> str:
    return json.dumps(options.to_dict(), ensure_ascii=False)
