"""Video frames through an `ffmpeg` program installed on the computer, run as a separate process.

The app bundle cannot carry PyAV (its FFmpeg links GPL encoders, docs/indexing.md), but where the system
has FFmpeg (most Linux desktops, Homebrew on macOS, a download on Windows) clipdesk runs it: a program
the user installed, in its own process, is no part of clipdesk's distribution. `CLIPDESK_FFMPEG` names
the executable when it is not on PATH; an app started from the macOS Finder gets a PATH without
Homebrew's folders, so those are looked in too (ELSEWHERE).

One `ffmpeg -i` run reads what the container says (FFmpeg prints it for people, on stderr: duration,
the video stream's size, its display matrix, the metadata tags); then one run per sampled moment seeks
to it (input seeking: the keyframe before it, then decoding forward) and writes that frame as a PPM.
FFmpeg turns frames upright itself by the display matrix, so the stream's size is swapped for a quarter
turn. A moment past the last frame gives no output and is skipped.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from PIL import Image, UnidentifiedImageError

from clipdesk.runtime.video_frames import SampledVideo, VideoError, VideoFrame, collect_frames, sample_times

_PROBE_TIMEOUT = 30.0  # seconds for `ffmpeg -i` on one file
_FRAME_TIMEOUT = 30.0  # seconds for one frame
_INPUT = re.compile(r"^Input #0, ([^ ]+), from ")
_DURATION = re.compile(r"^\s*Duration: (\d+):(\d\d):(\d\d(?:\.\d+)?)")
_VIDEO = re.compile(r"^\s*Stream #0:\d+.*?: Video: .*?, (\d{1,5})x(\d{1,5})")
_ROTATION = re.compile(r"display ?matrix: rotation of (-?\d+(?:\.\d+)?) degrees", re.IGNORECASE)
_TAG = re.compile(r"^\s{4}([A-Za-z0-9_.\-]+)\s*: (.*)$")


# Where FFmpeg lands outside a GUI app's PATH: Homebrew (Apple silicon, Intel), MacPorts, snap.
ELSEWHERE = ("/opt/homebrew/bin/ffmpeg", "/usr/local/bin/ffmpeg", "/opt/local/bin/ffmpeg", "/snap/bin/ffmpeg")


def _runnable(path: str) -> bool:
    return os.path.isfile(path) and os.access(path, os.X_OK)


def find_ffmpeg() -> str | None:
    """The ffmpeg executable to run: CLIPDESK_FFMPEG, else `ffmpeg` on PATH, else one in ELSEWHERE; None
    when there is none."""
    named = os.environ.get("CLIPDESK_FFMPEG")
    if named:
        return named if _runnable(named) else None
    return shutil.which("ffmpeg") or next((path for path in ELSEWHERE if _runnable(path)), None)


@dataclass
class Probe:
    format: str = ""
    duration: float = 0.0
    size: tuple[int, int] = (0, 0)  # as shown: turned by the display matrix
    tags: dict[str, str] = field(default_factory=dict)  # the container's metadata, keys lowercase
    has_video: bool = False


def _input(path: str | os.PathLike) -> bytes:
    # "file:" so that a name with a colon is never taken for a protocol (http:, pipe:).
    return b"file:" + os.fsencode(os.path.abspath(path))


def _reason(stderr: str) -> str:
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    for line in reversed(lines):
        if "Invalid data" in line or "Error" in line or "error" in line:
            return " ".join(re.sub(r"^\[[^]]*\]\s*", "", line).split())
    return lines[-1] if lines else "ffmpeg could not read it"


def parse_probe(stderr: str) -> Probe:
    """What `ffmpeg -i FILE` printed about the file's first input."""
    probe, in_container_tags, rotation = Probe(), False, 0.0
    for line in stderr.splitlines():
        if match := _INPUT.match(line):
            probe.format = match.group(1).rstrip(",")
            continue
        if line.startswith("  Metadata:"):
            in_container_tags = True
            continue
        if in_container_tags and (match := _TAG.match(line)):
            probe.tags.setdefault(match.group(1).lower(), match.group(2).strip())
            continue
        in_container_tags = False
        if match := _DURATION.match(line):
            hours, minutes, seconds = match.groups()
            probe.duration = int(hours) * 3600 + int(minutes) * 60 + float(seconds)
        elif not probe.has_video and (match := _VIDEO.match(line)):
            probe.has_video = True
            probe.size = (int(match.group(1)), int(match.group(2)))
        elif probe.has_video and not rotation and (match := _ROTATION.search(line)):
            rotation = float(match.group(1))
    if round(rotation) % 180 == 90:
        probe.size = probe.size[::-1]
    return probe


def probe(executable: str, path: str | os.PathLike) -> Probe:
    """Raises VideoError with FFmpeg's reason when it cannot open the file."""
    try:
        run = subprocess.run([executable, "-hide_banner", "-nostdin", "-i", _input(path)], capture_output=True,
                             timeout=_PROBE_TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        raise VideoError(f"ffmpeg took over {_PROBE_TIMEOUT:.0f} s to open the video") from None
    except OSError as exc:
        raise VideoError(f"cannot run ffmpeg ({exc.strerror or type(exc).__name__})") from None
    stderr = run.stderr.decode("utf-8", "replace")
    found = parse_probe(stderr)
    if not found.format:
        raise VideoError(f"damaged or unreadable video ({_reason(stderr)})")
    if not found.has_video:
        raise VideoError("no video stream (an audio-only file?)")
    return found


def frame(executable: str, path: str | os.PathLike, moment: float) -> Image.Image | None:
    """The first frame at or after `moment` (seconds), upright; None past the last frame."""
    command = [executable, "-hide_banner", "-nostdin", "-v", "error", "-ss", f"{moment:.3f}", "-i", _input(path),
               "-map", "0:v:0", "-frames:v", "1", "-f", "image2pipe", "-c:v", "ppm", "-"]
    try:
        run = subprocess.run(command, capture_output=True, timeout=_FRAME_TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        raise VideoError(f"ffmpeg took over {_FRAME_TIMEOUT:.0f} s for the frame at {moment:.1f} s") from None
    except OSError as exc:
        raise VideoError(f"cannot run ffmpeg ({exc.strerror or type(exc).__name__})") from None
    if not run.stdout:
        return None
    try:
        with Image.open(io.BytesIO(run.stdout)) as image:
            return image.convert("RGB")
    except (UnidentifiedImageError, OSError):
        raise VideoError(f"damaged or unreadable video ({_reason(run.stderr.decode('utf-8', 'replace'))})") from None


def sample(executable: str, path: str | os.PathLike, step: float, max_frames: int, budget: float,
           stop: Callable[[], bool] | None) -> SampledVideo:
    """video_frames.sample_frames through the ffmpeg program."""
    started = time.monotonic()
    found = probe(executable, path)
    used_step, moments = sample_times(found.duration, step, max_frames)
    sampled = SampledVideo(found.duration, found.size, used_step, tags=found.tags, format=found.format)

    def read(moment: float) -> VideoFrame | None:
        image = frame(executable, path, moment)
        return None if image is None else VideoFrame(moment, image)

    collect_frames(sampled, moments, read, started, budget, stop)
    return sampled
