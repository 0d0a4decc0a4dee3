"""Icons drawn for clipdesk (resources/icons/*.svg), tinted to the palette so they suit light and dark."""

from __future__ import annotations

from functools import lru_cache

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QIcon, QImage, QPainter, QPalette, QPixmap
from PySide6.QtSvg import QSvgRenderer
from PySide6.QtWidgets import QApplication

from clipdesk import paths

APP_ICON = "clipdesk"


def icon_path(name: str) -> str:
    return str(paths.resources_dir() / "icons" / f"{name}.svg")


@lru_cache(maxsize=None)
def _renderer(name: str) -> QSvgRenderer:
    return QSvgRenderer(icon_path(name))


def tinted_pixmap(name: str, size: int, color: QColor, ratio: float = 1.0) -> QPixmap:
    """The line icon `name` at `size` logical pixels, every drawn pixel painted `color` (cached: delegates
    ask for the same few on every paint)."""
    return _tinted(name, size, color.rgba(), ratio)


@lru_cache(maxsize=512)
def _tinted(name: str, size: int, rgba: int, ratio: float) -> QPixmap:
    color = QColor.fromRgba(rgba)
    side = max(1, round(size * ratio))
    image = QImage(side, side, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    _renderer(name).render(painter, QRectF(0, 0, side, side))
    # The SVGs are drawn in black: keep their alpha, take the colour.
    painter.setCompositionMode(QPainter.CompositionMode.CompositionMode_SourceIn)
    painter.fillRect(image.rect(), color)
    painter.end()
    pixmap = QPixmap.fromImage(image)
    pixmap.setDevicePixelRatio(ratio)
    return pixmap


def icon(name: str, role: QPalette.ColorRole = QPalette.ColorRole.WindowText, color: QColor | None = None) -> QIcon:
    """A QIcon of the line icon in the palette's colour (a dimmed copy for disabled widgets)."""
    app = QApplication.instance()
    palette = app.palette() if app else QPalette()
    ratio = app.devicePixelRatio() if app else 1.0
    normal = color or palette.color(QPalette.ColorGroup.Active, role)
    disabled = palette.color(QPalette.ColorGroup.Disabled, role)
    result = QIcon()
    for size in (16, 20, 24, 32):
        result.addPixmap(tinted_pixmap(name, size, normal, ratio), QIcon.Mode.Normal)
        result.addPixmap(tinted_pixmap(name, size, disabled, ratio), QIcon.Mode.Disabled)
    return result


def app_icon() -> QIcon:
    return QIcon(icon_path(APP_ICON))

