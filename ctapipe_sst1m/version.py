"""Version of ctapipe_sst1m from the git tags (setuptools_scm writes _version.py)."""

try:
    from ._version import __version__
except ImportError:  # a source tree that was never built: ask the installed metadata
    from importlib.metadata import PackageNotFoundError, version

    try:
        __version__ = version("ctapipe_sst1m")
    except PackageNotFoundError:
        __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
