"""Installing ready model packages (a folder, or a .zip of one) into the model store. No torch needed."""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path, PurePosixPath

from clipdesk import paths
from clipdesk.errors import ModelPackageError
from clipdesk.runtime.package import (
    IMAGE_FILE, LEXICON_FILE, MANIFEST, TEXT_FILE, ModelPackage, check_model_name, load_package,
)
from clipdesk.runtime.registry import install_package, staging_dir

_PACKAGE_FILES = {MANIFEST, IMAGE_FILE, TEXT_FILE, IMAGE_FILE + ".data", TEXT_FILE + ".data", LEXICON_FILE}


def is_package_source(path: Path) -> bool:
    """A package folder, or a zip holding a manifest (PyTorch checkpoints are zips too, without one)."""
    if path.is_dir():
        return (path / MANIFEST).is_file()
    if not (path.is_file() and zipfile.is_zipfile(path)):
        return False
    try:
        with zipfile.ZipFile(path) as bundle:
            return any(PurePosixPath(name).name == MANIFEST for name in bundle.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


def _extract_zip(archive: Path, target: Path) -> None:
    """Extract only the package's own files, by base name: no member can write outside `target`."""
    try:
        with zipfile.ZipFile(archive) as bundle:
            members = [m for m in bundle.infolist() if not m.is_dir() and PurePosixPath(m.filename).name in _PACKAGE_FILES]
            folders = {PurePosixPath(m.filename).parent for m in members}
            if not members or len(folders) != 1:
                raise ModelPackageError(f"{archive}: not a model package archive (expected one folder with {MANIFEST})")
            for member in members:
                with bundle.open(member) as source, open(target / PurePosixPath(member.filename).name, "wb") as sink:
                    shutil.copyfileobj(source, sink, 1 << 20)
    except (zipfile.BadZipFile, EOFError, OSError) as exc:
        raise ModelPackageError(f"{archive}: cannot read the archive ({exc})") from None


def import_package(source: str | Path, name: str | None = None, *, replace: bool = False) -> ModelPackage:
    """Copy a package into the store under `name` (default: the manifest's), verifying every checksum."""
    source = Path(source)
    if not source.exists():
        raise ModelPackageError(f"{source}: no such file or folder")
    staged = staging_dir(paths.models_dir())
    try:
        if source.is_dir():
            for file_name in _PACKAGE_FILES:
                if (source / file_name).is_file():
                    shutil.copy2(source / file_name, staged / file_name)
        else:
            _extract_zip(source, staged)
        package = load_package(staged)
        package.verify_hashes()
        final_name = check_model_name(name or package.manifest.name)
        if final_name != package.manifest.name:
            package.manifest.name = final_name
            (staged / MANIFEST).write_text(package.manifest.to_json(), encoding="utf-8")
        return load_package(install_package(staged, final_name, replace=replace))
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise
