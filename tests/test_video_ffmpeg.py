"""Videos through an ffmpeg program on the computer (clipdesk/runtime/video_ffmpeg.py), the way the app
bundle reads them: PyAV hidden from clipdesk, a real FFmpeg build (imageio-ffmpeg's, a test dependency) on
PATH. PyAV's reading of the same files is the reference."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import av
import imageio_ffmpeg
import numpy as np
import pytest
from PIL import Image

from clipdesk.cli import main
from clipdesk.runtime import video_frames
from clipdesk.runtime.video_ffmpeg import parse_probe
from clipdesk.runtime.video_frames import VideoError, sample_frames, video_support
from video_files import SECONDS_EACH, SIDE, SLIDES, audio_only, read_videos_with, slide, slideshow

BANANA = SLIDES.index("banana (Fluent Emoji).png")


def closest_slide(image: Image.Image) -> int:
    pixels = np.asarray(image.convert("RGB").resize((SIDE, SIDE)), np.float32)
    return int(np.argmin([np.abs(pixels - np.asarray(slide(name), np.float32)).mean() for name in SLIDES]))


@pytest.fixture
def ffmpeg_only(tmp_path, monkeypatch):
    """clipdesk sees no PyAV, and finds `ffmpeg` on PATH."""
    folder = tmp_path / "bin"
    folder.mkdir()
    (folder / "ffmpeg").symlink_to(imageio_ffmpeg.get_ffmpeg_exe())
    read_videos_with(monkeypatch, None, f"{folder}{os.pathsep}{os.environ['PATH']}")
    assert video_support() is None
    return folder


def test_frames_come_at_the_same_moments_and_show_the_same_pictures_as_through_pyav(ffmpeg_only, tmp_path):
    path = tmp_path / "slides with spaces: and a colon.mp4"
    path.write_bytes(slideshow(SLIDES))
    reference = video_frames._sample(av, io.BytesIO(path.read_bytes()), 1.0, 64, 60.0, None)
    video = sample_frames(path, step=1.0)
    assert video.duration == pytest.approx(reference.duration, abs=0.05)
    assert video.size == reference.size == (SIDE, SIDE) and video.complete
    assert video.format.startswith("mov,mp4")
    assert [frame.time for frame in video.frames] == pytest.approx([frame.time for frame in reference.frames],
                                                                   abs=0.21)
    for frame in video.frames:
        assert closest_slide(frame.image) == int(frame.time // SECONDS_EACH), frame.time
    # Bytes are written to a temporary file for the program, with the same result.
    assert [frame.time for frame in sample_frames(path.read_bytes(), step=1.0).frames] == \
        [frame.time for frame in video.frames]


def test_a_portrait_phone_video_comes_out_upright(ffmpeg_only, tmp_path):
    upright = Image.new("RGB", (64, 128), (0, 0, 255))
    upright.paste((255, 0, 0), (0, 0, 64, 64))
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as container:
        stream = container.add_stream("mpeg4", rate=5)
        stream.width, stream.height = 128, 64
        stream.pix_fmt = "yuv420p"
        stream.set_display_rotation(-90)
        for _ in range(10):
            container.mux(stream.encode(av.VideoFrame.from_image(upright.rotate(90, expand=True))))
        container.mux(stream.encode(None))
    (tmp_path / "portrait.mp4").write_bytes(buffer.getvalue())
    video = sample_frames(tmp_path / "portrait.mp4", step=1.0)
    assert video.size == (64, 128)
    assert np.abs(np.asarray(video.frames[0].image, np.float32) - np.asarray(upright, np.float32)).mean() < 8


def test_broken_videos_get_ffmpegs_reasons(ffmpeg_only, tmp_path):
    cases = {"voice.mp4": (audio_only(), r"^no video stream"),
             "empty.mp4": (b"", r"^empty file"),
             "junk.mp4": (b"\x00\x01junk" * 1000, r"^damaged or unreadable video \(.*Invalid data.*\)$")}
    for name, (data, reason) in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(VideoError, match=reason):
            sample_frames(tmp_path / name)


def test_the_library_indexes_and_finds_videos_through_ffmpeg(ffmpeg_only, tmp_path, capsys):
    folder = tmp_path / "videos"
    folder.mkdir()
    (folder / "slides.mp4").write_bytes(slideshow(SLIDES))
    (folder / "voice.mp4").write_bytes(audio_only())
    assert main(["index", str(folder)]) == 0
    assert "1 indexed" in capsys.readouterr().out
    assert main(["search", "--json", "--with-sample", "banana"]) == 0
    hit = json.loads(capsys.readouterr().out)[0]
    start = BANANA * SECONDS_EACH
    assert Path(hit["path"]).name == "slides.mp4" and start - 2 <= hit["time"] <= start + SECONDS_EACH + 2
    assert hit["duration"] == pytest.approx(10, abs=0.25)
    assert main(["errors", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["error"].startswith("no video stream")


def test_without_pyav_or_ffmpeg_videos_are_skipped_and_the_note_says_how_to_read_them(tmp_path, monkeypatch, capsys):
    read_videos_with(monkeypatch, None, str(tmp_path / "nowhere"))
    folder = tmp_path / "videos"
    folder.mkdir()
    (folder / "slides.mp4").write_bytes(slideshow(SLIDES[:2]))
    assert main(["index", str(folder)]) == 0
    assert "note: 1 video skipped: this install cannot read videos: install FFmpeg" in capsys.readouterr().err
    monkeypatch.setenv("CLIPDESK_FFMPEG", str(tmp_path / "not-ffmpeg"))
    assert video_support() == (f"this install cannot read videos: CLIPDESK_FFMPEG names {tmp_path / 'not-ffmpeg'}, "
                               "which is not an executable file")
    monkeypatch.setenv("CLIPDESK_FFMPEG", imageio_ffmpeg.get_ffmpeg_exe())
    assert video_support() is None
    assert main(["index", str(folder)]) == 0
    assert "1 indexed" in capsys.readouterr().out


def test_what_older_ffmpeg_versions_print_is_read_too():
    """FFmpeg 5 and 6 print the display matrix in lower case; tags and a second stream are read as well."""
    printed = """Input #0, mov,mp4,m4a,3gp,3g2,mj2, from 'file:/photos/IMG_0042.MOV':
  Metadata:
    major_brand     : qt
    creation_time   : 2023-07-14T18:02:11.000000Z
    com.apple.quicktime.make: Apple
    com.apple.quicktime.model: iPhone 12
    com.apple.quicktime.location.ISO6709: +48.8584+002.2945+035.000/
  Duration: 00:01:05.43, start: 0.000000, bitrate: 8190 kb/s
  Stream #0:0[0x1](und): Video: hevc (Main) (hvc1 / 0x31637668), yuv420p(tv, bt709), 1920x1080, 8000 kb/s, 30 fps
    Metadata:
      creation_time   : 2023-07-14T18:02:11.000000Z
    Side data:
      displaymatrix: rotation of -90.00 degrees
  Stream #0:1[0x2](und): Audio: aac (LC) (mp4a / 0x6134706D), 44100 Hz, mono, fltp, 96 kb/s
