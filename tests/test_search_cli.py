"""`clipdesk search` and `clipdesk duplicates` end to end on a library built by `clipdesk index`."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import ExifTags, Image

from clipdesk.cli import main


def run_cli(capsys, *args):
    capsys.readouterr()
    code = main([str(arg) for arg in args])
    out, err = capsys.readouterr()
    return code, out, err


def noise_photo(path, seed, taken=None):
    pixels = np.random.default_rng(seed).integers(0, 256, (32, 40, 3), dtype=np.uint8)
    exif = Image.Exif()
    if taken:
        exif.get_ifd(ExifTags.IFD.Exif)[ExifTags.Base.DateTimeOriginal] = taken
    Image.fromarray(pixels).save(path, "JPEG", exif=exif)


def gradient_photo(path, size):
    ramp = np.linspace(0, 255, size)
    pixels = np.stack(np.broadcast_arrays(ramp[None, :], ramp[:, None], 255 - ramp[None, :]), -1)
    Image.fromarray(pixels.astype(np.uint8)).save(path, "PNG")


@pytest.fixture(scope="module")
def library_home(tmp_path_factory, tiny_model_package):
    """One indexed library for the whole module (indexing is the slow part), copied into each test's home."""
    root = tmp_path_factory.mktemp("search-cli")
    photos = root / "my photos"
    (photos / "trip").mkdir(parents=True)
    for seed in range(6):
        noise_photo(photos / f"p{seed}.jpg", seed, taken="2021:05:06 07:08:09" if seed < 2 else None)
    noise_photo(photos / "trip" / "t0.jpg", 10)
    shutil.copy(photos / "p3.jpg", photos / "trip" / "p3 copy.jpg")
    gradient_photo(photos / "gradient.png", 64)
    # The same picture resized: a near-duplicate, the closest pair (test_duplicates_json checks it).
    gradient_photo(photos / "gradient large.png", 128)
    home = root / "home"
    previous = os.environ.get("CLIPDESK_HOME")
    os.environ["CLIPDESK_HOME"] = str(home)
    try:
        assert main(["index", str(photos), "--model", str(tiny_model_package), "--json"]) == 0
    finally:
        if previous is None:
            del os.environ["CLIPDESK_HOME"]
        else:
            os.environ["CLIPDESK_HOME"] = previous
    return home, photos


@pytest.fixture
def indexed(library_home, clipdesk_home, tiny_model_package):
    home, photos = library_home
    shutil.copytree(home, clipdesk_home, dirs_exist_ok=True)
    return photos, str(tiny_model_package)


def test_search_prints_ranked_json(indexed, capsys):
    photos, model = indexed
    code, out, err = run_cli(capsys, "search", "a red car", "-k", "5", "--json", "--model", model)
    assert code == 0, err
    results = json.loads(out)
    assert len(results) == 5 and all(set(row) == {"path", "score"} for row in results)
    scores = [row["score"] for row in results]
    assert scores == sorted(scores, reverse=True) and all(-1 <= s <= 1 for s in scores)
    assert all(os.path.isfile(row["path"]) and row["path"].startswith(str(photos)) for row in results)
    code, out, _ = run_cli(capsys, "search", "a", "red", "car", "-k", "50", "--json", "--model", model)
    assert [row["path"] for row in json.loads(out)][:5] == [row["path"] for row in results]
    assert len(json.loads(out)) == 10  # every indexed photo, no more


def test_like_finds_the_photo_itself_first_and_text_output_shows_scores(indexed, capsys):
    photos, model = indexed
    target = photos / "p4.jpg"
    code, out, _ = run_cli(capsys, "search", "--like", target, "-k", "1", "--json", "--model", model)
    assert json.loads(out) == [{"path": str(target), "score": pytest.approx(1.0, abs=1e-3)}]
    code, out, _ = run_cli(capsys, "search", f'"{target}" + 0.01:sunset', "-k", "3", "--model", model)
    lines = out.splitlines()
    assert code == 0 and len(lines) == 3 and lines[0].endswith(str(target))
    assert float(lines[0].split()[0]) > float(lines[1].split()[0])


def test_filters_through_the_cli(indexed, capsys):
    photos, model = indexed
    code, out, _ = run_cli(capsys, "search", f'dog folder:"{photos / "trip"}"', "--json", "--model", model)
    assert sorted(os.path.basename(row["path"]) for row in json.loads(out)) == ["p3 copy.jpg", "t0.jpg"]
    code, out, _ = run_cli(capsys, "search", "dog date:2021-05", "--json", "--model", model)
    assert sorted(os.path.basename(row["path"]) for row in json.loads(out)) == ["p0.jpg", "p1.jpg"]
    code, out, _ = run_cli(capsys, "search", "date:2021", "--json", "--model", model)
    assert [row["score"] for row in json.loads(out)] == [None, None]
    code, out, err = run_cli(capsys, "search", "dog before:2020", "--model", model)
    assert code == 0 and out == "" and "no matching photos" in err


@pytest.mark.parametrize("args, message", [
    (["beach +"], "'+' must be followed by a term"),
    (["colour:red"], "unknown filter 'colour:'"),
    (["dog tag:holiday"], "tag:holiday: no such tag"),
    (["like:/no/such/photo.jpg"], "no such photo"),
    (["dog", "-k", "0"], "-k must be at least 1"),
])
def test_errors_are_one_line(indexed, capsys, args, message):
    _, model = indexed
    code, out, err = run_cli(capsys, "search", *args, "--model", model)
    assert code == 1 and out == ""
    assert err.startswith("clipdesk: error: ") and message in err and err.count("\n") == 1


