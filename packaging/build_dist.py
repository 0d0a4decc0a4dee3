#!/usr/bin/env python3
"""Build the clipdesk app: a one-folder PyInstaller bundle of the run side, and its archive.

    python3 packaging/build_dist.py            # what `make dist` runs; the same on Windows and macOS

1. A runtime-only virtual environment (build/dist-venv): clipdesk's run-side dependencies from
   pyproject.toml, with the CPU `onnxruntime` in place of `onnxruntime-gpu`, plus
   packaging/requirements-dist.txt (PyInstaller, pinned). No torch, onnx or onnxscript. It is made
   again from scratch whenever those requirements or the Python version change, and reused otherwise.
2. clipdesk itself installed into it (no dependencies: they are step 1's).
3. PyInstaller on packaging/clipdesk.spec -> dist/clipdesk/ (and dist/clipdesk.app on macOS).
4. THIRD-PARTY-NOTICES/ beside the executable: every bundled distribution's licence and licence files
   (packaging/notices.py). Linux only: debug info stripped from Python's own libraries; a .desktop file, the icon and an
   installer script beside the executable.
5. A smoke run of the built executable with no Python environment (`--version`, `info --json`).
6. The archive: dist/clipdesk-VERSION-linux-ARCH.tar.gz, -windows-ARCH.zip or -macos-ARCH.zip.

Needs only the standard library of Python 3.11+; stdlib `venv` makes the environment.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tarfile
import time
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGING = ROOT / "packaging"
SPEC = PACKAGING / "clipdesk.spec"
REQUIREMENTS = PACKAGING / "requirements-dist.txt"
# Distributions that must never be in the build environment (the spec also refuses their modules).
FORBIDDEN_DISTRIBUTIONS = {"torch", "torchvision", "onnx", "onnxscript", "onnx-ir", "onnxruntime-gpu",
                           "safetensors", "transformers", "sympy"}


def log(message: str) -> None:
    print(f"build_dist: {message}", flush=True)


def run(command: list, **kwargs) -> None:
    log("$ " + " ".join(str(part) for part in command))
    subprocess.run([str(part) for part in command], check=True, **kwargs)


def version() -> str:
    return re.search(r'__version__ = "([^"]+)"', (ROOT / "clipdesk" / "__init__.py").read_text()).group(1)


def platform_tag() -> str:
    system = {"linux": "linux", "win32": "windows", "darwin": "macos"}.get(sys.platform, sys.platform)
    machine = platform.machine().lower()
    machine = {"amd64": "x86_64", "x64": "x86_64", "aarch64": "arm64"}.get(machine, machine)
    return f"{system}-{machine}"


def runtime_requirements() -> list[str]:
    """pyproject's run-side dependencies without the onnxruntime lines (requirements-dist.txt pins the CPU
    `onnxruntime` for every platform: onnxruntime-gpu would add ~250 MB of CUDA providers)."""
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    return [line for line in dependencies if not re.match(r"\s*onnxruntime", line, re.IGNORECASE)]


def venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")


def make_environment(venv: Path, fresh: bool) -> Path:
    """The runtime-only build environment, made again only when what goes into it changed."""
    requirements = runtime_requirements()
    stamp_text = json.dumps({"python": sys.version, "platform": platform_tag(), "runtime": requirements,
                             "dist": REQUIREMENTS.read_text()}, sort_keys=True)
    stamp_value = hashlib.sha256(stamp_text.encode()).hexdigest()
    stamp = venv / ".clipdesk-dist-stamp"
    python = venv_python(venv)
    if not fresh and python.exists() and stamp.exists() and stamp.read_text().strip() == stamp_value:
        log(f"reusing {venv} (requirements unchanged)")
        return python
    if venv.exists():
        log(f"removing {venv} (requirements changed)")
        shutil.rmtree(venv)
    run([sys.executable, "-m", "venv", venv])
    runtime_file = venv / "runtime-requirements.txt"
    runtime_file.write_text("\n".join(requirements) + "\n")
    run([python, "-m", "pip", "install", "--quiet", "--upgrade", "pip"])
    run([python, "-m", "pip", "install", "--quiet", "-r", REQUIREMENTS, "-r", runtime_file])
    stamp.write_text(stamp_value + "\n")
    return python


def check_environment(python: Path) -> None:
    listing = subprocess.run([python, "-m", "pip", "list", "--format", "json"], check=True, capture_output=True,
                             text=True).stdout
    installed = {re.sub(r"[-_.]+", "-", item["name"].lower()) for item in json.loads(listing)}
    bad = sorted(installed & FORBIDDEN_DISTRIBUTIONS)
    if bad:
        raise SystemExit(f"build_dist: the build environment holds {', '.join(bad)}; delete it and build again")


def install_clipdesk(python: Path) -> None:
    # setuptools builds in the tree and never empties its scratch folders: a module deleted from clipdesk/
    # would live on in build/lib and reach the bundle.
    for scratch in [ROOT / "build" / "lib", *(ROOT / "build").glob("bdist.*")]:
        shutil.rmtree(scratch, ignore_errors=True)
    # --no-deps: the dependencies are make_environment's (pyproject's would bring onnxruntime-gpu on x86-64
    # Linux and Windows). --no-build-isolation: setuptools is pinned in requirements-dist.txt.
    run([python, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--force-reinstall",
         "--no-cache-dir", ROOT])


def render_icon(python: Path, out: Path) -> Path | None:
    """resources/icons/clipdesk.svg as a 512 px PNG (Qt renders it; PyInstaller makes .ico/.icns of it)."""
    svg = ROOT / "resources" / "icons" / "clipdesk.svg"
    if not svg.exists():
        log(f"no {svg.relative_to(ROOT)}: the app gets no icon")
        return None
    out.parent.mkdir(parents=True, exist_ok=True)
    script = (
        "import sys\n"
        "from PySide6.QtCore import Qt\n"
        "from PySide6.QtGui import QGuiApplication, QImage, QPainter\n"
        "from PySide6.QtSvg import QSvgRenderer\n"
        "app = QGuiApplication([])\n"
        "image = QImage(512, 512, QImage.Format.Format_ARGB32)\n"
        "image.fill(Qt.GlobalColor.transparent)\n"
        "painter = QPainter(image)\n"
        "QSvgRenderer(sys.argv[1]).render(painter)\n"
        "painter.end()\n"
        "sys.exit(0 if image.save(sys.argv[2]) else 1)\n"
    )
    environment = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    result = subprocess.run([str(python), "-c", script, str(svg), str(out)], env=environment, capture_output=True,
                            text=True)
    if result.returncode != 0 or not out.exists():
        log(f"could not render the icon ({result.stderr.strip()[-300:]}); the app gets no icon")
        return None
    return out


def run_pyinstaller(python: Path, dist: Path, work: Path, icon: Path | None, clean: bool) -> None:
    environment = {**os.environ, "CLIPDESK_DIST_ICON": str(icon) if icon else ""}
    command = [python, "-m", "PyInstaller", "--noconfirm", "--log-level", "WARN", "--distpath", dist,
               "--workpath", work]
    run(command + (["--clean"] if clean else []) + [SPEC], env=environment)


def strip_python_debug_info(bundle: Path) -> None:
    """Python built from source (pyenv, or a distribution's debug-enabled build) ships libpython and its
    extension modules with DWARF data: 23 MB of the 35 that Python takes in the bundle here. Only these,
    never the wheels' libraries (stripping those breaks what auditwheel rewrote, see clipdesk.spec)."""
    strip = shutil.which("strip")
    internal = bundle / "_internal"
    targets = sorted(internal.glob("libpython3*.so*")) + sorted(internal.glob("python3*/lib-dynload/*.so"))
    targets = [path for path in targets if path.is_file() and not path.is_symlink()]
    if not strip or not targets:
        return
    before = sum(path.stat().st_size for path in targets)
    subprocess.run([strip, "--strip-debug", *map(str, targets)], check=True)
    after = sum(path.stat().st_size for path in targets)
    log(f"stripped debug info from Python's own libraries: {before / 1e6:.1f} MB -> {after / 1e6:.1f} MB")


def add_linux_desktop_files(bundle: Path, icon: Path | None) -> None:
    for name in ("clipdesk.desktop", "install-desktop-entry.sh", "README.txt"):
        shutil.copy2(PACKAGING / "linux" / name, bundle / name)
    (bundle / "install-desktop-entry.sh").chmod(0o755)
    if icon:
        shutil.copy2(icon, bundle / "clipdesk.png")


def clean_environment(home: Path) -> dict:
    """What a person's shell would have: no Python environment, a throwaway clipdesk home."""
    keep = ("PATH", "HOME", "USER", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT", "TEMP", "TMP", "USERPROFILE",
            "APPDATA", "LOCALAPPDATA")
    environment = {name: os.environ[name] for name in keep if name in os.environ}
    environment["PATH"] = os.pathsep.join(part for part in environment.get("PATH", "").split(os.pathsep)
                                          if part and "venv" not in part)
    environment["CLIPDESK_HOME"] = str(home)
    environment["QT_QPA_PLATFORM"] = "offscreen"
    return environment


def smoke_test(executable: Path, work: Path) -> None:
    home = work / "smoke-home"
    shutil.rmtree(home, ignore_errors=True)
    environment = clean_environment(home)
    # `model list` loads numpy and ONNX Runtime and runs the device probe from resources/.
    for arguments in (["--version"], ["info", "--json"], ["model", "list", "--json"]):
        result = subprocess.run([str(executable), *arguments], env=environment, capture_output=True, text=True,
                                timeout=120)
        if result.returncode != 0:
            raise SystemExit(f"build_dist: the built {executable.name} {' '.join(arguments)} failed:\n"
                             f"{result.stdout}{result.stderr}")
    shutil.rmtree(home, ignore_errors=True)
    log(f"smoke run passed: {executable.name} --version, info, model list")


def folder_size(folder: Path) -> int:
    total = 0
    for path in folder.rglob("*"):
        if path.is_file() and not path.is_symlink():
            total += path.stat().st_size
    return total


def make_archive(dist: Path, bundle: Path, app: Path | None) -> Path:
    stem = f"clipdesk-{version()}-{platform_tag()}"
    if sys.platform.startswith("linux"):
        archive = dist / f"{stem}.tar.gz"
        with tarfile.open(archive, "w:gz", compresslevel=6) as tar:
            tar.add(bundle, arcname=stem)
    elif sys.platform == "darwin":
        # ditto keeps the .app's symbolic links and extended attributes (zipfile would not).
        archive = dist / f"{stem}.zip"
        archive.unlink(missing_ok=True)
        run(["ditto", "-c", "-k", "--sequesterRsrc", "--keepParent", app or bundle, archive])
    else:
        archive = dist / f"{stem}.zip"
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as zipped:
            for path in sorted(bundle.rglob("*")):
                zipped.write(path, Path(stem) / path.relative_to(bundle))
    return archive


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--venv", type=Path, default=ROOT / "build" / "dist-venv",
                        help="the runtime-only build environment (default build/dist-venv)")
    parser.add_argument("--dist", type=Path, default=ROOT / "dist", help="where the bundle goes (default dist/)")
    parser.add_argument("--work", type=Path, default=ROOT / "build" / "pyinstaller",
                        help="PyInstaller's work folder (default build/pyinstaller)")
    parser.add_argument("--fresh", action="store_true", help="make the build environment again")
    parser.add_argument("--clean", action="store_true", help="empty PyInstaller's caches first")
    parser.add_argument("--no-archive", action="store_true", help="stop after the bundle folder")
    parser.add_argument("--no-smoke", action="store_true", help="do not run the built executable")
    args = parser.parse_args(argv)
    # Nothing from the caller's Python environment may reach pip or the analysis (make test-dist runs this
    # from .venv, which has torch).
    for variable in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV", "PIP_REQUIRE_VIRTUALENV"):
        os.environ.pop(variable, None)
    dist, work = args.dist.resolve(), args.work.resolve()
    timings = {}

    started = time.perf_counter()
    python = make_environment(args.venv.resolve(), args.fresh)
    check_environment(python)
    install_clipdesk(python)
    timings["environment"] = time.perf_counter() - started

    started = time.perf_counter()
    icon = render_icon(python, work / "icon" / "clipdesk.png")
    run_pyinstaller(python, dist, work, icon, args.clean)
    bundle = dist / "clipdesk"
    app = dist / "clipdesk.app" if sys.platform == "darwin" else None
    # The licences of what went in, from the environment PyInstaller analysed (packaging/notices.py).
    run([python, PACKAGING / "notices.py", bundle / "THIRD-PARTY-NOTICES"])
    if sys.platform.startswith("linux"):
        strip_python_debug_info(bundle)
        add_linux_desktop_files(bundle, icon)
    timings["pyinstaller"] = time.perf_counter() - started

    executable = bundle / ("clipdesk.exe" if sys.platform == "win32" else "clipdesk")
    if not args.no_smoke:
        smoke_test(executable, work)
    size = folder_size(bundle)
    log(f"bundle: {bundle} ({size / 1e6:.1f} MB unpacked)")
    if not args.no_archive:
        started = time.perf_counter()
        archive = make_archive(dist, bundle, app)
        timings["archive"] = time.perf_counter() - started
        log(f"archive: {archive} ({archive.stat().st_size / 1e6:.1f} MB)")
    log("took " + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in timings.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
