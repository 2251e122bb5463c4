"""Where the raw files of a night are: the directory layout of the SST-1M camera servers."""

import re
from pathlib import Path

from ..instrument import camera_number

__all__ = [
    "REFERENCE_RAW_LAYOUT",
    "RAW_FILE_NAME",
    "raw_directory",
    "parse_raw_file_name",
]

#: the layout of the raw data on the SST-1M servers (reference spec §12): one tree per
#: camera server (``cs1``: telescope 21, ``cs2``: telescope 22), one directory per night
REFERENCE_RAW_LAYOUT = "cs{camera}/data/raw/{year}/{month}/{day}/SST1M{camera}"

#: raw file names: SST1M{camera}_{YYYYMMDD}_{run:04d}[_{file:03d}].fits.fz
RAW_FILE_NAME = re.compile(
    r"^SST1M(?P<camera>[12])_(?P<date>\d{8})_(?P<run>\d{4})(?:_(?P<file>\d{3}))?\.fits\.fz$"
)


def raw_directory(root, night, tel_id, layout=REFERENCE_RAW_LAYOUT):
    """
    The directory of the raw files of one telescope for a night.

    Parameters
    ----------
    root : str or Path
        Root of the raw-data tree.
    night : str
        Date of the night, ``YYYYMMDD`` (the date on which the night starts).
    tel_id : int
        Telescope id (21 or 22).
    layout : str
        Template relative to ``root`` with the fields ``camera`` (1 or 2), ``year``,
        ``month``, ``day`` and ``night`` (``YYYYMMDD``).

    Returns
    -------
    Path
    """
    if not re.fullmatch(r"\d{8}", str(night)):
        raise ValueError(f"night {night!r} is not a date YYYYMMDD")
    night = str(night)
    return Path(root) / layout.format(
        camera=camera_number(tel_id),
        year=night[:4],
        month=night[4:6],
        day=night[6:],
        night=night,
    )


def parse_raw_file_name(path):
    """
    Camera number, date, run and file number of a raw file name.

    Returns
    -------
    dict or None
        ``{"camera": int, "date": str, "run": int, "file": int}`` (file 0 for a
        name without a file number), None for a name that does not follow the
        convention.
    """
    match = RAW_FILE_NAME.match(Path(path).name)
    if match is None:
        return None
    return {
        "camera": int(match["camera"]),
        "date": match["date"],
        "run": int(match["run"]),
        "file": int(match["file"] or 0),
    }
