"""Text, image and mixed search over the photo library, with filters.

    with Library() as library:
        searcher = Searcher(library, model=None)      # the default model
        for hit in searcher.search('"2:red car" + beach tag:family', k=20):
            print(hit.score, hit.path)

The searcher keeps one in-memory `VectorIndex` of the library's embeddings for its model, read once
and brought up to date before every search from the store's change log (cheap when nothing changed),
so an index running in another thread or process shows up in the next search. Large indexes are saved
to the cache folder (index_snapshot.py), so the next process opens them instead of rebuilding them.

A query's terms are embedded (text by the text encoder, images from their stored embedding when the
photo is in the library, else by the image encoder), weighted, summed and L2-normalised; scores are
cosine similarities of that vector with each photo's. Filters become a set of allowed photo ids.

Videos are scored by their best sampled frame (frame_index.py): a result for a video carries that
frame's moment (`time`, seconds) and the video's `duration`.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from clipdesk.errors import ClipdeskError, EmptyLibraryError
from clipdesk.library.pathnames import display_path, subtree_range, to_db_path
from clipdesk.library.stacks import collapse
from clipdesk.library.store import IN_LIBRARY, Library, embedding_model_key, sound_vectors
from clipdesk.runtime.encoders import ClipModel
from clipdesk.runtime.package import ModelPackage
from clipdesk.runtime.video_frames import VideoError, is_video, sample_frames, video_vector
from clipdesk.search import DEFAULT_K
from clipdesk.search.frame_index import FrameIndex
from clipdesk.search.index_snapshot import load_snapshot, save_snapshot, snapshot_path
from clipdesk.search.query import IMAGE, VIDEO, Filters, Query, parse_query
from clipdesk.search.vector_index import VectorIndex

# Prompt wrapping ("a photo of {}") applies to text terms of at most this many words.
PROMPT_MAX_WORDS = 3
_LOAD_CHUNK = 16384
# Indexes this large are saved as snapshots (rebuilding 50k vectors takes about a second); a snapshot
# that needed more than this share of its rows changed on opening is saved again.
SNAPSHOT_MIN_ROWS = 50_000
SNAPSHOT_STALE_SHARE = 0.05


@dataclass(frozen=True)
class SearchResult:
    photo_id: int
    path: str  # os.fsdecode form (see library/pathnames.py)
    score: float | None  # cosine similarity; None for a query made of filters only
    stack: tuple[str, ...] = ()  # every file of the photo's stack (RAW + JPEG), `path` first; empty for none
    time: float | None = None  # a video's best-matching moment (seconds); None for photos and filter-only queries
    duration: float | None = None  # a video's length (seconds); None for photos

    def to_dict(self) -> dict:
        data = {"path": self.path, "score": None if self.score is None else round(float(self.score), 6)}
        if self.stack:
            data["stack"] = list(self.stack)
        if self.duration is not None:
            data["duration"] = round(self.duration, 3)
            data["time"] = None if self.time is None else round(self.time, 3)
        return data


def wrap_prompt(text: str, template: str | None) -> str:
    """`template` with `{}` replaced by `text`, for short terms only (long ones are already sentences)."""
    if not template or len(text.split()) > PROMPT_MAX_WORDS:
        return text
    return template.replace("{}", text)


def check_prompt_template(template: str) -> str:
    if "{}" not in template:
        raise ClipdeskError(f"prompt template {template!r} has no '{{}}' where the query goes, e.g. 'a photo of {{}}'")
    return template


def load_index(library: Library, model: str, dim: int | None = None) -> tuple[VectorIndex | None, int]:
    """Every sound embedding of `model` in a fresh index, and the change marker it is current to; damaged
    vectors (store.sound_vectors) are left out until indexing makes them again.

    Reads in chunks straight into the index, so the float16 matrix is never held whole beside it.
    """
    marker = library.change_marker()  # first: whatever is written meanwhile shows up as a change
    count = library.conn.execute("SELECT count(*) FROM embeddings WHERE model = ?", (model,)).fetchone()[0]
    cursor = library.conn.execute("SELECT photo_id, vector FROM embeddings WHERE model = ? ORDER BY photo_id",
                                  (model,))
    index = None
    while rows := cursor.fetchmany(_LOAD_CHUNK):
        ids, vectors, _ = sound_vectors(rows, dim)
        if not len(ids):
            continue
        if index is None:
            index = VectorIndex(vectors.shape[1])
            index.reserve(count)
        index.upsert(ids, vectors)
    return index, marker


class Searcher:
    def __init__(self, library: Library, model: str | os.PathLike | ModelPackage | ClipModel | None = None,
                 device: str = "auto", snapshots: bool = True, resident: bool = False):
        """`resident`: this process will search many times (the app), so a saved index is copied into
        ordinary memory for faster scans (index_snapshot.load_snapshot)."""
        from clipdesk.runtime.registry import resolve_model

        if isinstance(model, ClipModel):
            self.clip = model
        else:
            package = model if isinstance(model, ModelPackage) else resolve_model(model)
            self.clip = ClipModel(package, device)
        self.library = library
        self.model_key = embedding_model_key(self.clip.package)
        self.dim = self.clip.package.manifest.embed_dim  # a stored vector of another width is damage
        self._index: VectorIndex | None = None
        self._frames = FrameIndex(self.dim)
        self._marker = 0
        self._loaded = False
        self._allowed_cache: tuple[tuple, np.ndarray] | None = None
        self._refresh_lock = threading.Lock()  # GUI workers may search at once: load and update once
        self.snapshots = snapshots
        self.resident = resident

    # --- the index ---

    def refresh(self) -> VectorIndex | None:
        """Load the index on first use, then apply the embeddings written or deleted since."""
        with self._refresh_lock:
            return self._refresh()

    def _refresh(self) -> VectorIndex | None:
        if not self._loaded:
            self._index, self._marker = self._open_index()
            self._loaded = True
            self._update_frames(None)
            return self._index
        if self.library.change_marker() == self._marker:
            return self._index
        changes = self.library.embedding_changes(self.model_key, self._marker, self.dim)
        if self._index is None and len(changes.photo_ids):
            self._index = VectorIndex(changes.vectors.shape[1])
        if self._index is not None:
            self._index.remove(changes.removed_ids)
            self._index.upsert(changes.photo_ids, changes.vectors)
        self._update_frames(np.concatenate([changes.photo_ids, changes.removed_ids]))
        self._marker = changes.marker
        return self._index

    def _update_frames(self, changed: np.ndarray | None) -> None:
        """Read the frames of the `changed` photo ids (None: of every video) into the frame index, and keep
        videos with frames out of the photo index: their frames score them."""
        if changed is not None and not len(changed):
            return
        ids, times, vectors = self.library.video_frames(self.model_key, None if changed is None else changed.tolist(),
                                                        self.dim)
        self._frames.replace(np.unique(ids) if changed is None else changed, ids, times, vectors)
        if self._index is not None and len(ids):
            self._index.remove(np.unique(ids))

    def _open_index(self) -> tuple[VectorIndex | None, int]:
        opened = self._open_snapshot() if self.snapshots else None
        if opened is not None:
            return opened
        index, marker = load_index(self.library, self.model_key, self.dim)
        if self.snapshots and index is not None and len(index) >= SNAPSHOT_MIN_ROWS:
            self._save_snapshot(index, marker)
        return index, marker

    def _snapshot_facts(self, marker: int) -> dict:
        return {"model": self.model_key, "marker": marker}

    def _save_snapshot(self, index: VectorIndex, marker: int) -> None:
        try:
            save_snapshot(snapshot_path(self.library.path, self.model_key), index, self._snapshot_facts(marker))
        except OSError:
            pass  # a full disk or read-only cache only costs the next process a rebuild

    def _open_snapshot(self) -> tuple[VectorIndex, int] | None:
        """The saved index brought up to date, or None when there is none or it is not this database's."""
        loaded = load_snapshot(snapshot_path(self.library.path, self.model_key), self.resident)
        if loaded is None:
            return None
        index, header = loaded
        expected = self._snapshot_facts(header.get("marker", -1))
        if any(header.get(key) != value for key, value in expected.items()) \
                or header["marker"] > self.library.change_marker():
            return None
        changes = self.library.embedding_changes(self.model_key, header["marker"], self.dim)
        index.remove(changes.removed_ids)
        index.upsert(changes.photo_ids, changes.vectors)
        if not self._snapshot_matches(index):
            return None
        if len(changes.photo_ids) + len(changes.removed_ids) > SNAPSHOT_STALE_SHARE * len(index):
            self._save_snapshot(index, changes.marker)
        return index, changes.marker

    def _snapshot_matches(self, index: VectorIndex, samples: int = 16) -> bool:
        """Same count and same vectors at sample rows as the database: a database made anew at the same
        path (its change log restarted) is not mistaken for the one the snapshot was made from."""
        count = self.library.conn.execute("SELECT count(*) FROM embeddings WHERE model = ?",
                                          (self.model_key,)).fetchone()[0]
        if len(index) != count:
            return False
        ids = index.ids
        chosen = np.unique(ids[np.linspace(0, len(ids) - 1, min(samples, len(ids))).astype(np.int64)]).tolist()
        rows = self.library.conn.execute(
            f"SELECT photo_id, vector FROM embeddings WHERE model = ? AND photo_id IN ({','.join('?' * len(chosen))}) "
            "ORDER BY photo_id", [self.model_key, *chosen]).fetchall()
        if [row[0] for row in rows] != chosen:
            return False
        sound_ids, stored, _ = sound_vectors(rows, index.dim)
        return len(sound_ids) == len(chosen) and \
            float(np.abs(index.vectors(chosen) - stored.astype(np.float32)).max()) < 1e-3

    @property
    def index(self) -> VectorIndex | None:
        return self.refresh()

    @property
    def item_count(self) -> int:
        """Photos and videos searchable with this model."""
        index = self.refresh()
        return (0 if index is None else len(index)) + len(self._frames.video_ids)

    def frames_of(self, video_id: int) -> np.ndarray | None:
        """A video's sampled frames' vectors (F, D) in time order; None for a photo."""
        self.refresh()
        return self._frames.frames_of(video_id)

    def item_blocks(self):
        """(ids int64, float32 vectors) of every item's own vector, a block at a time: the photos' from the
        index, the videos' (the mean of their frames) from the library."""
        index = self.refresh()
        if index is not None:
            yield from index.iter_blocks()
        ids, vectors = self.library.embeddings(self.model_key, self._frames.video_ids.tolist(), self.dim)
        if len(ids):
            yield ids, vectors

    def _require_index(self) -> VectorIndex:
        index = self.refresh()
        if (index is None or len(index) == 0) and not len(self._frames):
            others = [name for name in self.library.embedding_models() if name != self.model_key]
            hint = (f" (it has photos indexed with {', '.join(others)}; pass that --model or re-index)"
                    if others else "")
            # Nothing indexed with any model: the library is empty (a GUI says "Add a folder").
            error = ClipdeskError if others else EmptyLibraryError
            raise error(f"no photos are indexed with model {self.clip.name}{hint}; run `clipdesk index FOLDER` first")
        if index is None:  # videos only, and their frames came in through the change log
            index = self._index = VectorIndex(self.dim)
        if index.dim != self.clip.package.manifest.embed_dim:
            raise ClipdeskError(f"the library's {self.model_key} vectors have {index.dim} dimensions but the model "
                                f"has {self.clip.package.manifest.embed_dim}; re-index the library")
        return index

    # --- queries ---

    def search(self, query: str | Query, k: int = DEFAULT_K, like: Sequence[str] = (),
               prompt: str | None = None) -> list[SearchResult]:
        """The k best photos for a query (text in the query language, or a parsed Query), best first."""
        if isinstance(query, str):
            query = parse_query(query, like)
        elif like:
            query = Query(query.terms + parse_query("", like).terms, query.filters)
        if k <= 0:
            raise ClipdeskError(f"-k must be at least 1 (got {k})")
        if not query.terms:
            return self._filter_only(query.filters, k)
        index = self._require_index()
        vector = self.query_vector(query, prompt)
        allowed = None if query.filters.empty else self.allowed_ids(query.filters)
        # Twice k: the members of a stack rank side by side and are shown once.
        ids, scores = index.search(vector, 2 * k, allowed) if len(index) else (np.zeros(0, np.int64), np.zeros(0))
        moments = np.full(len(ids), np.nan, np.float32)
        video_ids, video_scores, video_moments = self._frames.best(vector, allowed)
        if len(video_ids):  # videos by their best frame, merged in by score
            ids, scores = np.concatenate([ids, video_ids[:2 * k]]), np.concatenate([scores, video_scores[:2 * k]])
            moments = np.concatenate([moments, video_moments[:2 * k]])
            order = np.argsort(-scores, kind="stable")[:2 * k]
            ids, scores, moments = ids[order], scores[order], moments[order]
        paths = self.library.photo_paths(ids)
        # A photo deleted after the index caught up has no path: leave it out.
        return self._one_per_stack([(int(photo_id), path, float(score), None if np.isnan(moment) else float(moment))
                                    for photo_id, path, score, moment in zip(ids, paths, scores, moments)
                                    if path is not None], k)

    def _one_per_stack(self, found: list[tuple[int, str, float | None, float | None]], k: int) -> list[SearchResult]:
        results = []
        for rank, shown, members in collapse(self.library.conn, [path for _, path, _, _ in found])[:k]:
            photo_id, path, score, moment = found[rank]
            if shown != path:  # a stack shown by its still: the moment was its video's
                photo_id, moment = self.library.photo_id(shown), None
            results.append(SearchResult(photo_id, shown, score, tuple(members), moment))
        durations = self.library.durations(result.photo_id for result in results)
        return [replace(result, duration=durations.get(result.photo_id)) for result in results]

    def query_vector(self, query: Query, prompt: str | None = None) -> np.ndarray:
        """The unit vector a query stands for: the weighted sum of its terms' unit vectors, normalised."""
        if prompt is not None:
            check_prompt_template(prompt)
        total = np.zeros(self.clip.package.manifest.embed_dim, np.float32)
        texts = [term for term in query.terms if term.kind != IMAGE]
        if texts:
            embedded = self.clip.text.encode([wrap_prompt(term.value, prompt) for term in texts])
            for term, vector in zip(texts, embedded):
                total += term.weight * vector
        for term in query.image_terms:
            total += term.weight * self.image_vector(term.value)
        norm = float(np.linalg.norm(total))
        if norm < 1e-6:
            raise ClipdeskError("the query's terms cancel each other out; change a weight or remove a term")
        return total / norm

    def unread_words(self, query: str | Query, like: Sequence[str] = ()) -> list[tuple[str, str | None]]:
        """Words of the query's text terms that the model never read, with what its lexicon reads them as
        (runtime/lexicon.py); empty for models without a lexicon."""
        query = parse_query(query, like) if isinstance(query, str) else query
        return self.clip.text.unread(term.value for term in query.terms if term.kind != IMAGE)

    def image_vector(self, path: str) -> np.ndarray:
        """A photo's unit vector: its stored embedding when it is in the library, else the image encoder's."""
        expanded = os.path.expanduser(path)
        photo_id = self.library.photo_id(expanded)
        index = self.refresh()
        if photo_id is not None and index is not None and photo_id in index:
            vector = index.vectors([photo_id])[0]
            return vector / max(float(np.linalg.norm(vector)), 1e-12)
        stored = self.library.embeddings(self.model_key, [] if photo_id is None else [photo_id], self.dim)[1]
        if len(stored):  # a video: its vector (the mean of its frames) is not in the photo index
            return stored[0]
        if not os.path.isfile(expanded):
            raise ClipdeskError(f"{display_path(path)}: no such photo (image terms name a photo file; to search for "
                                "the words, put them in quotes with a space or leave out the extension)")
        if is_video(expanded):  # as the indexer embeds one: the mean of its sampled frames
            try:
                frames = sample_frames(expanded).frames
            except VideoError as exc:
                raise ClipdeskError(f"{display_path(path)}: {exc}") from None
            return video_vector(self.clip.image.encode_images([frame.image for frame in frames]))
        return self.clip.image.encode_files([expanded])[0]

    # --- filters ---

    def _filter_sql(self, filters: Filters) -> tuple[str, list]:
        clauses, params = [], []
        if filters.folders:
            ranges = [subtree_range(self._folder_path(folder)) for folder in filters.folders]
            clauses.append("(" + " OR ".join("(path >= ? AND path < ?)" for _ in ranges) + ")")
            params += [bound for pair in ranges for bound in pair]
        for folder in filters.exclude_folders:
            clauses.append("NOT (path >= ? AND path < ?)")
            params += list(subtree_range(self._folder_path(folder)))
        if filters.taken_from:
            clauses.append("taken_at >= ?")
            params.append(filters.taken_from)
        if filters.taken_until:
            clauses.append("taken_at < ?")
            params.append(filters.taken_until)
        if filters.kind:
            clauses.append("duration IS NOT NULL" if filters.kind == VIDEO else "duration IS NULL")
        for tags, operator in ((filters.tags, "IN"), (filters.exclude_tags, "NOT IN")):
            for tag in tags:
                self._check_tag(tag)
                # Confirmed tags only: a suggestion is the model's guess until the user accepts it.
                clauses.append(f"id {operator} (SELECT pt.photo_id FROM photo_tags AS pt JOIN tags AS t "
                               "ON t.id = pt.tag_id WHERE t.name = ? COLLATE NOCASE AND pt.source = 'user')")
                params.append(tag)
        return " AND ".join(clauses) or "1", params

    def allowed_ids(self, filters: Filters) -> np.ndarray:
        """Ids of the photos that pass the filters. The last answer is kept while the database is unchanged
        (the GUI re-runs one filter with many texts; a broad filter over 1M photos costs tens of ms)."""
        conn = self.library.conn
        state = (filters, id(conn), conn.execute("PRAGMA data_version").fetchone()[0], conn.total_changes)
        if self._allowed_cache is not None and self._allowed_cache[0] == state:
            return self._allowed_cache[1]
        where, params = self._filter_sql(filters)
        # The ids come back as one comma-separated string, parsed by numpy: a Python tuple per row
        # cost ~3x more than SQLite's own work (200k photos in a five-year date range).
        joined = conn.execute(f"SELECT group_concat(id) FROM photos WHERE {where}", params).fetchone()[0]
        ids = np.fromstring(joined, np.int64, sep=",") if joined else np.zeros(0, np.int64)
        self._allowed_cache = (state, ids)
        return ids

    def _filter_only(self, filters: Filters, k: int) -> list[SearchResult]:
        """Photos in the library (store.IN_LIBRARY) matching the filters, newest taken first (no terms:
        nothing to score, so none needs a vector: the count is the sidebar's)."""
        where, params = self._filter_sql(filters)
        rows = self.library.conn.execute(
            f"SELECT id, path FROM photos WHERE {where} AND {IN_LIBRARY} "
            "ORDER BY taken_at IS NULL, taken_at DESC, path LIMIT ?", [*params, 2 * k]).fetchall()
        return self._one_per_stack([(photo_id, os.fsdecode(path), None, None) for photo_id, path in rows], k)

    def _folder_path(self, folder: str) -> bytes:
        path = to_db_path(os.path.expanduser(folder))
        if os.path.isdir(path):
            return path
        low, high = subtree_range(path)
        if self.library.conn.execute("SELECT 1 FROM photos WHERE path >= ? AND path < ? LIMIT 1",
                                     (low, high)).fetchone():
            return path  # a folder that is gone (unmounted drive) but still has photos in the library
        raise ClipdeskError(f"folder:{folder}: no such folder")

    def _check_tag(self, name: str) -> None:
        """Tags match whatever their case; a name no tag has is more likely a typo than a wish for nothing."""
        if self.library.conn.execute("SELECT 1 FROM tags WHERE name = ? COLLATE NOCASE", (name,)).fetchone():
            return
        known = [row[0] for row in self.library.conn.execute("SELECT name FROM tags ORDER BY name LIMIT 20")]
        raise ClipdeskError(f"tag:{name}: no such tag" + (f" (tags: {', '.join(known)})" if known else
                                                          " (the library has no tags yet)"))
