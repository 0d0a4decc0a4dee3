"""Hostile disks, damaged databases and hostile model packages, end to end on real photos: each case is run
through the `clipdesk` command line in a throwaway home, and a table says whether clipdesk held.

    python benchmarks/hostile_conditions.py [--photos DIR] [--count 300]

The full-disk case needs a small tmpfs (root, `mount`); where none can be mounted it says so. The damaged
database case is benchmarks/damaged_library.py's drill (20 hits).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PHOTOS = ROOT.parent / "shared" / "data" / "photos" / "imagenet-sample"
BUNDLED_MODEL = ROOT / "resources" / "models" / "clipdesk-emoji-tiny"


def clipdesk(home: Path, *args: str, wait: bool = True):
    command = [sys.executable, "-m", "clipdesk", *map(str, args)]
    environment = {**os.environ, "CLIPDESK_HOME": str(home)}
    if not wait:
        return subprocess.Popen(command, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return subprocess.run(command, env=environment, capture_output=True, text=True, timeout=900)


def one_error_line(result) -> str | None:
    """The error line of a failed command, if it failed in exactly one line and without a traceback."""
    lines = [line for line in result.stderr.splitlines() if line.startswith("clipdesk: error")]
    return lines[0] if result.returncode == 1 and len(lines) == 1 and "Traceback" not in result.stderr else None


def copy_photos(source: Path, target: Path, count: int) -> Path:
    target.mkdir(parents=True)
    for path in sorted(source.glob("*.JPEG"))[:count]:
        shutil.copy2(path, target / path.name)
    return target


def case_full_disk(work: Path, photos: Path, count: int) -> tuple[bool | None, str]:
    mount = work / "tmpfs"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount)], capture_output=True).returncode:
        return None, "no tmpfs could be mounted here"
    try:
        home = mount / "home"
        folder = copy_photos(photos, work / "photos-full", count)
        first = clipdesk(home, "index", folder)
        line = one_error_line(first)
        with sqlite3.connect(home / "library.db") as conn:
            intact = conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            kept = conn.execute("SELECT count(*) FROM photos WHERE status = 'ok'").fetchone()[0]
        subprocess.run(["mount", "-o", "remount,size=64m", str(mount)], check=True)
        second = clipdesk(home, "index")
        held = bool(line and "is full" in line) and intact and second.returncode == 0
        return held, f"stopped with {kept} of {count} kept, database {'intact' if intact else 'DAMAGED'}; " \
                     f"with room the next run {'completed' if second.returncode == 0 else 'FAILED'}"
    finally:
        subprocess.run(["umount", str(mount)], capture_output=True)


def case_damaged_database(work: Path, photos: Path) -> tuple[bool, str]:
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "damaged_library.py"), "--photos", str(photos),
                             "--hits", "20"], capture_output=True, text=True, timeout=1800)
    summary = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else result.stderr[-300:]
    return result.returncode == 0, summary


def case_damaged_vector(work: Path, photos: Path, count: int) -> tuple[bool, str]:
    home = work / "vector-home"
    folder = copy_photos(photos, work / "photos-vector", count)
    clipdesk(home, "index", folder)
    with sqlite3.connect(home / "library.db") as conn:
        (first, _), (second, vector) = conn.execute("SELECT photo_id, vector FROM embeddings LIMIT 2").fetchall()
        loud = (np.frombuffer(vector, np.float16) * 8).astype(np.float16).tobytes()  # finite, norm 8
        conn.execute("UPDATE embeddings SET vector = randomblob(length(vector)) WHERE photo_id = ?", (first,))
        conn.execute("UPDATE embeddings SET vector = ? WHERE photo_id = ?", (loud, second))
    searched = clipdesk(home, "search", "-k", "20", "--json", "--", "-fish")
    scores = [row["score"] for row in json.loads(searched.stdout or "[]")]
    listed = [row for row in json.loads(clipdesk(home, "errors", "--json").stdout or "[]") if row["kind"] == "vector"]
    remade = json.loads(clipdesk(home, "index", "--json").stdout or "{}").get("damaged_vectors")
    held = searched.returncode == 0 and len(scores) == 20 and all(-1 <= s <= 1 for s in scores) \
        and len(listed) == 2 and remade == 2 and "RuntimeWarning" not in searched.stderr
    return held, f"search gave {len(scores)} results in [{min(scores, default=0):.2f}, {max(scores, default=0):.2f}]; " \
                 f"errors listed {len(listed)}; index re-made {remade}"


def case_folder_removed(work: Path, photos: Path, count: int) -> tuple[bool, str]:
    home = work / "removed-home"
    folder = copy_photos(photos, work / "photos-removed", count)
    running = clipdesk(home, "index", folder, "--workers", "1", wait=False)
    time.sleep(1.5)
    removed = clipdesk(home, "folders", "remove", folder)
    out, err = running.communicate(timeout=600)
    note = next((line for line in err.splitlines() if "removed from the library" in line), None)
    # Held only if the removal really came mid-run (the note says so) and the run still ended normally.
    held = running.returncode == 0 and "Traceback" not in err and removed.returncode == 0 and note is not None
    note = note or "no note: the run ended before the removal (use more photos)"
    return held, f"index exited {running.returncode}; {note[:90]}"


def _package(work: Path, name: str) -> Path:
    folder = work / name
    shutil.copytree(BUNDLED_MODEL, folder)
    return folder


def _rewrite(folder: Path, **changes) -> None:
    manifest = json.loads((folder / "manifest.json").read_text())
    (folder / "manifest.json").write_text(json.dumps({**manifest, **changes}))


def case_zip_bomb(work: Path) -> tuple[bool, str]:
    home = work / "bomb-home"
    folder = _package(work, "bomb")
    manifest = json.loads((folder / "manifest.json").read_text())
    size = 256 << 20
    files = {**manifest["files"], "image.onnx": {"sha256": "0" * 64, "bytes": size},
             "text.onnx": {"sha256": "0" * 64, "bytes": size}}
    archive = work / "bomb.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
        bundle.writestr("bomb/manifest.json", json.dumps({**manifest, "files": files}))
        for name in ("image.onnx", "text.onnx"):
            with bundle.open(f"bomb/{name}", "w", force_zip64=True) as member:
                for _ in range(size >> 20):
                    member.write(bytes(1 << 20))
    result = clipdesk(home, "model", "import", archive)
    line = one_error_line(result)
    leftovers = sum(path.stat().st_size for path in (home / "models").rglob("*") if path.is_file()) \
        if (home / "models").exists() else 0
    return bool(line and "zip bomb" in line) and leftovers == 0, \
        f"{archive.stat().st_size / 1e6:.1f} MB zip declaring {2 * size / 1e6:,.0f} MB: {(line or 'NOT refused')[16:110]}; " \
        f"{leftovers} bytes written"


def case_manifest_paths(work: Path) -> tuple[bool, str]:
    home = work / "paths-home"
    outcomes = []
    for outside in ("../../x", "../" * 12 + "etc/hostname"):
        folder = _package(work, f"outside-{len(outcomes)}")
        data = Path("/etc/hostname").read_bytes() if Path("/etc/hostname").exists() else b""
        manifest = json.loads((folder / "manifest.json").read_text())
        _rewrite(folder, files={**manifest["files"], outside: {"sha256": hashlib.sha256(data).hexdigest(),
                                                               "bytes": len(data)}})
        line = one_error_line(clipdesk(home, "model", "import", folder))
        outcomes.append(bool(line and "unsafe file name" in line and "exist" not in line))
    return all(outcomes), f"{sum(outcomes)} of {len(outcomes)} refused in one line naming no outside file"


def case_unloadable_onnx(work: Path) -> tuple[bool, str]:
    home = work / "onnx-home"
    outcomes = []
    for files_listed in (False, True):
        folder = _package(work, f"random-{files_listed}")
        junk = os.urandom(4096)
        (folder / "image.onnx").write_bytes(junk)
        manifest = json.loads((folder / "manifest.json").read_text())
        files = {**manifest["files"], "image.onnx": {"sha256": hashlib.sha256(junk).hexdigest(), "bytes": len(junk)}}
        _rewrite(folder, files=files if files_listed else {})
        line = one_error_line(clipdesk(home, "model", "import", folder))
        outcomes.append(bool(line))
    listed = clipdesk(home, "model", "list", "--json")
    installed = [row["name"] for row in json.loads(listed.stdout or "[]") if not row["bundled"]]
    return all(outcomes) and not installed, f"{sum(outcomes)} of 2 refused at import; {len(installed)} installed"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=Path, default=DEFAULT_PHOTOS)
    parser.add_argument("--count", type=int, default=300)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="clipdesk-hostile-"))
    cases = [
        ("1 full disk", lambda: case_full_disk(work, args.photos, args.count)),
        ("2 damaged database", lambda: case_damaged_database(work, args.photos)),
        ("3 damaged vectors", lambda: case_damaged_vector(work, args.photos, args.count)),
        ("4 folder removed mid-index", lambda: case_folder_removed(work, args.photos, max(args.count, 1000))),
        ("5 zip bomb package", lambda: case_zip_bomb(work)),
        ("6 manifest paths outside", lambda: case_manifest_paths(work)),
        ("7 unloadable ONNX", lambda: case_unloadable_onnx(work)),
    ]
    failed = 0
    try:
        print(f"{'case':<28} {'result':<8} what happened")
        for name, run in cases:
            try:
                held, detail = run()
            except Exception as exc:  # noqa: BLE001 - a case that crashes the script has failed
                held, detail = False, f"{type(exc).__name__}: {exc}"
            verdict = "not run" if held is None else "held" if held else "FAILED"
            failed += held is False
            print(f"{name:<28} {verdict:<8} {detail}", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
