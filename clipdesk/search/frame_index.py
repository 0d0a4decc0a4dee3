"""Videos' sampled frames in memory, for search: a video scores as its best frame, at that frame's moment.

Each row is one frame: the video's photo id, the moment (seconds) and the float16 vector. Search is an
exact scan in float32 chunks; a library has far fewer frames than photos (1,000 videos at 64 frames
each is 64,000 rows, 65 MB at 512 dimensions, a few milliseconds to scan). The videos' own vectors
(the mean of their frames) stay out of the photo index while their frames are here, so a video is
scored once, by its frames.
"""

from __future__ import annotations

import threading

import numpy as np

from clipdesk.library.store import VECTOR_DTYPE

_CHUNK_ROWS = 16384


class FrameIndex:
    def __init__(self, dim: int):
        self.dim = dim
        self._lock = threading.Lock()
        self._ids = np.zeros(0, np.int64)
        self._times = np.zeros(0, np.float32)
        self._vectors = np.zeros((0, dim), VECTOR_DTYPE)

    def __len__(self) -> int:
        return len(self._ids)

    @property
    def video_ids(self) -> np.ndarray:
        """The videos that have frames here, sorted."""
        return np.unique(self._ids)

    def frames_of(self, video_id: int) -> np.ndarray | None:
        """A video's frame vectors (F, D) float32, in time order; None for an id with no frames (a photo)."""
        with self._lock:
            rows = np.flatnonzero(self._ids == int(video_id))
            if not len(rows):
                return None
            rows = rows[np.argsort(self._times[rows], kind="stable")]
            return self._vectors[rows].astype(np.float32)

    def replace(self, video_ids: np.ndarray, ids: np.ndarray, times: np.ndarray, vectors: np.ndarray) -> None:
        """Drop every frame of `video_ids`, then add the given frames (those videos' frames as they are now)."""
        with self._lock:
            keep = ~np.isin(self._ids, video_ids)
            self._ids = np.concatenate([self._ids[keep], ids.astype(np.int64)])
            self._times = np.concatenate([self._times[keep], times.astype(np.float32)])
            if len(vectors):
                added = vectors.astype(VECTOR_DTYPE)
            else:
                added = np.zeros((0, self.dim), VECTOR_DTYPE)
            self._vectors = np.concatenate([self._vectors[keep], added])

    def best(self, query: np.ndarray, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(video ids, scores, moments) of every video (among `allowed` ids, when given) by its best-scoring
        frame, best first."""
        with self._lock:
            ids, times, vectors = self._ids, self._times, self._vectors
        if allowed is not None:
            rows = np.flatnonzero(np.isin(ids, allowed))
            ids, times, vectors = ids[rows], times[rows], vectors[rows]
        if not len(ids):
            return np.zeros(0, np.int64), np.zeros(0, np.float32), np.zeros(0, np.float32)
        query = np.asarray(query, np.float32)
        scores = np.concatenate([vectors[start:start + _CHUNK_ROWS].astype(np.float32) @ query
                                 for start in range(0, len(ids), _CHUNK_ROWS)])
        # Best frame per video: sort by (video, score descending), take each video's first row.
        order = np.lexsort((-scores, ids))
        first = order[np.r_[True, ids[order][1:] != ids[order][:-1]]]
        ranked = first[np.argsort(-scores[first], kind="stable")]
        return ids[ranked], scores[ranked], times[ranked]
