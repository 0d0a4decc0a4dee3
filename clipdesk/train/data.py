"""Training and validation data: JSONL manifests and webdataset-style tar shards.

A manifest row is `{"image": "relative/path.jpg", "caption": "..."}` or `{"image": ..., "captions": [...]}`,
optionally with `"label"` for zero-shot evaluation; paths are relative to the manifest. A tar shard
groups members by key (`0001.jpg` + `0001.txt` or `0001.json`), as webdataset writes them. Shards are
indexed once and then read at random by byte offset, so shards and manifests shuffle alike.

Determinism: the order of an epoch is a permutation fixed by (seed, epoch); the caption chosen and the
augmentation of a row are fixed by (seed, epoch, row). Nothing depends on worker processes or on where
a run was resumed. Rows that cannot be used are skipped and counted, never fatal.
"""

from __future__ import annotations

import io
import json
import os
import posixpath
import re
import signal
import tarfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from clipdesk.errors import ClipdeskError
from clipdesk.runtime.preprocess import load_image, preprocess
from clipdesk.runtime.tokenizer import get_tokenizer
from clipdesk.train.augment import training_view

IMAGE_EXTENSIONS = ("jpg", "jpeg", "png", "webp", "bmp", "gif", "tif", "tiff")
CAPTION_EXTENSIONS = ("txt", "caption")
_SHOWN = 3  # example rows named in a summary


@dataclass(frozen=True)
class Sample:
    image: str  # an image file, or the shard holding it
    captions: tuple[str, ...]
    label: str | None = None
    offset: int = -1  # byte offset of the image inside its shard; -1 for a plain file
    size: int = 0
    where: str = ""  # "train.jsonl:12" or "shard.tar:0001", for messages


@dataclass
class RowProblems:
    """Skipped rows, counted by reason, with the first few named."""

    counts: Counter = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)  # a bad image met again in a later epoch counts once

    def add(self, reason: str, where: str, detail: str = "") -> None:
        if where in self.seen:
            return
        self.seen.add(where)
        self.counts[reason] += 1
        if len(self.examples) < _SHOWN:
            self.examples.append(f"{where} ({detail or reason})")

    def merge(self, other: RowProblems) -> None:
        for where in other.seen - self.seen:
            self.seen.add(where)
        self.counts.update(other.counts)
        self.examples.extend(other.examples[: _SHOWN - len(self.examples)])

    def to_dict(self) -> dict:
        return {"counts": dict(self.counts), "examples": self.examples, "seen": sorted(self.seen)}

    @classmethod
    def from_dict(cls, data: dict) -> RowProblems:
        return cls(Counter(data.get("counts", {})), list(data.get("examples", [])), set(data.get("seen", [])))

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def summary(self) -> str:
        if not self.total:
            return "no rows skipped"
        reasons = ", ".join(f"{count} {reason}" for reason, count in self.counts.most_common())
        return f"{self.total} rows skipped ({reasons}); e.g. {'; '.join(self.examples)}"


@dataclass
class DataSource:
    samples: list[Sample]
    problems: RowProblems
    description: str


# ------------------------------------------------------------------------------------------ reading


def _captions(row: dict) -> tuple[str, ...] | None:
    if isinstance(row.get("captions"), list):
        captions = tuple(c.strip() for c in row["captions"] if isinstance(c, str) and c.strip())
    elif isinstance(row.get("caption"), str):
        captions = (row["caption"].strip(),) if row["caption"].strip() else ()
    else:
        return None
    return captions or None


def _label(row: dict) -> str | None:
    label = row.get("label")
    return (label.strip() or None) if isinstance(label, str) else None


def read_manifest(path: Path) -> DataSource:
    problems = RowProblems()
    samples = []
    base = path.parent
    try:
        handle = open(path, encoding="utf-8")
    except OSError as error:
        raise ClipdeskError(f"cannot read manifest {path}: {error.strerror or error}") from None
    with handle:
        for number, line in enumerate(handle, 1):
            where = f"{path.name}:{number}"
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                problems.add("not JSON", where)
                continue
            if not isinstance(row, dict) or not isinstance(row.get("image"), str) or not row["image"]:
                problems.add("no image field", where)
                continue
            captions = _captions(row)
            if captions is None:
                problems.add("no caption", where)
                continue
            image = base / row["image"]
            if not image.is_file():
                problems.add("missing image", where)
                continue
            samples.append(Sample(str(image), captions, _label(row), where=where))
    return DataSource(samples, problems, f"{path} ({len(samples)} rows)")


