"""Shared pieces of the trainer's tests: a micro CLIP and small data sets (no tests here)."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest

# Two heads of width 32: head counts that cannot be read back from the weights (those would say
# width / 64 = 1), so checkpoints must carry the config.
MICRO = dict(embed_dim=32, image_resolution=32, vision_layers=1, vision_width=64, vision_patch_size=8,
             vision_heads=2, context_length=16, vocab_size=49408, text_width=64, text_heads=2, text_layers=1,
             activation="quick_gelu")


def micro_config():
    from clipdesk.model import ClipConfig

    return ClipConfig(**MICRO)


def micro_model(seed: int = 0):
    import torch

    from clipdesk.model import create_model

    torch.manual_seed(seed)
    return create_model(micro_config())


def write_micro_config(folder: Path) -> Path:
    path = folder / "micro.json"
    path.write_text(json.dumps(MICRO))
    return path


def write_shards(manifest: Path, shard_pattern: str, per_shard: int) -> list[Path]:
    """The manifest's rows as webdataset shards: NNNNNN.png + NNNNNN.json per row."""
    rows = [json.loads(line) for line in manifest.read_text().splitlines() if line.strip()]
    shards = []
    for number, start in enumerate(range(0, len(rows), per_shard)):
        shard = manifest.parent / shard_pattern.format(number)
        with tarfile.open(shard, "w") as archive:
            for index, row in enumerate(rows[start:start + per_shard], start):
                archive.add(manifest.parent / row["image"], arcname=f"{index:06d}.png")
                meta = shard.with_name(f"{index:06d}.json")
                meta.write_text(json.dumps({"captions": row["captions"], "label": row["label"]}))
                archive.add(meta, arcname=meta.name)
                meta.unlink()
        shards.append(shard)
    return shards


@pytest.fixture(scope="session")
def shapes(tmp_path_factory) -> dict[str, Path]:
    """48 training and 24 validation images of coloured shapes (48 px), and the labels file."""
    from clipdesk.train.synthetic import write_shapes_dataset

    return write_shapes_dataset(tmp_path_factory.mktemp("shapes"), train=48, val=24, size=48)
