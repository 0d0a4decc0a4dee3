"""Sampled frames of a video: one frame every few seconds, bounded; through PyAV (FFmpeg's libraries) or
else an ffmpeg program installed on the computer (video_ffmpeg.py).

A video is sampled at evenly spaced moments, `step` seconds apart, stretched so that no video gives more
than `max_frames`: a 10-hour recording gives max_frames frames, like a 2-minute one. Each moment is
reached by seeking to the keyframe before it and decoding forward to it, so the work per frame is at
most one group of pictures, whatever the video's length; a wall-clock budget bounds the whole, and a
`stop` callable (a cancelled indexing run) is checked before each frame.

PyAV is optional on the run side (`pip install 'clipdesk[video]'`): its wheels link FFmpeg to the GPL
x264 and x265 encoders, so the MIT-licensed bundle leaves it out (docs/indexing.md) and reads videos only
where the computer has FFmpeg. `video_support()` says whether this install reads videos.
"""

from __future__ import annotations

import io
import math
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache

from PIL import Image

VIDEO_EXTENSIONS = (".mp4", ".mov", ".m4v", ".mkv", ".webm", ".avi", ".3gp")
DEFAULT_STEP = 2.0  # seconds between sampled frames
DEFAULT_MAX_FRAMES = 64
DEFAULT_BUDGET = 60.0  # wall-clock seconds one video may take to sample


class VideoError(Exception):
    """A video that gives no frame: no video stream, an empty or damaged container; the text says which."""


class Stopped(Exception):
    """Sampling was stopped from outside (an indexing run cancelled): nothing is wrong with the video."""


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
    tags: dict[str, str] = field(default_factory=dict)  # the container's metadata (creation_time, make, ...)
    format: str = ""  # FFmpeg's name of the container format


@cache
def _pyav():
    try:
        import av
    except ImportError:
        return None
    return av


def _ffmpeg() -> str | None:
    from clipdesk.runtime.video_ffmpeg import find_ffmpeg  # it builds on this module's classes

    return find_ffmpeg()


def _what_to_do() -> str:
    """What gives an install without a video reader one."""
    named = os.environ.get("CLIPDESK_FFMPEG")
    if named:
        return f"CLIPDESK_FFMPEG names {named}, which is not an executable file"
    return "install FFmpeg (the ffmpeg program), or in a Python install pip install 'clipdesk[video]'"


def video_support() -> str | None:
    """None when this install reads videos (PyAV, else an ffmpeg program on the computer), else why not."""
    if _pyav() is not None or _ffmpeg() is not None:
        return None
    return _cannot_read()


def _cannot_read() -> str:
    return "this install cannot read videos: " + _what_to_do()


def video_reader() -> str:
    """How this install reads videos, in a sentence for people (Settings, `clipdesk info`)."""
    if _pyav() is not None:
        return "Videos are read with PyAV (FFmpeg's libraries)."
    executable = _ffmpeg()
    if executable is not None:
        return f"Videos are read with the ffmpeg program at {executable}."
    return f"Videos are not read: {_what_to_do()}."


def is_video(name: str | bytes) -> bool:
    name = name.decode(errors="replace") if isinstance(name, bytes) else name
    return name.lower().endswith(VIDEO_EXTENSIONS)


