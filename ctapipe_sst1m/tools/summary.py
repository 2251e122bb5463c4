"""What the sst1m tools print on the console: the long steps and a summary at the end.

ctapipe tools log at WARNING by default, so these are printed to stdout, not logged;
``--quiet`` (``Tool.quiet``) silences them with the logging.
"""

from pathlib import Path

from astropy.time import Time
from ctapipe.core import Provenance

__all__ = ["print_step", "print_summary", "format_size", "path_size"]


def print_step(tool, message):
    """
    Print the long step a tool starts now, unless it runs with ``--quiet``.

    Parameters
    ----------
    tool : ctapipe.core.Tool
    message : str
    """
    if not tool.quiet:
        print(message, flush=True)


def print_summary(tool, lines, outputs=()):
    """
    Print what a tool did, unless it runs with ``--quiet``::

        sst1m-process finished in 2.4 s
          SST1M2_20180822_0001.fits.fz: read 2 SKY_PEDESTAL, 30 SUBARRAY events; 30 events written
          tel 22: 2 of 30 images with pixels after cleaning; NSB level 3.14 p.e. from 2 pedestal events
          wrote SST1M2_20180822_0001_dl1.h5 (455 kB)

    Parameters
    ----------
    tool : ctapipe.core.Tool
        The tool; the time is counted from the start of its provenance activity.
    lines : list of str
        What went in and came out, one line each.
    outputs : iterable of path-like
        Files and directories written, listed with their size.
    """
    if tool.quiet:
        return
    activity = Provenance().current_activity
    header = tool.name
    if activity is not None and activity.name == tool.name:
        start = Time(
            activity.provenance["start"]["time_utc"], format="isot", scale="utc"
        )
        header += f" finished in {(Time.now() - start).to_value('s'):.1f} s"
    print(header)
    for line in lines:
        print(f"  {line}")
    for path in outputs:
        print(f"  wrote {path} ({format_size(path_size(path))})")


def format_size(n_bytes):
    """A size in bytes for people: ``512 B``, ``830 kB``, ``12.3 MB``."""
    for unit, factor in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n_bytes >= factor:
            return f"{n_bytes / factor:.3g} {unit}"
    return f"{n_bytes} B"


def path_size(path):
    """Bytes of a file, or of all files in a directory and its subdirectories."""
    path = Path(path)
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size
