"""Installing ready model packages (a folder, or a .zip of one) into the model store. No torch needed.

A package from elsewhere is untrusted until it has passed every check, in this order, before anything is
registered: the manifest is read (bounded) and every path in it is a plain relative name inside the
package; each file it lists is copied or extracted with a running cap at the size the manifest gives
(a zip member that declares more, or compresses implausibly well, is refused before any byte is
written); every file matches its SHA-256; both graphs load in ONNX Runtime with the inputs and outputs
the manifest declares and give finite vectors of the declared size on real photos (known_answer.py).
"""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path, PurePosixPath

from clipdesk import paths
from clipdesk.errors import ModelPackageError
from clipdesk.runtime.package import (
    MANIFEST, Manifest, ModelPackage, check_model_name, load_package, save_manifest,
)
from clipdesk.runtime.package_io import PackageIO
from clipdesk.runtime.registry import install_package, staging_dir

MAX_MANIFEST_BYTES = 4 << 20
# ONNX weights compress by a few per cent; a member that shrinks more than this is padding or a bomb.
MAX_COMPRESSION_RATIO = 50
_COPY_CHUNK = 1 << 20


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


def _manifest(text: bytes, source: str) -> Manifest:
    if len(text) > MAX_MANIFEST_BYTES:
        raise ModelPackageError(f"{source}: the manifest is {len(text):,} bytes, too large to be one")
    manifest = Manifest.from_json(text.decode("utf-8", errors="replace"), source)
    io = PackageIO.from_manifest(manifest, source)
    for needed in (io.image.file, io.text.file, *io.extra_files):
        if needed not in manifest.files:
            raise ModelPackageError(f"{source}: the manifest lists no size and checksum for {needed}; "
                                    "re-export the package")
    for name, info in manifest.files.items():
        size = info.get("bytes")
        if not isinstance(size, int) or size < 0 or not isinstance(info.get("sha256"), str):
            raise ModelPackageError(f"{source}: the manifest gives no size and checksum for {name}")
    return manifest


def _copy_capped(source, sink, limit: int, name: str) -> None:
    """Copy at most `limit` bytes; a source that holds more is refused (a header can lie about sizes)."""
    copied = 0
    while chunk := source.read(_COPY_CHUNK):
        copied += len(chunk)
        if copied > limit:
            raise ModelPackageError(f"{name} is larger than the {limit:,} bytes its manifest gives; refused")
        sink.write(chunk)


def _copy_folder(folder: Path, target: Path) -> None:
    manifest_path = folder / MANIFEST
    with open(manifest_path, "rb") as handle:
        manifest = _manifest(handle.read(MAX_MANIFEST_BYTES + 1), str(manifest_path))
    root = folder.resolve()
    for name, info in manifest.files.items():
        source = folder / name
        if not source.resolve().is_relative_to(root):
            raise ModelPackageError(f"{folder}: {name} points outside the model package; refused")
        if not source.is_file():
            raise ModelPackageError(f"{folder}: model package is incomplete (no {name})")
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        with open(source, "rb") as reader, open(target / name, "wb") as writer:
            _copy_capped(reader, writer, info["bytes"], f"{folder}/{name}")
    shutil.copyfile(manifest_path, target / MANIFEST)


def _extract_zip(archive: Path, target: Path) -> None:
    """Extract the files the archive's manifest lists, and nothing else: sizes checked before extraction and
    capped while it runs, names taken from the manifest (which keeps them inside the package)."""
    try:
        with zipfile.ZipFile(archive) as bundle:
            manifests = [m for m in bundle.infolist() if not m.is_dir() and PurePosixPath(m.filename).name == MANIFEST]
            if len(manifests) != 1:
                raise ModelPackageError(f"{archive}: not a model package archive (expected one folder with {MANIFEST})")
            prefix = str(PurePosixPath(manifests[0].filename).parent)
            prefix = "" if prefix == "." else prefix + "/"
            with bundle.open(manifests[0]) as handle:
                manifest_bytes = handle.read(MAX_MANIFEST_BYTES + 1)
            manifest = _manifest(manifest_bytes, f"{archive}:{manifests[0].filename}")
            members = {}
            for name, info in manifest.files.items():
                try:
                    member = bundle.getinfo(prefix + name)
                except KeyError:
                    raise ModelPackageError(f"{archive}: model package is incomplete (no {name})") from None
                if member.file_size != info["bytes"]:
                    raise ModelPackageError(f"{archive}: {name} is {member.file_size:,} bytes in the archive, "
                                            f"{info['bytes']:,} in its manifest; refused")
                if member.file_size > 1 << 20 and member.file_size > MAX_COMPRESSION_RATIO * max(member.compress_size, 1):
                    raise ModelPackageError(f"{archive}: {name} compresses {member.file_size // max(member.compress_size, 1):,}:1, "
                                            "which no model file does; refused as a possible zip bomb")
                members[name] = member
            needed = sum(member.file_size for member in members.values())
            free = shutil.disk_usage(target).free
            if needed > free:
                raise ModelPackageError(f"{archive}: needs {needed / 1e6:,.0f} MB, {free / 1e6:,.0f} MB free in "
                                        f"{target.parent}; free some space and import again")
            for name, member in members.items():
                (target / name).parent.mkdir(parents=True, exist_ok=True)
                with bundle.open(member) as source, open(target / name, "wb") as sink:
                    _copy_capped(source, sink, manifest.files[name]["bytes"], f"{archive}:{name}")
            (target / MANIFEST).write_bytes(manifest_bytes)
    except (zipfile.BadZipFile, EOFError, OSError, zipfile.LargeZipFile) as exc:
        raise ModelPackageError(f"{archive}: cannot read the archive ({exc})") from None


def check_package(package: ModelPackage) -> str:
    """Every checksum, then both graphs run on real photos; returns a line saying what held."""
    from clipdesk.runtime.known_answer import check_model

    package.verify_hashes()
    report = check_model(package, known_answer=False, device="cpu")
    return (f"all {len(package.manifest.files)} files match their checksums; both graphs load and give finite "
            f"{package.manifest.embed_dim}-value vectors on {report.photos} photos")


def import_package(source: str | Path, name: str | None = None, *, replace: bool = False) -> ModelPackage:
    """Copy a package into the store under `name` (default: the manifest's), after every check above."""
    source = Path(source)
    if not source.exists():
        raise ModelPackageError(f"{source}: no such file or folder")
    staged = staging_dir(paths.models_dir())
    try:
        if source.is_dir():
            _copy_folder(source, staged)
        else:
            _extract_zip(source, staged)
        package = load_package(staged)
        check_package(package)
        final_name = check_model_name(name or package.manifest.name)
        if final_name != package.manifest.name:
            package.manifest.name = final_name
            save_manifest(staged, package.manifest)
        return load_package(install_package(staged, final_name, replace=replace))
    except ModelPackageError as exc:
        shutil.rmtree(staged, ignore_errors=True)
        # Name the user's file, not the hidden staging folder it was being checked in.
        raise ModelPackageError(str(exc).replace(str(staged), str(source))) from None
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise
