"""The sample library shipped in resources/sample-library/: what "Try the sample library" opens.

It shows what the bundled default model knows (emoji and icons), so it is drawn from the dataset's
validation split (images the model never trained on), from sets whose licences allow redistribution
with attribution and without share-alike terms. Pictures are re-rendered at 256 px for the grid; each
file is named after what it shows, with spaces, as a person's files are.

    python -m clipdesk.data.sample_library --dataset data/emoji-icons --cache data/cache
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
from collections import defaultdict
from pathlib import Path

from clipdesk.data.iconify import read_collections, read_icon_set, svg_document
from clipdesk.data.rasterise import icon_colour, render_png
from clipdesk.data.sources import PACKAGES, fetch

SIZE = 256
EMOJI_SETS = ("twemoji", "noto", "fluent-emoji-flat", "fluent-emoji")
ICON_SETS = ("mdi", "tabler", "lucide", "ph")
EMOJI_COUNT, ICON_COUNT = 48, 24
SEED = 2021
DEFAULT_OUT = Path(__file__).resolve().parents[2] / "resources" / "sample-library"


def _readable(label: str) -> bool:
    # Skip people variants ("man: beard", "woman health worker"): dozens of near-identical faces make a
    # dull sample, and the colon is not portable in file names.
    return ":" not in label and not label.startswith(("man ", "woman ", "person ")) and len(label) <= 30


def choose_rows(val_rows: list[dict]) -> list[dict]:
    """One image per concept, deterministic, alternating sets so every style appears."""
    rng = random.Random(SEED)
    chosen = []
    for sets, count in ((EMOJI_SETS, EMOJI_COUNT), (ICON_SETS, ICON_COUNT)):
        by_set = defaultdict(list)
        for row in val_rows:
            if row["source"] in sets and _readable(row["label"]):
                by_set[row["source"]].append(row)
        for source in sorted(by_set):  # sorted first: the choice must not depend on manifest order
            by_set[source].sort(key=lambda row: row["image"])
            rng.shuffle(by_set[source])
        seen = {row["concept"] for row in chosen}
        turn = 0
        while sum(1 for row in chosen if row["source"] in sets) < count and any(by_set.values()):
            rows = by_set[sets[turn % len(sets)]]
            turn += 1
            while rows:
                row = rows.pop()
                if row["concept"] not in seen:
                    seen.add(row["concept"])
                    chosen.append(row)
                    break
    return chosen


def build_sample_library(dataset: Path, cache: Path, out: Path = DEFAULT_OUT) -> int:
    rows = [json.loads(line) for line in (dataset / "val.jsonl").read_text(encoding="utf-8").splitlines()]
    chosen = choose_rows(rows)
    iconify_root = fetch(PACKAGES["iconify"], cache)  # already cached by `make data`: no download
    sets = read_collections(iconify_root)
    icons = {}
    for prefix in sorted({row["source"] for row in chosen}):
        for icon in read_icon_set(iconify_root / "json" / f"{prefix}.json", sets[prefix]):
            icons[icon.key] = icon
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    credits = []
    for row in chosen:
        prefix, name = Path(row["image"]).parent.name, Path(row["image"]).stem
        icon = icons[f"{prefix}:{name}"]
        file_name = f"{row['label']} ({sets[prefix].name}).png".replace("/", "-")
        (out / file_name).write_bytes(render_png(svg_document(icon, SIZE, icon_colour(icon.key))))
        info = sets[prefix]
        credits.append(f"| {file_name} | {info.name} (`{prefix}:{name}`) | {info.author} {info.author_url} | "
                       f"{info.licence_title or info.spdx} ({info.spdx}) {info.licence_url} |")
    (out / "ATTRIBUTION.md").write_text(
        "# Sample library: sources and licences\n\n"
        "Emoji and icons rendered to 256 px PNG on white from the SVGs in `@iconify/json` "
        f"({PACKAGES['iconify'].spec}); file names are the emoji's CLDR label or the icon's name.\n\n"
        "| File | Set (icon) | Author | Licence |\n|---|---|---|---|\n" + "\n".join(credits) + "\n",
        encoding="utf-8")
    return len(chosen)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, default=Path("data/emoji-icons"))
    parser.add_argument("--cache", type=Path, default=Path("data/cache"))
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    count = build_sample_library(args.dataset, args.cache, args.out)
    print(f"wrote {count} pictures to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