def expand_braces(pattern: str) -> list[str]:
    """webdataset's shard patterns: `a-{000..012}.tar` (zero-padded ranges) and `{x,y}` alternatives."""
    match = re.search(r"\{([^{}]*)\}", pattern)
    if not match:
        return [pattern]
    head, tail, inner = pattern[: match.start()], pattern[match.end():], match.group(1)
    numbers = re.fullmatch(r"(\d+)\.\.(\d+)", inner)
    if numbers:
        low, high = numbers.groups()
        width = len(low)
        choices = [str(n).zfill(width) for n in range(int(low), int(high) + 1)]
    else:
        choices = inner.split(",")
    return [expanded for choice in choices for expanded in expand_braces(head + choice + tail)]


def _key_and_extension(name: str) -> tuple[str, str]:
    """webdataset's grouping: the key is the path up to the first dot of the file name."""
    folder, base = posixpath.split(name)
    stem, _, extension = base.partition(".")
    return posixpath.join(folder, stem), extension.lower()


def read_shard(path: Path, problems: RowProblems) -> list[Sample]:
    try:
        archive = tarfile.open(path, "r:")  # uncompressed only: members are read later by offset
    except FileNotFoundError:
        raise ClipdeskError(f"{path}: no such shard") from None
    except tarfile.ReadError:
        raise ClipdeskError(f"{path}: not an uncompressed tar shard (compressed shards cannot be read at "
                            "random; write plain .tar shards)") from None
    groups: dict[str, dict[str, tarfile.TarInfo]] = {}
    with archive:
        for member in archive:
            if member.isfile():
                key, extension = _key_and_extension(member.name)
                groups.setdefault(key, {})[extension] = member
        samples = []
        for key, members in groups.items():
            where = f"{path.name}:{key}"
            image = next((members[e] for e in IMAGE_EXTENSIONS if e in members), None)
            if image is None:
                problems.add("no image", where)
                continue
            row: dict = {}
            try:
                if "json" in members:
                    row = json.loads(archive.extractfile(members["json"]).read().decode("utf-8"))
                    row = row if isinstance(row, dict) else {}
                caption_member = next((members[e] for e in CAPTION_EXTENSIONS if e in members), None)
                if caption_member is not None and _captions(row) is None:
                    row["caption"] = archive.extractfile(caption_member).read().decode("utf-8")
            except (json.JSONDecodeError, UnicodeDecodeError):
                problems.add("unreadable caption", where)
                continue
            captions = _captions(row)
            if captions is None:
                problems.add("no caption", where)
                continue
            samples.append(Sample(str(path), captions, _label(row), image.offset_data, image.size, where))
    return samples


def read_source(spec: str) -> DataSource:
    """A manifest, a shard, a brace pattern of shards or a folder of shards."""
    path = Path(spec).expanduser()
    if path.is_dir():
        shards = sorted(path.glob("*.tar"))
        if not shards:
            raise ClipdeskError(f"{path}: the folder holds no .tar shards")
    elif "{" in spec or path.suffix == ".tar":
        shards = [Path(p) for p in expand_braces(str(path))]
    elif path.is_file():
        return read_manifest(path)
    else:
        raise ClipdeskError(f"{path}: no such manifest, shard or folder")
    problems = RowProblems()
    samples = [sample for shard in shards for sample in read_shard(shard, problems)]
    return DataSource(samples, problems, f"{spec} ({len(shards)} shards, {len(samples)} rows)")


def read_usable_source(spec: str, what: str) -> DataSource:
    source = read_source(spec)
    if not source.samples:
        raise ClipdeskError(f"{what} {spec} has no usable rows: {source.problems.summary()}")
    return source


# ---------------------------------------------------------------------------------------- datasets


class _ImageReader:
    """Opens shards lazily, once per process (worker processes must not share file positions)."""

    def __init__(self) -> None:
        self._pid = None
        self._shards: dict[str, object] = {}

    def __getstate__(self):
        return {"_pid": None, "_shards": {}}

    def read(self, sample: Sample, draft_size: int | None):
        if sample.offset < 0:
            return load_image(sample.image, draft_size=draft_size)
        if self._pid != os.getpid():
            self._pid, self._shards = os.getpid(), {}
        handle = self._shards.get(sample.image)
        if handle is None:
            handle = self._shards[sample.image] = open(sample.image, "rb")
        handle.seek(sample.offset)
        return load_image(io.BytesIO(handle.read(sample.size)), draft_size=draft_size)


@dataclass
class Skipped:
    """What a dataset returns for a row whose image cannot be decoded."""

    reason: str
    where: str
    detail: str = ""


