"""`clipdesk duplicates`: groups of identical photos and of near-duplicates, largest first."""

from __future__ import annotations

from clipdesk.commands.common import add_model_option
from clipdesk.search import DEFAULT_DUPLICATE_THRESHOLD as DEFAULT_THRESHOLD


def cmd_duplicates(args) -> int:
    from clipdesk.commands.common import log
    from clipdesk.errors import ModelPackageError
    from clipdesk.library.pathnames import display_path, json_text
    from clipdesk.library.store import Library
    from clipdesk.search.duplicates import find_duplicates
    from clipdesk.search.searcher import Searcher

    with Library() as library:
        try:
            searcher = Searcher(library, args.model)
        except ModelPackageError:
            if args.model is not None:
                raise
            searcher = None
        if searcher is None or not searcher.item_count:
            log("note: no photos are indexed with the model, so only exact copies are looked for")
        groups = find_duplicates(library, searcher.item_blocks() if searcher else None, args.threshold,
                                 searcher.frames_of if searcher else None)
    if args.json:
        print(json_text([group.to_dict() for group in groups]))
    elif not groups:
        print("no duplicates found")
    else:
        for group in groups:
            what = "identical" if group.kind == "exact" else f"near-duplicates, similarity >= {group.similarity:.4f}"
            print(f"{len(group.paths)} photos, {what}:")
            for path in group.paths:
                print(f"  {display_path(path)}")
    return 0


def register(commands) -> None:
    duplicates = commands.add_parser(
        "duplicates", help="groups of identical photos and of near-duplicates, largest first",
        description="Exact copies (same bytes) and near-duplicates (embeddings at least THRESHOLD alike, e.g. "
                    "resized or re-saved copies); near groups list one photo per distinct content.")
    duplicates.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD, metavar="T",
                            help=f"cosine similarity from which photos count as near-duplicates (default "
                                 f"{DEFAULT_THRESHOLD}; lower values also group similar shots)")
    duplicates.add_argument("--json", action="store_true",
                            help='print [{"kind": "exact"|"near", "similarity": ..., "paths": [...]}]')
    add_model_option(duplicates)
    duplicates.set_defaults(handler=cmd_duplicates)
