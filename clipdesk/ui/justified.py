"""Justified rows: photos at their own aspect ratio, each row scaled to a common height so it fills the width.

The layout is made from an array of aspect ratios in a few numpy passes (one `searchsorted` per row to find
where it breaks), never by asking each photo: 100,000 photos lay out in tens of milliseconds. A row takes
photos at the target height until they reach the width, then shrinks to fit exactly, so no row is taller
than the target (thumbnails made for the target height stay sharp in every row). The last row keeps the
target height and is not stretched.

All positions are integers in the view's content coordinates; cells of a row share its top and height,
and their edges are rounded so that the row's last cell ends exactly at the width.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# A photo wider or taller than this is laid out at this ratio (its thumbnail is cropped to it): one
# 20:1 panorama would otherwise make its row a sliver.
MAX_ASPECT = 5.0


@dataclass(frozen=True)
class Layout:
    left: np.ndarray  # int32 per photo
    width: np.ndarray  # int32 per photo
    line: np.ndarray  # int32 per photo: its row
    starts: np.ndarray  # int64 per row: its first photo (and one more entry: the photo count)
    top: np.ndarray  # int32 per row
    height: np.ndarray  # int32 per row
    content_height: int

    @property
    def lines(self) -> int:
        return len(self.top)

    def rect(self, row: int) -> tuple[int, int, int, int]:
        """(x, y, width, height) of a photo's cell."""
        line = self.line[row]
        return int(self.left[row]), int(self.top[line]), int(self.width[row]), int(self.height[line])

    def line_at(self, y: float) -> int:
        """The row at height y, or the one just below it (in the gap); -1 above all, `lines` below all."""
        if not self.lines or y < self.top[0]:
            return -1
        line = int(np.searchsorted(self.top, y, side="right")) - 1
        if y >= self.top[line] + self.height[line]:
            line += 1
        return line

    def photo_at(self, x: float, y: float) -> int | None:
        """The photo whose cell holds the point, or None (a gap, or no photo there)."""
        line = self.line_at(y)
        if not 0 <= line < self.lines or y < self.top[line]:
            return None
        start, end = int(self.starts[line]), int(self.starts[line + 1])
        row = start + int(np.searchsorted(self.left[start:end], x, side="right")) - 1
        if row < start or x >= self.left[row] + self.width[row]:
            return None
        return row

    def nearest_in_line(self, line: int, x: float) -> int:
        """The photo of a row whose cell is horizontally nearest to x."""
        start, end = int(self.starts[line]), int(self.starts[line + 1])
        left, right = self.left[start:end], self.left[start:end] + self.width[start:end]
        distance = np.maximum(left - x, 0) + np.maximum(x - right, 0)
        return start + int(np.argmin(distance))

    def photos_in(self, x0: float, y0: float, x1: float, y1: float) -> list[tuple[int, int]]:
        """Runs (first, last) of the photos whose cells meet the rectangle, in order."""
        first, last = max(0, self.line_at(y0)), min(self.lines - 1, self.line_at(y1))
        runs: list[tuple[int, int]] = []
        for line in range(first, last + 1):
            if self.top[line] > y1 or self.top[line] + self.height[line] <= y0:
                continue
            start, end = int(self.starts[line]), int(self.starts[line + 1])
            left = self.left[start:end]
            right = left + self.width[start:end]
            hit = np.flatnonzero((left <= x1) & (right > x0))
            if len(hit):
                a, b = start + int(hit[0]), start + int(hit[-1])
                if runs and runs[-1][1] == a - 1:
                    runs[-1] = (runs[-1][0], b)
                else:
                    runs.append((a, b))
        return runs


def justified_layout(aspects: np.ndarray, width: int, target: int, gap: int, margin: int = 0) -> Layout:
    """Lay out photos of these aspect ratios (width / height) in rows `width` wide (cells from `margin` to
    `margin + width`), `gap` apart, at most `target` high."""
    count = len(aspects)
    width, target = max(1, int(width)), max(1, int(target))
    ratio = np.clip(np.nan_to_num(np.asarray(aspects, np.float64), nan=1.0, posinf=1.0, neginf=1.0),
                    1 / MAX_ASPECT, MAX_ASPECT)
    ratio[ratio <= 0] = 1.0
    # Each photo's width at the target height, plus the gap after it; `reach[j] - reach[i] - gap` is the
    # width of photos i..j-1 side by side.
    reach = np.concatenate([[0.0], np.cumsum(ratio * target + gap)])
    sums = np.concatenate([[0.0], np.cumsum(ratio)])
    starts = [0]
    while starts[-1] < count:
        start = starts[-1]
        # The first photo that makes the row reach the width (always at least one photo per row).
        end = int(np.searchsorted(reach, reach[start] + width + gap, side="left"))
        starts.append(min(max(end, start + 1), count))
    starts = np.asarray(starts, np.int64)
    lines = len(starts) - 1
    counts = np.diff(starts)
    ratio_sums = sums[starts[1:]] - sums[starts[:-1]]
    heights = (width - gap * (counts - 1)) / np.maximum(ratio_sums, 1e-9)
    full = (reach[starts[1:]] - reach[starts[:-1]] - gap) >= width
    heights = np.where(full, np.minimum(heights, target), target) if lines else heights
    heights = np.maximum(1.0, heights)
    line = np.repeat(np.arange(lines, dtype=np.int32), counts)
    # Edges within each row: the running sum of the widths and gaps before each photo.
    scaled = ratio * heights[line] if count else ratio
    edges = np.cumsum(scaled + gap) - (scaled + gap)  # before each photo, across rows
    edges = edges - edges[starts[:-1]][line] if count else edges
    left = np.rint(edges)
    right = np.rint(edges + scaled)
    right = np.where(full[line], np.minimum(right, width), right) if count else right
    last = starts[1:] - 1
    if lines:
        right[last[full]] = width  # a full row ends exactly at the width
    row_heights = np.rint(heights).astype(np.int32)
    tops = np.concatenate([[0], np.cumsum(row_heights + gap)[:-1]]) if lines else np.zeros(0)
    tops = tops.astype(np.int32) + margin
    content = int(tops[-1] + row_heights[-1] + margin) if lines else 0
    return Layout((left + margin).astype(np.int32), np.maximum(1, right - left).astype(np.int32), line, starts,
                  tops, row_heights, content)
