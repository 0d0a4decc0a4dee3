"""Videos in the library, end to end through the CLI: sampled, embedded frame by frame with the bundled
model, found at the moment their content plays, counted and tagged once, kept up to date on re-index,
and a mixed folder of every kind of file a phone or camera makes."""

from __future__ import annotations

import io
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from clipdesk.cli import main
from clipdesk.library.store import Library
from clipdesk.library.thumbnails import ThumbnailCache, frame_thumbnail_key, thumbnail_cache
from clipdesk.runtime.video_frames import DEFAULT_STEP
from clipdesk.search.frame_index import FrameIndex
from clipdesk.search.searcher import Searcher
from dng_files import make_dng
from real_photos import real_photo
from test_heif_avif import save_avif, save_heic
from video_files import SECONDS_EACH, SIDE, SLIDES, audio_only, photo_show, slide, slideshow, ten_hour_video


def run_cli(capsys, *args):
    capsys.readouterr()
    code = main([str(arg) for arg in args])
    out, err = capsys.readouterr()
    return code, out, err


def search_json(capsys, *query) -> list[dict]:
    code, out, err = run_cli(capsys, "search", "--json", "--with-sample", "-k", 50, *query)
    assert code == 0, err
    return json.loads(out)


def slide_window(name: str) -> tuple[float, float]:
    start = SLIDES.index(name) * SECONDS_EACH
    return start, start + SECONDS_EACH


def closest_slide(jpeg: bytes) -> str:
    with Image.open(io.BytesIO(jpeg)) as image:
        pixels = np.asarray(image.convert("RGB").resize((SIDE, SIDE)), np.float32)
    return min(SLIDES, key=lambda name: np.abs(pixels - np.asarray(slide(name), np.float32)).mean())


@pytest.fixture
def video_folder(tmp_path):
    folder = tmp_path / "videos"
    folder.mkdir()
    (folder / "slides.mp4").write_bytes(slideshow(SLIDES))
    return folder


def test_search_lands_on_the_moment_its_words_play_and_reports_time_and_duration(capsys, video_folder):
    shutil.copy(Path(__file__).parents[1] / "resources" / "sample-library" / SLIDES[0], video_folder / "apple.png")
    code, out, err = run_cli(capsys, "index", video_folder)
    assert code == 0, err
    assert out.startswith("2 files in 1 folder: 2 indexed, 2 embedded"), out
    for name, words in ((SLIDES[2], "banana"), (SLIDES[1], "giraffe"), (SLIDES[3], "helicopter")):
        results = search_json(capsys, words)
        video = next(result for result in results if result["path"].endswith("slides.mp4"))
        start, end = slide_window(name)
        assert start - DEFAULT_STEP <= video["time"] <= end + DEFAULT_STEP, (words, video)
        assert video["duration"] == pytest.approx(len(SLIDES) * SECONDS_EACH, abs=0.25)
        assert results[0] == video, (words, results)  # the emoji on screen beats an apple photo
        photo = next(result for result in results if result["path"].endswith("apple.png"))
        assert set(photo) == {"path", "score"}  # a photo has no moment and no length
    code, out, _ = run_cli(capsys, "search", "--with-sample", "banana")
    assert "slides.mp4  (video, 0:10; best at 0:0" in out, out
    # is:video and is:photo, with words or alone.
    assert [Path(hit["path"]).name for hit in search_json(capsys, "apple is:video")] == ["slides.mp4"]
    assert [Path(hit["path"]).name for hit in search_json(capsys, "banana -is:video")] == ["apple.png"]
    listed = search_json(capsys, "is:video")
    assert [Path(hit["path"]).name for hit in listed] == ["slides.mp4"] and listed[0]["time"] is None


def test_the_result_thumbnail_is_the_frame_that_matched(capsys, video_folder):
    assert run_cli(capsys, "index", video_folder)[0] == 0
    video = search_json(capsys, "banana")[0]
    with Library() as library:
        content_hash = library.photo(library.photo_id(video["path"])).hash
    cache = thumbnail_cache()
    key = frame_thumbnail_key(content_hash, video["time"])
    assert closest_slide(cache.get(key)) == "banana (Fluent Emoji).png"
    # A lost cache is made again from the video, at that moment.
    fresh = ThumbnailCache(Path(os.environ["CLIPDESK_HOME"]) / "other-cache.db")
    assert fresh.get(key) is None
    assert closest_slide(fresh.make(video["path"], content_hash, video["time"])) == "banana (Fluent Emoji).png"
    assert fresh.get(key) is not None
    # The video's own thumbnail (its poster) is a frame of it.
    assert closest_slide(fresh.make(video["path"], content_hash)) in SLIDES


