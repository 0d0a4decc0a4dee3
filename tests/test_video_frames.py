"""Video frame sampling (clipdesk/runtime/video_frames.py) on videos made here with PyAV: a slideshow of
emoji from the sample library at known times, a 10-hour video, and broken ones."""

from __future__ import annotations

import io
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from clipdesk.runtime.video_frames import VideoError, sample_frames, sample_times

SAMPLES = Path(__file__).resolve().parents[1] / "resources" / "sample-library"
SLIDES = ["red apple (Noto Emoji).png", "giraffe (Fluent Emoji).png", "banana (Fluent Emoji).png",
          "helicopter (Fluent Emoji).png", "ear of corn (Noto Emoji).png"]
SECONDS_EACH = 2.0
SIDE = 128


def slide(name: str) -> Image.Image:
    with Image.open(SAMPLES / name) as image:
        rgba = image.convert("RGBA").resize((SIDE, SIDE))
    background = Image.new("RGB", rgba.size, (255, 255, 255))
    background.paste(rgba, mask=rgba.getchannel("A"))
    return background


def slideshow(names: list[str], fps: int = 5) -> bytes:
    """An MP4 (MPEG-4 part 2, FFmpeg's own encoder) showing each image for SECONDS_EACH seconds."""
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as container:
        stream = container.add_stream("mpeg4", rate=fps)
        stream.width = stream.height = SIDE
        stream.pix_fmt = "yuv420p"
        stream.options = {"qscale": "2"}
        for image in map(slide, names):
            for _ in range(int(SECONDS_EACH * fps)):
                container.mux(stream.encode(av.VideoFrame.from_image(image)))
        container.mux(stream.encode(None))
    return buffer.getvalue()


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
    """One frame every ten minutes for ten hours: few bytes, a 36,000 s duration."""
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as container:
        stream = container.add_stream("mpeg4", rate=Fraction(1, 600))
        stream.width = stream.height = 64
        stream.pix_fmt = "yuv420p"
        for index in range(61):
            frame = av.VideoFrame.from_image(Image.new("RGB", (64, 64), (index * 4, 100, 200)))
            frame.pts = index
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    started = time.monotonic()
    video = sample_frames(buffer.getvalue(), step=2.0, max_frames=16)
    assert video.duration == pytest.approx(36_000, rel=0.02)
    assert len(video.frames) <= 16 and video.step >= 36_000 / 16
    assert time.monotonic() - started < 20
    assert sample_times(36_000, 2.0, 16)[1][-1] < 36_000


def test_broken_videos_get_reasons():
    audio = io.BytesIO()
    with av.open(audio, "w", format="mp4") as container:
        stream = container.add_stream("aac", rate=8000)
        for index in range(10):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 8000, index * 1024
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    with pytest.raises(VideoError, match=r"^no video stream"):
        sample_frames(audio.getvalue())
    with pytest.raises(VideoError, match=r"^empty file"):
        sample_frames(b"")
    with pytest.raises(VideoError, match=r"^damaged or unreadable video \(.+\)$"):
        sample_frames(np.random.default_rng(1).integers(0, 256, 20_000, np.uint8).tobytes())
    good = slideshow(SLIDES[:2])
    with pytest.raises(VideoError):
        sample_frames(good[: len(good) // 3])
