"""Build the emoji + icon training set in one command:

    python -m clipdesk.data.build_dataset --out data/emoji-icons

fetch pinned packages → licence filter → join labels and tags → drop held-out concepts → render PNGs →
manifests, label files, ATTRIBUTION.md and summary.json in --out. Every step can be rerun: packages
already fetched and images already rendered are kept.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from collections import Counter
from pathlib import Path

from clipdesk.data import DataError, pipeline_main
from clipdesk.data.attribution import attribution_markdown
from clipdesk.data.catalogue import build_catalogue, count_images
from clipdesk.data.emoji_labels import load_emoji_index, load_openmoji_texts, load_translations
from clipdesk.data.heldout import HeldOut
from clipdesk.data.icon_tags import load_icon_texts
from clipdesk.data.iconify import read_collections
from clipdesk.data.manifests import VAL_FRACTION, write_manifests
from clipdesk.data.rasterise import SIZE, render_items
from clipdesk.data.sources import PACKAGES, fetch_all, fetched_record
from clipdesk.progress import Progress, TerminalBar

REPO = Path(__file__).resolve().parents[2]
DEFAULT_HELDOUT = REPO.parent / "shared" / "eval" / "heldout-emoji-concepts.tsv"
DEFAULT_LANGUAGES = ("de", "es", "fr", "ja", "zh")  # the minimum; emojibase has about 30
# A few drawings may defeat the renderer; more than this share means something systematic is wrong.
MAX_FAILED_SHARE = 0.01


class LoggedBar(TerminalBar):
    """The bar's line printed every 30 s, for runs whose output goes to a log file instead of a terminal."""

    def __init__(self, label: str, unit: str, every: float = 30.0):
        super().__init__(label, unit, stream=sys.stdout, force=True)
        self.every, self._last_line = every, time.monotonic()

    def update(self, done: int, total: int | None, **facts) -> None:
        now = time.monotonic()
        if now - self._last_line >= self.every or (total and done >= total):
            self._last_line = now
            print(self.line(done, total, **facts), flush=True)


def progress_bar(label: str, unit: str) -> Progress:
    return TerminalBar(label, unit) if sys.stderr.isatty() else LoggedBar(label, unit)


def folder_bytes(folder: Path) -> int:
    """Disk use (allocated blocks), which for 300,000 small PNGs is far above their summed sizes."""
    total = 0
    for root, _, files in os.walk(folder):
        for name in files:
            total += os.lstat(os.path.join(root, name)).st_blocks * 512
    return total


