"""The installed distribution's version (a module of its own, so every layer can read it
without importing the package's public API)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("tokensweep")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0+source"
