"""CSV/JSON export and `export copy`: contents, and never overwriting anything."""

import json
import os

import pytest

from clipdesk.cli import main as run_cli
from clipdesk.errors import ClipdeskError
from clipdesk.tagging.copy_export import copy_tagged
from clipdesk.tagging.csv_export import export_rows, read_csv
from clipdesk.tagging.tags import add_tags
from test_tagging_support import plain_photos, suggest  # noqa: F401


@pytest.fixture
def tagged(library, plain_photos):
    photos = plain_photos
    a = photos.add("a, comma.jpg", taken_at="2023-06-01T10:00:00+02:00")
    b = photos.add("b.jpg")
    photos.add("c.jpg")
    add_tags(library, [a, b], ["family"])
    add_tags(library, [a], ["Beach"])
    suggest(library, b, "dog", 0.87654321)
    suggest(library, b, "cat", 0.1)
    return photos


def test_csv_and_json_rows(library, tagged, tmp_path, capsys):
    out = tmp_path / "tags.csv"
    assert run_cli(["export", "csv", str(out)]) == 0
    rows = read_csv(str(out))
    assert [os.path.basename(row["path"]) for row in rows] == ["a, comma.jpg", "b.jpg", "c.jpg"]
    assert rows[0] == {"path": tagged.path("a, comma.jpg"), "tags": "Beach; family", "suggestions": "",
                       "taken_at": "2023-06-01T10:00:00+02:00"}
    assert (rows[1]["tags"], rows[1]["suggestions"]) == ("family", "dog=0.8765; cat=0.1000")
    assert run_cli(["export", "json", str(tmp_path / "tags.json"), "--tag", "FAMILY"]) == 0
    data = json.loads((tmp_path / "tags.json").read_text(encoding="utf-8"))
    assert [os.path.basename(row["path"]) for row in data] == ["a, comma.jpg", "b.jpg"]
    assert data[1]["suggestions"] == [{"tag": "dog", "confidence": 0.876543}, {"tag": "cat", "confidence": 0.1}]
    # an existing output file is never replaced unless asked
    out.write_text("mine")
    capsys.readouterr()
    assert run_cli(["export", "csv", str(out)]) == 1
    assert "exists; choose another file name or pass --overwrite" in capsys.readouterr().err
    assert out.read_text() == "mine"
    assert run_cli(["export", "csv", str(out), "--overwrite"]) == 0
    assert len(read_csv(str(out))) == 3
    assert [row.path for row in export_rows(library, "beach")] == [tagged.path("a, comma.jpg")]


def test_copy_never_overwrites_and_is_idempotent(library, tagged, tmp_path):
    target = tmp_path / "out"
    target.mkdir()
    (target / "b.jpg").write_bytes(b"someone else's file")
    first = copy_tagged(library, "family", str(target))
    assert (first.copied, first.already, first.failed) == (2, 0, [])
    assert (target / "b.jpg").read_bytes() == b"someone else's file"
    assert (target / "b (2).jpg").read_bytes() == open(tagged.path("b.jpg"), "rb").read()
    assert (target / "a, comma.jpg").read_bytes() == open(tagged.path("a, comma.jpg"), "rb").read()
    again = copy_tagged(library, "family", str(target))
    assert (again.copied, again.already) == (0, 2)
    links = copy_tagged(library, "family", str(target), link=True)
    assert links.copied == 2 and all(os.path.islink(path) for path in links.targets)
    assert os.readlink(target / "a, comma (2).jpg") == tagged.path("a, comma.jpg")
    assert copy_tagged(library, "family", str(target), link=True).already == 2
    assert sorted(os.listdir(target)) == ["a, comma (2).jpg", "a, comma.jpg", "b (2).jpg", "b (3).jpg", "b.jpg"]
    with pytest.raises(ClipdeskError, match="no photo has the tag 'nope'"):
        copy_tagged(library, "nope", str(target))
    (tmp_path / "file").write_text("x")
    with pytest.raises(ClipdeskError, match="not a folder"):
        copy_tagged(library, "family", str(tmp_path / "file"))


def test_copy_command_reports_missing_photos(library, tagged, tmp_path, capsys):
    os.unlink(tagged.path("b.jpg"))
    assert run_cli(["export", "copy", "--tag", "family", "--to", str(tmp_path / "new")]) == 1
    captured = capsys.readouterr()
    assert "b.jpg: the photo is not there any more" in captured.err
    assert "1 photos copied" in captured.out and os.listdir(tmp_path / "new") == ["a, comma.jpg"]
