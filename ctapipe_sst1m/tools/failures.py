"""How the sst1m tools report a full disk: one line naming the output, exit status 1.

HDF5 (PyTables) and astropy turn ``ENOSPC`` into long tracebacks that do not always say
"No space left on device"; `reports_full_disk` wraps a tool's ``start`` and ``finish``
and replaces them by the message of `ctapipe_sst1m.io.atomic_output.disk_full_error`.
"""

import functools
from pathlib import Path

from ..io.atomic_output import disk_full_error

__all__ = ["reports_full_disk"]


def _output_path(tool):
    """The tool's output (the first set trait named ``output*``), else the working directory."""
    for name in sorted(tool.trait_names()):
        if name.startswith("output"):
            value = getattr(tool, name)
            if isinstance(value, str | Path):
                return Path(value)
    return Path.cwd()


def reports_full_disk(method):
    """Decorate ``Tool.start``/``finish``: a full disk ends the tool with one clear line."""

    @functools.wraps(method)
    def wrapper(tool, *args, **kwargs):
        try:
            return method(tool, *args, **kwargs)
        except Exception as err:
            full = disk_full_error(err, _output_path(tool))
            if full is None:
                raise
            tool.log.critical("%s", full)
            tool.exit(1)

    return wrapper
