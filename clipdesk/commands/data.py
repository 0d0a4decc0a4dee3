"""`clipdesk data`: training data from the library. `from-library` writes a manifest for `clipdesk train`
from photos and the tags you confirmed. Run side: no torch."""

from __future__ import annotations


def cmd_from_library(args) -> int:
    from clipdesk.library.pathnames import json_text
    from clipdesk.library.store import Library
    from clipdesk.tagging.training_manifest import write_manifest

    with Library() as library:
        summary = write_manifest(library, args.out, args.tags)
    print(json_text(summary.to_dict()) if args.json else summary.line())
    return 0


def register(commands) -> None:
    data = commands.add_parser("data", help="training data from the library (a manifest for `clipdesk train`)")
    actions = data.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    library = actions.add_parser(
        "from-library", help="write a JSONL manifest from library photos and their confirmed tags",
        description="One row per photo with a confirmed tag (suggestions are left out), captions phrased from "
                    "its tags. Photos whose file is gone or unreadable are skipped and counted.")
    library.add_argument("out", metavar="OUT.jsonl")
    library.add_argument("--tag", dest="tags", action="append", metavar="TAG",
                         help="use this tag (repeat for more; default: every confirmed tag)")
    library.add_argument("--json", action="store_true", help="print the summary as JSON")
    library.set_defaults(handler=cmd_from_library)
