"""Zero-shot accuracy of a model package on a labelled manifest, through the run side (ONNX Runtime).

    python benchmarks/zero_shot_eval.py --model resources/models/clipdesk-emoji-tiny \
        --manifest data/emoji-icons/heldout.jsonl [--kind emoji] [--limit 2000]

Classes are the distinct `label` values of the evaluated rows; each class's text embedding is the
normalised mean over the prompt templates (CLIP's ensemble). The templates are the app's: the model's
own (manifest `templates`), else "a photo of a {}.", for every language, as `clipdesk classify` and
label sets use them; `--template T` (repeatable) measures others. Prints top-1/top-5, chance and 95 %
Wilson intervals. `--compare BASELINE` also evaluates another model on the same images and prints the
images each got right that the other did not, with an exact McNemar test: how a change of model is
judged (model card, "How stage 5 was chosen").

With `--label-space data/emoji-icons/emoji-concepts.tsv` the classes are every concept of that file,
whether or not the rows show it, and rows are scored by concept (a label may repeat across concepts in
some language); rows whose concept is not in the file are left out and counted. Then also:
    --heldout-only   rows and classes restricted to the concepts flagged held out in that file
    --language LANG  class names from that language's column
    --report OUT.json  every style × (all concepts, held-out) × language in one run: a markdown table
                     on stdout, the figures in OUT.json; image embeddings are computed once
`--style S` keeps only rows of that style (data/eval-styles/unseen.jsonl: apple, facebook).
`--vocabulary TRAIN.jsonl...` also splits the figures by whether every word of a row's English label
occurs in some caption of those training manifests: a text tower trained from scratch cannot know a word
it never read, and that, more than the images, is what holds the held-out concepts back. Models with a
lexicon (runtime/lexicon.py) encode such labels with what it says instead, as the app does.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import random
import time
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from clipdesk.data.lexicon import caption_words
from clipdesk.runtime.encoders import load_model
from clipdesk.runtime.lexicon import words_of
from clipdesk.tagging.prompts import ensemble_embeddings, resolve_templates

ENGLISH = "en"
NOT_LANGUAGES = {"concept", "label", "heldout", "train_images", "kind", "images"}
# Issue 6's targets on unseen styles: English (top-1, top-5) per label space; other languages' top-1
# at least this share of English's on the same style and label space.
TARGETS = {"all": (0.35, 0.60), "heldout": (0.25, 0.50)}
LANGUAGE_SHARE = 0.5
Z95 = 1.959964  # two-sided 95 % normal quantile


def app_templates(model, chosen: list[str] | None) -> tuple[str, ...]:
    """`chosen` (templates or names), else what the app uses with this model when no template is named."""
    return resolve_templates(chosen, model.package.manifest.templates)


@dataclass
class LabelSpace:
    concepts: list[str]
    heldout: np.ndarray            # bool per concept
    names: dict[str, list[str]]    # language → class name per concept ('en' is the label column)

    @classmethod
    def read(cls, path: Path) -> "LabelSpace":
        with open(path, encoding="utf-8", newline="") as handle:
            rows = list(csv.DictReader(handle, delimiter="\t"))
        if not rows or "concept" not in rows[0] or "label" not in rows[0]:
            raise SystemExit(f"{path}: expected a TSV with 'concept' and 'label' columns")
        languages = [column for column in rows[0] if column not in NOT_LANGUAGES]
        names = {ENGLISH: [row["label"] for row in rows]}
        names.update({language: [row[language] or row["label"] for row in rows] for language in languages})
        heldout = np.array([row.get("heldout") == "1" for row in rows])
        return cls([row["concept"] for row in rows], heldout, names)

    @cached_property
    def index(self) -> dict[str, int]:
        return {concept: number for number, concept in enumerate(self.concepts)}


def read_rows(manifest: Path, kind: str | None, style: str | None = None, limit: int | None = None,
              seed: int = 0) -> list[dict]:
    rows = [json.loads(line) for line in manifest.read_text(encoding="utf-8").splitlines() if line.strip()]
    rows = [row for row in rows
            if (kind is None or row.get("kind") == kind) and (style is None or row.get("style") == style)]
    if limit and len(rows) > limit:
        rows = random.Random(seed).sample(rows, limit)
    return rows


def hits(images: np.ndarray, classes: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per image: is the right class first, and is it among the first five."""
    ranked = np.argsort(-(images @ classes.T), axis=1, kind="stable")[:, :5]
    return ranked[:, 0] == targets, (ranked == targets[:, None]).any(axis=1)


