"""The bundled sample library: chosen deterministically, one picture per concept, every file credited."""

from pathlib import Path

from PIL import Image

from clipdesk import paths
from clipdesk.data.sample_library import EMOJI_SETS, ICON_SETS, choose_rows


def rows(source, count, kind="emoji"):
    return [{"source": source, "label": f"{source} thing {i % (count // 2)}", "concept": f"{kind}:{i % (count // 2)}",
             "image": f"images/{source}/{i}.png"} for i in range(count)]


def test_choice_is_deterministic_and_one_per_concept():
    val = rows("twemoji", 40) + rows("noto", 40) + rows("mdi", 60, "icon") + rows("openmoji", 40)
    val.append({"source": "twemoji", "label": "man: beard", "concept": "emoji:beard", "image": "x.png"})
    first, second = choose_rows(val), choose_rows(list(reversed(val)))
    assert [r["image"] for r in first] == [r["image"] for r in choose_rows(val)]
    assert sorted(r["image"] for r in first) == sorted(r["image"] for r in second)
    assert len({r["concept"] for r in first}) == len(first)
    assert {r["source"] for r in first} <= set(EMOJI_SETS) | set(ICON_SETS)  # no share-alike sets
    assert all(":" not in r["label"] for r in first)


def test_shipped_sample_library_is_credited():
    folder = paths.resources_dir() / "sample-library"
    pictures = sorted(folder.glob("*.png"))
    credits = (folder / "ATTRIBUTION.md").read_text(encoding="utf-8")
    assert len(pictures) >= 50
    for picture in pictures:
        assert f"| {picture.name} |" in credits
        with Image.open(picture) as image:
            assert image.size == (256, 256)
