"""Duplicate photos: exact copies (same bytes) and near-duplicates (embeddings at least `threshold` alike).

Exact groups come from the stored content hashes. Near groups are the connected components of the graph
"cosine similarity >= threshold" over one photo per distinct content (byte-identical copies are in their
exact group, not repeated in near groups; a stack's RAW or Live Photo video is not compared with its own
still). A pair with a video in it is confirmed frame by frame: the means of two long videos of different
scenes drift together (both towards "a video of many things"), so two videos are alike only when every
frame of each has a close frame in the other (the smaller of the two mean best-match similarities; a
photo counts as a video of one frame). Groups are found by a blocked similarity matrix (one block of rows
against the blocks after it, so memory stays a few blocks) and union-find. Linking is transitive: A~B
and B~C put A, B and C in one group even if A and C are further apart; a group's `similarity` is the
weakest link that joined it. Time grows with the square of the photo count: it is a matrix product of
the library with itself (see benchmarks/search_duplicates.py for figures).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from clipdesk.errors import ClipdeskError
from clipdesk.library.stacks import companions
from clipdesk.library.store import Library
from clipdesk.search import DEFAULT_DUPLICATE_THRESHOLD

EXACT, NEAR = "exact", "near"
_BLOCK_ROWS = 2048


@dataclass(frozen=True)
class DuplicateGroup:
    kind: str  # EXACT or NEAR
    photo_ids: tuple[int, ...]
    paths: tuple[str, ...]  # os.fsdecode form, sorted
    similarity: float  # 1.0 for exact copies; the weakest link of a near group

    def to_dict(self) -> dict:
        return {"kind": self.kind, "similarity": round(self.similarity, 6), "paths": list(self.paths)}


class _UnionFind:
    def __init__(self, size: int):
        self.parent = np.arange(size)
        self.weakest = np.full(size, np.inf)  # per root: the lowest similarity among the links that joined it

    def find(self, item: int) -> int:
        parent = self.parent
        while parent[item] != item:
            parent[item] = parent[parent[item]]  # path halving
            item = parent[item]
        return item

    def union(self, a: int, b: int, similarity: float) -> None:
        root_a, root_b = self.find(a), self.find(b)
        if root_a == root_b:
            return
        if root_a > root_b:
            root_a, root_b = root_b, root_a
        self.parent[root_b] = root_a
        self.weakest[root_a] = min(self.weakest[root_a], self.weakest[root_b], similarity)


def exact_duplicate_groups(library: Library) -> list[list[int]]:
    """Ids of photos sharing a content hash, each group sorted by path."""
    rows = library.conn.execute(
        "SELECT hash, id FROM photos WHERE hash IN (SELECT hash FROM photos WHERE hash IS NOT NULL "
        "GROUP BY hash HAVING count(*) > 1) ORDER BY hash, path").fetchall()
    groups: dict[str, list[int]] = {}
    for content_hash, photo_id in rows:
        groups.setdefault(content_hash, []).append(photo_id)
    return list(groups.values())


def similar_pairs(vectors: np.ndarray, threshold: float, block_rows: int = _BLOCK_ROWS):
    """Yield (rows_a, rows_b, similarities) of every pair a < b with vectors[a] . vectors[b] >= threshold."""
    count = len(vectors)
    for start in range(0, count, block_rows):
        rows = vectors[start:start + block_rows]
        for other in range(start, count, block_rows):
            similarities = rows @ vectors[other:other + block_rows].T
            a, b = np.nonzero(similarities >= threshold)
            if other == start:  # the diagonal block: each pair once, no photo with itself
                a, b = a[a < b], b[a < b]
            if len(a):
                yield a + start, b + other, similarities[a, b]


def near_duplicate_groups(ids: np.ndarray, vectors: np.ndarray, threshold: float,
                          confirm: Callable[[int, int, float], float] | None = None) -> list[tuple[list[int], float]]:
    """Components of the similarity graph: (photo ids, weakest link), groups of two or more. `confirm(row a,
    row b, similarity)` may give a pair its own similarity (videos: frame by frame)."""
    groups = _UnionFind(len(ids))
    for rows_a, rows_b, similarities in similar_pairs(vectors, threshold):
        for a, b, similarity in zip(rows_a.tolist(), rows_b.tolist(), similarities.tolist()):
            if confirm is not None:
                similarity = confirm(a, b, similarity)
                if similarity < threshold:
                    continue
            groups.union(a, b, similarity)
    members: dict[int, list[int]] = {}
    for row in range(len(ids)):
        members.setdefault(groups.find(row), []).append(int(ids[row]))
    return [(group, float(groups.weakest[root])) for root, group in members.items() if len(group) > 1]


def frame_set_similarity(a: np.ndarray, b: np.ndarray) -> float:
    """How alike two videos are, frames (F, D) against frames (G, D), unit vectors: each frame's best match
    in the other video, averaged, the smaller of the two ways (one video inside a longer one is not alike)."""
    similarities = a @ b.T
    return float(min(similarities.max(axis=1).mean(), similarities.max(axis=0).mean()))


def find_duplicates(library: Library, blocks: Iterable[tuple[np.ndarray, np.ndarray]] | None,
                    threshold: float = DEFAULT_DUPLICATE_THRESHOLD,
                    frames_of: Callable[[int], np.ndarray | None] | None = None) -> list[DuplicateGroup]:
    """Exact and near-duplicate groups, largest first (exact before near at equal size, then by path).
    `blocks`: (ids, float32 vectors) of every item (Searcher.item_blocks); without them (no embeddings for
    the model) only exact groups are found. `frames_of(id)`: a video's frame vectors, None for a photo
    (Searcher.frames_of)."""
    if not 0 < threshold <= 1:
        raise ClipdeskError(f"--threshold must be above 0 and at most 1 (got {threshold}); 0.95 finds resized "
                            "or re-saved copies, lower values also group similar shots")
    exact = exact_duplicate_groups(library)
    near: list[tuple[list[int], float]] = []
    # One photo per distinct content (copies are already an exact group), and per stack.
    left_out = {photo_id for group in exact for photo_id in group[1:]}
    id_blocks, vector_blocks = [], []
    for ids, vectors in blocks or ():
        keep = ~np.isin(ids, list(left_out | companions(library.conn, ids.tolist())))
        id_blocks.append(ids[keep])
        vector_blocks.append(vectors[keep])
    if id_blocks:
        ids, vectors = np.concatenate(id_blocks), np.concatenate(vector_blocks)
        vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)

        def confirm(a: int, b: int, similarity: float) -> float:
            frames_a, frames_b = frames_of(int(ids[a])), frames_of(int(ids[b]))
            if frames_a is None and frames_b is None:
                return similarity
            return frame_set_similarity(vectors[a][None] if frames_a is None else frames_a,
                                        vectors[b][None] if frames_b is None else frames_b)

        near = near_duplicate_groups(ids, vectors, threshold, confirm if frames_of else None)
    paths = dict(zip((i for group in exact for i in group), library.photo_paths(i for group in exact for i in group)))
    near_ids = [i for group, _ in near for i in group]
    paths.update(zip(near_ids, library.photo_paths(near_ids)))
    result = []
    for kind, group, similarity in [(EXACT, group, 1.0) for group in exact] + [(NEAR, g, s) for g, s in near]:
        present = sorted((paths[i], i) for i in group if paths.get(i) is not None)  # deleted meanwhile: left out
        if len(present) > 1:
            result.append(DuplicateGroup(kind, tuple(i for _, i in present), tuple(p for p, _ in present),
                                         min(1.0, similarity)))
    result.sort(key=lambda g: (-len(g.paths), g.kind != EXACT, os.fsencode(g.paths[0])))
    return result
