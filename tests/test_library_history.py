"""Undo and redo of changes to tags and folders, kept in the library database (library/history.py)."""

import sqlite3

from clipdesk.library import schema
from clipdesk.library.store import Library
from clipdesk.tagging.label_sets import create_label_set
from clipdesk.tagging.suggest import run_label_set
from clipdesk.tagging.tags import add_tags, delete_tag, reject_suggestions, remove_tags, rename_tag, review
from test_library_store import version_1_database
from test_tagging_support import label_vectors, photos, plain_photos, suggest  # noqa: F401

LABELS = ["red", "green", "blue"]


def tag_state(path) -> tuple:
    """Every tag row and rejection, by name, read with a connection of its own (the oracle)."""
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute("SELECT pt.photo_id, t.name, pt.source, pt.confidence FROM photo_tags AS pt "
                            "JOIN tags AS t ON t.id = pt.tag_id ORDER BY 1, 2").fetchall()
        rejections = conn.execute("SELECT r.photo_id, t.name FROM tag_rejections AS r JOIN tags AS t "
                                  "ON t.id = r.tag_id ORDER BY 1, 2").fetchall()
        photos = conn.execute("SELECT id, path, hash, width FROM photos ORDER BY id").fetchall()
        folders = conn.execute("SELECT path FROM folders ORDER BY path").fetchall()
    finally:
        conn.close()
    return rows, rejections, photos, folders


def test_every_kind_of_change_undoes_and_redoes_in_order_across_a_restart(library, plain_photos):
    photos = plain_photos
    a, b, c = (photos.add(name) for name in ("a.jpg", "b.jpg", "c.jpg"))
    suggest(library, a, "cat", 0.9)
    suggest(library, b, "cat", 0.8)
    suggest(library, c, "dog", 0.7)
    suggest(library, b, "dog", 0.4)
    states = [tag_state(library.path)]
    steps = [
        lambda: add_tags(library, [a, c], ["beach"]),
        lambda: review(library, {"cat": [a, b], "dog": [c]}, accept=True),
        lambda: remove_tags(library, [a], ["beach"]),
        lambda: reject_suggestions(library, [b], "dog"),
        lambda: delete_tag(library, "cat"),
        lambda: library.remove_folder(photos.root),
    ]
    for step in steps:
        step()
        states.append(tag_state(library.path))
        assert states[-1] != states[-2]
    assert states[-1] == ([], [], [], [])
    assert library.next_steps() == (f"Remove folder {photos.root}", None)

    library.close()  # a restart: the history is in the database
    with Library(library.path) as reopened:
        for expected in reversed(states[:-1]):
            assert reopened.undo().undone
            assert tag_state(reopened.path) == expected
        assert reopened.undo() is None
        assert reopened.next_steps()[0] is None
        for expected in states[1:]:
            assert reopened.redo() is not None
            assert tag_state(reopened.path) == expected
        assert reopened.redo() is None


def test_undoing_a_folder_removal_brings_back_its_photos_ids_and_tags_not_vectors(library, plain_photos):
    photos = plain_photos
    a = photos.add("a.jpg", vector=[1, 0, 0])
    add_tags(library, [a], ["beach"])
    before = tag_state(library.path)
    library.remove_folder(photos.root)
    step = library.undo()
    assert step.folders == [photos.root]
    assert tag_state(library.path) == before
    assert library.embedding_models() == {}  # the photo is back to be indexed again, with its tags


def test_a_new_change_drops_what_was_undone_and_nothing_is_kept_for_no_change(library, plain_photos):
    a = plain_photos.add("a.jpg")
    add_tags(library, [a], ["x"])
    add_tags(library, [a], ["y"])
    library.undo()
    assert library.next_steps() == ("Tag 1 photo “x”", "Tag 1 photo “y”")
    add_tags(library, [a], ["x"])  # already there: no change, nothing to undo for it
    assert library.next_steps() == ("Tag 1 photo “x”", "Tag 1 photo “y”")
    add_tags(library, [a], ["z"])
    assert library.next_steps() == ("Tag 1 photo “z”", None)


def test_a_bulk_accept_never_overrides_a_manual_tag_of_the_same_label_set(library, plain_photos):
    photos = plain_photos
    spaniel, cat = photos.add("spaniel.jpg"), photos.add("cat.jpg")
    create_label_set(library, "Pets", ["cat", "dog", "bird", "car"])
    suggest(library, spaniel, "cat", 0.99)
    suggest(library, cat, "cat", 0.95)
    add_tags(library, [spaniel], ["dog"])  # by hand, after the run: its "cat" suggestion goes
    assert tag_state(library.path)[0] == [(spaniel, "dog", "user", None), (cat, "cat", "suggested", 0.95)]
    outcome = review(library, {"cat": [spaniel, cat]}, accept=True)  # the panel's list from before
    assert (outcome.changed, outcome.passed_over) == (1, 1)
    assert tag_state(library.path)[0] == [(spaniel, "dog", "user", None), (cat, "cat", "user", 0.95)]


