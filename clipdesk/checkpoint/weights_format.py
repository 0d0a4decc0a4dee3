"""clipdesk's own weights files: safetensors whose metadata records what tensor shapes cannot tell.

The one home of the format name and the metadata keys. The trainer writes them (`save_weights`: its
checkpoints and a run's final model.safetensors); the checkpoint reader (`clipdesk model import`) and
the trainer (`--resume`, `--init`) read them back.

  format       FORMAT
  clip_config  the exact ClipConfig as JSON: head counts and the activation are not in the weights
  mean, std    the normalisation the model was trained with, JSON lists of three numbers
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

from clipdesk.errors import CheckpointError, ClipdeskError
from clipdesk.checkpoint.architecture import ClipConfig

FORMAT = "clipdesk-clip"
FORMAT_KEY = "format"
CONFIG_KEY = "clip_config"
MEAN_KEY = "mean"
STD_KEY = "std"


@dataclass(frozen=True)
class WeightsMetadata:
    config: ClipConfig
    mean: tuple[float, float, float]
    std: tuple[float, float, float]


def weights_metadata(config: ClipConfig, mean, std) -> dict[str, str]:
    """The metadata to save with a model's tensors."""
    return {FORMAT_KEY: FORMAT, CONFIG_KEY: json.dumps(config.to_dict()),
            MEAN_KEY: json.dumps([float(v) for v in mean]), STD_KEY: json.dumps([float(v) for v in std])}


def is_clipdesk_metadata(metadata: Mapping[str, str] | None) -> bool:
    return (metadata or {}).get(FORMAT_KEY) == FORMAT


def read_weights_metadata(metadata: Mapping[str, str] | None) -> WeightsMetadata | None:
    """What a safetensors file's metadata records, or None when clipdesk did not write it.
    Raises CheckpointError (without the path: callers add it) when clipdesk's metadata is damaged."""
    if not is_clipdesk_metadata(metadata):
        return None
    try:
        config = ClipConfig.from_dict(json.loads(metadata[CONFIG_KEY]))
        mean, std = tuple(json.loads(metadata[MEAN_KEY])), tuple(json.loads(metadata[STD_KEY]))
    except (KeyError, TypeError, ValueError, ClipdeskError) as error:  # JSONDecodeError is a ValueError
        raise CheckpointError(f"damaged clipdesk metadata ({error})") from None
    return WeightsMetadata(config, mean, std)
