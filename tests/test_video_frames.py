"""Video frame sampling (clipdesk/runtime/video_frames.py) on videos made here with PyAV: a slideshow of
emoji from the sample library at known times, a 10-hour video, and broken ones."""

from __future__ import annotations

import time

import numpy as np
import pytest
from PIL import Image

from clipdesk.runtime.video_frames import VideoError, clock, sample_frames, sample_times
from video_files import SECONDS_EACH, SIDE, SLIDES, audio_only, slide, slideshow, ten_hour_video


def closest_slide(image: Image.Image) -> int:
    pixels = np.asarray(image.convert("RGB").resize((SIDE, SIDE)), np.float32)
    return int(np.argmin([np.abs(pixels - np.asarray(slide(name), np.float32)).mean() for name in SLIDES]))


def test_frames_are_sampled_every_step_and_show_what_plays_then():
    video = sample_frames(slideshow(SLIDES), step=1.0)
    assert video.duration == pytest.approx(len(SLIDES) * SECONDS_EACH, abs=0.25)
    assert video.size == (SIDE, SIDE) and video.complete
    times = [frame.time for frame in video.frames]
    assert times == pytest.approx([float(second) for second in range(len(SLIDES) * 2)], abs=0.21)
    for frame in video.frames:
        assert closest_slide(frame.image) == int(frame.time // SECONDS_EACH), frame.time


def test_the_bundled_model_finds_the_banana_at_its_moment():
    """Frames embedded with the bundled default model: "banana" scores best on a frame within one sampling
    step of the time the banana is on screen (4-6 s)."""
    from clipdesk.runtime.encoders import load_model

    step = 1.0
    video = sample_frames(slideshow(SLIDES), step=step)
    model = load_model(None, device="cpu")
    vectors = model.image.encode_images([frame.image for frame in video.frames])
    query = model.text.encode(["banana"])[0]
    best = video.frames[int(np.argmax(vectors @ query))].time
    start = SLIDES.index("banana (Fluent Emoji).png") * SECONDS_EACH
    assert start - step <= best <= start + SECONDS_EACH + step, best


def test_a_ten_hour_video_is_bounded_in_frames_and_time():
    """Bounded in frames and in time, whatever the length."""
    data = ten_hour_video()
    started = time.monotonic()
    video = sample_frames(data, step=2.0, max_frames=16)
    assert video.duration == pytest.approx(36_000, rel=0.02)
    assert len(video.frames) <= 16 and video.step >= 36_000 / 16
    assert time.monotonic() - started < 20
    assert sample_times(36_000, 2.0, 16)[1][-1] < 36_000


def test_broken_videos_get_reasons():
    with pytest.raises(VideoError, match=r"^no video stream"):
        sample_frames(audio_only())
    with pytest.raises(VideoError, match=r"^empty file"):
        sample_frames(b"")
    with pytest.raises(VideoError, match=r"^damaged or unreadable video \(.+\)$"):
        sample_frames(np.random.default_rng(1).integers(0, 256, 20_000, np.uint8).tobytes())
    good = slideshow(SLIDES[:2])
    with pytest.raises(VideoError):
        sample_frames(good[: len(good) // 3])


def test_a_video_given_as_a_path_is_sampled_like_its_bytes(tmp_path):
    data = slideshow(SLIDES[:3])
    path = tmp_path / "odd name ü.mp4"
    path.write_bytes(data)
    from_path, from_bytes = sample_frames(path, step=1.0), sample_frames(data, step=1.0)
    assert [frame.time for frame in from_path.frames] == [frame.time for frame in from_bytes.frames]
    assert from_path.format.startswith("mov,mp4") and from_path.duration == from_bytes.duration
    (tmp_path / "empty.mp4").write_bytes(b"")
    with pytest.raises(VideoError, match=r"^empty file"):
        sample_frames(tmp_path / "empty.mp4")


@pytest.mark.parametrize(("seconds", "shown"), [(0, "0:00"), (42.4, "0:42"), (59.6, "1:00"), (725, "12:05"),
                                                (3723, "1:02:03")])
def test_moments_and_lengths_read_like_a_player_shows_them(seconds, shown):
    assert clock(seconds) == shown


def test_a_portrait_phone_video_stored_sideways_comes_out_upright():
    """Phones store portrait video as landscape frames with a display matrix of -90 degrees (turn clockwise
    to show; what ffprobe reports for an iPhone's portrait video). Sampled frames and the size are as shown."""
    import io

    import av

    upright = Image.new("RGB", (64, 128), (0, 0, 255))
    upright.paste((255, 0, 0), (0, 0, 64, 64))  # red on top
    stored = upright.rotate(90, expand=True)  # as the sensor wrote it: turned a quarter counterclockwise
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as container:
        stream = container.add_stream("mpeg4", rate=5)
        stream.width, stream.height = stored.size
        stream.pix_fmt = "yuv420p"
        stream.set_display_rotation(-90)
        for _ in range(10):
            container.mux(stream.encode(av.VideoFrame.from_image(stored)))
        container.mux(stream.encode(None))
    video = sample_frames(buffer.getvalue(), step=1.0)
    assert video.size == (64, 128)
    pixels = np.asarray(video.frames[0].image, np.float32)
    assert np.abs(pixels - np.asarray(upright, np.float32)).mean() < 8
