"""`clipdesk index`, `errors` and `folders` end to end, and `kill -9` of a real indexing process."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import benchmark_module
from test_library_index import check_consistency, make_photo, png_bomb

from clipdesk import paths
from clipdesk.cli import main
from clipdesk.library.store import Library, embedding_model_key
from clipdesk.runtime.package import load_package


def run_cli(capsys, *args):
    capsys.readouterr()
    code = main([os.fsdecode(a) if isinstance(a, bytes) else str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_index_errors_and_folders_end_to_end(tmp_path, capsys, tiny_model_package):
    photos = tmp_path / "my photos"
    for seed in range(5):
        make_photo(photos / f"p{seed}.jpg", seed)
    odd = os.fsencode(photos) + b"/\xe9t\xe9 \"quoted\".jpg"
    (photos / "empty.jpg").write_bytes(b"")
    png_bomb(photos / "bomb.png")
    make_photo(odd, 9)

    code, out, _ = run_cli(capsys, "index", photos, "--model", tiny_model_package, "--json")
    assert code == 0
    summary = json.loads(out)
    assert {key: summary[key] for key in ("indexed", "embedded", "unchanged", "moved", "removed", "failed")} == {
        "indexed": 6, "embedded": 6, "unchanged": 0, "moved": 0, "removed": 0, "failed": 2}
    assert summary["seconds"] > 0 and summary["model"] == embedding_model_key(load_package(tiny_model_package))

    code, out, _ = run_cli(capsys, "errors", "--json")
    errors = {os.path.basename(row["path"]): row for row in json.loads(out)}
    assert code == 0 and set(errors) == {"empty.jpg", "bomb.png"} and errors["bomb.png"]["kind"] == "file"
    with Library() as library:
        assert library.photo_id(odd) is not None  # the non-UTF-8 name was indexed under its exact bytes

    code, out, _ = run_cli(capsys, "errors")
    assert out.splitlines()[0].endswith(": refused as a possible decompression bomb, not decoded".split(": ")[-1])
    assert len(out.splitlines()) == 2

    os.remove(photos / "p0.jpg")
    code, out, _ = run_cli(capsys, "index", "--model", tiny_model_package)  # refresh every library folder
    assert code == 0 and len(out.splitlines()) == 1
    assert out.startswith("7 files in 1 folder: 0 indexed, 0 embedded, 7 unchanged, 0 moved, 1 removed, 0 failed")
    assert "2 problems in the library, see `clipdesk errors`" in out

    code, out, _ = run_cli(capsys, "folders", "--json")
    assert json.loads(out)[0]["path"] == str(photos) and json.loads(out)[0]["photos"] == 5  # 7 files, 2 unreadable
    code, out, _ = run_cli(capsys, "folders", "remove", photos)
    assert code == 0 and "7 photos" in out and (photos / "p1.jpg").exists()
    assert run_cli(capsys, "folders")[1].startswith("no folders in the library")


def test_bad_arguments_fail_with_one_line_and_change_nothing(tmp_path, capsys, tiny_model_package):
    make_photo(tmp_path / "photo.jpg")
    cases = [
        (("index", tmp_path / "missing", "--model", tiny_model_package), "no such folder"),
        (("index", tmp_path / "photo.jpg", "--model", tiny_model_package), "not a folder"),
        (("index", "--model", tiny_model_package), "the library has no folders yet"),
        (("index", tmp_path, "--model", tmp_path / "no-model"), "unknown model"),
        (("index", tmp_path, "--model", tiny_model_package, "--batch-size", "0"), "at least 1"),
        (("folders", "remove", tmp_path), "not a library folder"),
    ]
    for args, message in cases:
        code, out, err = run_cli(capsys, *args)
        assert code == 1 and out == "" and len(err.splitlines()) == 1 and message in err, (args, err)
    with Library() as library:
        assert library.folders() == [] and library.counts()["photos"] == 0


def test_index_command_never_imports_torch(tmp_path, tiny_model_package):
    make_photo(tmp_path / "photos" / "a.jpg")
    script = f"""
