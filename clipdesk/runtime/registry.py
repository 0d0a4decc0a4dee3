"""The model store: packages bundled with the app plus those the user imported or trained.

Bundled packages live in resources/models/, the user's in <data dir>/models/. A user package with the
same name as a bundled one takes its place. The default model is the settings' `default_model`, else
the bundled default named in resources/models/DEFAULT, else the only or first model.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from clipdesk import paths
from clipdesk.errors import ModelPackageError
from clipdesk.runtime.package import MANIFEST, ModelPackage, check_model_name, load_package
from clipdesk.settings import load_settings, update_settings

BUNDLED_DEFAULT_FILE = "DEFAULT"
# Hidden folders in the model store: packages being built, and replaced ones being deleted.
STAGING_PREFIX, RETIRED_PREFIX = ".incoming-", ".retired-"


@dataclass
class ModelEntry:
    name: str
    path: Path
    bundled: bool


def _entries_in(folder: Path, bundled: bool) -> dict[str, ModelEntry]:
    if not folder.is_dir():
        return {}
    entries = {}
    for child in sorted(folder.iterdir()):
        # Folders starting with "." are imports in progress or leftovers of a killed one.
        if child.name.startswith(".") or not (child / MANIFEST).is_file():
            continue
        entries[child.name] = ModelEntry(child.name, child, bundled)
    return entries


def model_entries() -> dict[str, ModelEntry]:
    _clean_once()
    entries = _entries_in(paths.bundled_models_dir(), bundled=True)
    entries.update(_entries_in(paths.models_dir(), bundled=False))
    return entries


_cleaned: set[Path] = set()


def _clean_once() -> None:
    """Leftovers of killed imports go the first time a process opens the model store (not at every look)."""
    folder = paths.models_dir()
    if folder not in _cleaned:
        _cleaned.add(folder)
        clean_staging_leftovers()


def default_model_name() -> str | None:
    entries = model_entries()
    chosen = load_settings().get("default_model")
    if isinstance(chosen, str) and chosen in entries:
        return chosen
    marker = paths.bundled_models_dir() / BUNDLED_DEFAULT_FILE
    if marker.is_file():
        bundled = marker.read_text(encoding="utf-8").strip()
        if bundled in entries:
            return bundled
    return next(iter(entries), None)


def set_default_model(name: str) -> None:
    if name not in model_entries():
        raise ModelPackageError(f"unknown model {name!r}; `clipdesk model list` shows the installed ones")
    update_settings(default_model=name)


def resolve_model(name_or_dir: str | os.PathLike | None = None) -> ModelPackage:
    """A registered model's name or a package folder; None means the default model."""
    if name_or_dir is None:
        name = default_model_name()
        if name is None:
            raise ModelPackageError(
                "no model is installed; import one with `clipdesk model import CHECKPOINT` or pass --model DIR"
            )
        return load_package(model_entries()[name].path)
    text = os.fspath(name_or_dir)
    entries = model_entries()
    if text in entries:
        return load_package(entries[text].path)
    candidate = Path(text).expanduser()
    if candidate.is_dir():
        return load_package(candidate)
    known = ", ".join(entries) or "none installed"
    raise ModelPackageError(
        f"unknown model {text!r} (known: {known}); pass a registered name or a model package folder"
    )


def staging_dir(parent: Path | None = None) -> Path:
    """A fresh hidden folder beside the final one: a package is built there, then renamed into place. Its
    name carries this process's id, so that leftovers of a killed process can be told from work in progress."""
    parent = parent or paths.models_dir()
    parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}{os.getpid()}-", dir=parent))


def install_package(staged: Path, name: str, *, replace: bool = False) -> Path:
    """Move a complete package from the staging folder to <models>/<name> in one rename."""
    check_model_name(name)
    target = paths.models_dir() / name
    if target.exists():
        if not replace:
            raise ModelPackageError(f"a model named {name!r} already exists; choose another --name or remove it")
        retired = target.with_name(f"{RETIRED_PREFIX}{name}-{uuid.uuid4().hex[:8]}")
        os.replace(target, retired)
        os.replace(staged, target)
        shutil.rmtree(retired, ignore_errors=True)
    else:
        os.replace(staged, target)
    return target


def remove_model(name: str) -> None:
    entry = model_entries().get(name)
    if entry is None:
        raise ModelPackageError(f"unknown model {name!r}")
    if entry.bundled:
        raise ModelPackageError(f"{name!r} is bundled with clipdesk and cannot be removed")
    retired = entry.path.with_name(f"{RETIRED_PREFIX}{name}-{uuid.uuid4().hex[:8]}")
    os.replace(entry.path, retired)
    shutil.rmtree(retired, ignore_errors=True)


def clean_staging_leftovers() -> None:
    """Remove half-built packages left by a killed import, export or download (their process is gone), and
    replaced packages left undeleted. Work in progress in a live process is left alone."""
    folder = paths.models_dir()
    if not folder.is_dir():
        return
    for child in folder.iterdir():
        if child.name.startswith(RETIRED_PREFIX) or (child.name.startswith(STAGING_PREFIX) and _is_leftover(child)):
            shutil.rmtree(child, ignore_errors=True)


def _is_leftover(staging: Path) -> bool:
    owner = _staging_owner(staging.name)
    if owner is None:
        return True
    if os.name == "nt":  # os.kill would terminate the process there: judge by age instead
        try:
            return time.time() - staging.stat().st_mtime > 24 * 3600
        except OSError:
            return False
    return not _process_alive(owner)


def _staging_owner(name: str) -> int | None:
    owner = name[len(STAGING_PREFIX):].split("-", 1)[0]
    return int(owner) if owner.isdigit() else None  # older clipdesk versions named no owner


def _process_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # exists, someone else's: leave it
    return True
