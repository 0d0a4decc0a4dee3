"""`clipdesk model get`: a catalog entry → downloaded, verified and registered model package. No torch.

Steps, each of which may fail and leave nothing registered:
1. ask the hub for every file's size and hash (HEAD), so a missing repository or file is known at once;
2. check free disk space for what is left to fetch;
3. download into <data dir>/downloads/<repo>/ (resumable `.part` files, SHA-256 checked: hub/client.py);
4. move the files into a hidden staging folder, write the manifest (layouts.py: io block, hashes); weights
   (the openclip and transformers layouts) are converted into ONNX graphs instead (clipdesk/checkpoint);
5. load it as any package (paths inside, sizes as listed), run both towers on the known-answer photos;
6. rename it into the model store in one step, then drop the download folder.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from clipdesk import paths
from clipdesk.errors import ClipdeskError
from clipdesk.hub.client import HubClient, HubError, RemoteFile, partial_path
from clipdesk.progress import Progress
from clipdesk.runtime.catalog import WEIGHT_LAYOUTS, CatalogEntry, CatalogError
from clipdesk.runtime.package import MANIFEST, ModelPackage, load_package, save_manifest
from clipdesk.runtime.registry import (
    clean_staging_leftovers, install_package, model_entries, set_default_model, staging_dir,
)

SKIPPED_SUFFIXES = (".armnn", ".rknn")
SPACE_MARGIN = 64 << 20  # bytes kept free beyond the download: the database and thumbnails need room too


@dataclass
class DownloadPlan:
    entry: CatalogEntry
    remotes: dict[str, RemoteFile]  # path in the repository -> what the hub says of it
    folder: Path  # where this entry's downloads collect

    @property
    def total_bytes(self) -> int:
        return sum(remote.size or 0 for remote in self.remotes.values())

    @property
    def remaining_bytes(self) -> int:
        left = 0
        for path, remote in self.remotes.items():
            target = self.folder / path
            part = partial_path(target)
            have = target.stat().st_size if target.exists() else part.stat().st_size if part.exists() else 0
            left += max((remote.size or 0) - have, 0)
        return left

    @property
    def commit(self) -> str | None:
        return next((remote.commit for remote in self.remotes.values() if remote.commit), None)

    def licence_paths(self) -> list[Path]:
        return [self.folder / name for name in self.entry.licence_files if name in self.remotes]


def downloads_dir() -> Path:
    return paths.data_dir() / "downloads"


def _repo_paths(entry: CatalogEntry) -> dict[str, str]:
    """Repository path -> role (licence files first: they are small and shown before the rest)."""
    found = {path: "licence" for path in entry.licence_files}
    found.update({path: role for role, path in entry.files.items()})
    return found


def plan_download(entry: CatalogEntry, client: HubClient | None = None) -> DownloadPlan:
    """Ask the hub about every file of `entry` (one HEAD each); fails at once on a missing repo or file."""
    client = client or HubClient()
    remotes = {}
    for path, role in _repo_paths(entry).items():
        try:
            remotes[path] = client.file_info(entry.repo, entry.revision, path)
        except HubError as exc:
            if role != "licence" or "has no file" not in str(exc):
                raise
    for folder in entry.folders:  # skip other runtimes' files (Immich's ARM NN and RKNN builds)
        for remote in client.list_folder(entry.repo, entry.revision, folder):
            if not remote.path.endswith(SKIPPED_SUFFIXES):
                remotes.setdefault(remote.path, remote)
    folder = downloads_dir() / f"{entry.repo.replace('/', '--')}@{entry.variant or 'default'}"
    return DownloadPlan(entry, remotes, folder)


def check_free_space(plan: DownloadPlan) -> None:
    plan.folder.mkdir(parents=True, exist_ok=True)
    needed, free = plan.remaining_bytes, shutil.disk_usage(plan.folder).free
    if needed + SPACE_MARGIN > free:
        raise ClipdeskError(f"not enough free disk space for {plan.entry.name}: {needed / 1e6:,.0f} MB to download, "
                            f"{free / 1e6:,.0f} MB free in {plan.folder.parent}; free some space and try again")


def prepare_download(entry: CatalogEntry, client: HubClient | None = None) -> DownloadPlan:
    """What comes before the user's yes: ask the hub about every file, check the disk has room, and fetch
    the (small) licence files, which are shown before the download."""
    client = client or HubClient()
    plan = plan_download(entry, client)
    check_free_space(plan)
    fetch_files(plan, only=list(entry.licence_files), client=client)
    return plan


def licence_texts(plan: DownloadPlan, max_lines: int) -> list[tuple[str, str]]:
    """(file name, its first `max_lines` lines) of each licence file fetched."""
    texts = []
    for path in plan.licence_paths():
        if path.is_file():
            lines = path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
            texts.append((path.name, "\n".join(lines[:max_lines]) + ("\n[…]" if len(lines) > max_lines else "")))
    return texts


def fetch_files(plan: DownloadPlan, only: list[str] | None = None, client: HubClient | None = None,
                progress: Progress | None = None) -> dict[str, str]:
    """Download the plan's files (or `only` these), resuming; returns path -> verified SHA-256."""
    client = client or HubClient()
    progress = progress or Progress()
    roles = _repo_paths(plan.entry)
    wanted = [path for path in (only if only is not None else plan.remotes) if path in plan.remotes]
    total = sum(plan.remotes[path].size or 0 for path in wanted)
    done, hashes = 0, {}
    for path in wanted:
        remote, target = plan.remotes[path], plan.folder / path
        expected = plan.entry.sha256.get(roles.get(path, ""), plan.entry.sha256.get(path))
        if target.exists():
            os.replace(target, partial_path(target))  # finished before: verified again below
        hashes[path] = client.download(remote, target, expected_sha256=expected, progress=progress,
                                       done_before=done, total=total)
        done += target.stat().st_size
    return hashes


