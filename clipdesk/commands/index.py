"""`clipdesk index`, `clipdesk errors`, `clipdesk folders`: build the photo library and look after it."""

from __future__ import annotations

from clipdesk.commands.common import DEVICE_CHOICES, log, add_model_option
from clipdesk.progress import Progress, TerminalBar


class StageBars(Progress):
    """One terminal bar per stage ("scanning", then "indexing"), so rates and ETA belong to one stage."""

    def __init__(self) -> None:
        super().__init__()
        self._bars: dict[str, TerminalBar] = {}

    def update(self, done: int, total: int | None, stage: str = "indexing", **facts) -> None:
        if stage not in self._bars:
            for bar in self._bars.values():
                bar.finish()
            self._bars[stage] = TerminalBar(stage, unit="files")
        self._bars[stage].update(done, total, **facts)

    def finish(self, message: str = "") -> None:
        for bar in self._bars.values():
            bar.finish()
        if message:
            log(message)


def summary_line(summary) -> str:
    folders = f"{summary.folders} folder" + ("s" if summary.folders != 1 else "")
    counts = [f"{summary.indexed} indexed", f"{summary.embedded} embedded"]
    if summary.reused:
        counts.append(f"{summary.reused} copied from identical photos")
    counts += [f"{summary.unchanged} unchanged", f"{summary.moved} moved", f"{summary.removed} removed",
               f"{summary.failed} failed"]
    line = f"{summary.scanned} files in {folders}: {', '.join(counts)} ({summary.seconds:.1f} s)"
    if summary.damaged_vectors:
        line += f"; {summary.damaged_vectors} damaged vector{'s' if summary.damaged_vectors != 1 else ''} re-made"
    if summary.cancelled:
        line = "cancelled, run again to resume; " + line
    if summary.errors:
        line += f"; {summary.errors} problem{'s' if summary.errors != 1 else ''} in the library, see `clipdesk errors`"
    return line


def cmd_index(args) -> int:
    from clipdesk.library.indexer import index_folders
    from clipdesk.library.pathnames import json_text
    from clipdesk.library.store import Library

    progress = StageBars()
    with Library() as library:
        try:
            summary = index_folders(library, args.paths or None, args.model, progress=progress,
                                    batch_size=args.batch_size, workers=args.workers, device=args.device)
        finally:
            progress.finish()
    for problem in summary.folder_problems:
        log(f"note: {problem}")
    if summary.videos_skipped:
        from clipdesk.runtime.video_frames import video_support

        count = summary.videos_skipped
        log(f"note: {count:,} video{'s' if count != 1 else ''} skipped: {video_support()}")
    print(json_text(summary.to_dict()) if args.json else summary_line(summary))
    return 0


def damaged_vector_records(library) -> list:
    """The default model's damaged vectors, as problems: left out of search until `clipdesk index` re-makes them."""
    from clipdesk.errors import ClipdeskError
    from clipdesk.library.records import ErrorRecord
    from clipdesk.library.store import embedding_model_key
    from clipdesk.runtime.registry import resolve_model

    try:
        package = resolve_model(None)
    except ClipdeskError:
        return []
    ids = library.damaged_embeddings(embedding_model_key(package)).tolist()
    reason = f"its {package.name} vector is damaged: left out of search until `clipdesk index` makes it again"
    return [ErrorRecord(path, reason, "vector", photo_id, None)
            for photo_id, path in zip(ids, library.photo_paths(ids)) if path is not None]


def cmd_errors(args) -> int:
    from clipdesk.library.pathnames import display_path, json_text
    from clipdesk.library.store import Library

    with Library() as library:
        records = library.errors() + damaged_vector_records(library)
    if args.json:
        print(json_text([{"path": r.path, "error": r.error, "kind": r.kind, "photo_id": r.photo_id} for r in records]))
    elif not records:
        print("no indexing problems")
    else:
        for record in records:
            print(f"{display_path(record.path)}: {record.error}")
    return 0


def cmd_folders(args) -> int:
    from clipdesk.library.pathnames import display_path, json_text
    from clipdesk.library.store import Library

    with Library() as library:
        folders, counts = library.folders(), library.photo_counts_by_folder()
    rows = [{"path": folder.path, "photos": counts.get(folder.id, 0), "added_at": folder.added_at}
            for folder in folders]
    if args.json:
        print(json_text(rows))
    elif not rows:
        print("no folders in the library; add one with `clipdesk index FOLDER`")
    else:
        for row in rows:
            print(f"{row['photos']:>8} photos  {display_path(row['path'])}")
    return 0


def cmd_folders_remove(args) -> int:
    from clipdesk.library.pathnames import display_path
    from clipdesk.library.store import Library

    with Library() as library:
        removed = library.remove_folder(args.path)
    print(f"removed {display_path(args.path)} from the library ({removed} photos; the files are untouched)")
    return 0


def register(commands) -> None:
    index = commands.add_parser(
        "index", help="add folders to the photo library and index them (no PATH: refresh every library folder)",
        description="Add folders to the photo library and index their photos; run it again to pick up changes. "
                    "Only new or changed files are read; moved photos keep their tags.")
    index.add_argument("paths", nargs="*", metavar="PATH", help="a folder of photos (default: every library folder)")
    add_model_option(index)
    index.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    index.add_argument("--batch-size", type=int, default=32, help="photos per model call and per commit (default 32)")
    index.add_argument("--workers", type=int, default=None, help="decoding threads (default: one per CPU)")
    index.add_argument("--device", choices=DEVICE_CHOICES, default="auto")
    index.set_defaults(handler=cmd_index)

    errors = commands.add_parser("errors", help="files and folders that could not be indexed, with the reason")
    errors.add_argument("--json", action="store_true")
    errors.set_defaults(handler=cmd_errors)

    folders = commands.add_parser("folders", help="list the library's folders, or remove one")
    folders.add_argument("--json", action="store_true")
    folders.set_defaults(handler=cmd_folders)
    actions = folders.add_subparsers(dest="folders_command", metavar="ACTION")
    remove = actions.add_parser("remove", help="remove a folder and its photos from the library (files untouched)")
    remove.add_argument("path")
    remove.set_defaults(handler=cmd_folders_remove)
