"""End to end: synthetic packages in a fake cache (no network) → images, manifests, label files, attribution."""

import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from clipdesk.data.build_dataset import build, main
from clipdesk.data.names import word_set
from clipdesk.data.sources import MARKER, PACKAGES

pytest.importorskip("resvg_py")

SQUARE = '<path fill="#e33" d="M2 2h12v12H2z"/>'
CIRCLE = '<circle cx="8" cy="8" r="6" fill="#fa0"/>'
ARROW = '<path fill="currentColor" d="M1 8l6-6v4h8v4H7v4z"/>'  # points left: asymmetric on purpose


def _set_info(name, spdx, category="", palette=False):
    return {"name": name, "total": 1, "author": {"name": f"{name} authors", "url": f"https://example.org/{name}"},
            "license": {"title": spdx, "spdx": spdx, "url": f"https://example.org/licence/{spdx}"},
            "category": category, "palette": palette}


ICON_SETS = {
    "emo": (_set_info("Emo Emoji", "MIT", "Emoji", True), {
        "icons": {"cat-face": {"body": CIRCLE}, "pizza": {"body": SQUARE.replace("#e33", "#c60")},
                  "waving-hand": {"body": SQUARE.replace("#e33", "#fc6")},
                  "waving-hand-dark-skin-tone": {"body": SQUARE.replace("#e33", "#630")},
                  "loaf": {"body": SQUARE.replace("#e33", "#b85")},         # bread, joined by its code only
                  "love": {"body": CIRCLE.replace("#fa0", "#d00")},        # red heart: code 2764, no FE0F
                  "baguette-bread": {"body": SQUARE.replace("#e33", "#db7")},
                  "3d-printer": {"body": SQUARE.replace("#e33", "#333")}},  # an OpenMoji-style extra
        "aliases": {"a-pizza-kitty": {"parent": "cat-face"}, "kitty": {"parent": "cat-face"}},
        "chars": {"1f35e": "loaf", "2764": "love", "e000": "3d-printer"}}),
    "emo-sa": (_set_info("Share Emoji", "CC-BY-SA-4.0", "Emoji", True), {
        "icons": {"cat-face": {"body": CIRCLE.replace("#fa0", "#fb1")}}}),
    "mdi": (_set_info("Material Design Icons", "Apache-2.0", "Material"), {
        "icons": {"cat": {"body": ARROW.replace("M1", "M2")}, "food": {"body": SQUARE.replace("#e33", "currentColor")},
                  "arrow-left": {"body": ARROW}, "pizza-outline": {"body": CIRCLE.replace("#fa0", "currentColor")},
                  "thumb-down-outline": {"body": ARROW.replace("v4h8", "v5h8")},
                  "fire-station": {"body": ARROW.replace("v4h8", "v3h8")},
                  "copy-of-cat-face": {"body": CIRCLE},                      # the same drawing as emo:cat-face
                  "add": {"body": '<path d="M7 2h2v12H7z"/>'}, "plus": {"body": '<path d="M7 2h2v12H7z"/>'}},
        "aliases": {"arrow-right": {"parent": "arrow-left", "hFlip": True}, "kitty": {"parent": "cat"}},
        "categories": {"Animal": ["cat"]}}),
    "brands": (_set_info("Brand Logos", "CC0-1.0", "Logos"), {"icons": {"pizza": {"body": ARROW.replace("v4", "v6")}}}),
    "gpl": (_set_info("Copyleft Icons", "GPL-3.0"), {"icons": {"house": {"body": SQUARE}}}),
    "nc": (_set_info("Hobby Icons", "CC-BY-NC-4.0"), {"icons": {"house": {"body": CIRCLE}}}),
}