"""
    probe = parse_probe(printed)
    assert probe.format == "mov,mp4,m4a,3gp,3g2,mj2" and probe.has_video
    assert probe.duration == pytest.approx(65.43) and probe.size == (1080, 1920)
    assert probe.tags["creation_time"] == "2023-07-14T18:02:11.000000Z"
    assert probe.tags["com.apple.quicktime.model"] == "iPhone 12"
    assert probe.tags["com.apple.quicktime.location.iso6709"] == "+48.8584+002.2945+035.000/"


def test_ffmpeg_is_found_where_a_finder_started_app_cannot_see_it(tmp_path, monkeypatch, capsys):
    """macOS starts apps from the Finder with PATH=/usr/bin:/bin:/usr/sbin:/sbin, without Homebrew's folder."""
    from clipdesk.runtime import video_ffmpeg

    homebrew = tmp_path / "opt" / "homebrew" / "bin" / "ffmpeg"
    homebrew.parent.mkdir(parents=True)
    homebrew.symlink_to(imageio_ffmpeg.get_ffmpeg_exe())
    read_videos_with(monkeypatch, None, str(tmp_path / "usr-bin"))
    monkeypatch.setattr(video_ffmpeg, "ELSEWHERE", (str(tmp_path / "missing" / "ffmpeg"), str(homebrew)))
    assert video_ffmpeg.find_ffmpeg() == str(homebrew) and video_support() is None
    assert main(["info", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["video_reader"] == \
        f"Videos are read with the ffmpeg program at {homebrew}."
    monkeypatch.setattr(video_ffmpeg, "ELSEWHERE", ())
    assert main(["info", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["video_reader"].startswith("Videos are not read: install FFmpeg")
