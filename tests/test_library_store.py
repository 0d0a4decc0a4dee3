"""The library database: migrations, paths that are not UTF-8, folders, the embedding matrix and its change feed."""

import os
import sqlite3
import threading

import numpy as np
import pytest

from clipdesk import paths
from clipdesk.errors import ClipdeskError
from clipdesk.library import schema
from clipdesk.library.pathnames import json_text
from clipdesk.library.records import OK, PhotoMetadata
from clipdesk.library.store import Library, vector_to_blob

TABLES = {"folders", "photos", "embeddings", "embedding_changes", "tags", "photo_tags", "label_sets", "scan_errors",
          "tag_rejections"}


def add_photo(library, folder, name: bytes, vector=None, model="m") -> int:
    with library.transaction():
        photo_id = library.save_photo(folder.id, os.fsencode(folder.path) + b"/" + name, 10, 1, name.hex(),
                                      PhotoMetadata(width=4, height=3), OK)
        if vector is not None:
            library.set_embedding(photo_id, model, vector_to_blob(vector))
    return photo_id


def unit(*values):
    vector = np.asarray(values, np.float32)
    return vector / np.linalg.norm(vector)


def test_new_database_is_migrated_in_wal_mode_and_reopening_changes_nothing(tmp_path):
    with Library() as library:
        assert library.path == paths.database_path()
        assert TABLES <= set(library.db.table_names())
        assert schema.schema_version(library.conn) == len(schema.MIGRATIONS)
        assert library.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert library.conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        before = library.conn.execute("SELECT sql FROM sqlite_master ORDER BY name").fetchall()
    with Library() as library:
        assert library.conn.execute("SELECT sql FROM sqlite_master ORDER BY name").fetchall() == before
    empty = tmp_path / "empty.db"
    empty.write_bytes(b"")  # a zero-byte file is an empty database to SQLite
    with Library(empty) as library:
        assert TABLES <= set(library.db.table_names())


def test_a_new_migration_runs_once_and_a_failing_one_rolls_back(tmp_path, monkeypatch):
    Library(tmp_path / "lib.db").close()
    calls = []

    def add_albums(conn):
        calls.append(1)
        conn.execute("CREATE TABLE albums (id INTEGER PRIMARY KEY, name TEXT)")

    monkeypatch.setattr(schema, "MIGRATIONS", [*schema.MIGRATIONS, add_albums])
    for _ in range(2):
        with Library(tmp_path / "lib.db") as library:
            assert "albums" in library.db.table_names()
            assert schema.schema_version(library.conn) == len(schema.MIGRATIONS)
    assert calls == [1]

    def broken(conn):
        conn.execute("CREATE TABLE half_done (id INTEGER)")
        raise RuntimeError("migration bug")

    monkeypatch.setattr(schema, "MIGRATIONS", [*schema.MIGRATIONS, broken])
    with pytest.raises(RuntimeError):
        Library(tmp_path / "lib.db")
    conn = sqlite3.connect(tmp_path / "lib.db")
    assert schema.schema_version(conn) == len(schema.MIGRATIONS) - 1
    assert not conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'half_done'").fetchall()
    conn.close()