EMOJIBASE_EN = [
    {"label": "regional indicator A", "hexcode": "1F1E6"},
    {"label": "light skin tone", "hexcode": "1F3FB", "group": 2},
    {"label": "cat face", "hexcode": "1F431", "group": 3, "tags": ["cat", "face", "kitten"]},
    {"label": "pizza", "hexcode": "1F355", "group": 4, "tags": ["cheese", "slice"]},
    {"label": "bread", "hexcode": "1F35E", "group": 4, "tags": ["loaf"]},
    {"label": "baguette bread", "hexcode": "1F956", "group": 4, "tags": ["baguette", "bread", "french"]},
    {"label": "red heart", "hexcode": "2764-FE0F", "group": 0, "tags": ["heart"]},
    {"label": "thumbs down", "hexcode": "1F44E", "group": 1, "tags": ["down", "thumb"]},
    {"label": "waving hand", "hexcode": "1F44B", "group": 1, "tags": ["hello", "wave"],
     "skins": [{"label": "waving hand: dark skin tone", "hexcode": "1F44B-1F3FF", "tone": 5}]},
]
EMOJIBASE_DE = {"1F431": ("Katzengesicht", ["Katze"]), "1F355": ("Pizza", ["Käse"]), "1F35E": ("Brot", ["Laib"]),
                "1F956": ("Baguette", ["Brot", "französisch"]), "2764-FE0F": ("rotes Herz", ["Herz"]),
                "1F44E": ("Daumen runter", ["Daumen"]), "1F44B": ("winkende Hand", ["Hallo"])}
HELDOUT = "# hexcode\tlabel\n1F355\tpizza\n1F35E\tbread\n1F44E\tthumbs down\n2764-FE0F\tred heart\n"
HELDOUT_IDS = {"emoji:1F355", "emoji:1F35E", "emoji:1F44E", "emoji:2764-FE0F"}


