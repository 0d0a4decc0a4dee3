"""The run's log: one CSV row per step (steps.csv) and one JSON object per evaluation (epochs.jsonl).

Both files are appended to and flushed as the run goes, so they survive a crash. A resumed run first
drops what was logged after its checkpoint; those steps are trained again.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

STEPS_FILE = "steps.csv"
EPOCHS_FILE = "epochs.jsonl"
STEP_FIELDS = ("step", "epoch", "loss", "lr", "logit_scale", "batch_rows", "samples_per_s", "rows_skipped",
               "elapsed_s")


class TrainingLog:
    def __init__(self, out_dir: Path, resume_step: int | None = None):
        self.steps_path = out_dir / STEPS_FILE
        self.epochs_path = out_dir / EPOCHS_FILE
        if resume_step is None or not self.steps_path.is_file():
            self.steps_path.write_text(",".join(STEP_FIELDS) + "\n", encoding="utf-8")
            self.epochs_path.write_text("", encoding="utf-8")
        else:
            self._truncate(resume_step)
        self._steps = open(self.steps_path, "a", newline="", encoding="utf-8")
        self._writer = csv.DictWriter(self._steps, STEP_FIELDS)

    def _truncate(self, step: int) -> None:
        with open(self.steps_path, newline="", encoding="utf-8") as handle:
            kept = [row for row in csv.DictReader(handle) if int(row["step"]) <= step]
        with open(self.steps_path, "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, STEP_FIELDS, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(kept)
        epochs = [record for record in self.epochs() if record.get("step", 0) <= step]
        self.epochs_path.write_text("".join(json.dumps(r) + "\n" for r in epochs), encoding="utf-8")

    def add_step(self, **row) -> None:
        self._writer.writerow({key: _format(row.get(key)) for key in STEP_FIELDS})
        self._steps.flush()

    def add_epoch(self, record: dict) -> None:
        with open(self.epochs_path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")

    def steps(self) -> list[dict[str, float]]:
        if not self.steps_path.is_file():
            return []
        with open(self.steps_path, newline="", encoding="utf-8") as handle:
            return [{k: float(v) for k, v in row.items() if v not in ("", None)} for row in csv.DictReader(handle)]

    def epochs(self) -> list[dict]:
        if not self.epochs_path.is_file():
            return []
        lines = self.epochs_path.read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines if line.strip()]

    def close(self) -> None:
        self._steps.close()


def _format(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)
