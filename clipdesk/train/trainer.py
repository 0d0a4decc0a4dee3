"""The training run: data, model, optimisation loop, evaluation, checkpoints, log, plots and export.

One code path for one process and for torchrun's many: with a single process the collectives in
`distributed` do nothing. Only the main process (rank 0) writes files and evaluates.

Stopping: Ctrl-C (SIGINT), SIGTERM or `progress.cancel()` ask the run to stop; at the end of the step in
progress every process agrees to stop, a checkpoint is written, and `--resume` later continues from it
exactly. A second Ctrl-C stops at once, without a checkpoint.
"""

from __future__ import annotations

import contextlib
import copy
import json
import re
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from clipdesk.errors import ClipdeskError
from clipdesk.model.clip import CLIP
from clipdesk.checkpoint.architecture import CONFIGS, ClipConfig, get_config
from clipdesk.progress import Progress
from clipdesk.runtime.package import PROVENANCE_CHECKPOINT
from clipdesk.runtime.preprocess import OPENAI_MEAN, OPENAI_STD
from clipdesk.train import distributed
from clipdesk.train.augment import NormalisationTable
from clipdesk.train.checkpoint import (
    WEIGHTS_FILE, latest_checkpoint, load_state, read_weights, restore, save_checkpoint, save_weights,
)
from clipdesk.train.data import EpochBatches, RowProblems, TrainingSet, make_loader, read_usable_source
from clipdesk.train.evaluate import DEFAULT_TEMPLATES, evaluate, read_labels
from clipdesk.train.gradcache import backward_step
from clipdesk.train.log import TrainingLog
from clipdesk.train.options import TrainOptions, resumed_options
from clipdesk.train.plots import write_training_plots
from clipdesk.train.pretrained import FINAL_WEIGHTS, load_initial_model
from clipdesk.train.schedule import (
    clamp_logit_scale, default_warmup, learning_rate, make_optimizer, set_learning_rate,
)

PACKAGE_DIR = "model"
SUMMARY_FILE = "summary.json"
STATE_FORMAT = 1


@dataclass
class RunResult:
    completed: bool  # False: stopped early, a resumable checkpoint written
    step: int
    total_steps: int
    out_dir: Path
    metrics: dict = field(default_factory=dict)
    package: Path | None = None


def resolve_config(spec: str) -> ClipConfig:
    """A named config, or a JSON file holding ClipConfig fields (or a manifest with 'architecture')."""
    if spec in CONFIGS:
        return get_config(spec)
    path = Path(spec).expanduser()
    if not path.is_file():
        return get_config(spec)  # the unknown-config error lists the known names
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise ClipdeskError(f"cannot read model config {path}: {error}") from None
    if isinstance(data, dict) and isinstance(data.get("architecture"), dict):
        data = data["architecture"]
    if not isinstance(data, dict):
        raise ClipdeskError(f"model config {path} is not a JSON object")
    return ClipConfig.from_dict(data)


def resolve_precision(choice: str, device: torch.device) -> str:
    if choice != "auto":
        return choice
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    # CPUs without native bf16 emulate it slowly; those with AVX512-BF16 or AMX gain 2-3x.
    try:
        return "bf16" if torch.ops.mkldnn._is_mkldnn_bf16_supported() else "fp32"
    except (AttributeError, RuntimeError):  # a build without oneDNN
        return "fp32"


def model_name_for(options: TrainOptions) -> str:
    name = options.name or Path(options.out).name
    return re.sub(r"[^A-Za-z0-9._@+-]+", "-", name).strip("-.")[:100] or "trained-model"