import sys
from clipdesk.cli import main
assert main(["index", {str(tmp_path / 'photos')!r}, "--model", {str(tiny_model_package)!r}]) == 0
assert main(["errors"]) == 0 and main(["folders"]) == 0
print("HEAVY", sorted(name for name in sys.modules if name.split(".")[0] in ("torch", "onnx", "onnxscript")))
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "HEAVY []" in result.stdout


def sidecar(path, *keywords) -> None:
    """An XMP sidecar as Lightroom or darktable write one: keywords in a dc:subject bag."""
    items = "".join(f"<rdf:li>{keyword}</rdf:li>" for keyword in keywords)
    path.write_text('<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
                    '<rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/">'
                    f"<dc:subject><rdf:Bag>{items}</rdf:Bag></dc:subject></rdf:Description></rdf:RDF></x:xmpmeta>")


def test_index_turns_sidecar_keywords_into_tags_once_and_not_removed_ones(tmp_path, capsys, tiny_model_package):
    photos = tmp_path / "photos"
    make_photo(photos / "a.jpg", 1)
    sidecar(photos / "a.jpg.xmp", "Beach", "Family")  # darktable / digiKam naming
    make_photo(photos / "b.jpg", 2)
    sidecar(photos / "b.xmp", "Dog", "dog")  # Lightroom naming; one keyword in two cases
    make_photo(photos / "c.jpg", 3)

    def index(*expected):
        code, out, err = run_cli(capsys, "index", photos, "--model", tiny_model_package, "--json")
        summary = json.loads(out)
        assert code == 0 and [summary[key] for key in ("indexed", "unchanged", "moved")] == list(expected), err
        with Library() as library:
            rows = library.conn.execute(
                "SELECT p.path, t.name, pt.source FROM photo_tags AS pt JOIN tags AS t ON t.id = pt.tag_id "
                "JOIN photos AS p ON p.id = pt.photo_id ORDER BY p.path, t.name").fetchall()
        assert {source for _, _, source in rows} <= {"user"}  # keywords are the user's own tags
        return [(os.path.basename(os.fsdecode(path)), name) for path, name, _ in rows]

    assert index(3, 0, 0) == [("a.jpg", "Beach"), ("a.jpg", "Family"), ("b.jpg", "Dog")]
    assert index(0, 3, 0) == [("a.jpg", "Beach"), ("a.jpg", "Family"), ("b.jpg", "Dog")]
    make_photo(photos / "a.jpg", 4)  # new bytes: read again, nothing doubled
    assert index(1, 2, 0) == [("a.jpg", "Beach"), ("a.jpg", "Family"), ("b.jpg", "Dog")]

    # Removed in clipdesk: not brought back, neither from the same sidecar nor from a changed one.
    assert run_cli(capsys, "tag", "remove", "Family", photos / "a.jpg")[0] == 0
    make_photo(photos / "a.jpg", 5)
    assert index(1, 2, 0) == [("a.jpg", "Beach"), ("b.jpg", "Dog")]
    sidecar(photos / "a.jpg.xmp", "Beach", "Family", "Sunset")
    make_photo(photos / "a.jpg", 6)
    assert index(1, 2, 0) == [("a.jpg", "Beach"), ("a.jpg", "Sunset"), ("b.jpg", "Dog")]
    assert run_cli(capsys, "tag", "add", "family", photos / "a.jpg")[0] == 0  # added again: yours again

    # A photo moved with its sidecar keeps its tags and gains the keywords found there.
    (photos / "trip").mkdir()
    os.rename(photos / "c.jpg", photos / "trip" / "c.jpg")
    sidecar(photos / "trip" / "c.jpg.xmp", "Trip")
    assert index(0, 2, 1) == [("a.jpg", "Beach"), ("a.jpg", "Family"), ("a.jpg", "Sunset"), ("b.jpg", "Dog"),
                              ("c.jpg", "Trip")]


