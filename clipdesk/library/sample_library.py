"""The sample library shipped in resources/ (emoji and icons, to try clipdesk before adding photos), and the
rule that keeps it apart: while a library holds both it and the user's own photos, a search that names no
folder leaves the sample out, unless asked, so that its emoji never mix with the user's photos unannounced.
The app and `clipdesk search` both follow it and say so."""

from __future__ import annotations

import os
from dataclasses import replace

from clipdesk import paths

SAMPLE_LIBRARY = "sample-library"


def sample_library_path():
    """The sample library shipped in resources/, or None when this build has none."""
    folder = paths.resources_dir() / SAMPLE_LIBRARY
    return folder if folder.is_dir() else None


def is_sample_folder(path: str) -> bool:
    """Whether a library folder is the sample library shipped in resources/."""
    sample = sample_library_path()
    return sample is not None and os.path.realpath(path) == os.path.realpath(sample)


def sample_apart(folders, counts: dict[int, int]) -> str | None:
    """The sample library's folder path when the library holds it and photos of the user's beside it;
    `folders`: the library's Folder rows, `counts`: photos per folder id."""
    found = next((folder for folder in folders if is_sample_folder(folder.path)), None)
    others = any(counts.get(folder.id, 0) for folder in folders if folder is not found)
    return found.path if found is not None and others else None


def keep_sample_apart(query, sample: str | None, include: bool):
    """(the query to run, what its results say of the sample: (folder, included) or None). A query that names
    a folder is taken as written."""
    if sample is None or query.filters.folders:
        return query, None
    if include:
        return query, (sample, True)
    filters = replace(query.filters, exclude_folders=(*query.filters.exclude_folders, sample))
    return replace(query, filters=filters), (sample, False)
