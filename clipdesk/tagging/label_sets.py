"""Named label sets stored in the library: labels plus the prompt templates they are scored with.

Stored in the library's `label_sets` table: `labels_json` and `templates_json` are JSON lists of
strings. Names compare without regard to case.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass

from clipdesk.errors import ClipdeskError
from clipdesk.tagging.names import clean_name, unique_names
from clipdesk.tagging.prompts import resolve_templates


@dataclass(frozen=True)
class LabelSet:
    id: int
    name: str
    labels: tuple[str, ...]
    templates: tuple[str, ...]
    created_at: float
    run_model: str | None = None  # the model key of its last run, whose suggestions the library holds

    def to_dict(self) -> dict:
        return {"name": self.name, "labels": list(self.labels), "templates": list(self.templates),
                "created_at": self.created_at}


def _from_row(row, source: str) -> LabelSet:
    set_id, name, labels_json, templates_json, created_at, run_model = row
    try:
        labels, templates = json.loads(labels_json), json.loads(templates_json)
    except json.JSONDecodeError:
        raise ClipdeskError(f"{source}: label set {name!r} is damaged; delete it (clipdesk labels delete) "
                            "and create it again") from None
    return LabelSet(set_id, name, tuple(labels), tuple(templates), created_at, run_model)


_SELECT = "SELECT id, name, labels_json, templates_json, created_at, run_model FROM label_sets"


def label_sets(library) -> list[LabelSet]:
    rows = library.conn.execute(_SELECT + " ORDER BY name COLLATE NOCASE").fetchall()
    return [_from_row(row, str(library.path)) for row in rows]


def get_label_set(library, name: str) -> LabelSet:
    row = library.conn.execute(_SELECT + " WHERE name = ? COLLATE NOCASE", (str(name).strip(),)).fetchone()
    if row is None:
        known = ", ".join(item.name for item in label_sets(library)) or "none yet"
        raise ClipdeskError(f"no label set {name!r} (label sets: {known}); create one with "
                            "`clipdesk labels create NAME --labels ...`")
    return _from_row(row, str(library.path))


def _checked(labels: Sequence[str], templates: Sequence[str] | None) -> tuple[list[str], tuple[str, ...]]:
    labels = unique_names(labels, "label")
    if not labels:
        raise ClipdeskError("a label set needs at least one label")
    return labels, resolve_templates(templates)


def create_label_set(library, name: str, labels: Sequence[str], templates: Sequence[str] | None = None, *,
                     replace: bool = False) -> LabelSet:
    """A new label set; `templates` are templates or template names (`ensemble`); none: the default."""
    name = clean_name(name, "label set")
    labels, templates = _checked(labels, templates)
    with library.transaction() as conn:
        existing = conn.execute("SELECT id FROM label_sets WHERE name = ? COLLATE NOCASE", (name,)).fetchone()
        if existing and not replace:
            raise ClipdeskError(f"label set {name!r} exists; choose another name, or edit it "
                                "(clipdesk labels edit) or pass --replace")
        if existing:
            conn.execute("DELETE FROM label_sets WHERE id = ?", existing)
        conn.execute("INSERT INTO label_sets (name, labels_json, templates_json, created_at) VALUES (?, ?, ?, ?)",
                     (name, json.dumps(labels, ensure_ascii=False), json.dumps(list(templates), ensure_ascii=False),
                      time.time()))
    return get_label_set(library, name)


def edit_label_set(library, name: str, *, labels: Sequence[str] | None = None,
                   templates: Sequence[str] | None = None) -> LabelSet:
    """Replace a label set's labels and/or templates; what is not given stays."""
    current = get_label_set(library, name)
    new_labels, new_templates = _checked(labels if labels is not None else current.labels,
                                         templates if templates is not None else current.templates)
    with library.transaction() as conn:
        conn.execute("UPDATE label_sets SET labels_json = ?, templates_json = ? WHERE id = ?",
                     (json.dumps(new_labels, ensure_ascii=False), json.dumps(list(new_templates), ensure_ascii=False),
                      current.id))
    return get_label_set(library, current.name)


def delete_label_set(library, name: str) -> None:
    """Forget a label set; tags it produced stay (confirmed ones are the user's)."""
    current = get_label_set(library, name)
    with library.transaction() as conn:
        conn.execute("DELETE FROM label_sets WHERE id = ?", (current.id,))