def test_a_video_is_one_item_in_counts_tags_and_copies(capsys, video_folder):
    assert run_cli(capsys, "index", video_folder)[0] == 0
    shutil.copy(video_folder / "slides.mp4", video_folder / "copy of slides.mp4")
    code, out, err = run_cli(capsys, "index", "--json", video_folder)
    summary = json.loads(out)
    # Identical bytes: the copy takes the first one's vector and frames instead of being sampled again.
    assert (summary["indexed"], summary["embedded"], summary["reused"]) == (1, 0, 1), summary
    code, out, _ = run_cli(capsys, "info", "--json")
    assert json.loads(out)["photos"] == 2
    times = {Path(result["path"]).name: result["time"] for result in search_json(capsys, "banana")}
    assert times["slides.mp4"] == times["copy of slides.mp4"], times
    assert run_cli(capsys, "tag", "add", "fruit", video_folder / "slides.mp4")[0] == 0
    assert [Path(result["path"]).name for result in search_json(capsys, "tag:fruit")] == ["slides.mp4"]
    with Library() as library:
        frames = library.conn.execute("SELECT photo_id, count(*) FROM video_frames GROUP BY photo_id").fetchall()
        embeddings = library.conn.execute("SELECT count(*) FROM embeddings").fetchone()[0]
    assert [count for _, count in frames] == [5, 5] and embeddings == 2  # one vector per video, five frames each


def test_a_changed_video_gets_new_frames_an_unchanged_one_is_not_opened(capsys, video_folder):
    assert run_cli(capsys, "index", video_folder)[0] == 0
    code, out, _ = run_cli(capsys, "index", "--json", video_folder)
    assert json.loads(out)["unchanged"] == 1
    before = search_json(capsys, "banana")[0]["time"]
    reordered = SLIDES[2:] + SLIDES[:2]  # the banana first
    (video_folder / "slides.mp4").write_bytes(slideshow(reordered))
    code, out, _ = run_cli(capsys, "index", "--json", video_folder)
    assert json.loads(out)["embedded"] == 1
    start = reordered.index("banana (Fluent Emoji).png") * SECONDS_EACH
    after = search_json(capsys, "banana")[0]["time"]
    assert start - DEFAULT_STEP <= after <= start + SECONDS_EACH + DEFAULT_STEP and after != before
    with Library() as library:
        assert library.conn.execute("SELECT count(*) FROM video_frames").fetchone()[0] == 5


def test_a_searcher_already_open_sees_videos_come_and_go(video_folder, tmp_path):
    from clipdesk.library.indexer import index_folders

    other = tmp_path / "more"
    other.mkdir()
    (other / "giraffes.mkv").write_bytes(slideshow([SLIDES[1]] * 3, container="matroska"))
    with Library() as library:
        index_folders(library, [video_folder])
        searcher = Searcher(library, None, device="cpu")
        assert [Path(hit.path).name for hit in searcher.search("giraffe", k=5)] == ["slides.mp4"]
        index_folders(library, [other])  # written after the searcher loaded: reaches it through the change log
        hits = searcher.search("giraffe", k=5)
        assert {Path(hit.path).name for hit in hits} == {"slides.mp4", "giraffes.mkv"}
        assert all(hit.duration is not None and hit.time is not None for hit in hits)
        # "like" a video: its own vector (the mean of its frames) ranks it first.
        assert Path(searcher.search("", k=1, like=[str(other / "giraffes.mkv")])[0].path).name == "giraffes.mkv"
        # A video that is not in the library is sampled and embedded as the indexer does it.
        outside = tmp_path / "outside.mp4"
        outside.write_bytes(slideshow([SLIDES[1]] * 2))
        hit = searcher.search("", k=1, like=[str(outside)])[0]
        assert Path(hit.path).name == "giraffes.mkv" and hit.score > 0.99
        (other / "giraffes.mkv").unlink()
        index_folders(library)
        assert [Path(hit.path).name for hit in searcher.search("giraffe", k=5)] == ["slides.mp4"]
        assert library.conn.execute("SELECT count(DISTINCT photo_id) FROM video_frames").fetchone()[0] == 1


def test_an_install_that_cannot_read_videos_skips_them_and_says_so(capsys, video_folder, monkeypatch):
    reason = "this install cannot read videos (test)"
    monkeypatch.setattr("clipdesk.library.scanner.video_support", lambda: reason)
    monkeypatch.setattr("clipdesk.runtime.video_frames.video_support", lambda: reason)
    Image.new("RGB", (40, 30), (200, 30, 30)).save(video_folder / "red.jpg")
    code, out, err = run_cli(capsys, "index", video_folder)
    assert code == 0 and out.startswith("1 files in 1 folder: 1 indexed"), out
    assert f"note: 1 video skipped: {reason}" in err, err