def get_model(entry: CatalogEntry, *, plan: DownloadPlan | None = None, client: HubClient | None = None,
              progress: Progress | None = None, make_default: bool = False, device: str = "auto",
              log: Callable[[str], None] = print) -> ModelPackage:
    """Download, verify and register `entry` (a chosen variant). Returns the installed package."""
    clean_staging_leftovers()
    installed = model_entries().get(entry.package_name)
    if installed is not None and not installed.bundled:
        package = load_package(installed.path)
        log(f"{entry.package_name} is already installed")
        if make_default:
            set_default_model(package.name)
        return package
    client = client or HubClient()
    plan = plan or plan_download(entry, client)
    check_free_space(plan)
    hashes = fetch_files(plan, client=client, progress=progress)
    package = install_download(plan, hashes, device=device, log=log)
    shutil.rmtree(plan.folder, ignore_errors=True)
    if make_default:
        set_default_model(package.name)
    return package


def install_download(plan: DownloadPlan, hashes: dict[str, str], *, device: str = "auto",
                     log: Callable[[str], None] = print) -> ModelPackage:
    """Assemble the downloaded files into a package in staging, verify it, and rename it into the store."""
    from clipdesk.runtime.layouts import wrap_download

    entry = plan.entry
    if entry.layout in WEIGHT_LAYOUTS:
        return _install_weights(plan, hashes, device=device, log=log)
    staged = staging_dir()
    try:
        strip = _package_prefix(entry)
        files = {}
        for path, sha in hashes.items():
            inside = path[len(strip):] if strip and path.startswith(strip) else path
            target = staged / inside
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(plan.folder / path, target)
            files[inside] = {"sha256": sha, "bytes": target.stat().st_size}
        manifest = wrap_download(entry, staged, files, plan.commit)
        save_manifest(staged, manifest)
        package = load_package(staged)
        manifest.verification = _known_answer(package, entry, f"{len(files)} files match their SHA-256",
                                              device, log)
        save_manifest(staged, manifest)
        return load_package(install_package(staged, entry.package_name))
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise


def _known_answer(package: ModelPackage, entry: CatalogEntry, checked: str, device: str,
                  log: Callable[[str], None]) -> dict:
    """Run the known-answer photos (refusing a model that fails them, where the entry asks); the figures for
    the manifest's verification."""
    from clipdesk.runtime.known_answer import check_model

    report = check_model(package, known_answer=entry.known_answer, device=device)
    log(f"verified {entry.package_name}: {checked}, both towers run, "
        + (report.summary() if entry.known_answer else f"known-answer check not required ({report.summary()})")
        + f"; {report.speed()}")
    return {"hashes": "SHA-256 of every file checked on download",
            "known_answer": report.summary() if entry.known_answer else "not required",
            "known_answer_photos": report.lines, "photos_per_second": round(report.photos_per_second, 1),
            "provider": report.provider}


