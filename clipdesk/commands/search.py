"""`clipdesk search`: find photos by text, by example photos, or both, with filters."""

from __future__ import annotations

import argparse

from clipdesk.commands.common import DEVICE_CHOICES
from clipdesk.search import DEFAULT_K

QUERY_HELP = """\
query language (put the whole query in single quotes):
  kids on a beach               words form one text term
  "2:red car" + beach - people  weighted terms: 2 x "red car", plus "beach", minus "people"
  -people on bikes              a sign or weight starts a new term; following words join it
  ~/Pictures/dog.jpg + snow     a path ending in an image extension is an image term
  like:scan.dat                 image term for any file name; --like PATH does the same
  tag:family  -tag:work         photos with (without) a confirmed tag; several tag: must all match
  folder:~/Pictures  -folder:X  photos in (not in) a folder; several folder: match any of them
  after:2020  before:2021-03    taken on/after the start of, before the start of, a year, month or day
  date:2023-06  date:2019..2021 taken within a period, or from the start of one to the end of another
  is:video  is:photo            only videos, only photos (-is:video is is:photo)
  "tag:x"                       quotes make text of anything (\\" is a quote inside quotes)
  clipdesk search -- '-people'  a query that starts with '-' goes after --
Scores are cosine similarities (higher is closer). A query of filters alone lists matching photos,
newest first, without scores. Details: docs/search.md."""


def cmd_search(args) -> int:
    from clipdesk.commands.common import log
    from clipdesk.library.pathnames import display_path, json_text
    from clipdesk.library.sample_library import keep_sample_apart, sample_apart
    from clipdesk.library.store import Library
    from clipdesk.runtime.lexicon import unread_note
    from clipdesk.search.query import parse_query
    from clipdesk.search.searcher import Searcher

    query = " ".join(args.query)
    with Library() as library:
        searcher = Searcher(library, args.model, device=args.device)
        sample = sample_apart(library.folders(), library.photo_counts_by_folder())
        parsed, said = keep_sample_apart(parse_query(query, args.like), sample, args.with_sample)
        results = searcher.search(parsed, k=args.k, prompt=args.prompt)
        unread = searcher.unread_words(query, args.like)
    if unread:
        log("note: " + unread_note(searcher.clip.name, unread))
    if said is not None:
        log("note: these results include the sample library (emoji and icons, not your photos)" if said[1] else
            "note: the sample library (emoji and icons) is kept out of these results; --with-sample includes it")
    if args.json:
        print(json_text([result.to_dict() for result in results]))
    elif not results:
        log("no matching photos")
    else:
        for result in results:
            score = "     -" if result.score is None else f"{result.score:6.4f}"
            print(f"{score}  {display_path(result.path)}{video_note(result)}")
    return 0


def video_note(result) -> str:
    """"  (video, 1:30; best at 0:42)" after a video's path; nothing for a photo."""
    if result.duration is None:
        return ""
    from clipdesk.runtime.video_frames import clock

    moment = "" if result.time is None else f"; best at {clock(result.time)}"
    return f"  (video, {clock(result.duration)}{moment})"


def register(commands) -> None:
    search = commands.add_parser(
        "search", help="find photos by what is in them (text, example photos, filters)",
        description="Find photos in the library by text, by example photos, or both, narrowed by filters.",
        epilog=QUERY_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    search.add_argument("query", nargs="*", metavar="QUERY",
                        help="the query (several arguments are joined with spaces)")
    search.add_argument("-k", type=int, default=DEFAULT_K, metavar="N",
                        help=f"how many photos to show (default {DEFAULT_K})")
    search.add_argument("--json", action="store_true",
                        help='print [{"path": ..., "score": ...}], best first; videos add "time" (seconds, the best '
                             'frame\'s moment) and "duration"')
    search.add_argument("--like", action="append", default=[], metavar="PATH",
                        help="a photo to find similar ones to (repeatable; mixes with the query)")
    search.add_argument("--model", help="registered model name or model package folder (default: the default "
                                        "model); must be the one the library was indexed with")
    search.add_argument("--prompt", metavar="TEMPLATE",
                        help="wrap text terms of up to 3 words, e.g. 'a photo of {}.' (off by default: not "
                             "yet shown to help with clipdesk's models)")
    search.add_argument("--with-sample", action="store_true",
                        help="include the sample library's emoji and icons beside your photos (they are kept out "
                             "when the library holds both)")
    search.add_argument("--device", choices=DEVICE_CHOICES, default="auto")
    search.set_defaults(handler=cmd_search)
