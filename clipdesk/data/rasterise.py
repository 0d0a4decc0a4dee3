"""SVG → PNG with resvg: square, on white, bounded parallelism, resumable.

White matches inference, where the app composites transparent images on white. Monochrome icons are
drawn with `currentColor`; each image gets one colour from a small dark palette (seeded by its key,
so a rebuild is identical), which keeps the model from learning "icons are black".
Files are written under a temporary name and renamed, so an interrupted run leaves no half PNG and a
rerun renders only what is missing.
"""

from __future__ import annotations

import hashlib
import io
import json
import multiprocessing
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from clipdesk.data import DataError
from clipdesk.data.catalogue import ImageItem
from clipdesk.data.iconify import Icon, svg_document

SIZE = 128
BACKGROUND = "#ffffff"
# Black twice: most icons the app will meet are black; the rest are dark enough to read on white.
PALETTE = ("#000000", "#000000", "#1f2937", "#1d4ed8", "#b91c1c", "#15803d", "#7c3aed", "#c2410c", "#0f766e",
           "#92400e")
# OpenMoji draws on a 72-unit grid inside a margin of up to 6 units, so its glyphs come out smaller than
# other styles'. Measured on 800 of them: half leave 7 units free on their closest side, but 10 % come
# within 4 units and a few touch the edge, so no fixed crop fits all: each image is cropped by as much
# of that margin as its own drawing leaves free (found on a 1 px-per-unit probe render).
MAX_INSETS = {"openmoji": 6 / 72}
PROBE_SIZE = 72
SETTINGS_FILE = ".render.json"


def icon_colour(key: str) -> str:
    return PALETTE[int(hashlib.sha1(key.encode("utf-8")).hexdigest()[:8], 16) % len(PALETTE)]


def render_png(svg: str) -> bytes:
    import resvg_py  # imported here so that reading and planning work without the renderer installed

    # System fonts are skipped: loading them costs more than drawing an icon, and icons draw no text.
    return resvg_py.svg_to_bytes(svg_string=svg, background=BACKGROUND, skip_system_fonts=True)


def free_inset(icon: Icon, colour: str, max_inset: float) -> float:
    """The largest crop (fraction of the side, at most `max_inset`) that cuts nothing of the drawing."""
    from PIL import Image

    probe = Image.open(io.BytesIO(render_png(svg_document(icon, PROBE_SIZE, colour)))).convert("L")
    box = probe.point(lambda value: 255 if value < 250 else 0).getbbox()
    if box is None:
        return 0.0
    left, top, right, bottom = box
    margin = min(left, top, PROBE_SIZE - right, PROBE_SIZE - bottom) - 1  # keep one probe pixel of air
    return max(0.0, min(max_inset, margin / PROBE_SIZE))


@dataclass(frozen=True)
class RenderJob:
    icon: Icon
    colour: str
    max_inset: float
    size: int
    path: str


def render_job_png(job: RenderJob) -> bytes:
    inset = free_inset(job.icon, job.colour, job.max_inset) if job.max_inset else 0.0
    return render_png(svg_document(job.icon, job.size, job.colour, inset))


def job_for(item: ImageItem, out: Path, size: int = SIZE) -> RenderJob:
    return RenderJob(item.icon, icon_colour(item.key), MAX_INSETS.get(item.icon.prefix, 0.0), size,
                     str(out / item.image_path))


def _render_job(job: RenderJob) -> tuple[str, str | None]:
    try:
        data = render_job_png(job)
        temporary = f"{job.path}.{os.getpid()}.tmp"
        with open(temporary, "wb") as handle:
            handle.write(data)
        os.replace(temporary, job.path)
        return job.path, None
    except Exception as error:  # one bad drawing must not stop 300,000 others; it is reported
        return job.path, f"{type(error).__name__}: {error}".splitlines()[0]


@dataclass
class RenderReport:
    rendered: int = 0
    skipped: int = 0
    removed: int = 0  # PNGs of earlier runs that no manifest uses any more (a set dropped, a rule changed)
    failed: dict[str, str] = field(default_factory=dict)  # relative image path → error


def remove_unlisted(images: Path, wanted: set[str]) -> int:
    """Delete PNGs (and leftover temporary files) under `images` that are not in `wanted` (absolute paths)."""
    removed = 0
    for path in images.glob("*/*"):
        if path.is_file() and str(path) not in wanted:
            path.unlink()
            removed += 1
    return removed


def render_settings(size: int) -> dict:
    import resvg_py

    return {"size": size, "background": BACKGROUND, "palette": list(PALETTE), "max_insets": MAX_INSETS,
            "resvg_py": resvg_py.__version__}


def render_items(items: list[ImageItem], out: Path, size: int = SIZE, workers: int = 2, progress=None,
                 log=print) -> RenderReport:
    """Render every item's PNG under `out` that is not there yet (all of them when the settings changed)."""
    settings = render_settings(size)
    images = out / "images"
    settings_path = images / SETTINGS_FILE
    if settings_path.exists() and json.loads(settings_path.read_text(encoding="utf-8")) != settings:
        # Old renders go, so that an interrupted rerun cannot mix two kinds of image.
        log(f"render settings changed since the last run: deleting {images} and rendering every image again")
        shutil.rmtree(images)
    images.mkdir(parents=True, exist_ok=True)
    settings_path.write_text(json.dumps(settings, indent=1) + "\n", encoding="utf-8")
    report = RenderReport()
    report.removed = remove_unlisted(images, {str(out / item.image_path) for item in items})
    jobs = []
    for item in items:
        path = out / item.image_path
        if path.exists():
            report.skipped += 1
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        jobs.append(job_for(item, out, size))
    if not jobs:
        return report
    log(f"rendering {len(jobs)} images ({report.skipped} already there) with {workers} processes")
    done = 0
    pool = multiprocessing.get_context("spawn").Pool(workers) if workers > 1 else None
    results = pool.imap_unordered(_render_job, jobs, chunksize=32) if pool else map(_render_job, jobs)
    try:
        for path, error in results:
            done += 1
            if error is None:
                report.rendered += 1
            else:
                report.failed[os.path.relpath(path, out)] = error
            if progress is not None:
                progress.update(done, len(jobs), failed=len(report.failed))
                if progress.cancelled:
                    raise DataError(f"rendering cancelled after {done} of {len(jobs)} images; run again to resume")
    except BaseException:
        if pool is not None:
            pool.terminate()
        raise
    finally:
        if pool is not None:
            pool.close()
            pool.join()
    return report