def version_1_database(path, stopgap_rejections: bool = False) -> None:
    """A database as clipdesk's first schema left it, with a photo, a tag on it and an embedding; with
    the tag_rejections table tagging used to create on first use, holding one rejection, if asked."""
    conn = sqlite3.connect(path, isolation_level=None)
    schema.MIGRATIONS[0](conn)
    conn.execute("PRAGMA user_version = 1")
    conn.execute("INSERT INTO folders (id, path, added_at) VALUES (1, ?, 0)", (b"/photos",))
    conn.execute("INSERT INTO photos (id, folder_id, path, status, indexed_at) VALUES (7, 1, ?, 'ok', 0)",
                 (b"/photos/a.jpg",))
    conn.execute("INSERT INTO tags (id, name) VALUES (3, 'beach'), (4, 'work')")
    conn.execute("INSERT INTO photo_tags (photo_id, tag_id, source) VALUES (7, 3, 'user')")
    conn.execute("INSERT INTO embeddings (photo_id, model, vector) VALUES (7, 'm', ?)", (vector_to_blob(unit(1, 0)),))
    if stopgap_rejections:
        conn.execute("""CREATE TABLE tag_rejections (photo_id INTEGER NOT NULL REFERENCES photos(id) ON DELETE CASCADE,
            tag_id INTEGER NOT NULL REFERENCES tags(id) ON DELETE CASCADE, PRIMARY KEY (photo_id, tag_id))""")
        conn.execute("INSERT INTO tag_rejections VALUES (7, 4)")
    conn.close()


@pytest.mark.parametrize("stopgap", [False, True], ids=["plain", "with-stopgap-table"])
def test_version_1_database_gains_tag_rejections_and_keeps_its_data(tmp_path, stopgap):
    path = tmp_path / "v1.db"
    version_1_database(path, stopgap)
    with Library(path) as library:
        conn = library.conn
        assert schema.schema_version(conn) == len(schema.MIGRATIONS) >= 2
        assert conn.execute("SELECT path FROM photos").fetchall() == [(b"/photos/a.jpg",)]
        assert conn.execute("SELECT photo_id, tag_id, source FROM photo_tags").fetchall() == [(7, 3, "user")]
        assert library.embedding_matrix("m")[0].tolist() == [7]
        assert conn.execute("SELECT * FROM tag_rejections").fetchall() == ([(7, 4)] if stopgap else [])
        schema_sql = conn.execute("SELECT sql FROM sqlite_master ORDER BY name").fetchall()
        with library.transaction():  # idempotent: the migration again changes nothing
            schema.MIGRATIONS[1](conn)
        assert conn.execute("SELECT sql FROM sqlite_master ORDER BY name").fetchall() == schema_sql
        with library.transaction():
            conn.execute("INSERT OR IGNORE INTO tag_rejections VALUES (7, 4)")
            conn.execute("DELETE FROM tags WHERE id = 4")  # the foreign keys cascade
        assert conn.execute("SELECT count(*) FROM tag_rejections").fetchone()[0] == 0
    with Library(path) as library:  # opening again migrates nothing
        assert library.conn.execute("SELECT sql FROM sqlite_master ORDER BY name").fetchall() == schema_sql


def test_a_newer_or_foreign_database_is_refused_with_one_line(tmp_path):
    newer = tmp_path / "newer.db"
    conn = sqlite3.connect(newer)
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    with pytest.raises(ClipdeskError, match="newer than this clipdesk"):
        Library(newer)
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not a database at all" * 200)
    with pytest.raises(ClipdeskError, match="cannot open the library database") as error:
        Library(junk)
    assert "\n" not in str(error.value)
    assert junk.read_bytes() == b"this is not a database at all" * 200


def test_paths_that_are_not_utf8_round_trip(tmp_path):
    folder_path = tmp_path / os.fsdecode(b"caf\xe9 photos")
    folder_path.mkdir()
    with Library() as library:
        folder = library.add_folder(folder_path)
        assert os.fsencode(folder.path) == os.fsencode(folder_path)
        photo_id = add_photo(library, folder, b"\xff\xfe odd.jpg")
        [path] = library.photo_paths([photo_id])
        assert os.fsencode(path) == os.fsencode(folder_path) + b"/\xff\xfe odd.jpg"
        assert library.photo(photo_id).path == path and library.photo_id(path) == photo_id
        assert library.photo_paths([photo_id + 1000, photo_id]) == [None, path]
        text = json_text({"path": path})
        text.encode("utf-8")  # printable as UTF-8 ...
        assert os.fsencode(__import__("json").loads(text)["path"]) == os.fsencode(path)  # ... and exact


