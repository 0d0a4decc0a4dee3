"""A video for the indexer: metadata, sampled frames as model inputs, thumbnails.

A video is never read into memory whole (it may be gigabytes): the indexer hashes it in chunks
(decode.read_file with keep_data False), and the sampler (runtime/video_frames.py) reads only the
packets it seeks to. The video's thumbnail is its poster frame (video_frames.poster); each sampled
frame also gets a thumbnail of its own, so that a search result can show the moment it matched.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from clipdesk.library.decode import PhotoError
from clipdesk.library.records import PhotoMetadata
from clipdesk.library.thumbnails import encode_thumbnail
from clipdesk.runtime.preprocess import preprocess
from clipdesk.runtime.video_frames import (DEFAULT_BUDGET, DEFAULT_MAX_FRAMES, DEFAULT_STEP, VideoError, poster,
                                           sample_frames)

# ISO 6709 as phones write it: +37.3349-122.0090+020.000/
_ISO6709 = re.compile(r"^([+-]\d+(?:\.\d+)?)([+-]\d+(?:\.\d+)?)")


@dataclass(frozen=True)
class DecodedVideo:
    metadata: PhotoMetadata  # width, height as shown; duration in seconds
    times: list[float]  # seconds, one per sampled frame
    pixels: np.ndarray  # float32 (F, 3, R, R): the model's inputs
    thumbnail: bytes  # the poster (JPEG)
    frame_thumbnails: list[bytes]  # one JPEG per sampled frame


def _taken_at(tags: dict[str, str]) -> str | None:
    """Apple's creation date keeps the local time and its offset; `creation_time` is UTC."""
    for key in ("com.apple.quicktime.creationdate", "creation_time", "date"):
        value = tags.get(key, "").strip()
        if not value:
            continue
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            continue
        if moment.year < 1971:  # a zeroed QuickTime date (1904 or 1970) says nothing
            continue
        text = moment.replace(microsecond=0, tzinfo=None).isoformat()
        offset = moment.utcoffset()
        if offset is not None:
            minutes = int(offset.total_seconds() // 60)
            text += f"{'+' if minutes >= 0 else '-'}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
        return text
    return None


def _location(tags: dict[str, str]) -> tuple[float | None, float | None]:
    for key in ("com.apple.quicktime.location.iso6709", "location"):
        match = _ISO6709.match(tags.get(key, "").strip())
        if match:
            lat, lon = float(match.group(1)), float(match.group(2))
            if -90 <= lat <= 90 and -180 <= lon <= 180:
                return lat, lon
    return None, None


def _tag(tags: dict[str, str], *keys: str) -> str | None:
    for key in keys:
        value = " ".join(tags.get(key, "").split())
        if value:
            return value
    return None


def decode_video(path: bytes, resolution: int, mean, std, *, resize: str = "shortest",
                 interpolation: str = "bicubic", step: float = DEFAULT_STEP, max_frames: int = DEFAULT_MAX_FRAMES,
                 budget: float = DEFAULT_BUDGET, stop=None) -> DecodedVideo:
    """Sampled frames and metadata of the video at `path`. Raises PhotoError with a reason for people, or
    video_frames.Stopped when `stop()` turns true meanwhile."""
    try:
        video = sample_frames(os.fsdecode(path), step, max_frames, budget, stop)
    except VideoError as exc:
        raise PhotoError(str(exc)) from None
    images = [frame.image.convert("RGB") for frame in video.frames]
    extension = os.path.splitext(os.fsdecode(path))[1].lstrip(".").upper()
    lat, lon = _location(video.tags)
    width, height = video.size
    metadata = PhotoMetadata(
        width=width, height=height, taken_at=_taken_at(video.tags),
        camera_make=_tag(video.tags, "com.apple.quicktime.make", "make"),
        camera_model=_tag(video.tags, "com.apple.quicktime.model", "model"),
        gps_lat=lat, gps_lon=lon, format=extension or video.format, duration=round(video.duration, 3))
    pixels = np.stack([preprocess(image, resolution, mean, std, resize=resize, interpolation=interpolation)
                       for image in images])
    thumbnails = [encode_thumbnail(image) for image in images]
    return DecodedVideo(metadata, [frame.time for frame in video.frames], pixels,
                        thumbnails[poster(images)], thumbnails)
