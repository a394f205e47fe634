"""The package version (one place: the package, the configs it writes and the build read it)."""

__version__ = "0.1.0"
