"""Plain records the library hands out and takes in (no SQL, no Pillow), shared by store, decoder and indexer."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

OK, ERROR = "ok", "error"


@dataclass(frozen=True)
class PhotoMetadata:
    """What one decode learns about a photo besides its pixels. Width and height are as displayed."""

    width: int | None = None
    height: int | None = None
    taken_at: str | None = None  # ISO 8601, camera local time, "+HH:MM" appended when recorded
    camera_make: str | None = None
    camera_model: str | None = None
    orientation: int | None = None  # EXIF orientation 1..8 as stored in the file
    gps_lat: float | None = None
    gps_lon: float | None = None
    format: str | None = None  # Pillow's format name: JPEG, PNG, WEBP, ...; a video's extension: MP4, MOV, ...
    duration: float | None = None  # seconds, for videos only: a photo has none

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(item.name for item in fields(cls))

    def values(self) -> tuple:
        return tuple(getattr(self, name) for name in self.names())


@dataclass(frozen=True)
class Folder:
    id: int
    path: str  # os.fsdecode form, see pathnames.py
    added_at: float


@dataclass(frozen=True)
class Photo:
    id: int
    folder_id: int
    path: str  # os.fsdecode form, see pathnames.py
    size: int | None
    mtime_ns: int | None
    hash: str | None  # SHA-256 of the file's bytes, hex
    metadata: PhotoMetadata
    status: str  # OK or ERROR
    error: str | None
    indexed_at: float

    def to_dict(self) -> dict:
        data = asdict(self)
        data.update(data.pop("metadata"))
        return data


@dataclass(frozen=True)
class ErrorRecord:
    path: str  # os.fsdecode form, see pathnames.py
    error: str
    kind: str  # "file" (a photo that could not be indexed), "folder" (one that could not be scanned), "vector" (damaged)
    photo_id: int | None
    at: float