def photo_count(library: Library) -> int:
    return library.conn.execute("SELECT count(*) FROM photos").fetchone()[0]


def test_kill_9_at_several_points_then_resume_cleanly(tmp_path, tiny_model_package):
    """Real `clipdesk index` processes killed with SIGKILL while a reader watches; then one full run."""
    photos = tmp_path / "photos"
    total = 200
    for seed in range(total):
        make_photo(photos / f"p{seed:03}.jpg", seed, size=(64, 48))
    command = [sys.executable, "-m", "clipdesk", "index", str(photos), "--model", str(tiny_model_package),
               "--batch-size", "4", "--workers", "1", "--json"]
    kills = 0
    with Library(paths.database_path()) as reader:
        # Kill points: during start-up (import, migration, scan), then after some batches were committed.
        for kind, point in (("seconds", 0.25), ("photos", 4), ("photos", 50), ("photos", 21)):
            at_start = photo_count(reader)
            process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            started = time.monotonic()
            while process.poll() is None and time.monotonic() - started < 60:
                elapsed = time.monotonic() - started
                if (elapsed if kind == "seconds" else photo_count(reader) - at_start) >= point:
                    process.send_signal(signal.SIGKILL)
                    break
                time.sleep(0.005)
            process.wait()
            kills += process.returncode == -signal.SIGKILL
            assert process.returncode in (0, -signal.SIGKILL), process.stderr.read()
            process.stderr.close()
            check_consistency(reader, embedding_model_key(load_package(tiny_model_package)))
        assert kills >= 3
        before = photo_count(reader)
        assert before < total

    final = subprocess.run(command, capture_output=True, text=True)
    assert final.returncode == 0, final.stderr
    summary = json.loads(final.stdout)
    assert summary["indexed"] + summary["unchanged"] == total and summary["failed"] == 0
    assert summary["unchanged"] == before  # every photo committed before a kill was complete, and kept
    with Library() as library:
        assert library.counts()["ok"] == total
        check_consistency(library, embedding_model_key(load_package(tiny_model_package)))