def build(out: Path, cache: Path, heldout_path: Path = DEFAULT_HELDOUT, size: int = SIZE, workers: int = 2,
          val_fraction: float = VAL_FRACTION, languages=DEFAULT_LANGUAGES, share_alike: bool = True,
          max_per_set: int | None = None, attribution_copy: Path | None = None, log=print,
          progress=lambda label, unit: Progress()) -> dict:
    started = time.monotonic()
    out.mkdir(parents=True, exist_ok=True)
    heldout = HeldOut.from_tsv(heldout_path)
    roots = fetch_all(cache, log)
    sets = read_collections(roots["iconify"])
    emoji = load_emoji_index(roots["emojibase"])
    translations = load_translations(roots["emojibase"], list(languages))
    heldout.add_translations(translations)
    catalogue = build_catalogue(roots["iconify"], sets, emoji, heldout, translations,
                                load_openmoji_texts(roots["openmoji"]), load_icon_texts(roots),
                                share_alike=share_alike, max_per_set=max_per_set,
                                progress=progress("reading sets", "sets"))
    log(f"{len(catalogue.items)} distinct images from {sum(r.kept for r in catalogue.sets.values())} sets "
        f"({catalogue.duplicates} duplicate drawings dropped)")

    # Held-out icons too loosely named to evaluate with go into no manifest, so they are not drawn.
    wanted = [item for item in catalogue.items if item.heldout is None or item.heldout_eval]
    rendered = render_items(wanted, out, size, workers, progress=progress("rendering", "images"), log=log)
    if len(rendered.failed) > MAX_FAILED_SHARE * max(1, len(wanted)):
        example = next(iter(rendered.failed.items()))
        raise DataError(f"{len(rendered.failed)} images failed to render (e.g. {example[0]}: {example[1]})")
    items = [item for item in wanted if item.image_path not in rendered.failed]
    count_images(catalogue.sets, items)  # the sets' figures (and ATTRIBUTION.md) count manifest images only

    counts = write_manifests(items, out, emoji, heldout, translations, val_fraction)
    attribution = attribution_markdown(catalogue.sets, PACKAGES, out.name)
    (out / "ATTRIBUTION.md").write_text(attribution, encoding="utf-8")
    if attribution_copy is not None:
        attribution_copy.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(out / "ATTRIBUTION.md", attribution_copy)

    heldout_items = [item for item in catalogue.items if item.heldout is not None]
    summary = {
        "settings": {"size": size, "val_fraction": val_fraction, "languages": list(languages),
                     "share_alike": share_alike, "max_per_set": max_per_set, "heldout_file": str(heldout_path)},
        "packages": {package.spec: fetched_record(package, cache) for package in PACKAGES.values()},
        "sets_kept": {prefix: {"name": r.info.name, "licence": r.info.spdx, "images": r.images, "emoji": r.emoji,
                               "heldout": r.heldout, "duplicates": r.duplicates}
                      for prefix, r in sorted(catalogue.sets.items()) if r.kept},
        "sets_dropped": {prefix: {"name": r.info.name, "licence": r.info.spdx, "reason": r.reason,
                                  "icons": r.info.total}
                         for prefix, r in sorted(catalogue.sets.items()) if not r.kept},
        "images": {"total": len(items), "emoji": sum(item.kind == "emoji" for item in items),
                   "icons": sum(item.kind == "icon" for item in items), "duplicates_dropped": catalogue.duplicates,
                   "render_failed": len(rendered.failed), "rendered_now": rendered.rendered,
                   "already_rendered": rendered.skipped, "stale_files_removed": rendered.removed},
        "heldout": {"concepts": len(heldout.concepts),
                    "concepts_with_images": len({item.heldout for item in heldout_items}),
                    "images_dropped_from_training": len(heldout_items),
                    "images_in_heldout_manifest": counts["heldout.jsonl"],
                    "loosely_named_icons_in_no_manifest": sum(not item.heldout_eval for item in heldout_items),
                    "by_rule": dict(catalogue.heldout_by_rule),
                    "by_concept": dict(Counter(item.heldout.label for item in heldout_items).most_common()),
                    "tags_scrubbed": catalogue.scrubbed_tags},
        "manifests": counts,
        "render_failures": dict(list(rendered.failed.items())[:20]),
        "wall_seconds": round(time.monotonic() - started, 1),
        "output_bytes": folder_bytes(out),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return summary


def print_summary(summary: dict, log=print) -> None:
    kept, dropped = summary["sets_kept"], summary["sets_dropped"]
    log(f"sets kept: {len(kept)}; dropped: {len(dropped)}")
    for prefix, entry in dropped.items():
        log(f"  dropped {prefix} ({entry['licence'] or 'no licence'}): {entry['reason']}")
    images, held = summary["images"], summary["heldout"]
    log(f"images: {images['total']} ({images['emoji']} emoji, {images['icons']} icons); "
        f"{images['duplicates_dropped']} duplicates dropped; {images['render_failed']} failed to render")
    log(f"held out: {held['images_dropped_from_training']} images of {held['concepts_with_images']}/{held['concepts']} "
        f"concepts ({', '.join(f'{rule}: {n}' for rule, n in held['by_rule'].items())}); "
        f"{held['images_in_heldout_manifest']} of them in heldout.jsonl; "
        f"{held['tags_scrubbed']} tags scrubbed")
    log("manifests: " + ", ".join(f"{name} {rows}" for name, rows in summary["manifests"].items()))
    log(f"done in {summary['wall_seconds']:.0f} s; output {summary['output_bytes'] / 2**20:.0f} MiB")


@pipeline_main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m clipdesk.data.build_dataset", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="output folder (images, manifests, ATTRIBUTION.md)")
    parser.add_argument("--cache", type=Path, default=Path("data/cache"), help="where fetched packages are kept")
    parser.add_argument("--heldout", type=Path, default=DEFAULT_HELDOUT, help="TSV of held-out emoji concepts")
    parser.add_argument("--size", type=int, default=SIZE, help="PNG side in pixels")
    parser.add_argument("--workers", type=int, default=2, help="rendering processes")
    parser.add_argument("--val-fraction", type=float, default=VAL_FRACTION, help="share of images in val")
    parser.add_argument("--languages", default=",".join(DEFAULT_LANGUAGES),
                        help="emojibase languages for captions_i18n, comma-separated ('' for none)")
    parser.add_argument("--no-share-alike", action="store_true", help="leave out CC BY-SA sets and OpenMoji's tags")
    parser.add_argument("--max-per-set", type=int, default=None, help="at most this many images per set (quick builds)")
    parser.add_argument("--attribution-copy", type=Path, default=None, help="also write ATTRIBUTION.md here")
    args = parser.parse_args(argv)
    languages = [language.strip() for language in args.languages.split(",") if language.strip()]

    def log(message: str) -> None:
        print(message, flush=True)

    summary = build(args.out, args.cache, args.heldout, args.size, args.workers, args.val_fraction, languages,
                    not args.no_share_alike, args.max_per_set, args.attribution_copy, log=log, progress=progress_bar)
    print_summary(summary, log)
    return 0


if __name__ == "__main__":
    sys.exit(main())
