"""Running a label set over the library: a suggestion with a confidence for every photo.

For each photo embedded by the model (or each of some chosen photos): the label set's open-set confidences (calibration.py), refined
by the user's confirmed examples when there are any (few_shot.py). Then, in one transaction:

- the set's earlier suggestions on these photos are replaced;
- a photo that already has one of the set's labels as a user tag is decided: it gets no suggestion
  (its tags are the user's) and serves as an example instead;
- elsewhere the best label is suggested when it beats "none of these", unless the user rejected that
  label on that photo before; with `apply_above`, suggestions at or above that confidence are
  confirmed at once (become user tags).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from clipdesk.errors import ClipdeskError, EmptyLibraryError
from clipdesk.library.history import Change
from clipdesk.progress import Progress
from clipdesk.tagging import few_shot
from clipdesk.tagging.label_sets import LabelSet, get_label_set
from clipdesk.tagging.prompts import resolve_templates
from clipdesk.tagging.tags import _check_photos, rejected_photo_ids, tag_id
from clipdesk.tagging.zero_shot import zero_shot_classifier

DECIDED, SUGGESTED, APPLIED, NONE, REJECTED = "decided", "suggested", "applied", "none", "rejected"


@dataclass
class PhotoOutcome:
    photo_id: int
    path: str
    label: str | None  # the best label, None for "none of these"; for DECIDED photos the user's label
    confidence: float  # of that label (or of "none of these")
    status: str  # DECIDED, SUGGESTED, APPLIED, NONE or REJECTED
    ranked: list[tuple[str, float]]  # every label (top_k of them), best first
    none: float  # confidence of "none of these"

    def to_dict(self) -> dict:
        return {"path": self.path, "label": self.label, "confidence": round(self.confidence, 6),
                "status": self.status, "none": round(self.none, 6),
                "labels": [{"label": label, "score": round(score, 6)} for label, score in self.ranked]}


@dataclass
class LabelRun:
    label_set: str
    model: str
    photos: int = 0
    decided: int = 0
    suggested: int = 0
    applied: int = 0
    none: int = 0
    rejected: int = 0  # best label was rejected by the user before: not suggested again
    examples: dict[str, int] = field(default_factory=dict)  # confirmed examples per label (few-shot)
    outcomes: list[PhotoOutcome] = field(default_factory=list)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["outcomes"] = [outcome.to_dict() for outcome in self.outcomes]
        return data


def _user_labels(library, label_set: LabelSet) -> list[tuple[int, int]]:
    """(photo id, label index) for every user tag that is one of the set's labels."""
    index = {label.casefold(): i for i, label in enumerate(label_set.labels)}
    marks = ",".join("?" * len(label_set.labels))
    rows = library.conn.execute(
        "SELECT pt.photo_id, t.name FROM photo_tags AS pt JOIN tags AS t ON t.id = pt.tag_id "
        f"WHERE pt.source = 'user' AND t.name COLLATE NOCASE IN ({marks})", label_set.labels)
    return [(photo_id, index[name.casefold()]) for photo_id, name in rows if name.casefold() in index]


