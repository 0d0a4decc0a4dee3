"""Search over a library: ranking with known vectors, weighted and image terms, filters, incremental updates."""

import os

import numpy as np
import pytest
from PIL import Image

from clipdesk.errors import ClipdeskError, EmptyLibraryError
from clipdesk.library.records import OK, PhotoMetadata
from clipdesk.library.store import Library, embedding_model_key, vector_to_blob
from clipdesk.search.query import parse_query
from clipdesk.search.searcher import Searcher, wrap_prompt

DIM = 32  # the tiny model's embed_dim


def unit(vector):
    vector = np.asarray(vector, np.float32)
    return vector / np.linalg.norm(vector)


class Photos:
    """A library with photos whose vectors the test chooses."""

    def __init__(self, library: Library, root, model_key: str):
        self.library, self.root, self.model_key = library, root, model_key
        self.folder = library.add_folder(root)
        self.ids: dict[str, int] = {}
        self.paths: dict[str, str] = {}

    def add(self, name, vector=None, taken_at=None, content_hash=None, folder=None):
        path = os.fsencode(os.path.join(folder or self.root, name))
        folder_record = self.library.folder_containing(os.fsdecode(path)) or self.folder
        with self.library.transaction():
            photo_id = self.library.save_photo(folder_record.id, path, 10, 1, content_hash or name,
                                               PhotoMetadata(width=4, height=3, taken_at=taken_at), OK)
            if vector is not None:
                self.library.set_embedding(photo_id, self.model_key, vector_to_blob(unit(vector)))
        self.ids[name], self.paths[name] = photo_id, os.fsdecode(path)
        return photo_id

    def tag(self, name, tag, source="user"):
        with self.library.transaction() as conn:
            conn.execute("INSERT OR IGNORE INTO tags (name) VALUES (?)", (tag,))
            tag_id = conn.execute("SELECT id FROM tags WHERE name = ?", (tag,)).fetchone()[0]
            conn.execute("INSERT INTO photo_tags (photo_id, tag_id, source) VALUES (?, ?, ?)",
                         (self.ids[name], tag_id, source))

    def path(self, name):
        return self.paths.get(name) or os.path.join(self.root, name)


@pytest.fixture
def photos(library, model, tmp_path):
    root = tmp_path / "photos"
    root.mkdir()
    return Photos(library, str(root), embedding_model_key(model.package))


def axis(i, dim=DIM):
    vector = np.zeros(dim, np.float32)
    vector[i] = 1.0
    return vector


def names(results, photos):
    by_path = {path: name for name, path in photos.paths.items()}
    return [by_path.get(result.path, result.path) for result in results]


def test_text_search_ranks_like_brute_force(photos, library, model):
    rng = np.random.default_rng(0)
    vectors = {f"p{i:03d}.jpg": rng.standard_normal(DIM) for i in range(300)}
    for name, vector in vectors.items():
        photos.add(name, vector)
    query = model.text.encode(["a red car"])[0]
    stored = {name: unit(v).astype(np.float16).astype(np.float64) for name, v in vectors.items()}
    expected = sorted(stored, key=lambda name: -float(stored[name] @ query))[:7]
    results = Searcher(library, model).search("a red car", k=7)
    assert names(results, photos) == expected
    assert [r.score for r in results] == pytest.approx([float(stored[n] @ query) for n in expected], abs=5e-5)


def test_weighted_terms_are_a_normalised_weighted_sum(library, model, photos):
    photos.add("a.jpg", axis(0))
    searcher = Searcher(library, model)
    red, beach, people = model.text.encode(["red car", "beach", "people"])
    expected = unit(2 * red + beach - people)
    got = searcher.query_vector(parse_query('"2:red car" + beach - people'))
    assert np.allclose(got, expected, atol=1e-6)
    with pytest.raises(ClipdeskError, match="cancel each other out"):
        searcher.query_vector(parse_query("beach - beach"))


def test_image_terms_use_the_stored_vector_and_mix_with_text(library, model, photos):
    photos.add("x.jpg", axis(0))
    photos.add("near-x.jpg", unit(axis(0) + 0.3 * axis(1)))
    photos.add("y.jpg", axis(1))
    photos.add("z.jpg", axis(2))
    searcher = Searcher(library, model)
    results = searcher.search(photos.path("x.jpg"), k=3)
    assert names(results, photos) == ["x.jpg", "near-x.jpg", "y.jpg"]
    assert results[0].score == pytest.approx(1.0, abs=1e-4)
    # like: and --like name the same thing; x - y ranks z (orthogonal to both) above y.
    assert names(searcher.search(f'like:"{photos.path("x.jpg")}" - "{photos.path("y.jpg")}"', k=4),
                 photos) == ["x.jpg", "near-x.jpg", "z.jpg", "y.jpg"]
    assert names(searcher.search("", k=1, like=[photos.path("z.jpg")]), photos) == ["z.jpg"]
    mixed = searcher.query_vector(parse_query(f"{photos.path('x.jpg')} + sunset"))
    assert np.allclose(mixed, unit(axis(0) + model.text.encode(["sunset"])[0]), atol=1e-4)