def test_the_frame_index_scores_each_video_by_its_best_frame():
    """Against a brute-force loop over the frames."""
    rng = np.random.default_rng(3)
    vectors = rng.normal(size=(40, 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    ids = rng.integers(1, 8, 40)
    times = rng.uniform(0, 100, 40).astype(np.float32)
    index = FrameIndex(16)
    index.replace(np.unique(ids), ids, times, vectors)
    query = vectors[5] + 0.3 * vectors[9]
    query /= np.linalg.norm(query)
    stored = vectors.astype(np.float16).astype(np.float32)
    for allowed in (None, np.array([2, 3, 5])):
        got_ids, got_scores, got_times = index.best(query, allowed)
        expected = {}
        for row, video in enumerate(ids):
            if allowed is not None and video not in allowed:
                continue
            score = float(stored[row] @ query)
            if video not in expected or score > expected[video][0]:
                expected[video] = (score, float(times[row]))
        ranked = sorted(expected, key=lambda video: -expected[video][0])
        assert got_ids.tolist() == ranked
        assert got_scores.tolist() == pytest.approx([expected[video][0] for video in ranked], abs=1e-5)
        assert got_times.tolist() == pytest.approx([expected[video][1] for video in ranked])
    index.replace(np.array([int(ids[0])]), np.zeros(0, np.int64), np.zeros(0, np.float32), np.zeros((0, 16)))
    assert int(ids[0]) not in index.best(query)[0]


def test_a_mixed_folder_of_everything_a_phone_or_camera_makes(capsys, tmp_path):
    """JPEG, HEIC, AVIF, DNG, a RAW+JPEG pair, a Live Photo (HEIC + MOV), three videos (one ten hours
    long), and broken files of each kind: exit 0, every good file found once, every bad one explained."""
    folder = tmp_path / "phone"
    folder.mkdir()
    real_photo(0).save(folder / "beach.jpg", quality=90)
    save_heic(real_photo(1), folder / "kitchen.heic")
    save_avif(real_photo(2), folder / "street.avif")
    make_dng(folder / "field.dng", real_photo(3), preview=512)
    make_dng(folder / "IMG_0042.dng", real_photo(4), preview=512)
    real_photo(4).save(folder / "IMG_0042.jpg", quality=90)
    save_heic(slide(SLIDES[2]), folder / "IMG_0050.heic")
    (folder / "IMG_0050.mov").write_bytes(slideshow([SLIDES[2]], container="mov"))
    (folder / "slides.mp4").write_bytes(slideshow(SLIDES))
    (folder / "corn.mkv").write_bytes(slideshow([SLIDES[4]] * 2, container="matroska"))
    (folder / "ten hours.mp4").write_bytes(ten_hour_video())
    bad = {
        "truncated.heic": save_heic(real_photo(5), tmp_path / "whole.heic").read_bytes()[:3000],
        "unsupported.nef": np.random.default_rng(0).integers(0, 256, 50_000, np.uint8).tobytes(),
        "voice memo.mp4": audio_only(),
        "empty.mp4": b"",
        "broken.mov": b"\x00\x00\x00\x18ftypqt  " + np.random.default_rng(1).integers(0, 256, 9000, np.uint8).tobytes(),
    }
    for name, data in bad.items():
        (folder / name).write_bytes(data)

    code, out, err = run_cli(capsys, "index", "--json", folder)
    assert code == 0, err
    summary = json.loads(out)
    assert (summary["scanned"], summary["failed"]) == (16, 5), summary
    listed = search_json(capsys, f"folder:{folder}")
    shown = sorted(Path(result["path"]).name for result in listed)
    assert shown == sorted(["beach.jpg", "kitchen.heic", "street.avif", "field.dng", "IMG_0042.jpg", "IMG_0050.heic",
                            "slides.mp4", "corn.mkv", "ten hours.mp4"]), shown
    stacks = {Path(result["path"]).name: sorted(Path(member).name for member in result.get("stack", []))
              for result in listed}
    assert stacks["IMG_0042.jpg"] == ["IMG_0042.dng", "IMG_0042.jpg"]
    assert stacks["IMG_0050.heic"] == ["IMG_0050.heic", "IMG_0050.mov"]
    durations = {Path(result["path"]).name: result.get("duration") for result in listed}
    assert durations["ten hours.mp4"] == pytest.approx(36_000, rel=0.02)
    assert durations["corn.mkv"] == pytest.approx(4, abs=0.25) and durations["beach.jpg"] is None
    code, out, _ = run_cli(capsys, "errors", "--json")
    errors = {Path(record["path"]).name: record["error"] for record in json.loads(out)}
    assert set(errors) == set(bad), errors
    code, out, _ = run_cli(capsys, "info", "--json")
    assert (json.loads(out)["photos"], json.loads(out)["problems"]) == (len(listed), len(bad))  # a stack counts once
    assert errors["voice memo.mp4"].startswith("no video stream")
    assert errors["empty.mp4"].startswith("empty file")
    assert errors["broken.mov"].startswith("damaged or unreadable video")
    assert errors["unsupported.nef"].startswith("a camera RAW file LibRaw does not support")
    assert "Unexpected end of file" in errors["truncated.heic"], errors
    # The Live Photo is found by what it shows, once, as its still; a tag on it reaches its video too.
    hits = [result for result in search_json(capsys, "banana") if Path(result["path"]).stem == "IMG_0050"]
    assert [Path(hit["path"]).name for hit in hits] == ["IMG_0050.heic"] and "time" not in hits[0]
    assert run_cli(capsys, "tag", "add", "snack", folder / "IMG_0050.heic")[0] == 0
    code, out, _ = run_cli(capsys, "tag", "list", "--json", folder / "IMG_0050.mov")
    assert "snack" in out, out
    code, out, _ = run_cli(capsys, "tag", "list", "--json")
    assert [(row["name"], row["photos"]) for row in json.loads(out)] == [("snack", 1)]  # one shot, two files


def test_duplicates_compare_videos_by_their_own_vector_and_never_a_stack_with_itself(capsys, tmp_path):
    """A video saved again in another container is a near-duplicate of the first; a Live Photo's still and
    its video, and a RAW and its JPEG, are one shot each, not duplicates."""
    folder = tmp_path / "shots"
    folder.mkdir()
    (folder / "trip.mp4").write_bytes(slideshow(SLIDES))
    (folder / "trip again.mkv").write_bytes(slideshow(SLIDES, container="matroska"))
    save_heic(slide(SLIDES[2]), folder / "IMG_0050.heic")
    (folder / "IMG_0050.mov").write_bytes(slideshow([SLIDES[2]], container="mov"))
    make_dng(folder / "IMG_0042.dng", real_photo(4), preview=512)
    real_photo(4).save(folder / "IMG_0042.jpg", quality=90)
    assert run_cli(capsys, "index", folder)[0] == 0
    code, out, err = run_cli(capsys, "duplicates", "--json", "--threshold", "0.95")
    assert code == 0, err
    groups = [sorted(Path(path).name for path in group["paths"]) for group in json.loads(out)]
    assert groups == [["trip again.mkv", "trip.mp4"]], groups


def test_cancelling_while_a_video_is_sampled_stops_it_and_the_next_run_indexes_it(video_folder, monkeypatch):
    """The cancel comes while the video is being sampled (here: as its sampling starts); the run stops there,
    records nothing about the video, and the next run indexes it whole."""
    from clipdesk.library import indexer
    from clipdesk.library.indexer import index_folders
    from clipdesk.progress import Progress

    progress = Progress()
    decode = indexer.decode_video

    def cancelled_meanwhile(*args, **kwargs):
        progress.cancel()
        return decode(*args, **kwargs)

    monkeypatch.setattr(indexer, "decode_video", cancelled_meanwhile)
    with Library() as library:
        summary = index_folders(library, [video_folder], progress=progress)
        assert summary.cancelled and (summary.indexed, summary.failed) == (0, 0), summary
        assert library.counts()["photos"] == 0 and not library.errors()
        monkeypatch.setattr(indexer, "decode_video", decode)
        summary = index_folders(library, [video_folder])
        assert (summary.indexed, summary.embedded) == (1, 1), summary
        assert library.conn.execute("SELECT count(*) FROM video_frames").fetchone()[0] == 5


def test_two_videos_of_different_scenes_are_not_duplicates_however_alike_their_means(capsys, tmp_path):
    """Twelve photos against twelve others: their frames' means are 0.905 alike with the bundled model, the
    frames themselves 0.69; the same twelve saved again at another frame rate are a duplicate."""
    folder = tmp_path / "clips"
    folder.mkdir()
    (folder / "a.mp4").write_bytes(photo_show([real_photo(i) for i in range(12)]))
    (folder / "b.mp4").write_bytes(photo_show([real_photo(i) for i in range(40, 52)]))
    (folder / "a again.mp4").write_bytes(photo_show([real_photo(i) for i in range(12)], fps=4))
    assert run_cli(capsys, "index", folder)[0] == 0
    code, out, err = run_cli(capsys, "duplicates", "--json", "--threshold", "0.9")
    assert code == 0, err
    groups = [sorted(Path(path).name for path in group["paths"]) for group in json.loads(out)]
    assert groups == [["a again.mp4", "a.mp4"]], groups
    assert json.loads(out)[0]["similarity"] > 0.99