class TrainingSet(Dataset):
    """Items are `(epoch, row)` pairs: an augmented 8-bit view and the token ids of one caption."""

    def __init__(self, samples: list[Sample], resolution: int, context_length: int, seed: int,
                 min_crop_scale: float):
        self.samples = samples
        self.resolution = resolution
        self.context_length = context_length
        self.seed = seed
        self.min_crop_scale = min_crop_scale
        self._reader = _ImageReader()

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, item: tuple[int, int]):
        epoch, index = item
        sample = self.samples[index]
        rng = np.random.default_rng([self.seed, epoch, index])
        caption = sample.captions[int(rng.integers(len(sample.captions)))]
        try:
            # Draft decoding (JPEG scaled by 1/2..1/8) keeps twice the crop's resolution.
            image = self._reader.read(sample, draft_size=2 * self.resolution)
        except (ClipdeskError, OSError) as error:
            return Skipped("unreadable image", sample.where, str(error))
        pixels = training_view(image, self.resolution, rng, self.min_crop_scale)
        ids = get_tokenizer()([caption], context_length=self.context_length)[0]
        return pixels, ids


class EvalSet(Dataset):
    """Items are row numbers: exactly the run side's preprocessing (float32, 3 x R x R)."""

    def __init__(self, samples: list[Sample], resolution: int, mean, std):
        self.samples = samples
        self.resolution = resolution
        self.mean, self.std = tuple(mean), tuple(std)
        self._reader = _ImageReader()

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int):
        sample = self.samples[index]
        try:
            image = self._reader.read(sample, draft_size=None)
        except (ClipdeskError, OSError) as error:
            return Skipped("unreadable image", sample.where, str(error))
        return preprocess(image, self.resolution, self.mean, self.std), index


@dataclass
class Batch:
    pixels: torch.Tensor  # training: (N, R, R, 3) uint8; evaluation: (N, 3, R, R) float32
    second: torch.Tensor  # training: token ids (N, context); evaluation: row numbers (N,)
    skipped: list[Skipped]


def collate(items) -> Batch:
    kept = [item for item in items if not isinstance(item, Skipped)]
    skipped = [item for item in items if isinstance(item, Skipped)]
    if kept:
        pixels = torch.from_numpy(np.stack([item[0] for item in kept]))
        second = torch.from_numpy(np.asarray([item[1] for item in kept]))
    else:
        pixels, second = torch.zeros(0, dtype=torch.uint8), torch.zeros(0, dtype=torch.long)
    return Batch(pixels, second, skipped)


class EpochBatches:
    """This process's share of each global batch of one epoch, as (epoch, row) pairs.

    The global batch b of an epoch is permutation[b*B:(b+1)*B] with the permutation fixed by (seed,
    epoch); process r of W takes the r-th of W equal slices. The last partial batch is dropped, so
    every step has the full contrastive batch. Iterated in the main process, so `set_epoch` reaches
    persistent workers too.
    """

    def __init__(self, count: int, batch_size: int, seed: int, rank: int = 0, world_size: int = 1):
        if batch_size % world_size:
            raise ClipdeskError(f"--batch-size {batch_size} is not divisible by the {world_size} processes")
        if batch_size > count:
            raise ClipdeskError(f"--batch-size {batch_size} is larger than the {count} usable training rows")
        self.count, self.batch_size, self.seed = count, batch_size, seed
        self.rank, self.world_size = rank, world_size
        self.epoch, self.start = 0, 0

    @property
    def steps_per_epoch(self) -> int:
        return self.count // self.batch_size

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        self.epoch, self.start = epoch, start_batch

    def global_batches(self, epoch: int) -> np.ndarray:
        order = np.random.default_rng([self.seed, epoch]).permutation(self.count)
        return order[: self.steps_per_epoch * self.batch_size].reshape(self.steps_per_epoch, self.batch_size)

    def __len__(self) -> int:
        return self.steps_per_epoch - self.start

    def __iter__(self):
        share = self.batch_size // self.world_size
        for rows in self.global_batches(self.epoch)[self.start:]:
            yield [(self.epoch, int(row)) for row in rows[self.rank * share:(self.rank + 1) * share]]


def _quiet_worker(_: int) -> None:
    # Ctrl-C reaches the whole process group; the main process decides when to stop (after a checkpoint),
    # so workers ignore it instead of dying mid-batch.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    torch.set_num_threads(1)


def make_loader(dataset: Dataset, workers: int, *, batch_sampler=None, batch_size: int | None = None,
                pin_memory: bool = False) -> DataLoader:
    sizing = {"batch_sampler": batch_sampler} if batch_sampler is not None else {"batch_size": batch_size}
    return DataLoader(dataset, **sizing, num_workers=workers,
                      collate_fn=collate, persistent_workers=workers > 0, pin_memory=pin_memory,
                      worker_init_fn=_quiet_worker if workers > 0 else None,
                      prefetch_factor=2 if workers > 0 else None)