def test_image_term_outside_the_library_is_encoded(library, model, photos, tmp_path):
    outside = tmp_path / "elsewhere.png"
    Image.new("RGB", (40, 30), (200, 30, 30)).save(outside)
    photos.add("a.jpg", axis(0))
    searcher = Searcher(library, model)
    vector = searcher.query_vector(parse_query(str(outside)))
    assert np.allclose(vector, model.image.encode_files([str(outside)])[0], atol=1e-6)
    with pytest.raises(ClipdeskError, match="missing.jpg: no such photo"):
        searcher.search(str(tmp_path / "missing.jpg"))


def test_filters_by_tag_folder_and_date(library, model, photos, tmp_path):
    inner = tmp_path / "photos" / "trip"
    inner.mkdir()
    photos.add("beach1.jpg", axis(0), taken_at="2023-06-15T10:00:00")
    photos.add("beach2.jpg", unit(axis(0) + 0.1 * axis(1)), taken_at="2022-12-31T23:59:59+02:00")
    photos.add("beach3.jpg", unit(axis(0) + 0.2 * axis(1)), folder=str(inner))
    photos.add("city.jpg", axis(1), taken_at="2023-01-01T00:00:00")
    photos.tag("beach1.jpg", "family")
    photos.tag("beach3.jpg", "Family", source="suggested")
    photos.tag("beach2.jpg", "work")
    searcher = Searcher(library, model)
    like_x = f"{photos.path('beach1.jpg')}"

    def found(filters):
        return names(searcher.search(f"{like_x} {filters}", k=10), photos)

    assert found("") == ["beach1.jpg", "beach2.jpg", "beach3.jpg", "city.jpg"]
    assert found("tag:FAMILY") == ["beach1.jpg"]  # any case; confirmed tags only: beach3's "Family" is suggested
    assert found("-tag:family") == ["beach2.jpg", "beach3.jpg", "city.jpg"]  # nor does a suggestion exclude
    assert found("-tag:work") == ["beach1.jpg", "beach3.jpg", "city.jpg"]
    assert found("tag:family -tag:FAMILY") == []
    assert found(f"folder:{inner}") == ["beach3.jpg"]
    assert found(f'-folder:"{inner}"') == ["beach1.jpg", "beach2.jpg", "city.jpg"]
    assert found(f"folder:{inner} folder:{tmp_path / 'photos'}") == ["beach1.jpg", "beach2.jpg", "beach3.jpg",
                                                                    "city.jpg"]
    assert found("date:2023") == ["beach1.jpg", "city.jpg"]  # photos without a date never match
    assert found("after:2023-01-02") == ["beach1.jpg"]
    assert found("before:2023") == ["beach2.jpg"]
    assert found("date:2022-12..2023-01") == ["beach2.jpg", "city.jpg"]
    with pytest.raises(ClipdeskError, match=r"tag:holiday: no such tag \(tags: Family, family, work\)"):
        searcher.search("beach tag:holiday")
    photos.tag("city.jpg", "sunset", source="suggested")
    assert found("tag:sunset") == [] and searcher.search("tag:sunset") == []  # only suggested: no match, no error
    with library.transaction() as conn:  # the suggestions are accepted: now they count (and the cache sees it)
        conn.execute("UPDATE photo_tags SET source = 'user'")
    assert found("tag:family") == ["beach1.jpg", "beach3.jpg"] and found("tag:sunset") == ["city.jpg"]
    assert names(searcher.search("tag:sunset"), photos) == ["city.jpg"]
    with pytest.raises(ClipdeskError, match="folder:/no/such/place: no such folder"):
        searcher.search("beach folder:/no/such/place")


def test_a_query_of_filters_lists_photos_newest_first(library, model, photos):
    photos.add("old.jpg", axis(0), taken_at="2001-01-01T00:00:00")
    photos.add("new.jpg", axis(1), taken_at="2024-01-01T00:00:00")
    photos.add("undated.jpg", axis(2))
    photos.add("not-embedded.jpg", None, taken_at="2025-01-01T00:00:00")
    with library.transaction() as conn:  # an unreadable file is not a photo in the library
        conn.execute("UPDATE photos SET status = 'error' WHERE id = ?", (photos.ids["old.jpg"],))
    photos.add("older.jpg", axis(0), taken_at="2000-01-01T00:00:00")
    results = Searcher(library, model).search(f"folder:{photos.root}", k=10)
    # A listing needs no vector: a photo not embedded yet is listed, as the sidebar counts it.
    assert names(results, photos) == ["not-embedded.jpg", "new.jpg", "older.jpg", "undated.jpg"]
    assert {result.score for result in results} == {None}
    assert [r.to_dict()["score"] for r in results] == [None] * 4


