"""`clipdesk data from-library`: a training manifest from library photos and their confirmed tags."""

import json
import os

import pytest
from test_library_index import make_photo

from clipdesk.cli import main
from clipdesk.library.store import Library
from clipdesk.tagging.tags import add_tags, tag_id
from clipdesk.tagging.training_manifest import captions_for


def run_cli(capsys, *args):
    capsys.readouterr()
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_captions_for_phrases_each_tag_and_their_combination():
    assert captions_for(["dog"]) == ["a photo of a dog", "dog"]
    assert captions_for(["dog", "apple"]) == ["a photo of a dog", "dog", "a photo of an apple", "apple",
                                               "a photo of a dog and an apple", "dog, apple"]
    assert captions_for(["a", "b", "c"])[-2] == "a photo of an a, a b and a c"
    assert captions_for([]) == []


@pytest.fixture
def tagged_library(tmp_path, capsys, tiny_model_package):
    photos = tmp_path / "photos"
    for seed in range(5):
        make_photo(photos / f"p{seed}.png", seed, image_format="PNG")
    (photos / "broken.png").write_bytes(b"")
    code, _, _ = run_cli(capsys, "index", photos, "--model", tiny_model_package)
    assert code == 0
    with Library() as library:
        ids = {name: library.photo_id(photos / name) for name in
               ("p0.png", "p1.png", "p2.png", "p3.png", "p4.png", "broken.png")}
        add_tags(library, [ids["p0.png"], ids["p1.png"], ids["p4.png"], ids["broken.png"]], ["dog"])
        add_tags(library, [ids["p1.png"]], ["Beach"])
        add_tags(library, [ids["p2.png"]], ["cat"])
        suggest = "INSERT INTO photo_tags (photo_id, tag_id, source, confidence) VALUES (?, ?, 'suggested', 0.9)"
        with library.transaction() as conn:  # a label set's suggestions: never training data
            conn.execute(suggest, (ids["p3.png"], tag_id(conn, "dog")))
            conn.execute(suggest, (ids["p0.png"], tag_id(conn, "beach")))
    os.remove(photos / "p4.png")  # tagged, then gone
    return photos


def test_from_library_writes_a_manifest_train_reads(tmp_path, capsys, tagged_library):
    from clipdesk.train.data import read_manifest

    out = tmp_path / "train" / "manifest.jsonl"
    code, stdout, _ = run_cli(capsys, "data", "from-library", "--tag", "dog", "--tag", "beach", out)
    assert code == 0 and len(stdout.splitlines()) == 1
    assert stdout.startswith("wrote 2 rows for 2 tags to ") and "2 skipped (1 file missing, 1 unreadable)" in stdout
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    by_name = {os.path.basename(row["image"]): row for row in rows}
    assert set(by_name) == {"p0.png", "p1.png"}  # p3 only suggested, p2 not asked for, p4 gone, broken unreadable
    assert by_name["p0.png"]["captions"] == ["a photo of a dog", "dog"]  # its suggested "beach" is ignored
    assert by_name["p0.png"]["label"] == "dog"
    assert by_name["p1.png"]["captions"] == ["a photo of a dog", "dog", "a photo of a Beach", "Beach",
                                             "a photo of a dog and a Beach", "dog, Beach"]
    assert "label" not in by_name["p1.png"]
    assert all(os.path.isabs(row["image"]) for row in rows)  # the photos lie outside the manifest's folder
    assert not [name for name in os.listdir(out.parent) if name != "manifest.jsonl"]  # no temporary left

    source = read_manifest(out)
    assert source.problems.total == 0 and len(source.samples) == 2
    assert {os.path.basename(sample.image) for sample in source.samples} == {"p0.png", "p1.png"}

    code, stdout, _ = run_cli(capsys, "data", "from-library", "--json", out)  # every confirmed tag
    summary = json.loads(stdout)
    assert code == 0 and summary["rows"] == 3 and summary["tags"] == {"Beach": 1, "cat": 1, "dog": 2}
    assert summary["skipped"] == {"missing": 1, "error": 1} and summary["out"] == str(out)


def test_manifest_beside_the_photos_uses_relative_paths(tagged_library, capsys):
    from clipdesk.train.data import read_manifest

    out = tagged_library / "cats.jsonl"
    assert run_cli(capsys, "data", "from-library", "--tag", "CAT", out)[0] == 0
    assert [json.loads(line)["image"] for line in out.read_text().splitlines()] == ["p2.png"]
    assert len(read_manifest(out).samples) == 1


def test_unknown_tag_fails_in_one_line_and_writes_nothing(tmp_path, capsys, tagged_library):
    out = tmp_path / "out.jsonl"
    code, stdout, stderr = run_cli(capsys, "data", "from-library", "--tag", "dog", "--tag", "unicorn", out)
    assert code == 1 and stdout == "" and len(stderr.splitlines()) == 1
    assert "unicorn" in stderr and stderr.startswith("clipdesk: error:")
    assert not out.exists()
