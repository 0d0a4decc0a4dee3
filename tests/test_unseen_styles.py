"""The pure parts of the unseen-style evaluation set: code mapping, skipping, held-out flags, rows, PNGs.

Tiny emojibase-like entries and emoji.json-like entries built here; no npm, no network.
"""

import io
import json
import tarfile

import pytest
from PIL import Image

from clipdesk.data import DataError
from clipdesk.data.emoji_labels import EmojiIndex
from clipdesk.data.heldout import HeldOut, HeldOutConcept
from clipdesk.data.unseen_styles import STYLES, manifest_row, plan_style, read_label_space, read_package, to_eval_png

EMOJIBASE = [
    {"hexcode": "1F600", "label": "grinning face", "group": 0},
    {"hexcode": "1F44B", "label": "waving hand", "group": 1,
     "skins": [{"hexcode": "1F44B-1F3FB", "label": "waving hand: light skin tone"}]},
    {"hexcode": "2764-FE0F", "label": "red heart", "group": 0},  # emojibase keeps FE0F here
    {"hexcode": "0023-FE0F-20E3", "label": "keycap: #", "group": 8},
    {"hexcode": "1F355", "label": "pizza", "group": 4},
    {"hexcode": "1F3FB", "label": "light skin tone", "group": 2},  # a component, not a concept
]
SPACE = {"emoji:1F600": False, "emoji:1F44B": False, "emoji:2764-FE0F": False, "emoji:0023-FE0F-20E3": False,
         "emoji:1F355": True}


def datasource(unified, image=None, apple=True, facebook=True):
    return {"unified": unified, "image": image or f"{unified.lower()}.png", "has_img_apple": apple,
            "has_img_facebook": facebook}


@pytest.fixture
def plan():
    entries = [
        datasource("1F600"),
        datasource("2764-FE0F"),            # FE0F on both sides: same concept
        datasource("0023-FE0F-20E3"),
        datasource("1F44B-1F3FB"),          # a toned variant listed at top level: skipped, not mapped to its base
        datasource("1F44B"),
        datasource("1F3FB"),                # the swatch itself
        datasource("1F355"),
        datasource("1F9CC"),                # not in emojibase here (troll)
        datasource("1F1E6-1F1E8", apple=False),  # the slot would hold a fallback image
    ]
    emoji = EmojiIndex(EMOJIBASE)
    heldout = HeldOut([HeldOutConcept("1F355", "pizza")])
    return plan_style(STYLES["apple"], entries, emoji, SPACE, heldout)


def test_codes_map_to_emojibase_concepts_ignoring_fe0f(plan):
    images, _ = plan
    assert sorted(image.concept for image in images) == sorted(SPACE)
    heart = next(image for image in images if image.concept == "emoji:2764-FE0F")
    assert heart.label == "red heart"
    assert heart.member == "package/img/apple/64/2764-fe0f.png"
    assert heart.image_path == "images/apple/2764-FE0F.png"


def test_skin_tones_unknown_codes_and_missing_vendor_images_are_skipped(plan):
    _, skipped = plan
    assert skipped == {"skin tone": 2, "not in label space": 1, "no vendor image": 1}


def test_codes_outside_the_label_space_are_skipped():
    heldout = HeldOut([HeldOutConcept("1F355", "pizza")])
    images, skipped = plan_style(STYLES["facebook"], [datasource("1F600"), datasource("1F355")],
                                 EmojiIndex(EMOJIBASE), {"emoji:1F600": False}, heldout)
    assert [image.concept for image in images] == ["emoji:1F600"]
    assert skipped == {"not in label space": 1}


def test_a_concept_keeps_one_image():
    images, skipped = plan_style(STYLES["apple"], [datasource("2764"), datasource("2764-FE0F")],
                                 EmojiIndex(EMOJIBASE), SPACE, HeldOut([HeldOutConcept("1F355", "pizza")]))
    assert len(images) == 1 and skipped == {"concept already shown": 1}


def test_heldout_flag_by_code_or_label(plan):
    images, _ = plan
    assert {image.concept for image in images if image.heldout} == {"emoji:1F355"}
    by_label = HeldOut([HeldOutConcept("FFFFF", "grinning face")])
    images, _ = plan_style(STYLES["apple"], [datasource("1F600")], EmojiIndex(EMOJIBASE), SPACE, by_label)
    assert images[0].heldout


def test_manifest_row_format(plan):
    images, _ = plan
    pizza = next(image for image in images if image.concept == "emoji:1F355")
    row = manifest_row(pizza, STYLES["apple"])
    assert row["image"] == "images/apple/1F355.png"
    assert row["captions"] == ["pizza"]
    assert {key: row[key] for key in ("concept", "label", "kind", "source", "style", "heldout")} == {
        "concept": "emoji:1F355", "label": "pizza", "kind": "emoji", "source": "emoji-datasource-apple",
        "style": "apple", "heldout": True}
    assert "evaluation only" in row["licence"]
    json.dumps(row)  # one JSONL line


def test_read_label_space(tmp_path):
    path = tmp_path / "emoji-concepts.tsv"
    path.write_text("concept\tlabel\theldout\ttrain_images\tde\nemoji:1F600\tgrinning face\t0\t9\tx\n"
                    "emoji:1F355\tpizza\t1\t0\tPizza\n", encoding="utf-8")
    assert read_label_space(path) == {"emoji:1F600": False, "emoji:1F355": True}
    with pytest.raises(DataError):
        read_label_space(tmp_path / "missing.tsv")


def test_png_is_square_on_white_at_the_training_size():
    source = Image.new("RGBA", (64, 48), (0, 0, 0, 0))
    source.paste((255, 0, 0, 255), (16, 8, 48, 40))
    buffer = io.BytesIO()
    source.save(buffer, format="PNG")
    out = Image.open(io.BytesIO(to_eval_png(buffer.getvalue(), 128)))
    assert out.size == (128, 128) and out.mode == "RGB"
    assert out.getpixel((2, 2)) == (255, 255, 255)      # transparency and the padding are white
    assert out.getpixel((64, 64)) == (255, 0, 0)


def _tarball(path, files):
    with tarfile.open(path, "w:gz") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))


def test_read_package_checks_version_and_contents(tmp_path):
    good = tmp_path / "good.tgz"
    _tarball(good, {"package/package.json": b'{"version": "16.0.0"}', "package/emoji.json": b"[]",
                    "package/img/apple/64/1f600.png": b"png", "package/img/apple/sheets/32.png": b"sheet"})
    entries, images = read_package(STYLES["apple"], good)
    assert entries == [] and list(images) == ["package/img/apple/64/1f600.png"]
    old = tmp_path / "old.tgz"
    _tarball(old, {"package/package.json": b'{"version": "15.0.0"}', "package/emoji.json": b"[]",
                   "package/img/apple/64/1f600.png": b"png"})
    with pytest.raises(DataError, match="expected 16.0.0"):
        read_package(STYLES["apple"], old)
    broken = tmp_path / "broken.tgz"
    broken.write_bytes(b"not a tarball")
    with pytest.raises(DataError, match="broken"):
        read_package(STYLES["apple"], broken)
