"""clipdesk: find any photo by typing what is in it."""

__version__ = "0.1.0"
