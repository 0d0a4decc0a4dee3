"""Video indexing speed on the CPU: sampled frames per second and real-time factor, end to end.

A folder of synthetic videos (coco-mini photos from ../shared/data/photos as slideshows, a new photo
every second, 640 x 480 at 30 fps, FFmpeg's own MPEG-4 encoder) is indexed by `clipdesk index`'s code
(library/indexer.py: hash, sample a frame every 2 s, decode, preprocess, embed, store frames and
thumbnails) into a fresh library, once per run. Printed per model: the median over the runs of sampled
frames per second of wall time, and of the real-time factor (seconds of video indexed per second of
work; above 1 is faster than playback).

Models: the bundled default, and a ViT-B/32-shaped package with random weights (the compute of OpenAI's
ViT-B/32, made with benchmarks/checkpoint_import.py's checkpoint and the torch-free importer; needs
torch for the checkpoint only). `--reader ffmpeg` hides PyAV and reads the videos through an ffmpeg
program (runtime/video_ffmpeg.py, as the app bundle does): CLIPDESK_FFMPEG, else imageio-ffmpeg's.

    .venv/bin/python benchmarks/video_indexing.py [--videos 4] [--seconds 60] [--runs 3] [--skip-vit-b32]
                                                  [--reader pyav|ffmpeg]
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import av
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
PHOTOS = Path(__file__).resolve().parents[2] / "shared" / "data" / "photos" / "coco-mini" / "images"


def make_video(seconds: int, offset: int, fps: int = 30, size=(640, 480)) -> bytes:
    """A slideshow of real photos, a new one every second."""
    photos = sorted(PHOTOS.glob("*.jpg"))
    if not photos:
        raise SystemExit(f"no photos in {PHOTOS}")
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as container:
        stream = container.add_stream("mpeg4", rate=fps)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        for second in range(seconds):
            with Image.open(photos[(offset + second) % len(photos)]) as photo:
                frame = av.VideoFrame.from_image(photo.convert("RGB").resize(size))
            for _ in range(fps):
                container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return buffer.getvalue()


def vit_b32_package(folder: Path) -> Path:
    from checkpoint_import import make_checkpoint

    from clipdesk.checkpoint.importer import export_checkpoint

    checkpoint = make_checkpoint(folder, "ViT-B/32", "pt")
    out = folder / "vit-b32-random"
    export_checkpoint(checkpoint, out, log=lambda message: None)
    return out


def index_once(videos: Path, package, home: Path) -> tuple[float, int, float]:
    """(seconds, frames sampled, seconds of video) of one indexing run into a fresh library."""
    os.environ["CLIPDESK_HOME"] = str(home)
    from clipdesk.library.indexer import index_folders
    from clipdesk.library.store import Library

    with Library() as library:
        started = time.perf_counter()
        summary = index_folders(library, [videos], package, device="cpu")
        seconds = time.perf_counter() - started
        assert summary.failed == 0 and summary.embedded == summary.scanned, summary
        frames = library.conn.execute("SELECT count(*) FROM video_frames").fetchone()[0]
        length = library.conn.execute("SELECT sum(duration) FROM photos").fetchone()[0]
    return seconds, frames, length


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--videos", type=int, default=4)
    parser.add_argument("--seconds", type=int, default=60, help="length of each video")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--skip-vit-b32", action="store_true")
    parser.add_argument("--reader", choices=("pyav", "ffmpeg"), default="pyav")
    args = parser.parse_args()
    if args.reader == "ffmpeg":
        from clipdesk.runtime import video_frames

        video_frames._pyav = lambda: None
        if not os.environ.get("CLIPDESK_FFMPEG"):
            import imageio_ffmpeg

            os.environ["CLIPDESK_FFMPEG"] = imageio_ffmpeg.get_ffmpeg_exe()

    from clipdesk.runtime.package import load_package
    from clipdesk.runtime.registry import resolve_model

    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        videos = scratch / "videos"
        videos.mkdir()
        for number in range(args.videos):
            (videos / f"clip{number}.mp4").write_bytes(make_video(args.seconds, number * 7))
        models = [("bundled default", resolve_model(None))]
        if not args.skip_vit_b32:
            models.append(("ViT-B/32-shaped", load_package(vit_b32_package(scratch))))
        print(f"{args.videos} videos of {args.seconds} s, 640 x 480 at 30 fps; a frame every 2 s; read with "
              f"{args.reader}; {os.cpu_count()} CPU cores; medians of {args.runs} runs")
        for label, package in models:
            rates, factors = [], []
            for run in range(args.runs):
                seconds, frames, length = index_once(videos, package, scratch / f"home-{label}-{run}")
                rates.append(frames / seconds)
                factors.append(length / seconds)
            print(f"  {label}: {statistics.median(rates):.1f} frames/s, "
                  f"real-time factor {statistics.median(factors):.1f} ({frames} frames of {length:.0f} s of video)")


if __name__ == "__main__":
    main()
