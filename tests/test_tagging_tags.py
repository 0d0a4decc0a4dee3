"""The user's tags: API the GUI calls and `clipdesk tag`, case rules, suggestions, accept/reject."""

import json
import os
import subprocess
import sys

import pytest

from clipdesk.cli import main as run_cli
from clipdesk.errors import ClipdeskError
from clipdesk.tagging.tags import (accept_suggestions, add_tags, delete_tag, photo_ids_for_paths, photos_with_tag,
                                   reject_suggestions, remove_tags, rename_tag, suggestions, tag_counts, tags_of_photos)
from test_tagging_support import plain_photos, suggest  # noqa: F401


def test_add_remove_and_counts_ignore_case(library, plain_photos):
    photos = plain_photos
    a, b, c = (photos.add(name) for name in ("a.jpg", "b.jpg", "c.jpg"))
    assert add_tags(library, [a, b], ["Beach", " family "]) == 4
    assert add_tags(library, [b, c], ["beach"]) == 1  # "beach" is "Beach"
    assert [(t.name, t.photos, t.suggested) for t in tag_counts(library)] == [("Beach", 3, 0), ("family", 2, 0)]
    assert photos_with_tag(library, "BEACH") == [a, b, c]
    assert remove_tags(library, [a], ["beach"]) == 1
    assert photos_with_tag(library, "beach") == [b, c]
    with pytest.raises(ClipdeskError, match="no tag 'nope'"):
        remove_tags(library, [a], ["nope"])
    with pytest.raises(ClipdeskError, match="no photo with id 999"):
        add_tags(library, [999], ["x"])


def test_suggestions_group_by_label_and_accept_or_reject(library, plain_photos):
    photos = plain_photos
    a, b, c = (photos.add(name) for name in ("a.jpg", "b.jpg", "c.jpg"))
    suggest(library, a, "dog", 0.9)
    suggest(library, b, "dog", 0.6)
    suggest(library, c, "cat", 0.7)
    grouped = suggestions(library)
    assert {tag: [(s.photo_id, s.confidence) for s in items] for tag, items in grouped.items()} == \
        {"cat": [(c, 0.7)], "dog": [(a, 0.9), (b, 0.6)]}
    assert list(suggestions(library, ["Dog"])) == ["dog"]
    assert list(suggestions(library, min_confidence=0.8)) == ["dog"]
    assert accept_suggestions(library, [a, c], "dog") == 1  # c has no dog suggestion
    assert reject_suggestions(library, [b], "dog") == 1
    tags = tags_of_photos(library, [a, b, c])
    assert [(t.name, t.source, t.confidence) for t in tags[a]] == [("dog", "user", 0.9)]
    assert tags[b] == [] and [(t.name, t.source) for t in tags[c]] == [("cat", "suggested")]
    assert [(t.name, t.photos, t.suggested) for t in tag_counts(library)] == [("cat", 0, 1), ("dog", 1, 0)]
    # adding a tag by hand confirms a suggestion of it
    assert add_tags(library, [c], ["CAT"]) == 1
    assert [(t.name, t.source) for t in tags_of_photos(library, [c])[c]] == [("cat", "user")]


def test_rename_merges_and_delete_removes(library, plain_photos):
    photos = plain_photos
    a, b = photos.add("a.jpg"), photos.add("b.jpg")
    add_tags(library, [a], ["puppy"])
    add_tags(library, [b], ["dog"])
    suggest(library, a, "dog", 0.5)
    rename_tag(library, "puppy", "Dog")  # into an existing tag: merged, the user row wins
    assert [(t.name, t.source) for t in tags_of_photos(library, [a])[a]] == [("dog", "user")]
    assert [(t.name, t.photos) for t in tag_counts(library)] == [("dog", 2)]
    rename_tag(library, "dog", "Hound")
    assert [t.name for t in tag_counts(library)] == ["Hound"]
    assert delete_tag(library, "hound") == 2 and tag_counts(library) == []


def test_paths_and_folders_become_photo_ids(library, plain_photos, tmp_path):
    photos = plain_photos
    a = photos.add("a.jpg")
    b = photos.add("sub/b.jpg")
    assert photo_ids_for_paths(library, [photos.path("sub")]) == [b]
    assert sorted(photo_ids_for_paths(library, [photos.root, photos.path("a.jpg")])) == [a, b]
    stray = tmp_path / "stray.jpg"
    stray.write_bytes(b"x")
    with pytest.raises(ClipdeskError, match="not in the library: .*stray.jpg; index their folder first"):
        photo_ids_for_paths(library, [str(stray)])


def test_tag_commands(library, plain_photos, capsys):
    photos = plain_photos
    photos.add("a.jpg")
    photos.add("b.jpg")
    assert run_cli(["tag", "add", "Summer 2024", photos.root]) == 0
    assert run_cli(["tag", "add", "best", photos.path("a.jpg")]) == 0
    assert run_cli(["tag", "remove", "summer 2024", photos.path("b.jpg")]) == 0
    capsys.readouterr()
    assert run_cli(["tag", "list", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == [{"name": "best", "photos": 1, "suggested": 0},
                                                   {"name": "Summer 2024", "photos": 1, "suggested": 0}]
    assert run_cli(["tag", "list", photos.path("a.jpg"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["tags"] == ["best", "Summer 2024"]
    assert run_cli(["tag", "add", "bad|name", photos.path("a.jpg")]) == 1
    assert "'|' is not allowed" in capsys.readouterr().err


def test_tagging_never_imports_torch(tmp_path):
    """Every tagging module and command in a fresh interpreter: no torch, onnx or Qt pulled in."""
    import clipdesk.tagging

    modules = sorted(f"clipdesk.tagging.{name[:-3]}" for name in os.listdir(os.path.dirname(clipdesk.tagging.__file__))
                     if name.endswith(".py") and name != "__init__.py")
    modules += [f"clipdesk.commands.{name}" for name in ("classify", "labels", "tag", "export")]
    script = f"""
import importlib, sys
for module in {modules!r}:
    importlib.import_module(module)
print(sorted(n for n in sys.modules if n.split(".")[0] in ("torch", "onnx", "onnxscript", "PySide6")))
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