def _write(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")


def make_fake_cache(cache: Path) -> None:
    """Every pinned package, as `fetch` leaves it after extracting (so nothing is fetched)."""
    roots = {}
    for key, package in PACKAGES.items():
        folder = cache / "packages" / package.stem
        roots[key] = folder / "package"
        _write(roots[key] / "package.json", {"name": package.name, "version": package.version})
        _write(folder / MARKER, {"spec": package.spec, "tarball": f"{package.stem}.tgz", "bytes": 1,
                                 "integrity": "sha512-test"})
    _write(roots["iconify"] / "collections.json", {prefix: info for prefix, (info, _) in ICON_SETS.items()})
    for prefix, (_, data) in ICON_SETS.items():
        _write(roots["iconify"] / "json" / f"{prefix}.json", {"prefix": prefix, "width": 16, "height": 16, **data})
    _write(roots["emojibase"] / "en" / "data.json", EMOJIBASE_EN)
    _write(roots["emojibase"] / "de" / "data.json",
           [{"label": label, "hexcode": code, "tags": tags} for code, (label, tags) in EMOJIBASE_DE.items()])
    _write(roots["openmoji"] / "data" / "openmoji.json", [
        {"hexcode": "1F431", "annotation": "cat face", "tags": "cat, face", "openmoji_tags": "whiskers",
         "unicode": 0.6},
        {"hexcode": "E000", "annotation": "3d printer", "tags": "printer", "openmoji_tags": "maker", "unicode": ""}])
    _write(roots["mdi"] / "meta.json", [
        {"name": "cat", "aliases": ["feline"], "tags": ["Animal"]},
        {"name": "food", "aliases": [], "tags": ["Food / Drink", "pizza"]}])  # 'pizza' must be scrubbed
    _write(roots["tabler"] / "icons.json", {"cat": {"name": "cat", "category": "Animals", "tags": ["pet", 2]}})
    _write(roots["lucide"] / "tags.json", {"cat": ["pet"]})
    _write(roots["fontawesome"] / "metadata" / "icon-families.json",
           {"cat": {"search": {"terms": ["feline"]}, "aliases": {"names": []}}})


@pytest.fixture
def fake_inputs(tmp_path):
    cache = tmp_path / "cache"
    make_fake_cache(cache)
    heldout = tmp_path / "heldout.tsv"
    heldout.write_text(HELDOUT, encoding="utf-8")
    return cache, heldout


def read_rows(out: Path, split: str) -> list[dict]:
    return [json.loads(line) for line in (out / f"{split}.jsonl").read_text(encoding="utf-8").splitlines()]


def _build(tmp_path, fake_inputs, workers=1, **options):
    cache, heldout = fake_inputs
    out = tmp_path / "out"
    summary = build(out, cache, heldout, size=64, workers=workers, val_fraction=0.3, languages=["de"],
                    log=lambda _: None, **options)
    return out, summary


def test_no_heldout_concept_reaches_training_manifests(tmp_path, fake_inputs):
    out, summary = _build(tmp_path, fake_inputs)
    training = read_rows(out, "train") + read_rows(out, "val")
    heldout_labels = {"pizza", "bread", "thumbs down", "red heart"}
    assert training
    for row in training:
        assert row["concept"] not in HELDOUT_IDS, row
        # No icon named after a held-out concept ('baguette bread' is an emoji concept of its own), and
        # no tag that pairs a held-out phrase with a training image.
        if row["kind"] == "icon":
            names = [row["label"], Path(row["image"]).stem]
            assert not any(word_set(label) <= word_set(name) for name in names for label in heldout_labels), row
        pieces = [piece for caption in row["captions"] for piece in re.split(r"[,:] ", caption)]
        pieces += [piece for captions in row.get("captions_i18n", {}).values()
                   for caption in captions for piece in caption.split(", ")]
        assert not {piece.strip().lower() for piece in pieces} & (heldout_labels | {"brot", "pizza"}), row

    held = {Path(row["image"]).as_posix(): row for row in read_rows(out, "heldout")}
    # Joined by name, by code only ('loaf' is bread), by code without FE0F ('love' is the red heart),
    # and icons named exactly after a concept.
    assert held["images/emo/pizza.png"]["concept"] == "emoji:1F355"
    assert held["images/emo/loaf.png"]["concept"] == "emoji:1F35E"
    assert held["images/emo/love.png"]["label"] == "red heart"
    assert held["images/mdi/pizza-outline.png"]["concept"] == "emoji:1F355"
    assert held["images/mdi/thumb-down-outline.png"]["label"] == "thumbs down"
    assert len(held) == 5  # a logo named 'pizza' leaves training but shows no pizza: not evaluated
    assert not set(held) & {row["image"] for row in training}
    assert "images/brands/pizza.png" not in {row["image"] for row in training}
    assert summary["heldout"]["images_dropped_from_training"] == 6
    assert summary["heldout"]["tags_scrubbed"] >= 3  # mdi food's 'pizza', baguette's 'bread' and 'Brot'
    labels = (out / "labels-heldout.tsv").read_text(encoding="utf-8").splitlines()
    assert len(labels) == 1 + 4 and "emoji:2764-FE0F\tred heart\temoji\t1\trotes Herz" in labels


def test_loosely_named_heldout_icons_leave_training_but_are_not_evaluated(tmp_path, fake_inputs):
    """'fire-station' is not 'pizza' or any held-out concept; but a concept 'station' would take it out."""
    cache, heldout = fake_inputs
    heldout.write_text(HELDOUT + "1F689\tstation\n", encoding="utf-8")
    out, summary = _build(tmp_path, fake_inputs)
    every = [row["image"] for split in ("train", "val", "heldout") for row in read_rows(out, split)]
    assert "images/mdi/fire-station.png" not in every
    assert summary["heldout"]["loosely_named_icons_in_no_manifest"] == 2  # and the 'pizza' logo


def test_manifests_images_captions_and_licences(tmp_path, fake_inputs):
    out, summary = _build(tmp_path, fake_inputs)
    rows = {row["image"]: row for split in ("train", "val", "heldout") for row in read_rows(out, split)}
    for image in rows:
        with Image.open(out / image) as picture:
            assert picture.size == (64, 64)
    # Licence filter: GPL and non-commercial sets are gone, share-alike is kept (see licences.py).
    assert not any(row["source"] in {"gpl", "nc"} for row in rows.values())
    assert summary["sets_dropped"]["gpl"]["reason"].startswith("GPL")
    assert summary["sets_dropped"]["nc"]["reason"] == "non-commercial"
    assert rows["images/emo-sa/cat-face.png"]["licence"] == "CC-BY-SA-4.0"
    # One copy of a drawing found in two sets; emoji styles win.
    assert "images/mdi/copy-of-cat-face.png" not in rows and summary["images"]["duplicates_dropped"] == 2
    assert "images/mdi/plus.png" not in rows and "a plus icon" in rows["images/mdi/add.png"]["captions"]

    cat = rows["images/emo/cat-face.png"]
    assert cat["concept"] == "emoji:1F431" and cat["kind"] == "emoji"
    assert {"cat face", "an emoji of a cat face", "a cat face icon"} <= set(cat["captions"])
    assert any("whiskers" in caption for caption in cat["captions"])  # OpenMoji's tag
    assert "an emoji of a kitty" in cat["captions"] and not any("pizza" in caption for caption in cat["captions"])
    assert cat["captions_i18n"]["de"][0] == "Katzengesicht"
    hand = rows["images/emo/waving-hand-dark-skin-tone.png"]
    assert hand["concept"] == "emoji:1F44B" and "waving hand, dark skin tone" in hand["captions"]
    extra = rows["images/emo/3d-printer.png"]
    assert extra["kind"] == "icon" and "an emoji of a 3d printer" in extra["captions"]

    icon = rows["images/mdi/cat.png"]
    assert {"cat", "a cat icon", "a kitty icon", "a feline icon"} <= set(icon["captions"])  # alias + meta
    assert any("animal" in caption for caption in icon["captions"])
    # An alias that flips its parent is an image of its own, drawn mirrored (colours may differ).
    left = np.asarray(Image.open(out / "images/mdi/arrow-left.png").convert("L")) < 128
    right = np.asarray(Image.open(out / "images/mdi/arrow-right.png").convert("L")) < 128
    assert left.sum() > 200 and (left[:, ::-1] != right).mean() < 0.01 and (left != right).mean() > 0.1

    assert summary["manifests"]["train.jsonl"] + summary["manifests"]["val.jsonl"] + 5 == len(rows)
    assert summary["images"]["total"] == len(rows)  # the 'pizza' logo is in no manifest, so not drawn
    assert not (out / "images/brands/pizza.png").exists()
    attribution = (out / "ATTRIBUTION.md").read_text(encoding="utf-8")
    assert "| Emo Emoji | `emo` | [Emo Emoji authors](https://example.org/Emo Emoji) | [MIT]" in attribution
    assert "Copyleft Icons" not in attribution and "Hobby Icons" not in attribution
    assert "Share-alike material" in attribution and "`openmoji@17.0.0`" in attribution
    # 3 sets: not 'brands', whose only image (a logo named 'pizza') is held out.
    assert f"on {len(rows)} images rendered from 3 icon and emoji sets" in attribution


def test_rebuild_is_identical_and_renders_nothing_again(tmp_path, fake_inputs):
    out, first = _build(tmp_path, fake_inputs, workers=2)  # the process pool, as in real runs
    manifests = {split: (out / f"{split}.jsonl").read_bytes() for split in ("train", "val", "heldout")}
    out, second = _build(tmp_path, fake_inputs)
    assert first["images"]["rendered_now"] == first["images"]["total"]
    assert second["images"]["rendered_now"] == 0 and second["images"]["already_rendered"] > 0
    assert manifests == {split: (out / f"{split}.jsonl").read_bytes() for split in manifests}


def test_no_share_alike_leaves_out_sa_sets_and_openmoji_tags(tmp_path, fake_inputs):
    out, summary = _build(tmp_path, fake_inputs, share_alike=False)
    rows = [row for split in ("train", "val", "heldout") for row in read_rows(out, split)]
    assert not any(row["source"] == "emo-sa" for row in rows)
    assert summary["sets_dropped"]["emo-sa"]["reason"].startswith("share-alike excluded")
    assert not any("whiskers" in caption for row in rows for caption in row["captions"])


def test_command_line_reports_a_bad_heldout_file_in_one_line(tmp_path, fake_inputs, capsys):
    cache, _ = fake_inputs
    code = main(["--out", str(tmp_path / "out"), "--cache", str(cache), "--heldout", str(tmp_path / "missing.tsv")])
    error = capsys.readouterr().err.strip()
    assert code == 1 and error.startswith("error: cannot read the held-out concepts") and "\n" not in error


def test_changed_render_settings_render_everything_again(tmp_path, fake_inputs):
    out, first = _build(tmp_path, fake_inputs)
    stale = out / "images" / "emo" / "stale.png"
    stale.write_bytes(b"not a png of these settings")
    cache, heldout = fake_inputs
    summary = build(out, cache, heldout, size=32, workers=1, val_fraction=0.3, languages=["de"], log=lambda _: None)
    assert summary["images"]["rendered_now"] == first["images"]["total"] and not stale.exists()
    with Image.open(out / "images/emo/cat-face.png") as picture:
        assert picture.size == (32, 32)


def test_images_no_manifest_uses_any_more_are_removed(tmp_path, fake_inputs):
    out, first = _build(tmp_path, fake_inputs)
    assert (out / "images/emo-sa/cat-face.png").exists()
    (out / "images/emo/half-written.png.123.tmp").write_bytes(b"")
    out, second = _build(tmp_path, fake_inputs, share_alike=False)
    assert not (out / "images/emo-sa/cat-face.png").exists()
    assert not (out / "images/emo/half-written.png.123.tmp").exists()
    assert second["images"]["stale_files_removed"] == 2 and second["images"]["rendered_now"] == 0
