"""Where clipdesk keeps its state and finds its bundled resources.

Everything the app writes lives under platformdirs' user data and cache folders, or under one folder
when CLIPDESK_HOME is set (tests always set it).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import platformdirs

APP_NAME = "clipdesk"


def _home() -> Path | None:
    value = os.environ.get("CLIPDESK_HOME")
    return Path(value).expanduser() if value else None


def data_dir() -> Path:
    home = _home()
    return home if home else Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def cache_dir() -> Path:
    home = _home()
    return home / "cache" if home else Path(platformdirs.user_cache_dir(APP_NAME, appauthor=False))


def models_dir() -> Path:
    """Imported and trained model packages."""
    return data_dir() / "models"


def database_path() -> Path:
    """The library database: the settings' `library_path` when set (Settings → Library), else
    `library.db` in the data folder.

    An explicit `library_path` applies under any home, CLIPDESK_HOME included: the settings file itself
    lives in the (CLIPDESK_HOME) data folder, so a home whose settings name another database means that
    database, and the CLI and the GUI always open the same one. A `~` in it is expanded."""
    configured = _library_path_setting()
    return configured if configured is not None else data_dir() / "library.db"


def _library_path_setting() -> Path | None:
    from clipdesk.settings import load_settings  # settings imports this module

    value = load_settings().get("library_path")
    return Path(value).expanduser() if isinstance(value, str) and value.strip() else None


def settings_path() -> Path:
    return data_dir() / "settings.json"


def thumbnail_cache_path() -> Path:
    return cache_dir() / "thumbnails.db"


def resources_dir() -> Path:
    """Files shipped with the app: the repository's resources/, or the frozen bundle's copy."""
    frozen_root = getattr(sys, "_MEIPASS", None)
    if frozen_root:
        return Path(frozen_root) / "resources"
    return Path(__file__).resolve().parent.parent / "resources"


def bundled_models_dir() -> Path:
    return resources_dir() / "models"


def vocab_path() -> Path:
    return resources_dir() / "vocab" / "bpe_simple_vocab_16e6.txt.gz"