def run_label_set(library, name: str, model=None, *, apply_above: float | None = None, top_k: int = 3,
                  device: str = "auto", progress: Progress | None = None, write: bool = True,
                  photo_ids: Sequence[int] | None = None) -> LabelRun:
    """Score every embedded photo with label set `name`; `model` is a ClipModel, a model name or
    folder, or None for the default model. `write=False` computes without touching the database.

    `photo_ids` restricts the run to those photos: only they are scored, reported and get their
    suggestions replaced; the user's confirmed tags anywhere in the library still serve as examples,
    so a photo gets the same suggestion as in a whole-library run. Given photos that the model has
    not embedded are skipped; an id not in the library is an error."""
    from clipdesk.library.store import embedding_model_key
    from clipdesk.runtime.encoders import ClipModel, load_model

    if apply_above is not None and not 0.0 < apply_above <= 1.0:
        raise ClipdeskError(f"--apply-above takes a confidence in (0, 1], got {apply_above}")
    progress = progress or Progress()
    label_set = get_label_set(library, name)
    clip = model if isinstance(model, ClipModel) else load_model(model, device)
    key = embedding_model_key(clip.package)
    run = LabelRun(label_set.name, key)

    all_ids, vectors = library.embedding_matrix(key)
    if len(all_ids) == 0:
        message = (f"no photo in the library is embedded with model {clip.name!r}; index first "
                   "(clipdesk index FOLDER --model ...)")
        raise (ClipdeskError if library.embedding_models() else EmptyLibraryError)(message)
    vectors = vectors.astype(np.float32)
    row_of = {int(photo_id): row for row, photo_id in enumerate(all_ids)}
    if photo_ids is None:
        scored_rows = np.arange(len(all_ids))
    else:
        wanted = _check_photos(library.conn, photo_ids)
        scored_rows = np.asarray([row_of[i] for i in wanted if i in row_of], np.int64)
        if len(scored_rows) == 0:
            raise ClipdeskError(f"none of the {len(wanted):,} chosen photos is embedded with model {clip.name!r}; "
                                "index their folder first (clipdesk index FOLDER --model ...)")
    run.photos = len(scored_rows)
    progress.update(0, 3, stage="embedding labels")
    templates = resolve_templates(label_set.templates, clip.package.manifest.templates)
    classifier = zero_shot_classifier(clip, label_set.labels, templates)

    decided_pairs = [(row_of[photo_id], label) for photo_id, label in _user_labels(library, label_set)
                     if photo_id in row_of]
    if decided_pairs:
        rows, labels = map(np.asarray, zip(*decided_pairs))
        run.examples = {label_set.labels[i]: int(n) for i, n in zip(*np.unique(labels, return_counts=True))}
        progress.update(1, 3, stage="learning from your tags")
        classifier = few_shot.adapt(classifier, vectors[rows], labels, vectors.mean(axis=0),
                                     library=few_shot.library_sample(vectors, exclude=rows))
    decided_label = {}  # row -> the user's label (the first of the set's labels the photo has)
    for row, label in sorted(decided_pairs):
        decided_label.setdefault(row, int(label))

    progress.update(2, 3, stage="scoring photos")
    predictions = classifier.predict(vectors[scored_rows])
    best, confidence = predictions.best()
    scored_ids = all_ids[scored_rows]
    paths = dict(zip(scored_ids.tolist(), library.photo_paths(scored_ids), strict=True))
    if progress.cancelled:
        raise ClipdeskError("cancelled; nothing was written")

    existing = [tag_id(library.conn, label) for label in label_set.labels]
    rejected = [rejected_photo_ids(library.conn, tag) if tag is not None else set() for tag in existing]
    suggestions, confirmations = [], []  # (photo id, label index, confidence)
    for row, photo_id in enumerate(scored_ids.tolist()):
        label, score = int(best[row]), float(confidence[row])
        status = NONE if label < 0 else SUGGESTED
        if row_of[photo_id] in decided_label:  # reported with the user's label and the model's confidence in it
            status, label = DECIDED, decided_label[row_of[photo_id]]
            score = float(predictions.probabilities[row, label])
        elif label >= 0 and photo_id in rejected[label]:
            status = REJECTED
        elif label >= 0:
            status = APPLIED if apply_above is not None and score >= apply_above else SUGGESTED
            (confirmations if status == APPLIED else suggestions).append((photo_id, label, score))
        setattr(run, status, getattr(run, status) + 1)
        run.outcomes.append(PhotoOutcome(
            photo_id, paths[photo_id], label_set.labels[label] if label >= 0 else None,
            score, status, predictions.ranked(row, top_k), float(predictions.none[row])))
    if write:
        _write(library, label_set, key, suggestions, confirmations,
               None if photo_ids is None else scored_ids.tolist())
    progress.update(3, 3, stage="done")
    run.outcomes.sort(key=lambda outcome: (outcome.label is None, outcome.label or "", -outcome.confidence))
    return run


def _write(library, label_set: LabelSet, model_key: str, suggestions, confirmations,
           scored_ids: list[int] | None = None) -> None:
    """Replace the set's suggestions on the scored photos (None: every photo the model embedded), as one
    change to undo (library/history.py): every pair of the set's labels it drops or writes is watched."""
    with library.transaction() as conn:
        conn.execute("UPDATE label_sets SET run_model = ? WHERE id = ?", (model_key, label_set.id))
        tag_ids = [tag_id(conn, label, create=True) for label in label_set.labels]
        marks = ",".join("?" * len(tag_ids))
        change = Change(conn)
        written: dict[int, set[int]] = {tag: set() for tag in tag_ids}
        for photo_id, label, _ in (*suggestions, *confirmations):
            written[tag_ids[label]].add(photo_id)
        for tag in tag_ids:
            if scored_ids is None:
                dropped = conn.execute("SELECT photo_id FROM photo_tags WHERE source = 'suggested' AND tag_id = ? "
                                       "AND photo_id IN (SELECT photo_id FROM embeddings WHERE model = ?)",
                                       (tag, model_key)).fetchall()
                written[tag].update(row[0] for row in dropped)
            else:
                written[tag].update(scored_ids)
            change.watch(tag, sorted(written[tag]))
        if scored_ids is None:
            conn.execute(f"DELETE FROM photo_tags WHERE source = 'suggested' AND tag_id IN ({marks}) AND photo_id IN "
                         "(SELECT photo_id FROM embeddings WHERE model = ?)", (*tag_ids, model_key))
        else:
            conn.executemany(f"DELETE FROM photo_tags WHERE source = 'suggested' AND tag_id IN ({marks}) "
                             "AND photo_id = ?", [(*tag_ids, photo_id) for photo_id in scored_ids])
        # A user row is never touched by a suggestion; a confirmation upgrades a suggestion of another run.
        conn.executemany("INSERT INTO photo_tags (photo_id, tag_id, source, confidence) VALUES (?, ?, 'suggested', ?) "
                         "ON CONFLICT (photo_id, tag_id) DO UPDATE SET confidence = excluded.confidence "
                         "WHERE source = 'suggested'",
                         [(photo_id, tag_ids[label], score) for photo_id, label, score in suggestions])
        conn.executemany("INSERT INTO photo_tags (photo_id, tag_id, source, confidence) VALUES (?, ?, 'user', ?) "
                         "ON CONFLICT (photo_id, tag_id) DO UPDATE SET source = 'user', "
                         "confidence = excluded.confidence",
                         [(photo_id, tag_ids[label], score) for photo_id, label, score in confirmations])
        made = f"{len(suggestions):,} suggestion{'s' if len(suggestions) != 1 else ''}"
        if confirmations:
            made += f", {len(confirmations):,} applied"
        change.save(f"Run label set “{label_set.name}” ({made})")
