"""Sampled frames of a video through PyAV (FFmpeg's libraries): one frame every few seconds, bounded.

A video is sampled at evenly spaced moments, `step` seconds apart, stretched so that no video gives more
than `max_frames`: a 10-hour recording gives max_frames frames, like a 2-minute one. Each moment is
reached by seeking to the keyframe before it and decoding forward to it, so the work per frame is at
most one group of pictures, whatever the video's length; a wall-clock budget bounds the whole.
"""

from __future__ import annotations

import io
import math
import time
from dataclasses import dataclass, field

from PIL import Image

VIDEO_EXTENSIONS = (".mp4", ".mov", ".m4v", ".mkv", ".webm", ".avi", ".3gp")
DEFAULT_STEP = 2.0  # seconds between sampled frames
DEFAULT_MAX_FRAMES = 64
DEFAULT_BUDGET = 60.0  # wall-clock seconds one video may take to sample


class VideoError(Exception):
    """A video that gives no frame: no video stream, an empty or damaged container; the text says which."""


@dataclass(frozen=True)
class VideoFrame:
    time: float  # seconds from the start
    image: Image.Image  # RGB


@dataclass
class SampledVideo:
    duration: float  # seconds (0 when the container does not say)
    size: tuple[int, int]  # width, height of the video stream
    step: float  # seconds between the sampled moments
    frames: list[VideoFrame] = field(default_factory=list)
    complete: bool = True  # False when the budget ran out before the last moment


def is_video(name: str | bytes) -> bool:
    name = name.decode(errors="replace") if isinstance(name, bytes) else name
    return name.lower().endswith(VIDEO_EXTENSIONS)


def sample_times(duration: float, step: float, max_frames: int) -> tuple[float, list[float]]:
    """(the step used, the moments to sample) for a video of `duration` seconds."""
    if duration <= 0:
        return step, [0.0]
    step = max(step, duration / max_frames)
    count = min(max_frames, max(1, math.ceil(duration / step)))
    return step, [min(index * step, duration) for index in range(count)]


def _duration(container, stream) -> float:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    return container.duration / 1_000_000 if container.duration else 0.0


def _frame_at(container, stream, moment: float):
    """The first frame at or after `moment` (seconds), or the last one before the end."""
    container.seek(int(moment / stream.time_base), stream=stream, backward=True, any_frame=False)
    last = None
    for frame in container.decode(stream):
        if frame.time is None:
            continue
        last = frame
        if frame.time >= moment - 1e-3:
            break
    return last


def sample_frames(data: bytes, step: float = DEFAULT_STEP, max_frames: int = DEFAULT_MAX_FRAMES,
                  budget: float = DEFAULT_BUDGET) -> SampledVideo:
    """Sample a video's bytes. Raises VideoError with a reason for people."""
    import av

    if not data:
        raise VideoError("empty file (0 bytes)")
    started = time.monotonic()
    try:
        with av.open(io.BytesIO(data), mode="r") as container:
            if not container.streams.video:
                raise VideoError("no video stream (an audio-only file?)")
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            duration = _duration(container, stream)
            used_step, moments = sample_times(duration, step, max_frames)
            sampled = SampledVideo(duration, (stream.codec_context.width, stream.codec_context.height), used_step)
            for moment in moments:
                if time.monotonic() - started > budget:
                    sampled.complete = False
                    break
                frame = _frame_at(container, stream, moment)
                if frame is None:
                    break
                if sampled.frames and frame.time <= sampled.frames[-1].time:
                    continue  # two moments within one frame's span (a still, a short clip)
                sampled.frames.append(VideoFrame(float(frame.time), frame.to_image()))
    except av.FFmpegError as exc:
        raise VideoError(f"damaged or unreadable video ({' '.join(str(exc).split()) or type(exc).__name__})") from None
    if not sampled.frames:
        raise VideoError("no frame could be decoded from the video stream")
    return sampled