def test_nested_folders_merge_into_the_outer_one(tmp_path):
    (tmp_path / "outer" / "inner").mkdir(parents=True)
    with Library() as library:
        inner = library.add_folder(tmp_path / "outer" / "inner")
        photo_id = add_photo(library, inner, b"a.jpg")
        outer = library.add_folder(tmp_path / "outer")
        assert [folder.path for folder in library.folders()] == [str(tmp_path / "outer")]
        assert library.photo(photo_id).folder_id == outer.id
        assert library.add_folder(tmp_path / "outer" / "inner") == outer
        assert library.folder_containing(tmp_path / "outer" / "inner" / "x.jpg") == outer
        assert library.folder_containing(tmp_path / "outer-not") is None
        with pytest.raises(ClipdeskError, match="not a folder"):
            library.add_folder(tmp_path / "missing")
        with pytest.raises(ClipdeskError, match="not a library folder"):
            library.remove_folder(tmp_path / "outer" / "inner")
        assert library.remove_folder(tmp_path / "outer") == 1
        assert library.photo(photo_id) is None and library.counts()["photos"] == 0


def test_embedding_matrix_and_change_feed_follow_every_write(tmp_path):
    with Library() as library:
        folder = library.add_folder(tmp_path)
        a = add_photo(library, folder, b"a.jpg", unit(1, 0, 0, 0))
        b = add_photo(library, folder, b"b.jpg", unit(0, 1, 0, 0))
        add_photo(library, folder, b"c.jpg", unit(0, 0, 1, 0), model="other")
        marker = library.change_marker()
        ids, vectors = library.embedding_matrix("m")
        assert ids.dtype == np.int64 and vectors.dtype == np.float16 and vectors.shape == (2, 4)
        assert ids.tolist() == [a, b] and vectors[0].tolist() == [1, 0, 0, 0]
        assert library.embedding_matrix("unknown")[0].size == 0

        c = add_photo(library, folder, b"d.jpg", unit(1, 1, 0, 0))
        with library.transaction():
            library.set_embedding(a, "m", vector_to_blob(unit(0, 0, 0, 1)))  # overwritten
            library.delete_photos([b])  # cascades to its embedding
        changes = library.embedding_changes("m", marker)
        assert changes.photo_ids.tolist() == [a, c]
        assert changes.vectors[0].tolist() == [0, 0, 0, 1]
        assert changes.removed_ids.tolist() == [b]
        assert library.embedding_changes("m", changes.marker).photo_ids.size == 0

        old_marker = marker
        assert library.compact_change_log() > 0  # "a" was logged twice
        again = library.embedding_changes("m", old_marker)
        assert again.photo_ids.tolist() == [a, c] and again.removed_ids.tolist() == [b]
        library.remove_folder(tmp_path)
        assert sorted(library.embedding_changes("m", again.marker).removed_ids.tolist()) == [a, c]


