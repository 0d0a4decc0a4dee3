"""Duplicate groups: exact copies by hash, near-duplicates by embedding similarity, largest first."""

import os

import numpy as np
import pytest

from clipdesk.errors import ClipdeskError
from clipdesk.library.records import OK, PhotoMetadata
from clipdesk.library.store import Library, vector_to_blob
from clipdesk.search.duplicates import EXACT, NEAR, find_duplicates, near_duplicate_groups, similar_pairs
from clipdesk.search.vector_index import VectorIndex

MODEL = "m@1"


def unit(vector):
    vector = np.asarray(vector, np.float32)
    return vector / np.linalg.norm(vector)


def random_unit(rows, dim, seed):
    vectors = np.random.default_rng(seed).standard_normal((rows, dim)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def test_similar_pairs_match_brute_force_across_blocks():
    vectors = random_unit(300, 8, 0)  # 8 dims: plenty of pairs above 0.8
    expected = {(a, b) for a in range(300) for b in range(a + 1, 300) if vectors[a] @ vectors[b] >= 0.8}
    found = set()
    for rows_a, rows_b, similarities in similar_pairs(vectors, 0.8, block_rows=37):
        assert np.all(similarities >= 0.8)
        found |= set(zip(rows_a.tolist(), rows_b.tolist()))
    assert found == expected and expected


def test_near_groups_are_connected_components_with_their_weakest_link():
    base = random_unit(6, 64, 1)
    chain = [base[0], unit(base[0] + 0.2 * base[1])]
    chain.append(unit(chain[1] + 0.2 * base[2]))  # close to chain[1], less close to chain[0]
    vectors = np.array([*chain, base[3], base[4], unit(base[4] + 0.1 * base[5])])
    ids = np.array([10, 11, 12, 13, 14, 15])
    groups = sorted(near_duplicate_groups(ids, vectors, 0.97))
    assert [group for group, _ in groups] == [[10, 11, 12], [14, 15]]
    links = vectors @ vectors.T
    assert groups[0][1] == pytest.approx(min(links[0, 1], links[1, 2]), abs=1e-6)
    assert groups[1][1] == pytest.approx(links[4, 5], abs=1e-6)


def add(library, folder, name, content_hash, vector=None):
    with library.transaction():
        photo_id = library.save_photo(folder.id, os.fsencode(os.path.join(folder.path, name)), 1, 1, content_hash,
                                      PhotoMetadata(), OK)
        if vector is not None:
            library.set_embedding(photo_id, MODEL, vector_to_blob(unit(vector)))
    return photo_id


def test_exact_and_near_groups_largest_first(tmp_path):
    base = random_unit(8, 32, 2)
    with Library() as library:
        folder = library.add_folder(tmp_path)
        for name in ("a1.jpg", "a2.jpg", "a3.jpg"):  # three copies of one file
            add(library, folder, name, "hash-a", base[0])
        add(library, folder, "a-resized.jpg", "hash-a2", unit(base[0] + 0.05 * base[1]))
        add(library, folder, "b1.jpg", "hash-b", base[2])
        add(library, folder, "b2.jpg", "hash-b", base[2])
        add(library, folder, "c1.jpg", "hash-c", base[3])
        add(library, folder, "c2.jpg", "hash-c2", unit(base[3] + 0.05 * base[4]))
        add(library, folder, "c3.jpg", "hash-c3", unit(base[3] - 0.05 * base[4]))
        add(library, folder, "lonely.jpg", "hash-d", base[5])
        add(library, folder, "no-vector.jpg", "hash-e")
        add(library, folder, "no-vector-copy.jpg", "hash-e")
        ids, vectors = library.embedding_matrix(MODEL)
        index = VectorIndex.from_vectors(ids, vectors)
        groups = find_duplicates(library, index.iter_blocks(), 0.95)
        exact_only = find_duplicates(library, None, 0.95)
    summary = [(g.kind, [os.path.basename(p) for p in g.paths]) for g in groups]
    assert summary == [
        (EXACT, ["a1.jpg", "a2.jpg", "a3.jpg"]),
        (NEAR, ["c1.jpg", "c2.jpg", "c3.jpg"]),
        (EXACT, ["b1.jpg", "b2.jpg"]),
        (EXACT, ["no-vector-copy.jpg", "no-vector.jpg"]),
        (NEAR, ["a-resized.jpg", "a1.jpg"]),  # one photo per content: a2 and a3 are a1's exact group
    ]
    assert groups[0].similarity == 1.0 and 0.95 <= groups[1].similarity < 1.0
    assert groups[0].to_dict() == {"kind": "exact", "similarity": 1.0, "paths": list(groups[0].paths)}
    assert [g.kind for g in exact_only] == [EXACT, EXACT, EXACT]


def test_threshold_must_be_a_similarity(tmp_path):
    with Library() as library:
        for bad in (0, -0.5, 1.5):
            with pytest.raises(ClipdeskError, match="--threshold must be above 0 and at most 1"):
                find_duplicates(library, None, bad)
