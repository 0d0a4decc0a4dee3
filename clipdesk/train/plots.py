"""PNG line charts of a run (loss, temperature, zero-shot accuracy, retrieval), drawn with Pillow.

Pillow is already a dependency; a plotting library would add tens of megabytes for four charts.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

PLOTS_DIR = "plots"
SIZE = (760, 440)
MARGIN = {"left": 72, "right": 24, "top": 44, "bottom": 56}
PALETTE = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189)]
GRID, AXIS, TEXT, FAINT = (228, 228, 228), (90, 90, 90), (30, 30, 30), (160, 190, 225)


@dataclass
class Series:
    name: str
    xs: Sequence[float]
    ys: Sequence[float]
    colour: tuple[int, int, int] | None = None
    width: int = 3
    dashed: bool = False


def _font(size: int = 13):
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError, ImportError):  # Pillow without FreeType: the fixed bitmap font
        return ImageFont.load_default()


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values (1, 2 or 5 times a power of ten apart) covering low..high."""
    if not math.isfinite(low) or not math.isfinite(high):
        return [0.0, 1.0]
    if high <= low:
        high = low + (abs(low) or 1.0)
    raw = (high - low) / max(1, count)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    ticks = [round(math.floor(low / step) * step, 12)]
    while ticks[-1] < high:
        ticks.append(round(ticks[-1] + step, 12))
    return ticks


def _label(value: float) -> str:
    return f"{value:.4g}" if value != int(value) or abs(value) >= 1e5 else str(int(value))


def line_chart(path: Path, title: str, series: list[Series], x_label: str, y_label: str = "",
               y_range: tuple[float, float] | None = None) -> Path:
    image = Image.new("RGB", SIZE, "white")
    draw = ImageDraw.Draw(image)
    font, title_font = _font(13), _font(16)
    points = [(x, y) for s in series for x, y in zip(s.xs, s.ys) if math.isfinite(y)]
    xs = [x for x, _ in points] or [0.0, 1.0]
    ys = [y for _, y in points] or [0.0, 1.0]
    x_ticks = nice_ticks(min(xs), max(xs))
    y_ticks = nice_ticks(*(y_range or (min(ys), max(ys))))
    x0, x1, y0, y1 = x_ticks[0], x_ticks[-1], y_ticks[0], y_ticks[-1]
    left, top = MARGIN["left"], MARGIN["top"]
    right, bottom = SIZE[0] - MARGIN["right"], SIZE[1] - MARGIN["bottom"]

    def to_pixel(x: float, y: float) -> tuple[float, float]:
        return (left + (x - x0) / (x1 - x0 or 1) * (right - left),
                bottom - (y - y0) / (y1 - y0 or 1) * (bottom - top))

    for tick in y_ticks:
        _, py = to_pixel(x0, tick)
        draw.line([(left, py), (right, py)], fill=GRID)
        draw.text((left - 6, py), _label(tick), fill=TEXT, font=font, anchor="rm")
    for tick in x_ticks:
        px, _ = to_pixel(tick, y0)
        draw.line([(px, top), (px, bottom)], fill=GRID)
        draw.text((px, bottom + 6), _label(tick), fill=TEXT, font=font, anchor="mt")
    draw.rectangle([left, top, right, bottom], outline=AXIS)
    draw.text((SIZE[0] / 2, 14), title, fill=TEXT, font=title_font, anchor="mt")
    draw.text(((left + right) / 2, SIZE[1] - 16), x_label, fill=TEXT, font=font, anchor="mb")
    if y_label:
        draw.text((8, top - 22), y_label, fill=TEXT, font=font, anchor="lt")

    for index, s in enumerate(series):
        colour = s.colour or PALETTE[index % len(PALETTE)]
        line = [to_pixel(x, y) for x, y in zip(s.xs, s.ys) if math.isfinite(y)]
        if len(line) == 1:
            (px, py), = line
            draw.ellipse([px - 3, py - 3, px + 3, py + 3], fill=colour)
        elif s.dashed:
            for a, b in zip(line[::2], line[1::2]):
                draw.line([a, b], fill=colour, width=s.width)
        elif line:
            draw.line(line, fill=colour, width=s.width, joint="curve")
        # Legend, top right inside the plot.
        ly = top + 8 + 18 * index
        draw.line([(right - 150, ly + 7), (right - 126, ly + 7)], fill=colour, width=3)
        draw.text((right - 120, ly), s.name, fill=TEXT, font=font)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
    return path


def moving_average(values: Sequence[float], window: int) -> list[float]:
    out, total = [], 0.0
    for i, value in enumerate(values):
        total += value
        if i >= window:
            total -= values[i - window]
        out.append(total / min(i + 1, window))
    return out


def _dashed(xs: Sequence[float], value: float, pieces: int = 40) -> tuple[list[float], list[float]]:
    """A horizontal line as many short segments (drawn as dashes)."""
    low, high = min(xs), max(xs)
    grid = [low + (high - low) * i / pieces for i in range(pieces + 1)]
    return grid, [value] * len(grid)


def write_training_plots(out_dir: Path, steps: list[dict], epochs: list[dict]) -> list[Path]:
    """loss.png and temperature.png per step; zero_shot.png and retrieval.png per evaluation."""
    folder = out_dir / PLOTS_DIR
    written = []
    if steps:
        xs = [row["step"] for row in steps]
        losses = [row.get("loss", math.nan) for row in steps]
        window = max(1, len(losses) // 50)
        series = [Series("per step", xs, losses, colour=FAINT if window > 1 else PALETTE[0], width=1)]
        if window > 1:
            series.append(Series(f"mean of {window} steps", xs, moving_average(losses, window), colour=PALETTE[0]))
        written.append(line_chart(folder / "loss.png", "Contrastive loss (training batches)", series, "step", "loss"))
        written.append(line_chart(folder / "temperature.png", "Logit scale exp(t) = 1 / temperature (clamped at 100)",
                                  [Series("logit scale", xs, [row.get("logit_scale", math.nan) for row in steps])],
                                  "step", "scale"))
    scored = [r for r in epochs if "zero_shot_top1" in r]
    if scored:
        xs = [r["epoch"] for r in scored]
        series = [Series("top-1", xs, [100 * r["zero_shot_top1"] for r in scored]),
                  Series("top-5", xs, [100 * r["zero_shot_top5"] for r in scored])]
        if len(xs) > 1:
            series.append(Series("chance (top-1)", *_dashed(xs, 100 * scored[-1]["zero_shot_chance"]),
                                 colour=AXIS, width=1, dashed=True))
        written.append(line_chart(folder / "zero_shot.png", "Zero-shot accuracy on the validation set",
                                  series, "epoch", "%", y_range=(0, 100)))
    recalled = [r for r in epochs if "image_to_text_r1" in r]
    if recalled:
        xs = [r["epoch"] for r in recalled]
        series = [Series(name, xs, [100 * r[key] for r in recalled]) for name, key in (
            ("image->text R@1", "image_to_text_r1"), ("text->image R@1", "text_to_image_r1"),
            ("image->text R@5", "image_to_text_r5"), ("text->image R@5", "text_to_image_r5"))]
        written.append(line_chart(folder / "retrieval.png", "Retrieval recall on the validation set",
                                  series, "epoch", "%", y_range=(0, 100)))
    return written