def test_search_without_a_library_says_to_index(capsys, tiny_model_package):
    code, _, err = run_cli(capsys, "search", "dog", "--model", tiny_model_package)
    assert code == 1 and "run `clipdesk index FOLDER` first" in err


def near_duplicate_threshold() -> float:
    """A threshold between the resized gradient pair's cosine and the closest other pair's, from the stored
    vectors in float64 (the random-weight model puts every photo close to every other, so a fixed figure
    would be one read off this model's scores)."""
    from clipdesk.library.store import Library

    with Library() as library:
        (model_key,), = library.conn.execute("SELECT DISTINCT model FROM embeddings").fetchall()
        ids, vectors = library.embedding_matrix(model_key)
        names = [os.path.basename(library.photo(int(i)).path) for i in ids]
    unique = [row for row, name in enumerate(names) if name != "p3 copy.jpg"]  # its bytes are p3.jpg's
    vectors = vectors[unique].astype(np.float64)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    similarity = np.triu(vectors @ vectors.T, 1)
    pair = sorted(names[unique[row]] for row in np.unravel_index(similarity.argmax(), similarity.shape))
    assert pair == ["gradient large.png", "gradient.png"], "the fixture's near pair is not the closest pair"
    top, runner_up = np.sort(similarity, axis=None)[-2:][::-1]
    assert top - runner_up > 1e-4, (top, runner_up)  # far enough apart for float16 vectors
    return float(top + runner_up) / 2


def test_duplicates_json(indexed, capsys):
    photos, model = indexed
    threshold = near_duplicate_threshold()
    code, out, err = run_cli(capsys, "duplicates", "--json", "--model", model, "--threshold", threshold)
    assert code == 0, err
    groups = [(g["kind"], sorted(os.path.basename(p) for p in g["paths"])) for g in json.loads(out)]
    assert groups == [("exact", ["p3 copy.jpg", "p3.jpg"]), ("near", ["gradient large.png", "gradient.png"])]
    code, out, _ = run_cli(capsys, "duplicates", "--model", model, "--threshold", threshold)
    assert "2 photos, identical:" in out and "near-duplicates, similarity >=" in out
    code, _, err = run_cli(capsys, "duplicates", "--threshold", "2", "--model", model)
    assert code == 1 and "--threshold must be above 0 and at most 1" in err


def test_duplicates_without_a_model_finds_exact_copies(indexed, capsys, no_bundled_models):
    code, out, err = run_cli(capsys, "duplicates", "--json")
    assert code == 0 and "only exact copies" in err
    assert [g["kind"] for g in json.loads(out)] == ["exact"]


def test_search_command_never_imports_torch(indexed, clipdesk_home):
    photos, model = indexed
    script = f"""
import sys
from clipdesk.cli import main
assert main(["search", "dog", "--model", {model!r}, "--like", {str(photos / 'p1.jpg')!r}]) == 0
assert main(["duplicates", "--model", {model!r}]) == 0
print("HEAVY", sorted(name for name in sys.modules if name.split(".")[0] in ("torch", "onnx", "onnxscript")))
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            env={**os.environ, "CLIPDESK_HOME": str(clipdesk_home)})
    assert result.returncode == 0, result.stderr
    assert "HEAVY []" in result.stdout


def test_damaged_vectors_are_left_out_of_search_counted_and_made_again(indexed, capsys):
    """A vector of the wrong size, one of NaNs and a finite one of norm 8 (it would rank first for every
    query) in the database: search leaves them out and keeps scores in [-1, 1], `errors` and `info` count
    them, and the next `index` makes them again."""
    import warnings

    from clipdesk.library.store import Library, embedding_model_key
    from clipdesk.runtime.registry import resolve_model

    photos, model = indexed
    assert run_cli(capsys, "model", "import", model, "--default")[0] == 0
    key = embedding_model_key(resolve_model(None))
    with Library() as library:
        rows = library.conn.execute("SELECT photo_id, vector FROM embeddings WHERE model = ? ORDER BY photo_id",
                                    (key,)).fetchall()
        total, width = len(rows), len(rows[0][1]) // 2
        loud = np.full(width, 8 / np.sqrt(width), np.float16)
        damage = {rows[0][0]: b"\x01\x02\x03", rows[1][0]: np.full(width, np.nan, np.float16).tobytes(),
                  rows[2][0]: loud.tobytes()}
        with library.transaction() as conn:
            for photo_id, blob in damage.items():
                conn.execute("UPDATE embeddings SET vector = ? WHERE photo_id = ? AND model = ?", (blob, photo_id, key))
        damaged_paths = set(library.photo_paths(list(damage)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy's RuntimeWarnings on NaN would fail here
        code, out, err = run_cli(capsys, "search", "a red car", "-k", "50", "--json")
    assert code == 0, err
    results = json.loads(out)
    assert len(results) == total - 3 and not damaged_paths & {row["path"] for row in results}
    assert all(-1 <= row["score"] <= 1 for row in results)
    code, out, _ = run_cli(capsys, "errors", "--json")
    assert sorted(row["path"] for row in json.loads(out) if row["kind"] == "vector") == sorted(damaged_paths)
    code, out, _ = run_cli(capsys, "info", "--json")
    assert json.loads(out)["damaged_vectors"] == 3
    code, out, _ = run_cli(capsys, "index", "--json")
    assert code == 0 and json.loads(out)["damaged_vectors"] == 3
    code, out, _ = run_cli(capsys, "errors", "--json")
    assert not [row for row in json.loads(out) if row["kind"] == "vector"]
    code, out, _ = run_cli(capsys, "search", "a red car", "-k", "50", "--json")
    assert len(json.loads(out)) == total
