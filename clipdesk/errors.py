"""Errors meant for people: each carries one line that says what failed and what to do."""


class ClipdeskError(Exception):
    """A failure the user can act on. The CLI prints str(error) on one line and exits with code 1."""


class CheckpointError(ClipdeskError):
    """A file that cannot be read as a CLIP checkpoint (truncated, unsafe, wrong keys or shapes)."""


class ModelPackageError(ClipdeskError):
    """A model package folder that is missing, incomplete or inconsistent."""


class EmptyLibraryError(ClipdeskError):
    """The library has nothing to work on yet: no folders, or no photo indexed. The message is the CLI's
    (it names `clipdesk index FOLDER`); a GUI catches this class and says "Add a folder" in its own words."""
