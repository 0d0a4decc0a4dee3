"""JSONL manifests and zero-shot label files.

    train.jsonl, val.jsonl   every image that is not held out, split by image (a stable hash of its key)
    heldout.jsonl            images of the held-out concepts only: never in train or val. Emoji rows are
                             exact; icon rows are icons named exactly after a concept (not logos), so a
                             few are homonyms (a rubber-stamp 'seal'): headline figures use kind 'emoji'.
                             Loosely named held-out icons ('fire-station') are in no manifest.
    labels-val.tsv           the concepts shown in val, for zero-shot accuracy on seen concepts
    labels-heldout.tsv       the held-out concepts, for zero-shot accuracy on never-seen concepts
    emoji-concepts.tsv       every base emoji concept (the full emoji label space), flagged when held out

A row: {"image": path relative to the manifest, "captions": [...], "captions_i18n": {lang: [...]},
"concept", "label", "kind" ('emoji' or 'icon'), "source" (iconify prefix), "style", "licence"}.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path

from clipdesk.atomic import write_lines_atomically
from clipdesk.data.captions import captions_for, local_captions, style_name
from clipdesk.data.catalogue import ImageItem
from clipdesk.data.emoji_labels import EmojiIndex, LocalText, normalise_code
from clipdesk.data.heldout import HeldOut, HeldOutConcept

VAL_FRACTION = 0.05
SPLITS = ("train", "val", "heldout")


def split_of(item: ImageItem, val_fraction: float = VAL_FRACTION) -> str | None:
    """'train', 'val', 'heldout', or None for a held-out image too loosely named to evaluate with."""
    if item.heldout is not None:
        return "heldout" if item.heldout_eval else None
    draw = int(hashlib.sha1(f"split:{item.key}".encode("utf-8")).hexdigest()[:8], 16) / 0x100000000
    return "val" if draw < val_fraction else "train"


def heldout_concept_id(concept: HeldOutConcept, emoji: EmojiIndex) -> str:
    """emojibase's form of a held-out code, so held-out emoji and icons share one concept id."""
    known = emoji.concept_of_code(concept.hexcode)
    return f"emoji:{known.hexcode if known else concept.hexcode}"


def manifest_row(item: ImageItem, emoji: EmojiIndex) -> dict:
    row = {"image": item.image_path, "captions": captions_for(item)}
    local = local_captions(item)
    if local:
        row["captions_i18n"] = local
    concept, label = item.concept, item.label
    if item.heldout is not None:  # an icon named after a held-out emoji is scored as that concept
        concept, label = heldout_concept_id(item.heldout, emoji), item.heldout.label
    row.update(concept=concept, label=label, kind=item.kind, source=item.icon.prefix, style=style_name(item),
               licence=item.set.spdx)
    return row


def write_manifests(items: list[ImageItem], out: Path, emoji: EmojiIndex, heldout: HeldOut,
                    translations: dict[str, dict[str, LocalText]],
                    val_fraction: float = VAL_FRACTION) -> dict[str, int]:
    """Write the three manifests and the label files; returns the row count of each file written."""
    rows: dict[str, list[dict]] = {split: [] for split in SPLITS}
    for item in sorted(items, key=lambda item: item.image_path):
        split = split_of(item, val_fraction)
        if split is not None:
            rows[split].append(manifest_row(item, emoji))
    counts = {}
    for split, split_rows in rows.items():
        counts[f"{split}.jsonl"] = write_lines_atomically(out / f"{split}.jsonl",
                                                 (json.dumps(row, ensure_ascii=False) for row in split_rows))
    languages = sorted(translations)

    def local_labels(concept: str) -> list[str]:
        code = normalise_code(concept.split(":", 1)[1]) if concept.startswith("emoji:") else None
        return [translations[language].get(code, LocalText("", ())).label if code else "" for language in languages]

    header = "\t".join(["concept", "label", "kind", "images", *languages])
    images = {split: Counter(row["concept"] for row in rows[split]) for split in SPLITS}
    seen = {}
    for row in rows["val"]:
        seen.setdefault(row["concept"], row)
    lines = [header] + ["\t".join([concept, row["label"], row["kind"], str(images["val"][concept]),
                                   *local_labels(concept)])
                        for concept, row in sorted(seen.items())]
    counts["labels-val.tsv"] = write_lines_atomically(out / "labels-val.tsv", lines) - 1
    # All held-out concepts, with or without images: the label space of the held-out evaluation.
    unseen = {heldout_concept_id(concept, emoji): concept.label for concept in heldout.concepts}
    lines = [header] + ["\t".join([concept, label, "emoji", str(images["heldout"][concept]), *local_labels(concept)])
                        for concept, label in sorted(unseen.items())]
    counts["labels-heldout.tsv"] = write_lines_atomically(out / "labels-heldout.tsv", lines) - 1

    lines = ["\t".join(["concept", "label", "heldout", "train_images", *languages])]
    for concept in sorted(emoji.concepts.values(), key=lambda concept: concept.hexcode):
        key = f"emoji:{concept.hexcode}"
        flag = int(heldout.emoji(concept.hexcode, concept.label) is not None)
        lines.append("\t".join([key, concept.label, str(flag), str(images["train"][key]), *local_labels(key)]))
    counts["emoji-concepts.tsv"] = write_lines_atomically(out / "emoji-concepts.tsv", lines) - 1
    return counts