class _StopRequests:
    """SIGINT/SIGTERM set a flag read between steps; a second SIGINT interrupts at once."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: dict = {}

    def _handle(self, signum, frame) -> None:
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self) -> _StopRequests:
        if threading.current_thread() is threading.main_thread():  # signals reach the main thread only
            for signum in (signal.SIGINT, signal.SIGTERM):
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)


class Trainer:
    def __init__(self, options: TrainOptions, *, resume: bool = False, progress: Progress | None = None,
                 log: Callable[[str], None] = print):
        self.options = options
        self.out_dir = Path(options.out)
        self.processes = distributed.start(options.device)
        self.main = self.processes.is_main
        self.log = log if self.main else (lambda _: None)
        self.progress = progress or Progress()
        self.device = self.processes.device
        self.precision = resolve_precision(options.precision, self.device)
        try:
            self._prepare(resume)
        except BaseException:
            distributed.stop(self.processes)
            raise

    # --------------------------------------------------------------------------------- set-up

    def _prepare(self, resume: bool) -> None:
        options = self.options
        checkpoint = latest_checkpoint(self.out_dir) if resume else None
        if resume and checkpoint is None:
            raise ClipdeskError(f"{self.out_dir}: no checkpoint to resume from")
        # A run that failed before its first checkpoint left nothing to continue: it may start over.
        if not resume and latest_checkpoint(self.out_dir):
            raise ClipdeskError(f"{self.out_dir} already holds a training run; continue it with --resume "
                                "or choose another --out folder")
        distributed.barrier(self.processes)  # every process has checked before the main one writes
        if self.main:
            self.out_dir.mkdir(parents=True, exist_ok=True)

        self.train_source = read_usable_source(options.data, "training data")
        self.val_source = read_usable_source(options.val_data, "validation data") if options.val_data else None
        self.labels = read_labels(options.labels) if options.labels else None
        self.templates = tuple(options.templates or DEFAULT_TEMPLATES)
        self.problems = RowProblems()
        self.problems.merge(self.train_source.problems)

        self.model, self.mean, self.std, self.init_source = self._build_model(checkpoint)
        self.model.to(self.device).train()
        self.batches = EpochBatches(len(self.train_source.samples), options.batch_size, options.seed,
                                    self.processes.rank, self.processes.world_size)
        self.steps_per_epoch = self.batches.steps_per_epoch
        self.total_steps = options.epochs * self.steps_per_epoch
        self.warmup = options.warmup if options.warmup is not None else default_warmup(self.total_steps)
        self.optimizer = make_optimizer(self.model, options.lr, options.weight_decay)
        self.step, self.epoch, self.batch_in_epoch, self.elapsed = 0, 0, 0, 0.0
        if checkpoint is not None:
            state = load_state(checkpoint)
            if state.get("steps_per_epoch") != self.steps_per_epoch:
                raise ClipdeskError(f"{checkpoint}: the training data changed since this run started ("
                                    f"{state.get('steps_per_epoch')} steps per epoch then, {self.steps_per_epoch} now)")
            restore(checkpoint, self.model, self.optimizer, state)
            self.step, self.epoch = state["step"], state["epoch"]
            self.batch_in_epoch, self.elapsed = state["batch_in_epoch"], state["elapsed_s"]
            self.problems = RowProblems.from_dict(state["problems"])
            self.log(f"resuming {self.out_dir} at step {self.step} of {self.total_steps} (epoch {self.epoch + 1})")
        self.resumed = checkpoint is not None
        self.run_log = None
        self.normalise = NormalisationTable(self.mean, self.std)
        dataset = TrainingSet(self.train_source.samples, self.model.config.image_resolution,
                              self.model.config.context_length, options.seed, options.min_crop_scale)
        self.loader = make_loader(dataset, options.workers, batch_sampler=self.batches,
                                  pin_memory=self.device.type == "cuda")

    def _build_model(self, checkpoint: Path | None) -> tuple[CLIP, tuple, tuple, str | None]:
        options = self.options
        if checkpoint is not None:  # the architecture and mean/std recorded with the weights
            weights = read_weights(checkpoint / WEIGHTS_FILE)
            return CLIP(weights.config), weights.mean, weights.std, options.init
        if options.init:
            initial = load_initial_model(options.init, options.activation, self.log)
            if options.model and resolve_config(options.model) != initial.model.config:
                raise ClipdeskError(f"--model {options.model} differs from the architecture of --init {options.init}; "
                                    "leave --model out when fine-tuning")
            return initial.model.float(), tuple(initial.mean), tuple(initial.std), initial.source
        config = resolve_config(options.model)
        torch.manual_seed(options.seed)  # every process starts from the same weights
        return CLIP(config), OPENAI_MEAN, OPENAI_STD, None

    def _autocast(self):
        if self.precision == "bf16":
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    # ------------------------------------------------------------------------------------ loop

    def _state(self) -> dict:
        return {"format": STATE_FORMAT, "step": self.step, "epoch": self.epoch, "batch_in_epoch": self.batch_in_epoch,
                "steps_per_epoch": self.steps_per_epoch, "elapsed_s": self.elapsed,
                "options": self.options.to_dict(), "problems": self.problems.to_dict(),
                "world_size": self.processes.world_size}

    def _save(self) -> Path | None:
        self._gather_problems()
        path = None
        if self.main:
            path = save_checkpoint(self.out_dir, self.model, self.optimizer, self._state(), self.mean, self.std)
        distributed.barrier(self.processes)
        return path

    def _gather_problems(self) -> None:
        if self.processes.enabled:
            everyone = [None] * self.processes.world_size
            torch.distributed.all_gather_object(everyone, self.problems.to_dict())
            merged = RowProblems()
            for data in everyone:
                merged.merge(RowProblems.from_dict(data))
            self.problems = merged

    def _train_step(self, batch) -> tuple[float, float]:
        options, resolution = self.options, self.model.config.image_resolution
        pixels, ids = batch.pixels, batch.second
        if not len(ids):  # every image of this share unreadable: an empty share still joins the collectives
            pixels = torch.zeros(0, resolution, resolution, 3, dtype=torch.uint8)
            ids = torch.zeros(0, self.model.config.context_length, dtype=torch.long)
        lr = learning_rate(self.step, options.lr, self.warmup, self.total_steps)
        set_learning_rate(self.optimizer, lr)
        self.optimizer.zero_grad(set_to_none=True)
        loss = backward_step(self.model, pixels, ids, options.chunk_size, processes=self.processes,
                             autocast=self._autocast,
                             prepare_pixels=lambda p: self.normalise(p, self.device),
                             prepare_ids=lambda i: i.to(self.device, non_blocking=True))
        distributed.average_gradients(self.model.parameters(), self.processes)
        if options.grad_clip:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), options.grad_clip)
        self.optimizer.step()
        clamp_logit_scale(self.model)
        return float(loss), lr

    def _evaluate(self) -> dict:
        """Validation figures, computed by the main process while the others wait."""
        results: dict = {}
        if self.val_source is not None and self.main:
            problems = RowProblems()
            results = evaluate(self.model, self.val_source.samples, self.mean, self.std, labels=self.labels,
                               templates=self.templates, device=self.device, workers=min(self.options.workers, 2),
                               batch_size=min(256, self.options.batch_size), problems=problems)
            skipped = problems.total + self.val_source.problems.total
            if skipped:
                results["val_rows_skipped"] = skipped
        distributed.barrier(self.processes)
        return results

    def _record_evaluation(self, epoch: int) -> dict:
        results = self._evaluate()
        if self.main and results:
            record = {"epoch": epoch, "step": self.step, **{k: round(v, 6) if isinstance(v, float) else v
                                                            for k, v in results.items()}}
            self.run_log.add_epoch(record)
            figures = [f"{key.removeprefix('zero_shot_')} {100 * results[key]:.1f}%"
                       for key in ("zero_shot_top1", "zero_shot_top5") if key in results]
            figures += [f"{key} {100 * results[key]:.1f}%" for key in ("image_to_text_r1", "text_to_image_r1")
                        if key in results]
            if figures:
                self.log(f"epoch {epoch}: " + ", ".join(figures))
        return results

    def _plots(self) -> None:
        if self.main:
            write_training_plots(self.out_dir, self.run_log.steps(), self.run_log.epochs())

    def train(self) -> RunResult:
        options = self.options
        metrics: dict = {}
        if self.main:
            self.run_log = TrainingLog(self.out_dir, self.step if self.resumed else None)
            self.log(f"training {self.total_steps} steps ({options.epochs} epochs of {self.steps_per_epoch}) on "
                     f"{self.train_source.description}; batch {options.batch_size} over {self.processes.world_size} "
                     f"process(es), {self.device.type}, {self.precision}"
                     + (f", gradient caching in chunks of {options.chunk_size}" if options.chunk_size else ""))
            if self.train_source.problems.total:
                self.log(f"training data: {self.train_source.problems.summary()}")
            if self.val_source and not self.labels and not any(s.label for s in self.val_source.samples):
                self.log("note: the validation rows have no 'label' and no --labels was given: zero-shot accuracy "
                         "is not measured, only retrieval")
        if self.step == 0 and self.val_source is not None:
            metrics = self._record_evaluation(0)  # the curve starts from the untrained (or --init) model
        last_save = time.monotonic()
        with _StopRequests() as stop:
            while self.epoch < options.epochs:
                self.batches.set_epoch(self.epoch, self.batch_in_epoch)
                started = time.perf_counter()
                for batch in self.loader:
                    for skipped in batch.skipped:
                        self.problems.add(skipped.reason, skipped.where, skipped.detail)
                    loss, lr = self._train_step(batch)
                    self.step += 1
                    self.batch_in_epoch += 1
                    now = time.perf_counter()
                    self.elapsed += now - started
                    stop_now, save_due, rows, dropped = distributed.sum_values(
                        [float(stop.requested or self.progress.cancelled),
                         float(self.main and time.monotonic() - last_save > 60 * options.save_every_minutes),
                         float(len(batch.second)), float(len(batch.skipped))], self.processes)
                    if self.main:
                        self.run_log.add_step(
                            step=self.step, epoch=round(self.epoch + self.batch_in_epoch / self.steps_per_epoch, 4),
                            loss=loss, lr=lr, logit_scale=float(self.model.logit_scale.detach().exp()),
                            batch_rows=int(rows), samples_per_s=rows / max(now - started, 1e-9),
                            rows_skipped=int(dropped), elapsed_s=round(self.elapsed, 2))
                        self.progress.update(self.step, self.total_steps, epoch=self.epoch + 1, loss=f"{loss:.3f}")
                    started = now
                    if stop_now:
                        path = self._save()
                        self._plots()
                        self.log(f"stopped at step {self.step} of {self.total_steps}; checkpoint {path}; "
                                 f"continue with: clipdesk train --out {self.out_dir} --resume")
                        return RunResult(False, self.step, self.total_steps, self.out_dir, metrics)
                    if save_due:
                        self._save()
                        last_save = time.monotonic()
                self.epoch += 1
                self.batch_in_epoch = 0
                if self.epoch % options.eval_every == 0 or self.epoch == options.epochs:
                    metrics = self._record_evaluation(self.epoch) or metrics
                self._save()
                last_save = time.monotonic()
                self._plots()
        return self._finish(metrics)

    # ---------------------------------------------------------------------------------- finish

    def _finish(self, metrics: dict) -> RunResult:
        package = None
        if self.main:
            self.progress.finish()
            if not metrics and self.run_log.epochs():  # resumed after the last evaluation
                metrics = {k: v for k, v in self.run_log.epochs()[-1].items() if k not in ("epoch", "step")}
            weights = self.out_dir / FINAL_WEIGHTS
            save_weights(self.model, weights, self.mean, self.std, step=str(self.step))
            if self.options.export:
                package = self._export(weights, metrics)
            summary = {"completed": True, "steps": self.step, "epochs": self.options.epochs,
                       "elapsed_s": round(self.elapsed, 1), "precision": self.precision, "device": str(self.device),
                       "processes": self.processes.world_size, "weights": str(weights),
                       "package": str(package) if package else None, "init": self.init_source,
                       "rows_skipped": self.problems.total, "rows_skipped_summary": self.problems.summary(),
                       "final": metrics, "options": self.options.to_dict()}
            (self.out_dir / SUMMARY_FILE).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
            if self.problems.total:
                self.log(f"training data: {self.problems.summary()}")
        distributed.barrier(self.processes)
        return RunResult(True, self.step, self.total_steps, self.out_dir, metrics, package)

    def _export(self, weights: Path, metrics: dict) -> Path:
        from clipdesk.model.onnx_export import export_package

        provenance = {"trained_with": "clipdesk train", PROVENANCE_CHECKPOINT: str(weights.resolve()),
                      "data": self.options.data, "steps": self.step, "epochs": self.options.epochs,
                      "batch_size": self.options.batch_size, "init": self.init_source,
                      **{f"val_{k}": v for k, v in metrics.items() if isinstance(v, float)}}
        model = copy.deepcopy(self.model).to("cpu")  # exported and verified on the CPU
        package = export_package(model, self.out_dir / PACKAGE_DIR, name=model_name_for(self.options), mean=self.mean,
                                 std=self.std, provenance=provenance, overwrite=True, log=self.log)
        return package.path

    def close(self) -> None:
        if self.run_log is not None:
            self.run_log.close()
        self.loader = None  # shuts persistent workers down
        distributed.stop(self.processes)


def run(options: TrainOptions, *, resume: bool = False, progress: Progress | None = None,
        log: Callable[[str], None] = print) -> RunResult:
    trainer = Trainer(options, resume=resume, progress=progress, log=log)
    try:
        return trainer.train()
    finally:
        trainer.close()


def options_for(args) -> tuple[TrainOptions, bool]:
    """Options from parsed arguments; with --resume, from the run's latest checkpoint."""
    from clipdesk.train.options import absolute, options_from_args

    if not args.resume:
        return options_from_args(args), False
    if not args.out:
        raise ClipdeskError("--resume needs --out DIR, the folder of the run to continue")
    checkpoint = latest_checkpoint(Path(absolute(args.out)))
    if checkpoint is None:
        raise ClipdeskError(f"{args.out}: no checkpoint to resume from")
    return resumed_options(args, load_state(checkpoint)["options"]), True


def run_from_args(args, log: Callable[[str], None]) -> int:
    """What `clipdesk train` and `python -m clipdesk.train` run; returns the exit code."""
    from clipdesk.progress import TerminalBar

    options, resume = options_for(args)
    result = run(options, resume=resume, progress=TerminalBar("train", unit="steps"), log=log)
    if not result.completed:
        return 130
    if result.package is not None:
        log(f"wrote {result.package} (use it with --model {result.package})")
    return 0
