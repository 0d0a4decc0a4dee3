"""`clipdesk classify`: sort image files and folders by labels you write, straight from disk."""

from __future__ import annotations

from clipdesk.commands.common import DEVICE_CHOICES, TEMPLATE_HELP, log, add_model_option


def format_result(result, path_text: str) -> str:
    ranked = "  ".join(f"{label} {score:.3f}" for label, score in result.ranked)
    if result.none is not None and result.best is None:
        return f"{path_text}\tnone of these {result.none:.3f}  ({ranked})"
    return f"{path_text}\t{ranked}" + (f"  none of these {result.none:.3f}" if result.none is not None else "")


def cmd_classify(args) -> int:
    from clipdesk.errors import ClipdeskError
    from clipdesk.library.pathnames import display_path, json_text
    from clipdesk.progress import TerminalBar
    from clipdesk.runtime.encoders import load_model
    from clipdesk.tagging.classify import classify_files, find_photo_files
    from clipdesk.tagging.prompts import parse_labels, resolve_templates
    from clipdesk.tagging.zero_shot import zero_shot_classifier

    if args.top_k is not None and args.top_k < 1:
        raise ClipdeskError(f"--top-k must be at least 1 (got {args.top_k})")
    labels = parse_labels(args.labels)
    resolve_templates(args.template)  # a bad template fails before the model loads
    files = find_photo_files(args.paths)
    if not files:
        raise ClipdeskError("no photo files found in " + ", ".join(display_path(path) for path in args.paths))
    model = load_model(args.model, device=args.device)
    unread = model.text.unread(labels)
    if unread:
        from clipdesk.runtime.lexicon import unread_note

        log("note: " + unread_note(model.name, unread))
    templates = resolve_templates(args.template, model.package.manifest.templates)
    classifier = zero_shot_classifier(model, labels, templates, open_set=not args.closed_set)
    bar = TerminalBar("classifying", unit="files")
    try:
        results = classify_files(model, files, classifier, top_k=args.top_k, progress=bar)
    finally:
        bar.finish()
    failed = [result for result in results if result.error]
    for result in failed:
        log(f"clipdesk: skipped: {result.error}")
    done = [result for result in results if not result.error]
    if args.json:
        print(json_text([result.to_dict() for result in done]))
    else:
        for result in done:
            print(format_result(result, display_path(result.path)))
    return 1 if failed else 0


def register(commands) -> None:
    classify = commands.add_parser(
        "classify", help="sort image files by labels you write (zero-shot, no library needed)",
        description="Score image files and folders against labels, straight from disk. Scores are confidences "
                    "that sum to 1 with 'none of these' (see docs/tagging.md).")
    classify.add_argument("paths", nargs="+", metavar="PATH", help="image files or folders (searched recursively)")
    classify.add_argument("--labels", required=True, metavar="FILE_OR_LIST",
                          help="a file with one label per line, or a comma-separated list")
    classify.add_argument("--template", action="append", metavar="T", help=TEMPLATE_HELP)
    classify.add_argument("--top-k", type=int, default=None, metavar="K", help="labels shown per file (default all)")
    classify.add_argument("--closed-set", action="store_true",
                          help="always pick one of the labels (no 'none of these')")
    classify.add_argument("--json", action="store_true",
                          help='print [{"path", "labels": [{"label", "score"}], "none"}], scores best first')
    add_model_option(classify)
    classify.add_argument("--device", choices=DEVICE_CHOICES, default="auto")
    classify.set_defaults(handler=cmd_classify)
