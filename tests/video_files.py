"""Videos made in the tests with PyAV (FFmpeg's own MPEG-4 encoder; no H.264): slideshows of the sample
library's emoji at known times, a 10-hour video of few bytes, and an audio-only file."""

from __future__ import annotations

import io
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image

SAMPLES = Path(__file__).resolve().parents[1] / "resources" / "sample-library"
SLIDES = ["red apple (Noto Emoji).png", "giraffe (Fluent Emoji).png", "banana (Fluent Emoji).png",
          "helicopter (Fluent Emoji).png", "ear of corn (Noto Emoji).png"]
SECONDS_EACH = 2.0
SIDE = 128


def slide(name: str) -> Image.Image:
    """A sample-library emoji on white, SIDE pixels square."""
    with Image.open(SAMPLES / name) as image:
        rgba = image.convert("RGBA").resize((SIDE, SIDE))
    background = Image.new("RGB", rgba.size, (255, 255, 255))
    background.paste(rgba, mask=rgba.getchannel("A"))
    return background


def slideshow(names: list[str], fps: int = 5, container: str = "mp4") -> bytes:
    """A video showing each image for SECONDS_EACH seconds."""
    buffer = io.BytesIO()
    with av.open(buffer, "w", format=container) as output:
        stream = output.add_stream("mpeg4", rate=fps)
        stream.width = stream.height = SIDE
        stream.pix_fmt = "yuv420p"
        stream.options = {"qscale": "2"}
        for image in map(slide, names):
            for _ in range(int(SECONDS_EACH * fps)):
                output.mux(stream.encode(av.VideoFrame.from_image(image)))
        output.mux(stream.encode(None))
    return buffer.getvalue()


def ten_hour_video() -> bytes:
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
    return buffer.getvalue()


def audio_only() -> bytes:
    """An MP4 with an AAC stream and no video stream."""
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as container:
        stream = container.add_stream("aac", rate=8000)
        for index in range(10):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 8000, index * 1024
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return buffer.getvalue()


def photo_show(images: list[Image.Image], seconds_each: float = 2.0, fps: int = 5, size=(160, 120)) -> bytes:
    """An MP4 showing each image (resized to `size`) for `seconds_each` seconds."""
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as output:
        stream = output.add_stream("mpeg4", rate=fps)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        for image in images:
            frame = av.VideoFrame.from_image(image.convert("RGB").resize(size))
            for _ in range(int(seconds_each * fps)):
                output.mux(stream.encode(frame))
        output.mux(stream.encode(None))
    return buffer.getvalue()


def read_videos_with(monkeypatch, ffmpeg: str | None, path: str) -> None:
    """clipdesk sees no PyAV; PATH becomes `path` (for an `ffmpeg` there, or none) and `ffmpeg`, when given,
    is the CLIPDESK_FFMPEG it runs."""
    from clipdesk.runtime import video_frames

    monkeypatch.setattr(video_frames, "_pyav", lambda: None)
    monkeypatch.setenv("PATH", path)
    if ffmpeg is None:
        monkeypatch.delenv("CLIPDESK_FFMPEG", raising=False)
    else:
        monkeypatch.setenv("CLIPDESK_FFMPEG", ffmpeg)
