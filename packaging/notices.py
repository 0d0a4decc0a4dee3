#!/usr/bin/env python3
"""Third-party notices for the app bundle: every distribution in the build environment that reaches the
bundle, with its licence as its metadata states it and a copy of the licence files its wheel carries.

    build/dist-venv/bin/python packaging/notices.py dist/clipdesk/THIRD-PARTY-NOTICES

Run with the build environment's Python (build_dist.py does), so that it lists exactly what PyInstaller
saw. Writes OUT/README.txt (one entry per distribution) and OUT/<distribution>/<licence files>. Wheels
that bundle native libraries name theirs in these files (pi-heif's LICENSES_bundled.txt: libheif and
libde265, LGPL-3.0). Standard library only.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import re
import shutil
import sys
from pathlib import Path

# Tools that build the bundle without being part of it.
BUILD_TOOLS = {"pip", "setuptools", "wheel", "pyinstaller", "pyinstaller-hooks-contrib", "altgraph", "packaging",
               "macholib", "pefile", "pywin32-ctypes"}
_LICENCE_NAME = re.compile(r"(licen[cs]e|copying|notice|authors|copyright)", re.IGNORECASE)


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def licence_files(distribution: importlib.metadata.Distribution) -> list[Path]:
    """The distribution's licence files: its dist-info `licenses/` folder and files named like licences."""
    found = []
    for entry in distribution.files or []:
        name = entry.name
        if name.endswith((".py", ".pyc")) or not (_LICENCE_NAME.search(name) or "licenses" in entry.parts):
            continue
        path = Path(distribution.locate_file(entry))
        if path.is_file():
            found.append(path)
    return sorted(set(found))


def licence_line(distribution: importlib.metadata.Distribution) -> str:
    metadata = distribution.metadata
    expression = metadata.get("License-Expression")
    if expression:
        return expression
    classifiers = [value.split("::")[-1].strip() for value in metadata.get_all("Classifier") or []
                   if value.startswith("License ::")]
    text = (metadata.get("License") or "").strip()
    return "; ".join(classifiers) or (text.splitlines()[0][:200] if text else "not stated in its metadata")


def write_notices(out: Path) -> list[str]:
    """Write the notices into `out` (emptied first); returns the distributions recorded."""
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    entries, names = [], []
    distributions = {canonical(d.metadata["Name"]): d for d in importlib.metadata.distributions()}
    for name in sorted(distributions):
        if name in BUILD_TOOLS:
            continue
        distribution = distributions[name]
        files = licence_files(distribution)
        copied = []
        for path in files:
            target = out / name / path.name
            if target.exists():  # two files of one name (numpy's vendored libraries): keep both
                target = out / name / f"{path.parent.name}-{path.name}"
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
            copied.append(target.relative_to(out).as_posix())
        names.append(name)
        entries.append(f"{distribution.metadata['Name']} {distribution.version}\n"
                       f"  licence: {licence_line(distribution)}\n"
                       + "".join(f"  file: {file}\n" for file in copied))
    (out / "README.txt").write_text(
        "Third-party software in this clipdesk app, as its packages declare it. Each package's licence files\n"
        "are in the folder of its name; those of wheels that bundle native libraries (pi-heif: libheif and\n"
        "libde265) name them.\n\n" + "\n".join(entries), encoding="utf-8")
    return names


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="the folder to write (emptied first)")
    args = parser.parse_args(argv)
    names = write_notices(args.out)
    print(f"notices: {len(names)} distributions recorded in {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