def clock(seconds: float) -> str:
    """A moment or a length as a player shows it: 0:42, 12:05, 1:02:03."""
    total = max(0, int(seconds + 0.5))
    hours, rest = divmod(total, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


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


def video_vector(frame_vectors):
    """A video's own vector: the normalised mean of its sampled frames' unit vectors (N, D) -> (D,)."""
    import numpy as np

    mean = np.asarray(frame_vectors, np.float32).mean(axis=0)
    return mean / max(float(np.linalg.norm(mean)), 1e-12)


def poster(images: list[Image.Image]) -> int:
    """Which of a video's sampled frames stands for it: among the first few, the one with the most contrast
    (not a fade from or to black)."""
    import numpy as np

    spreads = [float(np.asarray(image.convert("L").resize((32, 32))).std()) for image in images[:4]]
    return int(np.argmax(spreads))


def collect_frames(sampled: SampledVideo, moments: list[float], read: Callable[[float], VideoFrame | None],
                   started: float, budget: float, stop: Callable[[], bool] | None) -> None:
    """Fill `sampled.frames` with read(moment) (None past the last frame) for each moment, checking `stop`
    and the wall-clock budget (from `started`) before each. A frame no later than the one before (two
    moments within one frame's span: a still, a short clip) is kept once. Raises VideoError when no
    frame came, Stopped when `stop()` says so."""
    for moment in moments:
        if stop is not None and stop():
            raise Stopped
        if time.monotonic() - started > budget:
            sampled.complete = False
            break
        frame = read(moment)
        if frame is not None and not (sampled.frames and frame.time <= sampled.frames[-1].time):
            sampled.frames.append(frame)
    if not sampled.frames:
        raise VideoError("no frame could be decoded from the video stream")


def _upright(frame) -> Image.Image:
    """The frame as shown: phones store portrait video sideways with a display matrix saying how to turn it."""
    image = frame.to_image()
    angle = round(getattr(frame, "rotation", 0) or 0) % 360
    return image.rotate(angle, expand=True) if angle in (90, 180, 270) else image


def sample_frames(source: bytes | str | os.PathLike, step: float = DEFAULT_STEP,
                  max_frames: int = DEFAULT_MAX_FRAMES, budget: float = DEFAULT_BUDGET,
                  stop: Callable[[], bool] | None = None) -> SampledVideo:
    """Sample a video, given as bytes or as a path (read as it is decoded, never whole), with PyAV or
    else the ffmpeg program. Raises VideoError with a reason for people, or Stopped as soon as `stop()`
    says so (checked before each frame)."""
    from clipdesk.runtime import video_ffmpeg

    av, executable = _pyav(), None
    if av is None and (executable := _ffmpeg()) is None:
        raise VideoError(_cannot_read())
    if isinstance(source, bytes | bytearray):
        if not source:
            raise VideoError("empty file (0 bytes)")
        if av is None:  # the ffmpeg program reads files
            with tempfile.TemporaryDirectory(prefix="clipdesk-video-") as folder:
                path = os.path.join(folder, "video")
                with open(path, "wb") as out:
                    out.write(source)
                return video_ffmpeg.sample(executable, path, step, max_frames, budget, stop)
        with io.BytesIO(source) as handle:
            return _sample(av, handle, step, max_frames, budget, stop)
    try:
        with open(source, "rb") as handle:
            if os.fstat(handle.fileno()).st_size == 0:
                raise VideoError("empty file (0 bytes)")
            if av is None:
                return video_ffmpeg.sample(executable, source, step, max_frames, budget, stop)
            return _sample(av, handle, step, max_frames, budget, stop)
    except OSError as exc:
        raise VideoError(f"cannot read file ({exc.strerror or type(exc).__name__})") from None


def frame_image(path: str | os.PathLike, moment: float) -> Image.Image:
    """The frame shown at `moment` (seconds) of the video at `path`, upright. Raises VideoError."""
    from clipdesk.runtime import video_ffmpeg

    av = _pyav()
    if av is None:
        executable = _ffmpeg()
        if executable is None:
            raise VideoError(_cannot_read())
        image = video_ffmpeg.frame(executable, path, moment)
        if image is None:
            raise VideoError(f"no frame at {moment:.1f} s")
        return image
    try:
        with av.open(os.fspath(path), mode="r") as container:
            if not container.streams.video:
                raise VideoError("no video stream (an audio-only file?)")
            stream = container.streams.video[0]
            frame = _frame_at(container, stream, moment)
            if frame is None:
                raise VideoError(f"no frame at {moment:.1f} s")
            return _upright(frame)
    except av.FFmpegError as exc:
        raise VideoError(f"damaged or unreadable video ({' '.join(str(exc).split()) or type(exc).__name__})") from None


def still_image(path: str | os.PathLike, moment: float | None = None) -> Image.Image:
    """What stands for a video in a picture: its frame at `moment`, or its poster frame. Raises VideoError."""
    if moment is not None:
        return frame_image(path, moment)
    images = [frame.image for frame in sample_frames(path, max_frames=4).frames]
    return images[poster(images)]


def _sample(av, handle, step: float, max_frames: int, budget: float, stop: Callable[[], bool] | None
            ) -> SampledVideo:
    started = time.monotonic()
    try:
        with av.open(handle, mode="r") as container:
            if not container.streams.video:
                raise VideoError("no video stream (an audio-only file?)")
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            duration = _duration(container, stream)
            used_step, moments = sample_times(duration, step, max_frames)
            sampled = SampledVideo(duration, (stream.codec_context.width, stream.codec_context.height), used_step,
                                   tags={str(k).lower(): str(v) for k, v in container.metadata.items()},
                                   format=container.format.name)
            def read(moment: float) -> VideoFrame | None:
                frame = _frame_at(container, stream, moment)
                return None if frame is None else VideoFrame(float(frame.time), _upright(frame))

            collect_frames(sampled, moments, read, started, budget, stop)
    except av.FFmpegError as exc:
        raise VideoError(f"damaged or unreadable video ({' '.join(str(exc).split()) or type(exc).__name__})") from None
    if sampled.frames[0].image.size != sampled.size:  # turned upright: the size as shown
        sampled.size = sampled.frames[0].image.size
    return sampled