def test_a_newline_in_a_file_name_stays_on_one_line_in_plain_output(tmp_path, tiny_model_package, capsys):
    """`search` and `errors` print one line a file, as `ls` does: control characters escaped."""
    from PIL import Image

    from clipdesk.cli import main

    photos = tmp_path / "photos"
    photos.mkdir()
    Image.new("RGB", (40, 30), (200, 30, 30)).save(photos / "red\nphoto.jpg")
    (photos / "broken\tfile.jpg").write_bytes(b"not a jpeg")
    assert main(["index", str(photos), "--model", str(tiny_model_package)]) == 0
    capsys.readouterr()
    assert main(["search", "red", "--model", str(tiny_model_package)]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and out[0].endswith("red\\nphoto.jpg")
    assert main(["errors"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and "broken\\tfile.jpg: " in out[0]


def test_a_full_disk_stops_indexing_in_one_line_keeps_the_work_and_the_next_run_completes(
        tmp_path, tiny_model_package, monkeypatch, capsys):
    """SQLite's 'database or disk is full', made by capping the database's pages (as a full disk would stop
    it), in the middle of a run: exit 1 with one line, photos committed so far kept, an intact database, and
    the next run with room completes."""
    import numpy as np
    from PIL import Image

    from clipdesk.cli import main
    from clipdesk.library import store

    photos = tmp_path / "photos"
    photos.mkdir()
    for seed in range(120):
        pixels = np.random.default_rng(seed).integers(0, 256, (48, 64, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(photos / f"p{seed:03}.jpg")
    real_connect = store.Library._connect

    def capped(self):
        conn = real_connect(self)
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        conn.execute(f"PRAGMA max_page_count = {pages + 6}")
        return conn

    monkeypatch.setattr(store.Library, "_connect", capped)
    capsys.readouterr()
    assert main(["index", str(photos), "--model", str(tiny_model_package), "--batch-size", "8"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is full" in err[0] and "are kept" in err[0] and "MB more is needed" in err[0]
    monkeypatch.setattr(store.Library, "_connect", real_connect)
    with store.Library() as library:
        kept = library.counts()["ok"]
        assert 0 < kept < 120
        assert library.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert main(["index", "--model", str(tiny_model_package)]) == 0
    with store.Library() as library:
        assert library.counts()["ok"] == 120


def _damage(database, name: str) -> None:
    """Overwrite 64 bytes at the head of the first leaf page of a table or index, as a bad sector would."""
    import sqlite3

    conn = sqlite3.connect(database)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    page = conn.execute("SELECT min(pageno) FROM dbstat WHERE name = ? AND pagetype = 'leaf'", (name,)).fetchone()[0]
    conn.close()
    with open(database, "r+b") as handle:
        handle.seek((page - 1) * page_size + 8)
        handle.write(os.urandom(64))


@pytest.mark.parametrize("target", ["sqlite_autoindex_photos_1", "photos"])
def test_a_damaged_library_is_said_on_every_command_and_repair_keeps_the_tags_still_readable(
        tmp_path, tiny_model_package, capsys, target):
    """64 random bytes in the unique index on photos.path (REINDEX repairs it), or in a page of the photos
    table itself (rows are copied into a fresh database): every command warns, `repair` backs up, repairs and
    reports, every user tag still readable in the damaged file survives, and the next index completes."""
    from PIL import Image

    from clipdesk import paths
    from clipdesk.cli import main
    from clipdesk.library import store

    photos = tmp_path / "photos"
    photos.mkdir()
    for seed in range(40):
        Image.new("RGB", (40, 30), (seed * 6, 255 - seed * 6, 90)).save(photos / f"p{seed:02}.png")
    model = str(tiny_model_package)
    assert main(["index", str(photos), "--model", model]) == 0
    assert main(["tag", "add", "family", *[str(photos / f"p{seed:02}.png") for seed in (3, 17, 30, 38)]]) == 0
    database = paths.database_path()
    _damage(database, target)
    store._checked.clear()  # each command is a process of its own: each one checks
    capsys.readouterr()
    for command in (["info"], ["search", "red", "--model", model], ["errors"], ["tag", "list"]):
        store._checked.clear()
        main(command)  # may work, or fail in one line where the damage lies in its way
        err = capsys.readouterr().err.strip().splitlines()
        assert err and err[0].startswith("clipdesk: warning: the library database") and "repair" in err[0]
        assert len(err) <= 2 and "Traceback" not in "\n".join(err)
    assert main(["repair", "--check"]) == 1
    assert main(["repair"]) == 0
    out = capsys.readouterr().out
    assert "backup of the damaged file" in out and "user tags on photos kept:" in out
    backups = list(database.parent.glob("library.db.damaged-*"))
    assert len([b for b in backups if not b.name.endswith(("-wal", "-shm"))]) == 1
    with benchmark_module("damaged_library") as drill:  # the oracle: SQLite alone, row by row
        expected = drill.readable_user_tags(next(b for b in backups if not b.name.endswith(("-wal", "-shm"))))
    with store.Library() as library:
        assert library.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        tagged = library.conn.execute("SELECT count(*) FROM photo_tags WHERE source = 'user'").fetchone()[0]
    assert tagged == expected
    assert main(["repair", "--check"]) == 0
    assert main(["index", "--model", model]) == 0
    with store.Library() as library:
        assert library.counts()["ok"] == 40
    if target.startswith("sqlite_autoindex"):
        assert tagged == 4 and "lost: nothing" in out  # damage to an index loses nothing