def test_index_follows_new_changed_and_deleted_embeddings(library, model, photos):
    photos.add("a.jpg", axis(0))
    photos.add("b.jpg", axis(1))
    searcher = Searcher(library, model)
    query = unit(axis(2) + 0.01 * axis(0))

    def top(k=3):
        ids, scores = searcher.index.search(query, k)
        return [name for i in ids.tolist() for name, photo_id in photos.ids.items() if photo_id == i]

    assert top() == ["a.jpg", "b.jpg"]
    photos.add("c.jpg", axis(2))  # new
    assert top() == ["c.jpg", "a.jpg", "b.jpg"]
    with library.transaction():  # changed: b now points where the query does
        library.set_embedding(photos.ids["b.jpg"], photos.model_key, vector_to_blob(query))
    assert top() == ["b.jpg", "c.jpg", "a.jpg"]
    with library.transaction():
        library.delete_photos([photos.ids["c.jpg"]])  # deleted photo: its embedding goes by cascade
    assert top() == ["b.jpg", "a.jpg"]
    with library.transaction():
        library.forget_content(photos.ids["a.jpg"])
    assert top() == ["b.jpg"]
    assert len(searcher.index) == 1


def test_writes_by_another_connection_show_up(library, model, photos):
    photos.add("a.jpg", axis(0))
    searcher = Searcher(library, model)
    assert len(searcher.index) == 1
    with Library() as other:
        other_photos = Photos.__new__(Photos)
        other_photos.library, other_photos.root, other_photos.model_key = other, photos.root, photos.model_key
        other_photos.folder, other_photos.ids, other_photos.paths = photos.folder, {}, {}
        other_photos.add("b.jpg", axis(1))
    assert len(searcher.index) == 2


def test_embeddings_of_other_models_are_never_mixed(library, model, photos):
    photos.add("a.jpg", axis(0))
    with library.transaction():
        library.set_embedding(photos.ids["a.jpg"], "other-model@123", vector_to_blob(unit(np.ones(DIM))))
    searcher = Searcher(library, model)
    assert len(searcher.index) == 1
    other = Photos(library, photos.root, "other-model@123")
    other.folder = photos.folder
    other.add("b.jpg", np.ones(DIM))
    assert len(searcher.index) == 1


def test_a_library_without_this_models_vectors_says_what_to_do(library, model, photos):
    with pytest.raises(EmptyLibraryError, match="no photos are indexed with model tiny-random; run `clipdesk index"):
        Searcher(library, model).search("beach")
    other = Photos(library, photos.root, "other@1")
    other.folder = photos.folder
    other.add("b.jpg", np.ones(DIM))
    with pytest.raises(ClipdeskError, match="it has photos indexed with other@1") as caught:
        Searcher(library, model).search("beach")
    assert not isinstance(caught.value, EmptyLibraryError)  # not empty: indexed with another model


def test_bad_k_and_prompt_template(library, model, photos):
    photos.add("a.jpg", axis(0))
    searcher = Searcher(library, model)
    with pytest.raises(ClipdeskError, match="-k must be at least 1"):
        searcher.search("beach", k=0)
    with pytest.raises(ClipdeskError, match="has no '{}'"):
        searcher.search("beach", prompt="a photo of")


def test_prompt_wraps_short_text_terms_only(library, model, photos):
    assert wrap_prompt("dog", "a photo of {}.") == "a photo of dog."
    assert wrap_prompt("kids on a beach at sunset", "a photo of {}.") == "kids on a beach at sunset"
    assert wrap_prompt("dog", None) == "dog"
    photos.add("a.jpg", axis(0))
    searcher = Searcher(library, model)
    wrapped = searcher.query_vector(parse_query("dog"), prompt="a photo of {}.")
    assert np.allclose(wrapped, model.text.encode(["a photo of dog."])[0], atol=1e-6)


