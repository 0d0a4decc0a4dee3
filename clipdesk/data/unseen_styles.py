"""Emoji art styles the default model never saw, for an honest zero-shot evaluation (issue 6):

    python -m clipdesk.data.unseen_styles --out data/eval-styles --cache data/cache

Training used the emoji sets inside @iconify/json (openmoji, twemoji, noto, noto-v1, fluent-emoji*,
emojione*, fxemoji, streamline-emojis). The styles here are none of those:

    apple      emoji-datasource-apple@16.0.0     img/apple/64/<unified>.png (Apple, macOS 15.5)
    facebook   emoji-datasource-facebook@16.0.0  img/facebook/64/<unified>.png (Facebook v9, Emoji 15.0)

Each package carries `emoji.json` (codes in `unified`, `has_img_<vendor>`); only entries whose image
really is the vendor's are used (the flag), each mapped to its emojibase base concept, and only
concepts of the full label space (data/emoji-icons/emoji-concepts.tsv); skin-tone variants and codes
outside that file are skipped, and a concept shown by two codes keeps its first image.

Google's Blob emoji were planned as a third style, but `@svgmoji/blob` (3.1.0 and 3.2.0, the only
versions on the registry) ships no images: just JS, `extra.json` and `missing.json`; the `svg/` and
`sprites/` its readme links to belonged to 2.0.0, which the registry does not have. The
`emoji-datasource-google` and `-twitter` images are Noto and Twemoji, both training styles.

Licences: the emoji-datasource code and data are MIT, but the artwork is not: Apple's images are
© Apple Inc. and not licensed for commercial use, Facebook's have no clear licence. They are used
here for evaluation only, on the local machine: never for training, never committed or shipped
(they go to the git-ignored data/). The package tarballs stay in the cache like the other sources.

Output (under --out): images/<style>/<HEXCODE>.png, 128 px on white like the training renders (the
64 px originals upscaled; the model looks at 64 px anyway), and unseen.jsonl whose rows follow
clipdesk/data/manifests.py plus `heldout` (the concept is one of the held-out concepts).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import shutil
import sys
import tarfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from clipdesk.atomic import write_atomically, write_lines_atomically
from clipdesk.data import DataError, pipeline_main
from clipdesk.data.emoji_labels import SKIN_TONES, EmojiIndex, load_emoji_index, normalise_code
from clipdesk.data.heldout import HeldOut
from clipdesk.data.rasterise import BACKGROUND, SIZE
from clipdesk.data.sources import PACKAGES, Package, fetch, fetch_tarball

REPO = Path(__file__).resolve().parents[2]
DEFAULT_HELDOUT = REPO.parent / "shared" / "eval" / "heldout-emoji-concepts.tsv"
DEFAULT_LABEL_SPACE = Path("data/emoji-icons/emoji-concepts.tsv")
MANIFEST = "unseen.jsonl"
SETTINGS_FILE = ".render.json"
# Upscaling a raster: bicubic, as CLIP's preprocessing resizes, so 128 → 64 at inference is close to the original.
RESAMPLE = "bicubic"


@dataclass(frozen=True)
class Style:
    name: str
    package: Package
    vendor: str   # the emoji-datasource image set: img/<vendor>/64/, has_img_<vendor>
    licence: str


def _datasource(vendor: str, licence: str) -> Style:
    package = Package(f"emoji-datasource-{vendor}", "16.0.0", "MIT (code and data); artwork: see licence",
                      "https://github.com/iamcal/emoji-data", f"{vendor} emoji images, evaluation only")
    return Style(vendor, package, vendor, licence)


STYLES: dict[str, Style] = {
    "apple": _datasource("apple", "proprietary (© Apple Inc., no commercial use): evaluation only, not shipped"),
    "facebook": _datasource("facebook", "proprietary (© Facebook, no clear licence): evaluation only, not shipped"),
}


@dataclass(frozen=True)
class EvalImage:
    style: str
    member: str      # path inside the tarball
    concept: str     # 'emoji:<emojibase hexcode>'
    label: str       # emojibase English label
    heldout: bool

    @property
    def image_path(self) -> str:
        return f"images/{self.style}/{self.concept.split(':', 1)[1]}.png"


def read_label_space(path: Path) -> dict[str, bool]:
    """Concept id → held-out flag, from emoji-concepts.tsv (the full emoji label space of the evaluation)."""
    try:
        with open(path, encoding="utf-8", newline="") as handle:
            return {row["concept"]: row["heldout"] == "1" for row in csv.DictReader(handle, delimiter="\t")}
    except (OSError, KeyError) as error:
        raise DataError(f"cannot read the label space {path}: {error} (build data/emoji-icons first)") from error


def plan_style(style: Style, entries: list[dict], emoji: EmojiIndex, label_space: dict[str, bool] | set[str],
               heldout: HeldOut) -> tuple[list[EvalImage], Counter]:
    """The images to take from one package's emoji.json entries, and why the others were skipped."""
    images: dict[str, EvalImage] = {}
    skipped: Counter = Counter()
    for entry in sorted(entries, key=lambda entry: entry["unified"]):
        code = normalise_code(entry["unified"])
        if not entry.get(f"has_img_{style.vendor}"):
            skipped["no vendor image"] += 1  # the slot would hold another vendor's fallback, or nothing
            continue
        if SKIN_TONES.intersection(code.split("-")):
            skipped["skin tone"] += 1  # swatches and toned variants: the base concept is evaluated once
            continue
        concept = emoji.concept_of_code(code)
        concept_id = f"emoji:{concept.hexcode}" if concept else None
        if concept_id not in label_space:
            skipped["not in label space"] += 1
            continue
        if concept_id in images:
            skipped["concept already shown"] += 1
            continue
        images[concept_id] = EvalImage(style.name, f"package/img/{style.vendor}/64/{entry['image']}", concept_id,
                                       concept.label, heldout.emoji(concept.hexcode, concept.label) is not None)
    # Skin-tone variants nested under `skin_variations` are never read: they are not entries.
    return list(images.values()), skipped


