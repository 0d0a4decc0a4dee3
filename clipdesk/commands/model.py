"""`clipdesk model ...`: list, import, export, choose, remove and verify models."""

from __future__ import annotations

import sys
from pathlib import Path

from clipdesk.commands.common import DEVICE_CHOICES, log, print_json
from clipdesk.errors import ClipdeskError

PRECISION_CHOICES = ("fp32", "fp16", "int8")
ACTIVATION_CHOICES = ("quick_gelu", "gelu")


def cmd_list(args) -> int:
    from clipdesk.runtime.encoders import runtime_device
    from clipdesk.runtime.package import load_package
    from clipdesk.runtime.registry import default_model_name, model_entries

    default = default_model_name()
    device = runtime_device(args.device)
    rows = []
    for entry in model_entries().values():
        try:
            manifest = load_package(entry.path).manifest
            details = {"embed_dim": manifest.embed_dim, "image_size": manifest.image_resolution,
                       "precision": manifest.precision, "error": None}
        except ClipdeskError as exc:
            details = {"embed_dim": None, "image_size": None, "precision": None, "error": str(exc)}
        rows.append({"name": entry.name, "path": str(entry.path), "default": entry.name == default,
                     "bundled": entry.bundled, "provider": device, **details})
    if args.json:
        print_json(rows)
    elif not rows:
        print("no models installed; import one with `clipdesk model import CHECKPOINT`")
    else:
        for row in rows:
            mark = "*" if row["default"] else " "
            facts = (f"embed {row['embed_dim']}, {row['image_size']} px, {row['precision']}, {row['provider']}"
                     if row["error"] is None else f"BROKEN: {row['error']}")
            print(f"{mark} {row['name']:<24} {facts}  {row['path']}")
    return 0


def cmd_import(args) -> int:
    from clipdesk.runtime.package_import import import_package, is_package_source
    from clipdesk.runtime.registry import clean_staging_leftovers, set_default_model

    clean_staging_leftovers()
    source = Path(args.path)
    if not source.exists():
        raise ClipdeskError(f"{source}: no such file or folder")
    if is_package_source(source):
        package = import_package(source, args.name)
        if args.default:
            set_default_model(package.name)
    else:
        from clipdesk.checkpoint.importer import import_checkpoint

        package = import_checkpoint(source, name=args.name, activation=args.activation, precision=args.precision,
                                    license=args.license, description=args.description, templates=args.templates,
                                    make_default=args.default, legacy_loader=legacy_loader(), log=log)
    print(f"imported {package.name} -> {package.path}" + (" (default)" if args.default else ""))
    return 0


def cmd_export(args) -> int:
    from clipdesk.checkpoint.importer import export_checkpoint

    package = export_checkpoint(args.checkpoint, args.out_dir, name=args.name, activation=args.activation,
                                precision=args.precision, license=args.license, description=args.description,
                                templates=args.templates, lexicon=args.lexicon, legacy_loader=legacy_loader(),
                                log=log)
    print(f"wrote {package.path}")
    return 0


def legacy_loader():
    """torch.load for PyTorch's pre-1.6 format where torch is installed; everything else reads without it.
    torch is imported only if such a file comes: importing it costs seconds that other imports need not pay."""
    import importlib.util

    if importlib.util.find_spec("torch") is None:
        return None

    def load(path):
        from clipdesk.model.checkpoints import legacy_load

        return legacy_load(path)

    return load


def cmd_default(args) -> int:
    from clipdesk.runtime.registry import set_default_model

    set_default_model(args.name)
    print(f"default model: {args.name}")
    return 0


def cmd_remove(args) -> int:
    from clipdesk.runtime.registry import remove_model

    remove_model(args.name)
    print(f"removed {args.name}")
    return 0


def cmd_verify(args) -> int:
    from clipdesk.runtime.registry import resolve_model

    from clipdesk.runtime.package_import import check_package

    package = resolve_model(args.model)
    print(f"{package.name}: {check_package(package)}")
    return 0


def cmd_catalog(args) -> int:
    from clipdesk.runtime.catalog import load_catalog
    from clipdesk.runtime.registry import model_entries

    installed = model_entries()
    entries = list(load_catalog(args.catalog).values())
    if args.json:
        print_json([{**entry.to_json(), "installed": entry.package_name in installed} for entry in entries])
        return 0
    for entry in entries:
        mark = "*" if entry.recommended else " "
        top1 = (entry.imagenet_zero_shot or {}).get("top1")
        quality = f"ImageNet zero-shot {top1:.1f} %" if top1 is not None else "no ImageNet figure"
        variants = f"; variants: {', '.join(entry.variants)}" if entry.variants else ""
        state = "  [installed]" if entry.package_name in installed else ""
        print(f"{mark} {entry.name:<28} {entry.download_mb:>6,.0f} MB  {quality}  licence {entry.licence}{variants}{state}")
        print(f"  {entry.title}: {entry.about}" + (f" Needs {entry.needs}." if entry.needs else ""))
    print("* recommended. Get one with `clipdesk model get NAME`.")
    return 0