def mcnemar_p(gained: int, lost: int) -> float:
    """Exact two-sided McNemar test: the chance of a split of the discordant images at least this uneven
    if both models were equally good (binomial, n = gained + lost, p = ½)."""
    discordant = gained + lost
    if discordant == 0:
        return 1.0
    tail = sum(math.comb(discordant, k) for k in range(min(gained, lost) + 1))
    return min(1.0, 2 * tail / 2 ** discordant)


def wilson_interval(correct: int, total: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a proportion: how far an accuracy on `total` images can move by chance
    (on 257 held-out images one image is 0.4 points, and the interval around 25 % is about ±5)."""
    if total <= 0:
        raise ValueError("no images")
    share = correct / total
    spread = z * np.sqrt(share * (1 - share) / total + z * z / (4 * total * total))
    centre = share + z * z / (2 * total)
    scale = 1 + z * z / total
    return (float(max(0.0, (centre - spread) / scale)), float(min(1.0, (centre + spread) / scale)))


def _result(top1: np.ndarray, top5: np.ndarray, classes: int, **facts) -> dict:
    """The figures of per-image hits (from `hits`): accuracies, counts, intervals, chance."""
    images, correct1, correct5 = len(top1), int(top1.sum()), int(top5.sum())
    return {**facts, "images": images, "classes": classes, "top1": correct1 / images, "top5": correct5 / images,
            "top1_correct": correct1, "top5_correct": correct5,
            "top1_ci95": wilson_interval(correct1, images), "top5_ci95": wilson_interval(correct5, images),
            "chance_top1": 1 / classes, "chance_top5": min(1.0, 5 / classes)}


def evaluate(model_dir: str, manifest: Path, kind: str | None, limit: int | None, seed: int = 0,
             style: str | None = None, label_space: Path | None = None, heldout_only: bool = False,
             language: str = ENGLISH, templates: list[str] | None = None
             ) -> tuple[dict, np.ndarray, np.ndarray, list[dict]]:
    """The figures; per image (in manifest order) whether top-1 and top-5 were right; the rows evaluated."""
    rows = read_rows(manifest, kind, style, limit, seed)
    model = load_model(model_dir, device="cpu")
    templates = app_templates(model, templates)
    started = time.perf_counter()
    facts = {"manifest": str(manifest), "kind": kind or "all", "style": style or "all", "language": language,
             "prompts": list(templates)}
    if label_space is None:
        if language != ENGLISH:
            raise SystemExit("--language needs --label-space (the class names come from its columns)")
        if heldout_only:
            rows = [row for row in rows if row.get("heldout")]
        labels = sorted({row["label"] for row in rows})
        classes = ensemble_embeddings(model.text, labels, templates)
        targets = np.array([labels.index(row["label"]) for row in rows])
    else:
        space = LabelSpace.read(label_space)
        if language not in space.names:
            raise SystemExit(f"{label_space} has no column '{language}' (has: {', '.join(space.names)})")
        keep = space.heldout if heldout_only else np.ones(len(space.concepts), bool)
        if not keep.any():
            raise SystemExit(f"{label_space} flags no concept as held out")
        position = {concept: number for number, concept in enumerate(np.array(space.concepts)[keep])}
        outside = sum(row["concept"] not in space.index for row in rows)
        rows = [row for row in rows if row["concept"] in position]
        names = [name for name, kept in zip(space.names[language], keep) if kept]
        classes = ensemble_embeddings(model.text, names, templates)
        targets = np.array([position[row["concept"]] for row in rows])
        facts.update(label_space=str(label_space), rows_outside_label_space=outside)
    if not rows:
        raise SystemExit("no rows to evaluate after filtering")
    images = model.image.encode_files([manifest.parent / row["image"] for row in rows], batch_size=64)
    top1, top5 = hits(images, classes, targets)
    facts["concepts"] = "heldout" if heldout_only else "all"
    result = _result(top1, top5, len(classes), **facts)
    return {**result, "seconds": round(time.perf_counter() - started, 1)}, top1, top5, rows


def by_vocabulary(evaluated: tuple[dict, np.ndarray, np.ndarray, list[dict]], words: set[str]) -> dict:
    """The figures of the rows whose English label's words were all read in training, and of the others."""
    result, top1, top5, rows = evaluated
    known = np.array([set(words_of(row["label"])) <= words for row in rows], bool)
    return {group: _result(top1[chosen], top5[chosen], result["classes"])
            for group, chosen in (("known_words", known), ("unknown_words", ~known)) if chosen.any()}


def compare(baseline: tuple, candidate: tuple) -> dict:
    """Paired comparison on the same images: images only one of the two got right, and how likely so
    uneven a split is by chance. Far more sensitive than comparing two accuracies and their intervals."""
    if len(baseline[1]) != len(candidate[1]):
        raise SystemExit("the two evaluations saw different images")
    comparison = {}
    for key, old, new in (("top1", baseline[1], candidate[1]), ("top5", baseline[2], candidate[2])):
        gained, lost = int((new & ~old).sum()), int((old & ~new).sum())
        comparison[key] = {"baseline": baseline[0][key], "model": candidate[0][key], "gained": gained,
                           "lost": lost, "mcnemar_p": mcnemar_p(gained, lost)}
    return comparison


def report(model_dir: str, manifest: Path, kind: str | None, label_space: Path, styles: list[str] | None,
           languages: list[str] | None, templates: list[str] | None = None) -> dict:
    """Every style (and all styles pooled) × (all concepts, held-out) × language, embeddings computed once."""
    space = LabelSpace.read(label_space)
    rows = [row for row in read_rows(manifest, kind) if row["concept"] in space.index]
    if styles:
        rows = [row for row in rows if row.get("style") in styles]
    if not rows:
        raise SystemExit("no rows to evaluate after filtering")
    languages = languages or list(space.names)
    unknown = [language for language in languages if language not in space.names]
    if unknown:
        raise SystemExit(f"{label_space} has no column for {', '.join(unknown)}")
    model = load_model(model_dir, device="cpu")
    templates = app_templates(model, templates)
    started = time.perf_counter()
    images = model.image.encode_files([manifest.parent / row["image"] for row in rows], batch_size=64)
    classes = {language: ensemble_embeddings(model.text, space.names[language], templates) for language in languages}
    targets = np.array([space.index[row["concept"]] for row in rows])
    row_styles = np.array([row.get("style") for row in rows])
    groups = sorted(set(row_styles)) + (["all"] if len(set(row_styles)) > 1 else [])
    results = []
    for group in groups:
        in_group = np.ones(len(rows), bool) if group == "all" else row_styles == group
        for subset, keep in (("all", np.ones(len(space.concepts), bool)), ("heldout", space.heldout)):
            if not keep.any():
                continue
            chosen = in_group & keep[targets]
            if not chosen.any():  # e.g. a seen-style manifest has no held-out rows
                continue
            position = np.cumsum(keep) - 1  # concept index → index among the kept classes
            english = None
            for language in languages:
                result = _result(*hits(images[chosen], classes[language][keep], position[targets[chosen]]),
                                 int(keep.sum()), style=group, concepts=subset, language=language)
                top1, top5 = result["top1"], result["top5"]
                names = [name for name, kept in zip(space.names[language], keep) if kept]
                result["duplicate_names"] = len(names) - len(set(names))
                if language == ENGLISH:
                    english = top1
                    result["meets_target"] = top1 >= TARGETS[subset][0] and top5 >= TARGETS[subset][1]
                elif english is not None:
                    result["share_of_english"] = top1 / english if english else None
                    result["meets_target"] = bool(english) and top1 >= LANGUAGE_SHARE * english
                results.append(result)
    return {"model": str(model_dir), "manifest": str(manifest), "label_space": str(label_space),
            "kind": kind or "all", "prompts": list(templates),
            "targets": {"english": TARGETS, "other_language_share_of_english_top1": LANGUAGE_SHARE},
            "results": results, "seconds": round(time.perf_counter() - started, 1)}


def markdown(summary: dict) -> str:
    lines = [f"model {summary['model']} on {summary['manifest']} (label space {summary['label_space']})",
             "prompts (every language): " + " | ".join(summary["prompts"]),
             "targets: en all top-1 ≥ 35 %, top-5 ≥ 60 %; en held-out top-1 ≥ 25 %, top-5 ≥ 50 %; "
             "other languages top-1 ≥ ½ of en on the same style and concepts; [95 % Wilson interval]",
             "",
             "| style | concepts | lang | images | classes | top-1 | top-5 | top-1 / en | target |",
             "|---|---|---|---:|---:|---:|---:|---:|:---:|"]
    for result in summary["results"]:
        share = result.get("share_of_english")
        lines.append(f"| {result['style']} | {result['concepts']} | {result['language']} | {result['images']} | "
                     f"{result['classes']} | {_with_interval(result, 'top1')} | {_with_interval(result, 'top5')} | "
                     f"{'' if share is None else f'{share:.2f}'} | {'yes' if result.get('meets_target') else 'no'} |")
    return "\n".join(lines)


def _with_interval(result: dict, key: str) -> str:
    low, high = result[f"{key}_ci95"]
    return f"{result[key]:.1%} [{low:.0%}–{high:.0%}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="model package folder or registered name")
    parser.add_argument("--manifest", type=Path, required=True)
    parser.add_argument("--kind", choices=("emoji", "icon"))
    parser.add_argument("--limit", type=int, default=None, help="evaluate a seeded random sample of rows")
    parser.add_argument("--style", action="append", help="only rows of this style (repeatable with --report)")
    parser.add_argument("--label-space", type=Path, help="TSV of all classes (emoji-concepts.tsv): concept, label, "
                        "heldout, one column per language")
    parser.add_argument("--heldout-only", action="store_true", help="rows and classes: held-out concepts only")
    parser.add_argument("--language", default=ENGLISH, help="class names from this column of the label space")
    parser.add_argument("--languages", help="with --report: comma-separated languages (default: all columns)")
    parser.add_argument("--report", type=Path, metavar="OUT.json",
                        help="every style × concepts × language: markdown table on stdout, JSON to this file")
    parser.add_argument("--template", dest="templates", action="append", metavar="T",
                        help="prompt template or template name (repeatable; default: the app's for this model)")
    parser.add_argument("--compare", metavar="BASELINE",
                        help="also evaluate this model on the same images and print a paired comparison")
    parser.add_argument("--vocabulary", type=Path, nargs="+", metavar="TRAIN.jsonl",
                        help="also split the figures by whether the label's words occur in these manifests' captions")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.report:
        if args.label_space is None:
            parser.error("--report needs --label-space")
        if args.compare or args.vocabulary:
            parser.error("--compare and --vocabulary work on one evaluation, not with --report")
        languages = [part.strip() for part in args.languages.split(",") if part.strip()] if args.languages else None
        summary = report(args.model, args.manifest, args.kind, args.label_space, args.style, languages, args.templates)
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.write_text(json.dumps(summary, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        print(markdown(summary))
        print(f"\n{len(summary['results'])} evaluations in {summary['seconds']} s; JSON in {args.report}")
        return
    if args.style and len(args.style) > 1:
        parser.error("give --style once, or use --report for several styles")
    options = dict(style=args.style[0] if args.style else None, label_space=args.label_space,
                   heldout_only=args.heldout_only, language=args.language, templates=args.templates)
    evaluated = evaluate(args.model, args.manifest, args.kind, args.limit, **options)
    result = evaluated[0]
    if args.compare:
        result["compared_with"] = args.compare
        result["comparison"] = compare(evaluate(args.compare, args.manifest, args.kind, args.limit, **options),
                                       evaluated)
    if args.vocabulary:
        result["vocabulary"] = [str(manifest) for manifest in args.vocabulary]
        result["by_vocabulary"] = by_vocabulary(evaluated, set().union(*map(caption_words, args.vocabulary)))
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
    else:
        tags = [result["kind"]]  # the original line when none of the newer options is given
        if args.style:
            tags.append(f"style {result['style']}")
        if args.label_space or args.heldout_only:
            tags.append(f"{result['concepts']} concepts")
        tags.append(f"{result['language']}: " + " | ".join(result["prompts"]))
        print(f"{result['manifest']} [{', '.join(tags)}]: {result['images']} images, {result['classes']} classes: "
              f"top-1 {result['top1']:.1%} (chance {result['chance_top1']:.2%}), "
              f"top-5 {result['top5']:.1%} (chance {result['chance_top5']:.2%}); 95 % intervals "
              f"top-1 {result['top1_ci95'][0]:.1%}–{result['top1_ci95'][1]:.1%}, "
              f"top-5 {result['top5_ci95'][0]:.1%}–{result['top5_ci95'][1]:.1%}")
        for key, name in (("top1", "top-1"), ("top5", "top-5")):
            if "comparison" in result:
                paired = result["comparison"][key]
                print(f"  {name} against {args.compare}: {paired['baseline']:.1%} -> {paired['model']:.1%}; "
                      f"{paired['gained']} images gained, {paired['lost']} lost (exact McNemar p = "
                      f"{paired['mcnemar_p']:.3g})")
        for group, name in (("known_words", "every label word in a training caption"),
                            ("unknown_words", "a label word in no training caption")):
            if group in result.get("by_vocabulary", {}):
                part = result["by_vocabulary"][group]
                print(f"  {name}: {part['images']} images, top-1 {_with_interval(part, 'top1')}, "
                      f"top-5 {_with_interval(part, 'top5')}")


if __name__ == "__main__":
    main()