def manifest_row(image: EvalImage, style: Style) -> dict:
    return {"image": image.image_path, "captions": [image.label], "concept": image.concept, "label": image.label,
            "kind": "emoji", "source": style.package.name, "style": style.name, "licence": style.licence,
            "heldout": image.heldout}


def to_eval_png(data: bytes, size: int = SIZE) -> bytes:
    """A vendor PNG as a square `size` px RGB PNG on white (transparency flattened first, then resized)."""
    from PIL import Image

    from clipdesk.runtime.preprocess import to_rgb

    with Image.open(io.BytesIO(data)) as image:
        image.load()
        flat = to_rgb(image)  # alpha composited on white, as the app does with every image
    if flat.width != flat.height:
        side = max(flat.size)
        square = Image.new("RGB", (side, side), BACKGROUND)
        square.paste(flat, ((side - flat.width) // 2, (side - flat.height) // 2))
        flat = square
    flat = flat.resize((size, size), Image.Resampling.BICUBIC)
    buffer = io.BytesIO()
    flat.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def read_package(style: Style, path: Path) -> tuple[list[dict], dict[str, bytes]]:
    """emoji.json and the 64 px images, read straight from the tarball: the sprite sheets are never unpacked."""
    prefix = f"package/img/{style.vendor}/64/"
    entries, version, images = None, None, {}
    try:
        with tarfile.open(path, "r:gz") as archive:
            for member in archive:
                if not member.isfile():
                    continue
                if member.name.startswith(prefix) or member.name in ("package/emoji.json", "package/package.json"):
                    data = archive.extractfile(member).read()
                    if member.name == "package/emoji.json":
                        entries = json.loads(data)
                    elif member.name == "package/package.json":
                        version = json.loads(data).get("version")
                    else:
                        images[member.name] = data
    except (tarfile.TarError, OSError, EOFError, ValueError) as error:
        raise DataError(f"{path} is broken ({error}): delete it and run again to fetch it anew") from error
    if entries is None or not images:
        raise DataError(f"{path} has no package/emoji.json or no {prefix} images: not {style.package.spec}")
    if version != style.package.version:
        raise DataError(f"{path} holds version {version}, expected {style.package.version}")
    return entries, images


def build(out: Path, cache: Path, label_space_path: Path = DEFAULT_LABEL_SPACE, heldout_path: Path = DEFAULT_HELDOUT,
          styles: list[str] | None = None, size: int = SIZE, log=print) -> dict:
    emoji = load_emoji_index(fetch(PACKAGES["emojibase"], cache, log))
    label_space = read_label_space(label_space_path)
    heldout = HeldOut.from_tsv(heldout_path)
    rows, summary = [], {}
    for name in styles or list(STYLES):
        style = STYLES[name]
        entries, originals = read_package(style, fetch_tarball(style.package, cache, log))
        planned, skipped = plan_style(style, entries, emoji, label_space, heldout)
        folder = out / "images" / name
        settings = {"size": size, "background": BACKGROUND, "resample": RESAMPLE, "package": style.package.spec}
        settings_path = folder / SETTINGS_FILE
        if settings_path.exists() and json.loads(settings_path.read_text(encoding="utf-8")) != settings:
            log(f"{name}: render settings changed: rendering every image again")
            shutil.rmtree(folder)
        folder.mkdir(parents=True, exist_ok=True)
        write_atomically(settings_path, (json.dumps(settings, indent=1) + "\n").encode("utf-8"))
        wanted = {image.image_path.rsplit("/", 1)[1] for image in planned}
        for stale in folder.glob("*.png*"):  # images of concepts no longer planned, and leftover .tmp files
            if stale.name not in wanted:
                stale.unlink()
        written = 0
        for number, image in enumerate(planned, 1):
            target = out / image.image_path
            if not target.exists():
                if image.member not in originals:
                    raise DataError(f"{style.package.spec} lacks {image.member} although emoji.json lists it")
                write_atomically(target, to_eval_png(originals[image.member], size))
                written += 1
            if number % 250 == 0 or number == len(planned):
                print(f"\r{name}: {number}/{len(planned)} images ({written} written)", end="", flush=True)
        print(flush=True)
        rows += [manifest_row(image, style) for image in planned]
        summary[name] = {"images": len(planned), "heldout_images": sum(image.heldout for image in planned),
                         "written": written, "skipped": dict(skipped), "package": style.package.spec}
    manifest = out / MANIFEST
    write_lines_atomically(manifest, (json.dumps(row, ensure_ascii=False) for row in rows))
    summary["label_space"] = {"concepts": len(label_space), "heldout": sum(label_space.values())}
    write_atomically(out / "summary.json", (json.dumps(summary, indent=1) + "\n").encode("utf-8"))
    return summary


@pipeline_main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m clipdesk.data.unseen_styles", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="output folder (images/, unseen.jsonl)")
    parser.add_argument("--cache", type=Path, default=Path("data/cache"), help="where fetched packages are kept")
    parser.add_argument("--label-space", type=Path, default=DEFAULT_LABEL_SPACE, help="emoji-concepts.tsv")
    parser.add_argument("--heldout", type=Path, default=DEFAULT_HELDOUT, help="TSV of held-out emoji concepts")
    parser.add_argument("--styles", default=",".join(STYLES),
                        help=f"comma-separated, of: {', '.join(STYLES)} (the manifest lists only these)")
    parser.add_argument("--size", type=int, default=SIZE, help="PNG side in pixels")
    args = parser.parse_args(argv)
    styles = [name.strip() for name in args.styles.split(",") if name.strip()]
    unknown = [name for name in styles if name not in STYLES]
    if unknown:
        parser.error(f"unknown style {', '.join(unknown)} (known: {', '.join(STYLES)})")
    summary = build(args.out, args.cache, args.label_space, args.heldout, styles, args.size)
    space = summary["label_space"]
    for name in styles:
        entry = summary[name]
        print(f"{name}: {entry['images']} images ({entry['images'] / space['concepts']:.1%} of {space['concepts']} "
              f"concepts), {entry['heldout_images']}/{space['heldout']} held-out concepts; skipped: "
              + ", ".join(f"{reason} {count}" for reason, count in sorted(entry["skipped"].items())))
    print(f"manifest: {args.out / MANIFEST}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