def cmd_get(args) -> int:
    from clipdesk.hub.client import HubClient
    from clipdesk.progress import TerminalBar
    from clipdesk.runtime.catalog import REPO_PATTERN, find_entry, load_catalog
    from clipdesk.runtime.model_get import entry_for_repo, get_model, licence_texts, prepare_download

    client = HubClient()
    catalog = load_catalog(args.catalog)
    if REPO_PATTERN.match(args.name) and args.name not in catalog:  # any OpenCLIP or transformers CLIP repository
        entry = entry_for_repo(args.name, client).choose(args.variant)
    else:
        entry = find_entry(args.name, catalog).choose(args.variant)
    log(f"{entry.title} ({entry.package_name}) from {client.endpoint}/{entry.repo}, about {entry.download_mb:,.0f} MB")
    plan = prepare_download(entry, client)
    log(f"licence: {entry.licence}")
    for name, text in licence_texts(plan, max_lines=40):
        log(f"--- {name} ---\n{text}")
    if not args.yes:
        if not sys.stdin.isatty():
            raise ClipdeskError("pass --yes to accept the licence and download without a question")
        answer = input(f"Accept the licence and download {plan.remaining_bytes / 1e6:,.0f} MB? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            log("nothing downloaded")
            return 1
    bar = TerminalBar("downloading", unit="bytes")
    try:
        package = get_model(entry, plan=plan, client=client, progress=bar, make_default=args.default,
                            device=args.device, log=log)
    except KeyboardInterrupt:
        bar.finish("download interrupted; run the same command again to resume where it stopped")
        raise
    bar.finish()
    print(f"installed {package.name} -> {package.path}" + (" (default)" if args.default else ""))
    return 0


def _conversion_options(sub) -> None:
    sub.add_argument("--name", help="model name (default: from the file name or manifest)")
    sub.add_argument("--activation", choices=ACTIVATION_CHOICES,
                     help="MLP activation when the checkpoint does not record it (default quick_gelu, OpenAI's)")
    sub.add_argument("--precision", choices=PRECISION_CHOICES, default="fp32",
                     help="fp32 (default); fp16 stores half-size weights; int8 stores quarter-size weights, one scale per "
                          "output channel (the arithmetic stays float32)")
    sub.add_argument("--license", default="unknown", help="licence of the weights, recorded in the manifest")
    sub.add_argument("--description", default="", help="what the model knows, shown to users (manifest)")
    sub.add_argument("--template", dest="templates", action="append", default=[], metavar="T",
                     help="prompt template with {} for the label that this model tags best with (repeatable; "
                          "manifest): used when a label set or `classify` names no template")


def register(commands) -> None:
    model = commands.add_parser("model", help="list, import, export and choose models")
    actions = model.add_subparsers(dest="model_command", metavar="ACTION", required=True)

    listing = actions.add_parser("list", help="installed models")
    listing.add_argument("--json", action="store_true")
    listing.add_argument("--device", choices=DEVICE_CHOICES, default="auto")
    listing.set_defaults(handler=cmd_list)

    importing = actions.add_parser(
        "import", help="import an OpenAI/OpenCLIP/Hugging Face checkpoint, or a ready model package")
    importing.add_argument("path", help="checkpoint file, Hugging Face model folder, or model package folder/.zip")
    importing.add_argument("--default", action="store_true", help="make it the default model")
    _conversion_options(importing)
    importing.set_defaults(handler=cmd_import)

    exporting = actions.add_parser("export", help="convert a checkpoint into a model package folder")
    exporting.add_argument("checkpoint")
    exporting.add_argument("out_dir")
    _conversion_options(exporting)
    exporting.add_argument("--lexicon", metavar="LEXICON.json",
                           help="put this lexicon (python -m clipdesk.data.lexicon, from the model's training "
                                "captions) into the package: words the model never read are looked up in it")
    exporting.set_defaults(handler=cmd_export)

    catalog = actions.add_parser("catalog", help="models you can get from the model hub")
    catalog.add_argument("--json", action="store_true")
    catalog.add_argument("--catalog", metavar="FILE", help="a catalog file whose entries add to or replace the shipped ones")
    catalog.set_defaults(handler=cmd_catalog)

    get = actions.add_parser("get", help="download a model from the catalog, verify it and install it")
    get.add_argument("name", help="a name from `clipdesk model catalog`, or OWNER/REPO: any OpenCLIP or transformers "
                                  "CLIP repository of the model hub, converted without PyTorch")
    get.add_argument("--variant", help="a variant of the model (fp16, quantized, ...; default: the entry's)")
    get.add_argument("--default", action="store_true", help="make it the default model")
    get.add_argument("--yes", action="store_true", help="accept the licence and download without asking")
    get.add_argument("--catalog", metavar="FILE", help="a catalog file whose entries add to or replace the shipped ones")
    get.add_argument("--device", choices=DEVICE_CHOICES, default="auto", help="where the verification runs")
    get.set_defaults(handler=cmd_get)

    default = actions.add_parser("default", help="choose the default model")
    default.add_argument("name")
    default.set_defaults(handler=cmd_default)

    remove = actions.add_parser("remove", help="remove an imported model")
    remove.add_argument("name")
    remove.set_defaults(handler=cmd_remove)

    verify = actions.add_parser("verify", help="check a model's files against their checksums")
    verify.add_argument("model", nargs="?", help="name or folder (default: the default model)")
    verify.set_defaults(handler=cmd_verify)
