"""How the sst1m tools end on a full disk or on SIGTERM.

HDF5 (PyTables) and astropy turn ``ENOSPC`` into long tracebacks that do not always say
"No space left on device"; `reports_full_disk` wraps a tool's ``start`` and ``finish``
and replaces them by the message of `ctapipe_sst1m.io.atomic_output.disk_full_error`,
exit status 1.

SIGTERM (a batch system's time limit, ``kill``) would end the process without cleaning
up; while ``start`` or ``finish`` runs in the main thread, it ends the tool like Ctrl-C
does instead: the temporary outputs are deleted, exit status 143 (128 + 15).
"""

import functools
import signal
import threading
from pathlib import Path

from ..io.atomic_output import AtomicOutput, disk_full_error

__all__ = ["reports_full_disk"]


#: trait names of the tools' outputs, in order of preference
OUTPUT_TRAITS = ("output_path", "output", "output_dir", "raw_dir")


def _output_path(tool):
    """The tool's output (the first set one of `OUTPUT_TRAITS`), else the working directory."""
    for name in OUTPUT_TRAITS:
        value = getattr(tool, name, None)
        if isinstance(value, AtomicOutput):
            return value.path
        if isinstance(value, str | Path):
            return Path(value)
    return Path.cwd()


def reports_full_disk(method):
    """Decorate ``Tool.start``/``finish``: a full disk ends the tool with one clear line."""

    @functools.wraps(method)
    def wrapper(tool, *args, **kwargs):
        try:
            with _sigterm_ends(tool):
                return method(tool, *args, **kwargs)
        except Exception as err:
            full = disk_full_error(err, _output_path(tool))
            if full is None:
                raise
            tool.log.critical("%s", full)
            tool.exit(1)

    return wrapper


class _sigterm_ends:
    """Turn SIGTERM into ``SystemExit(143)`` (main thread only), restore the handler after."""

    def __init__(self, tool):
        self.tool = tool
        self.previous = None

    def _handler(self, signal_number, frame):
        self.tool.log.critical(
            "terminated by SIGTERM: the temporary outputs are deleted"
        )
        raise SystemExit(128 + signal.SIGTERM)

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGTERM, self._handler)

    def __exit__(self, *exc_info):
        if self.previous is not None:
            signal.signal(signal.SIGTERM, self.previous)
