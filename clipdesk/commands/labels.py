"""`clipdesk labels`: named label sets in the library, and running them to suggest tags."""

from __future__ import annotations

from clipdesk.commands.common import DEVICE_CHOICES, TEMPLATE_HELP, print_json, add_model_option


def _print_set(label_set) -> None:
    from clipdesk.tagging.prompts import MODEL_TEMPLATES

    templates = ["the model's templates" if template == MODEL_TEMPLATES else template
                 for template in label_set.templates]
    shown = templates[0] if len(templates) == 1 else f"{len(templates)} templates ({templates[0]} ...)"
    print(f"{label_set.name}: {', '.join(label_set.labels)}  [{shown}]")


def cmd_create(args) -> int:
    from clipdesk.library.store import Library
    from clipdesk.tagging.label_sets import create_label_set
    from clipdesk.tagging.prompts import parse_labels

    with Library() as library:
        label_set = create_label_set(library, args.name, parse_labels(args.labels), args.template, replace=args.replace)
    _print_set(label_set)
    return 0


def cmd_edit(args) -> int:
    from clipdesk.library.store import Library
    from clipdesk.tagging.label_sets import edit_label_set
    from clipdesk.tagging.prompts import parse_labels

    with Library() as library:
        label_set = edit_label_set(library, args.name, labels=parse_labels(args.labels) if args.labels else None,
                                   templates=args.template)
    _print_set(label_set)
    return 0


def cmd_delete(args) -> int:
    from clipdesk.library.store import Library
    from clipdesk.tagging.label_sets import delete_label_set

    with Library() as library:
        delete_label_set(library, args.name)
    print(f"deleted label set {args.name!r} (tags on photos stay)")
    return 0


def cmd_list(args) -> int:
    from clipdesk.library.store import Library
    from clipdesk.tagging.label_sets import label_sets

    with Library() as library:
        sets = label_sets(library)
    if args.json:
        print_json([label_set.to_dict() for label_set in sets])
    elif not sets:
        print("no label sets yet; create one with `clipdesk labels create NAME --labels a,b,c`")
    else:
        for label_set in sets:
            _print_set(label_set)
    return 0


def summary_lines(run) -> list[str]:
    lines = [f"{run.photos} photos scored with {run.label_set!r} ({run.model}): {run.suggested} suggested, "
             f"{run.applied} applied, {run.none} none of these, {run.decided} already tagged by you"
             + (f", {run.rejected} rejected before" if run.rejected else "")]
    if run.examples:
        learned = ", ".join(f"{label} {count}" for label, count in run.examples.items())
        lines.append(f"learned from your tags: {learned}")
    counts: dict[str, list[int]] = {}
    for outcome in run.outcomes:
        if outcome.label is not None and outcome.status in ("suggested", "applied"):
            counts.setdefault(outcome.label, [0, 0])[outcome.status == "applied"] += 1
    for label, (suggested, applied) in sorted(counts.items()):
        lines.append(f"  {label}: {suggested} suggested" + (f", {applied} applied" if applied else ""))
    return lines


def cmd_run(args) -> int:
    from clipdesk.commands.index import StageBars
    from clipdesk.library.pathnames import json_text
    from clipdesk.library.store import Library
    from clipdesk.tagging.suggest import run_label_set

    progress = StageBars()
    with Library() as library:
        try:
            run = run_label_set(library, args.name, args.model, apply_above=args.apply_above, top_k=args.top_k,
                                device=args.device, progress=progress)
        finally:
            progress.finish()
    if args.json:
        print(json_text(run.to_dict()))
    else:
        print("\n".join(summary_lines(run)))
    return 0


def register(commands) -> None:
    labels = commands.add_parser("labels", help="label sets: create, list, edit, run them to suggest tags",
                                 description="Named label sets stored in the library. `run` suggests a label "
                                             "(or none) for every photo; see docs/tagging.md.")
    actions = labels.add_subparsers(dest="labels_command", metavar="ACTION", required=True)

    create = actions.add_parser("create", help="create a label set")
    create.add_argument("name")
    create.add_argument("--labels", required=True, metavar="FILE_OR_LIST",
                        help="a file with one label per line, or a comma-separated list")
    create.add_argument("--template", action="append", metavar="T", help=TEMPLATE_HELP)
    create.add_argument("--replace", action="store_true", help="replace a label set of that name")
    create.set_defaults(handler=cmd_create)

    edit = actions.add_parser("edit", help="change a label set's labels or templates")
    edit.add_argument("name")
    edit.add_argument("--labels", metavar="FILE_OR_LIST", help="the new labels (all of them)")
    edit.add_argument("--template", action="append", metavar="T", help=TEMPLATE_HELP + "; replaces the templates")
    edit.set_defaults(handler=cmd_edit)

    delete = actions.add_parser("delete", help="delete a label set (tags on photos stay)")
    delete.add_argument("name")
    delete.set_defaults(handler=cmd_delete)

    listing = actions.add_parser("list", help="list the label sets")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=cmd_list)

    run = actions.add_parser("run", help="suggest a label (or none) for every photo in the library")
    run.add_argument("name")
    run.add_argument("--apply-above", type=float, metavar="P",
                     help="confirm suggestions with confidence >= P at once (they become your tags)")
    run.add_argument("--top-k", type=int, default=3, metavar="K", help="labels listed per photo in --json (default 3)")
    run.add_argument("--json", action="store_true", help="print every photo's outcome as JSON")
    add_model_option(run)
    run.add_argument("--device", choices=DEVICE_CHOICES, default="auto")
    run.set_defaults(handler=cmd_run)
