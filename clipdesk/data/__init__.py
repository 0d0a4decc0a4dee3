"""The data pipeline for clipdesk's own default model: open emoji and icon sets → PNG + JSONL manifests.

Train side only (no torch here, but never imported by the run side either). Entry point:
`python -m clipdesk.data.build_dataset --out data/emoji-icons`.

    sources       pinned npm packages, fetched once into a cache
    licences      which set licences may feed redistributed weights, and why
    iconify       @iconify/json sets: icons, aliases, transforms, SVG documents
    emoji_labels  emojibase labels/tags (many languages) and openmoji tags, joined by code or slug
    icon_tags     tags from the icon packages' own metadata (mdi, tabler, lucide, Font Awesome)
    heldout       concepts kept out of training, in every style, source and language
    catalogue     every image to render, with its texts, after licence, held-out and duplicate filters
    rasterise     SVG → PNG with resvg, parallel, resumable
    captions      several phrasings per image
    manifests     train/val split, JSONL manifests, zero-shot label files
    attribution   ATTRIBUTION.md for the sets used
    training_mix  the default model's emoji-weighted, multilingual training mix
    unseen_styles emoji art styles never trained on, for evaluation only
"""

import functools
import sys

from clipdesk.errors import ClipdeskError


class DataError(ClipdeskError):
    """A data-pipeline step that cannot go on: a package that cannot be fetched, a malformed file."""


def pipeline_main(main):
    """Wrap a pipeline step's `main(argv)`: a ClipdeskError ends it with one line on stderr (exit 1),
    Ctrl-C with how to go on (exit 130): every step resumes when run again."""
    @functools.wraps(main)
    def run(argv: list[str] | None = None) -> int:
        try:
            return main(argv)
        except ClipdeskError as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            print("interrupted: run the same command again to resume", file=sys.stderr)
            return 130
    return run
