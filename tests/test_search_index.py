"""The in-memory vector index: exact top-k against brute force, updates in place, the int8 scan."""

import numpy as np
import pytest

from clipdesk.search.coarse_scan import QUERY_LIMIT, CoarseScanner, matmul_integer_model
from clipdesk.search.vector_index import VectorIndex, top_k_rows

# Scores are within this of float64 dot products with the stored float16 vectors: a few times smaller than
# the error float16 rounding itself puts into a score (~1e-4 for 64-512 dims).
PRECISION = 5e-5


def unit(rows, dim, seed):
    vectors = np.random.default_rng(seed).standard_normal((rows, dim)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def brute_force(ids, vectors, query, k, allowed=None):
    """Top k by float64 dot products with the float16 vectors as stored, ties by id."""
    scores = vectors.astype(np.float16).astype(np.float64) @ query.astype(np.float64)
    keep = np.ones(len(ids), bool) if allowed is None else np.isin(ids, allowed)
    order = [i for i in np.lexsort((ids, -scores)) if keep[i]][:k]
    return ids[order], scores[order]


def assert_exact_top_k(got_ids, got_scores, ids, vectors, query, k, allowed=None):
    """The index's answer is the true top k up to float16 precision: each score right, none better left out."""
    want_ids, want_scores = brute_force(ids, vectors, query, k, allowed)
    assert len(got_ids) == len(want_ids) == len(set(got_ids.tolist()))
    assert np.all(np.diff(got_scores) <= 0)
    true = dict(zip(ids.tolist(), vectors.astype(np.float16).astype(np.float64) @ query.astype(np.float64)))
    assert max(abs(true[i] - s) for i, s in zip(got_ids.tolist(), got_scores.tolist())) < PRECISION
    assert min(true[i] for i in got_ids.tolist()) >= want_scores[-1] - PRECISION
    # Ids differ from brute force only where scores tie within float16 precision.
    for got, want, score in zip(got_ids.tolist(), want_ids.tolist(), want_scores.tolist()):
        assert got == want or abs(true[got] - score) < 2 * PRECISION


def test_matmul_integer_graph_is_valid_onnx():
    onnx = pytest.importorskip("onnx")
    model = onnx.load_from_string(matmul_integer_model())
    onnx.checker.check_model(model, full_check=True)
    assert [node.op_type for node in model.graph.node] == ["MatMulInteger"]


def test_coarse_scan_is_exact_at_the_extremes():
    scanner = CoarseScanner(threads=1)
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 256, (3000, 64), dtype=np.uint8)
    codes[0], codes[1] = 255, 0  # +127 and -128 everywhere: the largest sums the kernel can see
    query = rng.integers(-QUERY_LIMIT, QUERY_LIMIT + 1, 64).astype(np.int8)
    query[:32], query[32:] = QUERY_LIMIT, -QUERY_LIMIT
    expected = (codes.astype(np.int64) - 128) @ query.astype(np.int64)
    assert np.array_equal(scanner.scan(codes, query), expected)
    both = np.stack([query, -query], axis=1)
    assert np.array_equal(scanner.scan(codes, both), np.stack([expected, -expected], axis=1))
    with pytest.raises(ValueError):
        scanner.scan(codes, np.full(64, QUERY_LIMIT + 1, np.int8))


def test_coarse_scan_splits_long_matrices(monkeypatch):
    scanner = CoarseScanner(threads=1)
    monkeypatch.setattr(CoarseScanner, "BLOCK_ROWS", 100)
    codes = np.random.default_rng(1).integers(0, 256, (1050, 16), dtype=np.uint8)
    query = np.arange(-8, 8, dtype=np.int8)
    assert np.array_equal(scanner.scan(codes, query), (codes.astype(np.int64) - 128) @ query.astype(np.int64))


@pytest.mark.parametrize("seed", range(4))
def test_top_k_equals_brute_force(seed):
    vectors = unit(20000, 64, seed)
    ids = np.arange(20000, dtype=np.int64) * 7 + 3
    index = VectorIndex.from_vectors(ids, vectors.astype(np.float16))
    for trial, query in enumerate(unit(3, 64, seed + 100)):
        if trial == 2:
            query = vectors[123]  # a query equal to a stored vector: a very peaked score distribution
        for k in (1, 10, 250):
            got_ids, got_scores = index.search(query, k)
            assert_exact_top_k(got_ids, got_scores, ids, vectors, query, k)


