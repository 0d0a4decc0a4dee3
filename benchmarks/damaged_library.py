"""Damage drill: a real library's database hit by random bytes in every kind of page, one copy per hit.

For each hit, every reading command must end cleanly (exit 0, or 1 with one line; never a traceback),
search must keep its scores in [-1, 1], `clipdesk repair` must bring back every user tag that still
reads in the damaged file (the oracle reads them one by one, with SQLite alone), and `clipdesk index`
must then complete. Prints a table and the totals.

    python benchmarks/damaged_library.py [--photos DIR] [--count 200] [--hits 20] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PHOTOS = ROOT.parent / "shared" / "data" / "photos" / "imagenet-sample"
COMMANDS = [["info"], ["search", "a dog on grass", "-k", "20", "--json"], ["errors"], ["tag", "list"], ["duplicates"]]


def clipdesk(home: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "clipdesk", *args], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "CLIPDESK_HOME": str(home)})


def build_library(home: Path, photos: Path, count: int, seed: int) -> None:
    chosen = sorted(photos.glob("*.JPEG"))[:count]
    folder = home.parent / "photos"
    folder.mkdir(parents=True)
    for path in chosen:
        shutil.copy2(path, folder / path.name)
    assert clipdesk(home, "index", str(folder)).returncode == 0
    rng = random.Random(seed)
    for tag in ("family", "holiday", "garden"):
        picked = rng.sample(sorted(folder.iterdir()), 12)
        assert clipdesk(home, "tag", "add", tag, *map(str, picked)).returncode == 0


def pages_by_kind(database: Path) -> dict[str, list[tuple[int, str]]]:
    """(page number, owner) for each kind of page dbstat names: table and index, leaf and interior, overflow."""
    conn = sqlite3.connect(database)
    kinds: dict[str, list[tuple[int, str]]] = {}
    for name, page, page_type in conn.execute("SELECT name, pageno, pagetype FROM dbstat"):
        is_index = conn.execute("SELECT type FROM sqlite_master WHERE name = ?", (name,)).fetchone()
        kind = f"{'index' if is_index and is_index[0] == 'index' else 'table'}-{page_type}"
        if page_type == "overflow":
            kind = "overflow"
        kinds.setdefault(kind, []).append((page, name))
    conn.close()
    return kinds


def readable_user_tags(database: Path) -> int:
    conn = sqlite3.connect(database)
    kept = 0
    try:
        pairs = conn.execute("SELECT photo_id, tag_id FROM photo_tags WHERE source = 'user'").fetchall()
    except sqlite3.DatabaseError:
        pairs = []  # a scan fails: read the rows one by one, by rowid (another path through the tree)
        for rowid in range(1, 20_001):
            try:
                row = conn.execute("SELECT photo_id, tag_id, source FROM photo_tags WHERE rowid = ?", (rowid,)).fetchone()
            except sqlite3.DatabaseError:
                continue
            if row and row[2] == "user":
                pairs.append(row[:2])
    for photo_id, tag_id in pairs:
        try:
            if conn.execute("SELECT 1 FROM photos WHERE rowid = ?", (photo_id,)).fetchone() and \
                    conn.execute("SELECT 1 FROM tags WHERE rowid = ?", (tag_id,)).fetchone():
                kept += 1
        except sqlite3.DatabaseError:
            pass
    conn.close()
    return kept


def user_tags(database: Path) -> int:
    conn = sqlite3.connect(database)
    try:
        return conn.execute("SELECT count(*) FROM photo_tags WHERE source = 'user'").fetchone()[0]
    finally:
        conn.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=Path, default=DEFAULT_PHOTOS)
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--hits", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    work = Path(tempfile.mkdtemp(prefix="clipdesk-damage-"))
    try:
        clean_home = work / "clean" / "home"
        build_library(clean_home, args.photos, args.count, args.seed)
        database = clean_home / "library.db"
        conn = sqlite3.connect(database)
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        conn.close()
        kinds = pages_by_kind(database)
        # Every kind of page once, then pages at random.
        plan = [(kind, *rng.choice(pages)) for kind, pages in sorted(kinds.items())]
        everything = [(kind, page, owner) for kind, pages in kinds.items() for page, owner in pages]
        plan += [rng.choice(everything) for _ in range(max(args.hits - len(plan), 0))]
        print(f"library: {args.count} photos, {database.stat().st_size / 1e6:.1f} MB, page kinds: "
              + ", ".join(f"{kind} {len(pages)}" for kind, pages in sorted(kinds.items())))
        print(f"{'hit':>3}  {'page kind':<16} {'owner':<26} {'clean':>5} {'scores':>6} {'repair':<24} "
              f"{'tags':>9} {'index':>5}")
        totals = {"hits": 0, "clean": 0, "scores": 0, "tags": 0, "index": 0}
        for number, (kind, page, owner) in enumerate(plan[:args.hits], 1):
            home = work / f"hit{number}" / "home"
            shutil.copytree(clean_home, home)
            target = home / "library.db"
            # Where a page holds something: its header and cell pointers, or the cells packed at its end.
            offset = rng.choice([rng.randrange(0, 96), page_size - rng.randrange(64, 1024)])
            with open(target, "r+b") as handle:
                handle.seek((page - 1) * page_size + offset)
                handle.write(os.urandom(64))
            expected_tags = readable_user_tags(target)
            clean = scores_ok = True
            for command in COMMANDS:
                result = clipdesk(home, *command)
                lines = [line for line in result.stderr.splitlines() if line.startswith("clipdesk: error")]
                if "Traceback" in result.stderr or result.returncode not in (0, 1) or \
                        (result.returncode == 1 and len(lines) != 1):
                    clean = False
                if command[0] == "search" and result.returncode == 0:
                    scores_ok = all(-1 <= row["score"] <= 1 for row in json.loads(result.stdout or "[]"))
            repaired = clipdesk(home, "repair")
            method = next((line.split(": ", 1)[1] for line in repaired.stdout.splitlines()
                           if line.startswith("repair: ")), f"failed ({repaired.returncode})")
            tags = user_tags(target) if repaired.returncode == 0 else -1
            indexed = clipdesk(home, "index").returncode
            ok_tags = tags >= expected_tags
            totals["hits"] += 1
            totals["clean"] += clean
            totals["scores"] += scores_ok
            totals["tags"] += ok_tags
            totals["index"] += indexed == 0
            if indexed:
                print("     index after repair: " + (clipdesk(home, "index").stderr.strip().splitlines() or ["?"])[-1])
            print(f"{number:>3}  {kind:<16} {owner[:26]:<26} {'yes' if clean else 'NO':>5} "
                  f"{'yes' if scores_ok else 'NO':>6} {method[:24]:<24} {f'{tags}/{expected_tags}':>9} "
                  f"{'ok' if indexed == 0 else 'FAIL':>5}")
        hits = totals["hits"]
        print(f"clean commands {totals['clean']}/{hits}, scores in [-1, 1] {totals['scores']}/{hits}, "
              f"readable user tags kept {totals['tags']}/{hits}, index after repair {totals['index']}/{hits}")
        return 0 if all(value == hits for value in totals.values()) else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
