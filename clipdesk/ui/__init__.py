"""The desktop app (PySide6): the only Qt code in clipdesk.

Widgets show what the Qt-free core (library, search, tagging, runtime) computes; every call into the
core that can take longer than a frame runs on a worker thread (workers.py, library_service.py) and
comes back as a signal. Nothing here imports torch: importing a PyTorch checkpoint runs the
`clipdesk model import` command in a child process.
"""