def test_a_library_serves_several_threads(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    with Library() as library:
        folder = library.add_folder(tmp_path)
        ids = [add_photo(library, folder, f"{i}.jpg".encode(), unit(i + 1, 1)) for i in range(8)]

        def read(photo_id):
            return library.photo(photo_id).path, library.embedding_matrix("m")[0].size

        with ThreadPoolExecutor(4) as pool:
            results = list(pool.map(read, ids * 4))
        assert all(size == 8 for _, size in results)
        assert len(library._connections) > 1  # each thread had its own connection
        later = threading.Thread(target=read, args=(ids[0],))
        later.start()
        later.join()
        assert len(library._connections) == 2  # the finished pool's connections were closed: main + later


def test_photo_listing_needs_no_model_and_lists_folders_and_confirmed_tags(tmp_path):
    (tmp_path / "trip").mkdir()
    with Library() as library:
        folder = library.add_folder(tmp_path)
        ids = {}
        for name, taken_at in ((b"old.jpg", "2019-05-01T10:00:00"), (b"new.jpg", "2024-01-02T09:00:00"),
                               (b"undated.jpg", None), (b"trip/beach.jpg", "2021-07-07T12:00:00")):
            with library.transaction():
                ids[name] = library.save_photo(folder.id, os.fsencode(tmp_path) + b"/" + name, 10, 1, name.hex(),
                                               PhotoMetadata(taken_at=taken_at), OK)
        with library.transaction():
            broken = library.save_photo(folder.id, os.fsencode(tmp_path) + b"/broken.jpg", 1, 1, None, None, "error",
                                        "cannot decode")
            beach = library.conn.execute("INSERT INTO tags (name) VALUES ('Beach')").lastrowid
            library.conn.executemany("INSERT INTO photo_tags (photo_id, tag_id, source) VALUES (?, ?, ?)",
                                     [(ids[b"trip/beach.jpg"], beach, "user"), (ids[b"new.jpg"], beach, "suggested")])

        listed, listed_paths = library.photo_listing()
        assert listed.dtype == np.int64 and broken not in listed.tolist()
        assert listed.tolist() == [ids[b"new.jpg"], ids[b"trip/beach.jpg"], ids[b"old.jpg"], ids[b"undated.jpg"]]
        assert listed_paths[0] == os.path.join(str(tmp_path), "new.jpg")
        oldest = library.photo_listing(order="oldest")[0].tolist()
        assert oldest == [ids[b"old.jpg"], ids[b"trip/beach.jpg"], ids[b"new.jpg"], ids[b"undated.jpg"]]
        assert len(library.photo_listing(order="path")[0]) == 4
        assert library.photo_listing(folder=tmp_path / "trip")[0].tolist() == [ids[b"trip/beach.jpg"]]
        assert library.photo_listing(folder=str(tmp_path) + "/")[0].size == 4
        # confirmed tags only, any case; a suggestion is not a tag yet
        assert library.photo_listing(tag="beach")[0].tolist() == [ids[b"trip/beach.jpg"]]
        assert library.photo_listing(folder=tmp_path / "trip", tag="BEACH")[0].tolist() == [ids[b"trip/beach.jpg"]]
        assert library.photo_listing(tag="nope")[0].size == 0
        assert library.photo_listing(tag="x' OR 1=1 --")[0].size == 0  # parameters, not SQL
        assert library.photo_listing(folder=tmp_path / "elsewhere")[0].size == 0
        with pytest.raises(ClipdeskError, match="unknown photo order 'random'"):
            library.photo_listing(order="random")


def test_content_hashes_are_read_in_batches(tmp_path):
    with Library() as library:
        folder = library.add_folder(tmp_path)
        ids = [add_photo(library, folder, f"p{i}.jpg".encode()) for i in range(1200)]  # more than one chunk
        with library.transaction():
            unread = library.save_photo(folder.id, os.fsencode(tmp_path) + b"/unread.jpg", 1, 1, None, None, "error",
                                        "cannot read")
        hashes = library.content_hashes([*ids, ids[0], unread, 10**9])
        assert len(hashes) == 1200 and unread not in hashes and 10**9 not in hashes
        assert hashes[ids[5]] == b"p5.jpg".hex() == library.photo(ids[5]).hash
        assert library.content_hashes([]) == {}


def test_database_path_follows_the_library_setting_under_any_home(tmp_path, clipdesk_home):
    from clipdesk.settings import update_settings

    assert paths.database_path() == clipdesk_home / "library.db"
    chosen = tmp_path / "elsewhere" / "photos.db"
    update_settings(library_path=str(chosen))
    assert paths.database_path() == chosen
    with Library() as library:  # what the CLI and the GUI open without a path
        assert library.path == chosen and chosen.exists()
    update_settings(library_path="~/x.db")
    assert paths.database_path() == paths.Path("~/x.db").expanduser()
    for unset in (None, "", 3):
        update_settings(library_path=unset)
        assert paths.database_path() == clipdesk_home / "library.db"
