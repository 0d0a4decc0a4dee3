"""The default model's training mix: emoji weighted, one row per language, icons sampled."""

import json
from collections import Counter

from clipdesk.data.training_mix import mix_rows, write_mix


def _rows():
    emoji = [{"image": f"e{i}.png", "captions": [f"emoji {i}"], "kind": "emoji", "label": f"e{i}",
              "captions_i18n": {"de": [f"De {i}"], "ja": [f"絵{i}"]}} for i in range(3)]
    icons = [{"image": f"i{i}.png", "captions": [f"icon {i}"], "kind": "icon", "label": f"i{i}"} for i in range(10)]
    return emoji + icons


def test_emoji_repeat_in_english_and_once_per_language():
    mixed = mix_rows(_rows(), english_repeats=2, icon_rows=4)
    by_image = Counter(row["image"] for row in mixed if row["kind"] == "emoji")
    assert by_image == {"e0.png": 4, "e1.png": 4, "e2.png": 4}
    german = [row for row in mixed if row.get("language") == "de"]
    assert sorted(row["captions"][0] for row in german) == ["De 0", "De 1", "De 2"]
    assert sum(row["kind"] == "icon" for row in mixed) == 4


def test_language_filter_and_determinism():
    only_ja = mix_rows(_rows(), english_repeats=1, icon_rows=2, languages=("ja",))
    assert {row.get("language") for row in only_ja if row["kind"] == "emoji"} == {None, "ja"}
    assert mix_rows(_rows(), seed=3) == mix_rows(_rows(), seed=3)


def test_weaker_languages_can_get_more_rows_and_another_seed_other_icons():
    mixed = mix_rows(_rows(), english_repeats=1, icon_rows=4, language_repeats={"ja": 3})
    languages = Counter(row.get("language", "en") for row in mixed if row["kind"] == "emoji")
    assert languages == {"en": 3, "de": 3, "ja": 9}
    icons = [{row["image"] for row in mix_rows(_rows(), icon_rows=4, seed=seed) if row["kind"] == "icon"}
             for seed in (0, 1)]
    assert icons[0] != icons[1]


def test_write_mix_keeps_unicode_and_counts(tmp_path):
    source = tmp_path / "train.jsonl"
    source.write_text("".join(json.dumps(row) + "\n" for row in _rows()), encoding="utf-8")
    counts = write_mix(source, tmp_path / "mix.jsonl", english_repeats=1, icon_rows=3)
    assert counts == {"en": 3, "de": 3, "ja": 3, "icon": 3}
    text = (tmp_path / "mix.jsonl").read_text(encoding="utf-8")
    assert "絵0" in text and len(text.splitlines()) == 12
