"""CLIP in PyTorch (train side), with OpenAI's parameter names so their checkpoints load as they are."""

from clipdesk.model.build import build_model, config_from_state_dict, create_model
from clipdesk.model.clip import CLIP
from clipdesk.checkpoint.architecture import CONFIGS, ClipConfig, get_config

__all__ = [
    "CLIP",
    "CONFIGS",
    "ClipConfig",
    "build_model",
    "config_from_state_dict",
    "create_model",
    "get_config",
]
