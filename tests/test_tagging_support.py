"""Shared helpers for the tagging tests: a library whose photos carry vectors the test chooses.

Vectors are built from the tiny model's own text embeddings, so zero-shot classification through the
real pipeline (text encoder, templates, calibration) has a known right answer.
"""

import os

import numpy as np
import pytest
from PIL import Image

from clipdesk.library.records import OK, PhotoMetadata
from clipdesk.library.store import Library, embedding_model_key, vector_to_blob


def unit(vector):
    vector = np.asarray(vector, np.float32)
    return vector / np.linalg.norm(vector, axis=-1, keepdims=True)


class Photos:
    """Photos written to disk (small JPEGs) and into the library with chosen embeddings."""

    def __init__(self, library: Library, root, model_key: str):
        self.library, self.root, self.model_key = library, str(root), model_key
        os.makedirs(self.root, exist_ok=True)
        self.folder = library.add_folder(self.root)
        self.ids: dict[str, int] = {}

    def add(self, name, vector=None, taken_at=None, colour=(120, 80, 40)):
        path = os.path.join(self.root, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        Image.new("RGB", (8, 6), colour).save(path, format="JPEG")
        with self.library.transaction():
            photo_id = self.library.save_photo(self.folder.id, os.fsencode(path), 10, 1, os.fsencode(name).hex(),
                                               PhotoMetadata(width=8, height=6, taken_at=taken_at), OK)
            if vector is not None:
                self.library.set_embedding(photo_id, self.model_key, vector_to_blob(unit(vector)))
        self.ids[name] = photo_id
        return photo_id

    def path(self, name):
        return os.path.join(self.root, name)


@pytest.fixture
def photos(library, model, tmp_path):
    return Photos(library, tmp_path / "photos", embedding_model_key(model.package))


@pytest.fixture
def plain_photos(library, tmp_path):
    """Photos without a model (for tests of tags and exports alone)."""
    return Photos(library, tmp_path / "photos", "no-model")


def label_vectors(model, labels, template="a photo of a {}."):
    """The labels' text embeddings as the label set will compute them (one template)."""
    return model.text.encode([template.replace("{}", label) for label in labels])


def suggest(library, photo_id, name, confidence):
    """A suggestion as a label-set run writes it."""
    with library.transaction() as conn:
        conn.execute("INSERT OR IGNORE INTO tags (name) VALUES (?)", (name,))
        tag = conn.execute("SELECT id FROM tags WHERE name = ?", (name,)).fetchone()[0]
        conn.execute("INSERT INTO photo_tags (photo_id, tag_id, source, confidence) VALUES (?, ?, 'suggested', ?)",
                     (photo_id, tag, confidence))
