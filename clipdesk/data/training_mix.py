"""The default model's training mix: emoji-weighted and multilingual, drawn from train.jsonl.

Why a mix: emoji are about 7 % of the rendered images (23k of 336k), yet the default model is judged on
emoji concepts, and queries in German, Spanish, French, Japanese and Chinese should work too. So each
emoji image appears several times with its English captions and once per language with that language's
captions (emojibase's label and tags), and a seeded sample of the icons keeps their vocabulary in play.
The rows are ordinary manifest rows, so the trainer needs nothing new; held-out concepts are absent
from train.jsonl in every language already.

    python -m clipdesk.data.training_mix data/emoji-icons/train.jsonl data/emoji-icons/train-mix.jsonl
"""

from __future__ import annotations

import argparse
import json
import random
from collections import Counter
from pathlib import Path

from clipdesk.atomic import write_lines_atomically

ENGLISH_REPEATS = 4
ICON_ROWS = 120_000


def mix_rows(rows: list[dict], english_repeats: int = ENGLISH_REPEATS, icon_rows: int = ICON_ROWS,
             languages: tuple[str, ...] | None = None, seed: int = 0,
             language_repeats: dict[str, int] | None = None) -> list[dict]:
    """Emoji rows `english_repeats` times in English plus one row per language (or `language_repeats[lang]`
    rows); `icon_rows` icons at random (another seed draws other icons)."""
    rng = random.Random(seed)
    emoji = [row for row in rows if row.get("kind") == "emoji"]
    others = [row for row in rows if row.get("kind") != "emoji"]
    mixed = rng.sample(others, min(icon_rows, len(others)))
    for row in emoji:
        mixed.extend([row] * english_repeats)
        for language, captions in sorted((row.get("captions_i18n") or {}).items()):
            if captions and (languages is None or language in languages):
                translated = {**row, "captions": list(captions), "language": language}
                mixed.extend([translated] * (language_repeats or {}).get(language, 1))
    rng.shuffle(mixed)
    return mixed


def write_mix(source: Path, target: Path, **options) -> Counter:
    rows = [json.loads(line) for line in source.read_text(encoding="utf-8").splitlines() if line.strip()]
    mixed = mix_rows(rows, **options)
    write_lines_atomically(target, (json.dumps(row, ensure_ascii=False) for row in mixed))
    return Counter(row.get("language", "en") if row.get("kind") == "emoji" else "icon" for row in mixed)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path)
    parser.add_argument("target", type=Path)
    parser.add_argument("--english-repeats", type=int, default=ENGLISH_REPEATS)
    parser.add_argument("--icon-rows", type=int, default=ICON_ROWS)
    parser.add_argument("--languages", help="comma-separated (default: every language in the rows)")
    parser.add_argument("--language-repeats", metavar="LANG=N,...",
                        help="rows per emoji image for these languages (default 1 each), e.g. ja=2,zh=2")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    languages = tuple(args.languages.split(",")) if args.languages else None
    try:
        repeats = {lang: int(n) for lang, n in (item.split("=") for item in args.language_repeats.split(","))} \
            if args.language_repeats else None
    except ValueError:
        parser.error(f"--language-repeats {args.language_repeats!r}: expected LANG=N,... such as ja=2,zh=2")
    counts = write_mix(args.source, args.target, english_repeats=args.english_repeats,
                       icon_rows=args.icon_rows, languages=languages, seed=args.seed,
                       language_repeats=repeats)
    summary = ", ".join(f"{key} {value:,}" for key, value in sorted(counts.items()))
    print(f"wrote {sum(counts.values()):,} rows to {args.target} ({summary})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
