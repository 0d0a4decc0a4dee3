"""`clipdesk tag`: your own tags on photos (add, remove, list), suggestions, and keywords from sidecars."""

from __future__ import annotations

from clipdesk.commands.common import log


def cmd_add(args) -> int:
    from clipdesk.library.store import Library
    from clipdesk.tagging.tags import add_tags, photo_ids_for_paths

    with Library() as library:
        ids = photo_ids_for_paths(library, args.paths)
        changed = add_tags(library, ids, [args.tag])
    print(f"tagged {changed} photo{'s' if changed != 1 else ''} {args.tag!r} ({len(ids) - changed} had it already)")
    return 0


def cmd_remove(args) -> int:
    from clipdesk.library.store import Library
    from clipdesk.tagging.tags import photo_ids_for_paths, remove_tags

    with Library() as library:
        removed = remove_tags(library, photo_ids_for_paths(library, args.paths), [args.tag])
    print(f"removed {args.tag!r} from {removed} photo{'s' if removed != 1 else ''}")
    return 0


def cmd_accept(args) -> int:
    from clipdesk.library.store import Library
    from clipdesk.tagging.tags import accept_suggestions, photo_ids_for_paths, reject_suggestions

    with Library() as library:
        ids = photo_ids_for_paths(library, args.paths)
        action = accept_suggestions if args.tag_command == "accept" else reject_suggestions
        count = action(library, ids, args.tag)
    print(f"{args.tag_command}ed {count} suggestion{'s' if count != 1 else ''} of {args.tag!r}")
    return 0


def cmd_list(args) -> int:
    from clipdesk.library.pathnames import display_path, json_text
    from clipdesk.library.store import Library
    from clipdesk.tagging.tags import photo_ids_for_paths, tag_counts, tags_of_photos

    with Library() as library:
        if args.paths:
            ids = photo_ids_for_paths(library, args.paths)
            paths = dict(zip(ids, library.photo_paths(ids)))
            tagged = tags_of_photos(library, ids)
            rows = [{"path": paths[i], "tags": [t.name for t in tags if t.source == "user"],
                     "suggestions": [{"tag": t.name, "confidence": t.confidence} for t in tags if t.source != "user"]}
                    for i, tags in tagged.items()]
            if args.json:
                print(json_text(rows))
            for row in rows if not args.json else []:
                suggested = ", ".join(f"{s['tag']}? {s['confidence'] or 0:.2f}" for s in row["suggestions"])
                tags = ", ".join(row["tags"]) or "-"
                print(f"{display_path(row['path'])}: {tags}" + (f"  ({suggested})" if suggested else ""))
            return 0
        counts = tag_counts(library)
    if args.json:
        print(json_text([count.to_dict() for count in counts]))
    elif not counts:
        print("no tags yet; add one with `clipdesk tag add TAG PATH...` or run a label set")
    else:
        for count in counts:
            suggested = f"  (+{count.suggested} suggested)" if count.suggested else ""
            print(f"{count.photos:>8}  {count.name}{suggested}")
    return 0


def cmd_suggestions(args) -> int:
    from clipdesk.library.pathnames import display_path, json_text
    from clipdesk.library.store import Library
    from clipdesk.tagging.label_sets import get_label_set
    from clipdesk.tagging.tags import suggestions

    with Library() as library:
        labels = get_label_set(library, args.label_set).labels if args.label_set else None
        grouped = suggestions(library, labels, min_confidence=args.min_confidence)
    if args.json:
        print(json_text({tag: [{"path": s.path, "confidence": s.confidence} for s in items]
                         for tag, items in grouped.items()}))
    elif not grouped:
        print("no open suggestions; run a label set with `clipdesk labels run NAME`")
    else:
        for tag, items in grouped.items():
            print(f"{tag}: {len(items)}")
            for item in items:
                print(f"  {item.confidence or 0:.3f}  {display_path(item.path)}")
    return 0


def cmd_import(args) -> int:
    from clipdesk.library.store import Library
    from clipdesk.progress import TerminalBar
    from clipdesk.tagging.keywords import import_keywords
    from clipdesk.tagging.tags import photo_ids_for_paths

    bar = TerminalBar("reading keywords", unit="photos")
    with Library() as library:
        ids = photo_ids_for_paths(library, args.paths) if args.paths else None
        try:
            summary = import_keywords(library, ids, progress=bar)
        finally:
            bar.finish()
    for path in summary.unreadable:
        log(f"note: {path}: not there any more")
    print(f"read {summary.photos} photos: {summary.with_keywords} had keywords, {summary.added} tags added")
    return 0


def register(commands) -> None:
    tag = commands.add_parser("tag", help="your tags on photos: add, remove, list, accept suggestions, import keywords",
                              description="Tags you confirm are yours: label-set suggestions never replace them. "
                                          "PATH is a photo or a folder of the library.")
    actions = tag.add_subparsers(dest="tag_command", metavar="ACTION", required=True)
    for name, handler, text in (("add", cmd_add, "tag photos (confirms a suggestion of that tag)"),
                                ("remove", cmd_remove, "untag photos (not suggested again)"),
                                ("accept", cmd_accept, "confirm suggestions of TAG on these photos"),
                                ("reject", cmd_accept, "drop suggestions of TAG on these photos for good")):
        action = actions.add_parser(name, help=text)
        action.add_argument("tag")
        action.add_argument("paths", nargs="+", metavar="PATH")
        action.set_defaults(handler=handler)
    listing = actions.add_parser("list", help="tags with photo counts, or the tags of given photos")
    listing.add_argument("paths", nargs="*", metavar="PATH")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=cmd_list)
    pending = actions.add_parser("suggestions", help="open suggestions by tag, most confident first")
    pending.add_argument("--label-set", metavar="NAME", help="only this label set's labels")
    pending.add_argument("--min-confidence", type=float, default=0.0, metavar="P")
    pending.add_argument("--json", action="store_true")
    pending.set_defaults(handler=cmd_suggestions)
    keywords = actions.add_parser("import", help="read keywords from XMP sidecars and embedded XMP/IPTC into tags")
    keywords.add_argument("paths", nargs="*", metavar="PATH", help="photos or folders (default: the whole library)")
    keywords.set_defaults(handler=cmd_import)