def _install_weights(plan: DownloadPlan, hashes: dict[str, str], *, device: str,
                     log: Callable[[str], None]) -> ModelPackage:
    """Convert downloaded weights (an OpenCLIP or transformers folder) into a package, without torch."""
    from clipdesk.checkpoint.graphs import PRECISIONS
    from clipdesk.checkpoint.importer import read_for_package, write_checkpoint_package
    from clipdesk.runtime.layouts import weights_preprocessing

    entry = plan.entry
    # The conversion writes fp32 graphs (the reference of a narrower package) beside the download.
    paths.models_dir().mkdir(parents=True, exist_ok=True)
    needed, free = 2 * plan.total_bytes + SPACE_MARGIN, shutil.disk_usage(paths.models_dir()).free
    if needed > free:
        raise ClipdeskError(f"not enough free disk space to convert {entry.name}: about {needed / 1e6:,.0f} MB needed, "
                            f"{free / 1e6:,.0f} MB free; free some space and run the same command again (the "
                            "download is kept)")
    checkpoint, config, provenance = read_for_package(plan.folder, None, None, log)
    for key, found in (("image_size", config.image_resolution), ("context_length", config.context_length)):
        if getattr(entry, key) not in (0, found):
            raise CatalogError(f"{entry.name}: the catalog says {key} {getattr(entry, key)}, the weights {found}")
    mean, std = weights_preprocessing(plan.folder, entry)
    hub = {"source": "model hub", "repo": entry.repo, "revision": entry.revision, "commit": plan.commit,
           "layout": entry.layout, "variant": entry.variant, "files": hashes}
    staged = staging_dir() / "package"
    try:
        package = write_checkpoint_package(
            checkpoint, config, staged, name=entry.package_name, mean=mean, std=std,
            precision=entry.variant if entry.variant in PRECISIONS else "fp32",
            provenance={**provenance, "hub": hub}, license=entry.licence, description=entry.about, log=log)
        del checkpoint  # the weights (often a memory map of the download) are not needed any more
        manifest = package.manifest
        manifest.verification["known_answer"] = _known_answer(
            package, entry, f"{len(hashes)} downloaded files match their SHA-256", device, log)
        save_manifest(staged, manifest)
        return load_package(install_package(staged, entry.package_name))
    finally:
        shutil.rmtree(staged.parent, ignore_errors=True)


_OPENCLIP_WEIGHTS = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")
_HF_WEIGHTS = ("model.safetensors", "pytorch_model.bin")
_LICENCE_FILES = ("LICENSE", "LICENSE.txt", "LICENSE.md", "LICENCE")


def entry_for_repo(repo: str, client: HubClient | None = None, revision: str = "main") -> CatalogEntry:
    """A catalog entry for any OpenCLIP or transformers CLIP repository of the hub, from its file list:
    OpenCLIP's files where the repository has their config, else transformers' (safetensors first)."""
    from clipdesk.runtime.catalog import entry_from_json

    client = client or HubClient()
    remotes = {remote.path: remote for remote in client.list_folder(repo, revision, "")}
    layout = files = None
    weights = next((name for name in _OPENCLIP_WEIGHTS if name in remotes), None)
    if weights and "open_clip_config.json" in remotes:
        layout, files = "openclip", {"weights": weights, "config": "open_clip_config.json"}
    elif "config.json" in remotes and any(name in remotes for name in _HF_WEIGHTS):
        layout = "transformers"
        files = {"weights": next(name for name in _HF_WEIGHTS if name in remotes), "config": "config.json"}
        if "preprocessor_config.json" in remotes:
            files["preprocess_config"] = "preprocessor_config.json"
    elif weights:
        layout, files = "openclip", {"weights": weights}
    if layout is None:
        shown = ", ".join(sorted(remotes)[:8])
        raise CatalogError(f"{repo} holds no OpenCLIP or transformers CLIP weights ({', '.join(_OPENCLIP_WEIGHTS)}, "
                           f"or config.json with {' or '.join(_HF_WEIGHTS)}); its files: {shown}")
    size = sum(remotes[path].size or 0 for path in files.values())
    return entry_from_json({
        "name": repo.rpartition("/")[2][:100], "title": repo, "repo": repo, "revision": revision, "layout": layout,
        "about": f"{repo} from the model hub (not in clipdesk's catalog), converted from its {layout} weights.",
        "files": files, "licence": _licence_of(repo, revision, remotes, client), "download_mb": round(size / 1e6),
        "licence_files": [name for name in _LICENCE_FILES if name in remotes],
        # Fine-tuned and domain models may not name everyday photos: the check is shown, not required.
        "known_answer": False,
        "variants": {precision: {} for precision in ("fp32", "fp16", "int8")}, "default_variant": "fp32",
    }, f"the model hub's {repo}")


def _licence_of(repo: str, revision: str, remotes: dict[str, RemoteFile], client: HubClient) -> str:
    """The `license:` of the repository's model card (its README's YAML header), or "unknown"."""
    import re
    import tempfile

    if "README.md" not in remotes or (remotes["README.md"].size or 0) > 1 << 20:
        return "unknown"
    with tempfile.TemporaryDirectory() as scratch:
        target = Path(scratch) / "README.md"
        client.download(remotes["README.md"], target, progress=Progress())
        text = target.read_text(encoding="utf-8", errors="replace")
    header = text.split("---", 2)[1] if text.startswith("---") and text.count("---") >= 2 else ""
    match = re.search(r"^license:\s*['\"]?([^'\"\n]+)", header, re.MULTILINE)
    return match.group(1).strip() if match else "unknown"


def _package_prefix(entry: CatalogEntry) -> str:
    """A clipdesk package may sit in a folder of its repository: that folder becomes the package's root."""
    if entry.layout != "clipdesk":
        return ""
    manifest_path = entry.files.get("manifest", MANIFEST)
    folder = manifest_path.rpartition("/")[0]
    return folder + "/" if folder else ""