@pytest.mark.parametrize("resident", [False, True], ids=["mapped", "resident"])
def test_large_indexes_are_saved_and_reopened_up_to_date(library, model, photos, monkeypatch, resident):
    from clipdesk.search import index_snapshot
    from clipdesk.search import searcher as searcher_module

    monkeypatch.setattr(searcher_module, "SNAPSHOT_MIN_ROWS", 3)
    rng = np.random.default_rng(7)
    for i in range(40):
        photos.add(f"p{i}.jpg", rng.standard_normal(DIM))
    first = Searcher(library, model)
    assert len(first.index) == 40
    path = index_snapshot.snapshot_path(library.path, photos.model_key)
    assert path.is_file()
    # Changes after the snapshot: one new photo, one changed vector, one deleted photo.
    photos.add("new.jpg", axis(3))
    with library.transaction():
        library.set_embedding(photos.ids["p1.jpg"], photos.model_key, vector_to_blob(unit(axis(4))))
        library.delete_photos([photos.ids["p2.jpg"]])

    def no_rebuild(*args):
        raise AssertionError("rebuilt from the database instead of opening the snapshot")

    with monkeypatch.context() as patch:
        patch.setattr(searcher_module, "load_index", no_rebuild)
        reopened = Searcher(library, model, resident=resident)
        assert len(reopened.index) == 40
    # Mapped arrays are read on demand; resident ones are ordinary memory, read once.
    loaded, _ = index_snapshot.load_snapshot(path, resident)
    assert all(isinstance(array, np.memmap) is not resident for array in loaded.arrays().values())
    fresh = Searcher(library, model, snapshots=False)
    for query in ("a dog", photos.path("new.jpg"), photos.path("p1.jpg"), photos.path("p7.jpg")):
        got, want = reopened.search(query, k=10), fresh.search(query, k=10)
        assert [r.path for r in got] == [r.path for r in want]
        assert [r.score for r in got] == pytest.approx([r.score for r in want], abs=1e-6)


def test_a_snapshot_that_does_not_match_the_database_is_not_used(library, model, photos, monkeypatch):
    from clipdesk.search import index_snapshot
    from clipdesk.search import searcher as searcher_module

    monkeypatch.setattr(searcher_module, "SNAPSHOT_MIN_ROWS", 3)
    for i in range(5):
        photos.add(f"p{i}.jpg", axis(i))
    Searcher(library, model).refresh()
    path = index_snapshot.snapshot_path(library.path, photos.model_key)
    saved = path.read_bytes()
    marker = library.change_marker()
    # Another database at the same path: same ids, count and change marker, other vectors. Only the
    # sampled vectors tell them apart (the changes that made it are dropped from the log).
    with library.transaction() as conn:
        for i in range(5):
            conn.execute("UPDATE embeddings SET vector = ? WHERE photo_id = ?",
                         (vector_to_blob(unit(axis(10 + i))), photos.ids[f"p{i}.jpg"]))
        conn.execute("DELETE FROM embedding_changes WHERE seq > ?", (marker,))
    assert library.change_marker() == marker
    reopened = Searcher(library, model)
    assert np.allclose(reopened.index.vectors([photos.ids["p0.jpg"]])[0], axis(10), atol=1e-3)
    # Its change log restarted below the snapshot's marker: not used either.
    with library.transaction() as conn:
        conn.execute("DELETE FROM embedding_changes")
    assert np.allclose(Searcher(library, model).index.vectors([photos.ids["p0.jpg"]])[0], axis(10), atol=1e-3)
    for resident in (False, True):
        path.write_bytes(saved[:5000])  # truncated: ignored, rebuilt
        assert len(Searcher(library, model, resident=resident).index) == 5
        path.write_bytes(b"garbage")
        assert len(Searcher(library, model, resident=resident).index) == 5


def test_filter_results_are_reused_only_while_the_database_is_unchanged(library, model, photos):
    photos.add("a.jpg", axis(0), taken_at="2020-05-05T00:00:00")
    searcher = Searcher(library, model)
    filters = parse_query("date:2020").filters
    first = searcher.allowed_ids(filters)
    assert searcher.allowed_ids(filters) is first  # unchanged: the same answer
    photos.add("b.jpg", axis(1), taken_at="2020-06-06T00:00:00")  # written on this connection
    assert sorted(searcher.allowed_ids(filters).tolist()) == sorted(photos.ids.values())
    with Library() as other:  # written by another connection
        with other.transaction() as conn:
            conn.execute("UPDATE photos SET taken_at = '2019-01-01T00:00:00' WHERE id = ?", (photos.ids["a.jpg"],))
    assert searcher.allowed_ids(filters).tolist() == [photos.ids["b.jpg"]]
    assert searcher.allowed_ids(parse_query("date:2019").filters).tolist() == [photos.ids["a.jpg"]]
    none = searcher.allowed_ids(parse_query("date:1990").filters)
    assert none.dtype == np.int64 and len(none) == 0