@pytest.mark.parametrize("k", [1, 5, 20])
def test_top_k_rows_by_block_maxima_are_the_k_largest(k):
    rng = np.random.default_rng(k)
    values = rng.standard_normal(100_003).astype(np.float32)  # 97 whole blocks and a tail
    clustered = values.copy()
    clustered[2048:2048 + k] += 10  # every winner in one block
    clustered[-1] = 20  # and one in the tail
    ties = np.round(values, 1)  # many equal values at the boundary
    for case in (values, clustered, ties):
        got = top_k_rows(case, k)
        assert len(set(got.tolist())) == k
        assert np.array_equal(np.sort(case[got]), np.sort(case)[-k:])


def test_scores_match_float16_within_its_precision():
    vectors = unit(500, 512, 5)
    index = VectorIndex.from_vectors(np.arange(500), vectors.astype(np.float16))
    stored = vectors.astype(np.float16).astype(np.float32)
    assert np.abs(index.vectors(np.arange(500)) - stored).max() <= np.abs(stored).max(axis=1).max() / 64516 + 1e-7
    query = unit(1, 512, 6)[0]
    _, scores = index.search(query, 500)
    assert np.abs(np.sort(scores) - np.sort(stored @ query)).max() < 1e-5


def test_ties_are_broken_by_id_and_k_larger_than_the_index():
    vectors = np.tile(unit(1, 16, 0), (5, 1))
    index = VectorIndex.from_vectors(np.array([9, 4, 7, 1, 3]), vectors)
    ids, scores = index.search(vectors[0], 3)
    assert ids.tolist() == [1, 3, 4]
    ids, _ = index.search(vectors[0], 50)
    assert ids.tolist() == [1, 3, 4, 7, 9]


def test_allowed_ids_restrict_the_search():
    vectors = unit(3000, 32, 1)
    ids = np.arange(3000, dtype=np.int64) + 1
    index = VectorIndex.from_vectors(ids, vectors.astype(np.float16))
    allowed = ids[::13]
    query = unit(1, 32, 2)[0]
    got, scores = index.search(query, 20, allowed_ids=np.concatenate([allowed, [-5, 10**9]]))
    assert set(got.tolist()) <= set(allowed.tolist())
    assert_exact_top_k(got, scores, ids, vectors, query, 20, allowed)
    assert len(index.search(query, 5, allowed_ids=np.array([], np.int64))[0]) == 0


def test_upsert_remove_and_compaction_keep_results_exact():
    rng = np.random.default_rng(3)
    index = VectorIndex(24)
    truth: dict[int, np.ndarray] = {}
    for step in range(30):
        new_ids = rng.choice(5000, size=300, replace=False)
        new_vectors = unit(300, 24, step)
        index.upsert(new_ids, new_vectors.astype(np.float16))
        truth.update(zip(new_ids.tolist(), new_vectors))
        gone = rng.choice(5000, size=200, replace=False)
        assert index.remove(gone) == sum(int(i) in truth for i in gone)
        for photo_id in gone.tolist():
            truth.pop(photo_id, None)
        assert len(index) == len(truth)
        ids = np.array(sorted(truth), np.int64)
        assert np.array_equal(np.sort(index.ids), ids)
        query = unit(1, 24, 1000 + step)[0]
        got, scores = index.search(query, 15)
        assert_exact_top_k(got, scores, ids, np.array([truth[i] for i in ids.tolist()]), query, 15)
    assert 0 not in index or 0 in truth


def test_replacing_a_vector_moves_its_photo():
    vectors = unit(100, 16, 4)
    index = VectorIndex.from_vectors(np.arange(100), vectors)
    query = unit(1, 16, 5)[0]
    index.upsert(np.array([42]), query[None])
    ids, scores = index.search(query, 1)
    assert ids.tolist() == [42] and scores[0] == pytest.approx(1.0, abs=1e-5)
    assert len(index) == 100


def test_iter_blocks_yields_every_live_vector():
    vectors = unit(1000, 8, 9)
    index = VectorIndex.from_vectors(np.arange(1000), vectors)
    index.remove(np.arange(0, 1000, 3))
    seen = {int(i): v for ids, block in index.iter_blocks(block_rows=97) for i, v in zip(ids, block)}
    assert sorted(seen) == [i for i in range(1000) if i % 3]
    assert np.allclose(seen[500], vectors[500], atol=1e-3)


def test_memory_is_two_bytes_a_value_plus_a_little():
    index = VectorIndex.from_vectors(np.arange(10000), unit(10000, 512, 0).astype(np.float16))
    assert index.memory_bytes <= 10000 * (2 * 512 + 32)


def test_rejects_wrong_shapes():
    index = VectorIndex(8)
    with pytest.raises(Exception, match="do not fit"):
        index.upsert(np.array([1]), np.zeros((1, 9), np.float32))
    index.upsert(np.array([1]), unit(1, 8, 0))
    with pytest.raises(Exception, match="cannot search"):
        index.search(np.zeros(4, np.float32), 1)