def test_version_2_database_gains_the_history_tables(tmp_path):
    path = tmp_path / "v1.db"
    version_1_database(path)
    conn = sqlite3.connect(path, isolation_level=None)
    schema.MIGRATIONS[1](conn)
    conn.execute("PRAGMA user_version = 2")
    conn.close()
    with Library(path) as library:
        assert schema.schema_version(library.conn) == len(schema.MIGRATIONS) >= 3
        remove_tags(library, [7], ["beach"])
        assert library.next_steps()[0] == "Remove “beach” from 1 photo"
        library.undo()
        assert library.conn.execute("SELECT photo_id, tag_id, source FROM photo_tags").fetchall() == [(7, 3, "user")]


def tag_names(path) -> list[tuple]:
    """Every tag row (id, name), read with a connection of its own."""
    conn = sqlite3.connect(path)
    try:
        return conn.execute("SELECT id, name FROM tags ORDER BY id").fetchall()
    finally:
        conn.close()


def test_a_rename_undoes_to_the_old_name_and_redoes_to_the_new_one_in_one_step(library, plain_photos):
    a, b = plain_photos.add("a.jpg"), plain_photos.add("b.jpg")
    add_tags(library, [a, b], ["beach"])
    suggest(library, b, "dog", 0.6)
    names_before, state_before = tag_names(library.path), tag_state(library.path)

    rename_tag(library, "beach", "Seaside")
    renamed = tag_state(library.path)
    assert [row for row in renamed[0] if row[1] == "Seaside"] == [(a, "Seaside", "user", None),
                                                                  (b, "Seaside", "user", None)]
    assert library.next_steps() == ("Rename tag “beach” to “Seaside”", None)
    names_after = tag_names(library.path)
    assert library.undo().description == "Rename tag “beach” to “Seaside”"
    assert (tag_names(library.path), tag_state(library.path)) == (names_before, state_before)  # ids kept
    assert library.redo() is not None
    assert (tag_names(library.path), tag_state(library.path)) == (names_after, renamed)

    rename_tag(library, "seaside", "seaside")  # a change of case alone is a rename too
    assert library.undo() is not None and tag_names(library.path) == names_after


def test_a_merging_rename_undoes_to_both_tags_with_sources_confidences_and_rejections(library, plain_photos):
    a, b, c = (plain_photos.add(name) for name in ("a.jpg", "b.jpg", "c.jpg"))
    add_tags(library, [a], ["pup"])
    suggest(library, b, "pup", 0.7)
    suggest(library, c, "pup", 0.3)
    reject_suggestions(library, [c], "pup")  # remembered: not suggested again
    add_tags(library, [b], ["dog"])
    suggest(library, c, "dog", 0.55)
    before = tag_state(library.path)

    rename_tag(library, "pup", "dog")
    merged = tag_state(library.path)
    assert [row for row in merged[0] if row[1] == "pup"] == [] and merged != before
    assert library.next_steps()[0] == "Merge tag “pup” into “dog”"
    library.undo()
    assert tag_state(library.path) == before
    library.redo()
    assert tag_state(library.path) == merged


def test_a_label_set_run_is_one_step_to_undo_and_redo(library, model, photos):
    vectors = label_vectors(model, LABELS)
    ids = [photos.add(f"{label}{i}.jpg", vectors[i % 3]) for i, label in enumerate(LABELS * 2)]
    create_label_set(library, "colours", LABELS)
    add_tags(library, [ids[0]], ["green"])  # the user's tag: the run leaves it as it is
    run_label_set(library, "colours", model)
    reject_suggestions(library, [ids[1]], "green")
    first = tag_state(library.path)
    run_label_set(library, "colours", model, apply_above=0.01)  # replaces suggestions, confirms the rest
    second = tag_state(library.path)
    assert second != first
    assert library.next_steps()[0].startswith("Run label set “colours” (")
    assert library.undo() is not None
    assert tag_state(library.path) == first  # suggestions with their confidences, rejections, user tags
    assert library.redo() is not None
    assert tag_state(library.path) == second
    library.undo()
    library.undo()  # the rejection
    library.undo()  # the first run: no suggestions at all, the user's tag kept
    assert [row[1:3] for row in tag_state(library.path)[0]] == [("green", "user")]
