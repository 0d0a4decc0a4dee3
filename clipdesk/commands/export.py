"""`clipdesk export`: tags to XMP sidecars, CSV or JSON, or tagged photos gathered in a folder."""

from __future__ import annotations

from clipdesk.commands.common import log


def cmd_xmp(args) -> int:
    from clipdesk.library.store import Library
    from clipdesk.progress import TerminalBar
    from clipdesk.tagging.xmp_export import export_sidecars

    bar = TerminalBar("writing sidecars", unit="photos")
    with Library() as library:
        try:
            summary = export_sidecars(library, args.tag, naming=args.naming, progress=bar)
        finally:
            bar.finish()
    for line in summary.failed:
        log(f"clipdesk: {line}")
    print(f"{summary.photos} photos: {summary.written} sidecars written, {summary.unchanged} already up to date, "
          f"{len(summary.failed)} failed")
    return 1 if summary.failed else 0


def cmd_table(args) -> int:
    from clipdesk.library.store import Library
    from clipdesk.tagging.csv_export import export_rows, write_csv, write_json

    with Library() as library:
        rows = export_rows(library, args.tag)
    (write_csv if args.export_command == "csv" else write_json)(rows, args.out, overwrite=args.overwrite)
    print(f"wrote {len(rows)} photos to {args.out}")
    return 0


def cmd_copy(args) -> int:
    from clipdesk.library.store import Library
    from clipdesk.tagging.copy_export import copy_tagged

    with Library() as library:
        summary = copy_tagged(library, args.tag, args.to, link=args.link)
    for line in summary.failed:
        log(f"clipdesk: {line}")
    made = "linked" if args.link else "copied"
    print(f"{summary.copied} photos {made} to {args.to}, {summary.already} already there, {len(summary.failed)} failed")
    return 1 if summary.failed else 0


def register(commands) -> None:
    export = commands.add_parser("export", help="tags to XMP sidecars, CSV or JSON; tagged photos to a folder")
    actions = export.add_subparsers(dest="export_command", metavar="FORMAT", required=True)
    xmp = actions.add_parser("xmp", help="write your tags into XMP sidecars beside the photos (photos untouched)",
                             description="Merges dc:subject (and lr:hierarchicalSubject 'label set|label') into "
                                         "each photo's sidecar, keeping what other programs wrote there.")
    xmp.add_argument("--tag", help="only this tag (default: all of each photo's tags)")
    xmp.add_argument("--naming", choices=("ext", "stem"), default="ext",
                     help="sidecar name: photo.jpg.xmp (ext, default: darktable, digiKam) or photo.xmp "
                          "(stem: Lightroom)")
    xmp.set_defaults(handler=cmd_xmp)
    for name in ("csv", "json"):
        table = actions.add_parser(name, help=f"one {name.upper()} row per photo: path, tags, suggestion scores, "
                                              "date taken")
        table.add_argument("out", metavar=f"OUT.{name}")
        table.add_argument("--tag", help="only photos with this tag")
        table.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")
        table.set_defaults(handler=cmd_table)
    copy = actions.add_parser("copy", help="copy (or link) the photos with a tag into a folder, never overwriting")
    copy.add_argument("--tag", required=True)
    copy.add_argument("--to", required=True, metavar="DIR")
    copy.add_argument("--link", action="store_true", help="make symbolic links instead of copies")
    copy.set_defaults(handler=cmd_copy)
