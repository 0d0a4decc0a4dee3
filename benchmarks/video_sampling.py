"""Video sampling and embedding speed on the CPU: frames/s and real-time factor.

A synthetic video (coco-mini photos from ../shared/data/photos as a slideshow, H.264-free: FFmpeg's own
MPEG-4 encoder, 640 x 480 at 30 fps) is sampled by clipdesk/runtime/video_frames.py every `--step`
seconds, and the frames are preprocessed and embedded with a model package. Printed: sampled frames per
second of wall time, and the real-time factor (video seconds per second of work; above 1 is faster than
playback). The library does not index videos yet: this measures the two parts it will need.

    .venv/bin/python benchmarks/video_sampling.py                         # the bundled default model
    .venv/bin/python benchmarks/video_sampling.py --model PACKAGE_DIR --seconds 120 --step 2
"""

from __future__ import annotations

import argparse
import io
import time
from pathlib import Path

import av
from PIL import Image

from clipdesk.runtime.encoders import load_model
from clipdesk.runtime.video_frames import sample_frames

PHOTOS = Path(__file__).resolve().parents[2] / "shared" / "data" / "photos" / "coco-mini" / "images"


def make_video(seconds: int, fps: int = 30, size=(640, 480)) -> bytes:
    """A slideshow of real photos, a new one every second."""
    photos = sorted(PHOTOS.glob("*.jpg"))
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as container:
        stream = container.add_stream("mpeg4", rate=fps)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        for second in range(seconds):
            with Image.open(photos[second % len(photos)]) as photo:
                frame = av.VideoFrame.from_image(photo.convert("RGB").resize(size))
            for _ in range(fps):
                container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return buffer.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="a model package folder or name (default: the bundled default)")
    parser.add_argument("--seconds", type=int, default=60, help="length of the test video")
    parser.add_argument("--step", type=float, default=2.0, help="seconds between sampled frames")
    args = parser.parse_args()
    data = make_video(args.seconds)
    model = load_model(args.model, device="cpu")
    model.image.encode_images([Image.new("RGB", (64, 64))])  # session warm-up, not timed
    started = time.perf_counter()
    video = sample_frames(data, step=args.step, max_frames=10_000)
    sampled = time.perf_counter() - started
    model.image.encode_images([frame.image for frame in video.frames])
    total = time.perf_counter() - started
    count = len(video.frames)
    print(f"model {model.name}: {args.seconds} s video, 640 x 480 at 30 fps, a frame every {args.step:g} s")
    print(f"  sampling: {count} frames in {sampled:.2f} s ({count / sampled:.1f} frames/s, "
          f"real-time factor {video.duration / sampled:.1f})")
    print(f"  sampling + embedding: {total:.2f} s ({count / total:.1f} frames/s, "
          f"real-time factor {video.duration / total:.1f})")


if __name__ == "__main__":
    main()
