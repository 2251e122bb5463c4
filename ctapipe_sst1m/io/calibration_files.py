"""Readers of the SST-1M dark-run calibration files (dc to p.e. per pixel)."""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tables

__all__ = [
    "PixelCalibration",
    "read_pandas_frame",
    "read_pixel_calibration",
    "read_window_transmittance",
    "read_module_pixels",
    "read_swapped_modules",
]

#: HDF5 keys of the two file formats: dated fits and averaged parameters
CALIBRATION_KEYS = ("df_param", "param")
#: ``pandas_type`` of a DataFrame stored in pandas' "fixed" HDF5 format
PANDAS_FIXED_FRAME = "frame"


@dataclass(frozen=True)
class PixelCalibration:
    """dc to p.e. conversion of one camera, in software pixel order."""

    #: ADC counts (summed over the pulse) per photo-electron, per pixel
    dc_to_pe: np.ndarray
    #: True where the dark-run fit is good (``calib_flag == 1``)
    good: np.ndarray
    #: file the values were read from
    path: Path


def read_pandas_frame(path, key):
    """
    Read a pandas ``DataFrame`` stored in HDF5 "fixed" format, without pandas.

    Parameters
    ----------
    path : str or Path
        HDF5 file.
    key : str
        Group name of the frame.

    Returns
    -------
    dict[str, numpy.ndarray]
        One array per column.

    Raises
    ------
    ValueError
        If the group holds another pandas object or format (e.g. a frame written
        with ``format="table"``) or no pandas object at all.
    """
    columns = {}
    with tables.open_file(path, mode="r") as h5:
        group = h5.get_node("/", key)
        pandas_type = getattr(group._v_attrs, "pandas_type", None)
        if pandas_type != PANDAS_FIXED_FRAME:
            found = (
                f"a pandas HDF5 file whose /{key} is a {str(pandas_type)!r} object"
                if pandas_type
                else f"an HDF5 file whose /{key} is no pandas object"
            )
            raise ValueError(
                f"{path} is {found}, expected a DataFrame in pandas' fixed format"
                f" (pandas_type {PANDAS_FIXED_FRAME!r}, DataFrame.to_hdf(..., format="
                "'fixed')), the format of the SST-1M calibration files"
            )
        n_blocks = int(group._v_attrs.nblocks)
        for block in range(n_blocks):
            names = [
                n.decode() for n in h5.get_node(group, f"block{block}_items").read()
            ]
            values = h5.get_node(group, f"block{block}_values").read()
            for i, name in enumerate(names):
                columns[name] = values[:, i]
    return columns


def read_pixel_calibration(path, n_pixels=1296):
    """
    Read a dark-run calibration file of the SST-1M collaboration.

    Both formats are understood: dated fits
    (``YYYYMMDD_RRRR_RRRR_TelN_fitted_parameters.h5``, key ``df_param``) and
    averaged parameters (``averaged_calib_param_*.h5``, key ``param``). Rows are
    pixels in software-id order. Pixels with ``calib_flag != 1`` or a non-finite
    or non-positive ``dc_to_pe`` are marked bad and get the mean ``dc_to_pe``
    of the good pixels.

    Parameters
    ----------
    path : str or Path
        Calibration file.
    n_pixels : int
        Expected number of pixels.

    Returns
    -------
    PixelCalibration

    Raises
    ------
    ValueError
        If the file is not a calibration file of the expected shape.
    """
    path = Path(path)
    try:
        with tables.open_file(path, mode="r") as h5:
            keys = [k for k in CALIBRATION_KEYS if f"/{k}" in h5]
    except (OSError, tables.HDF5ExtError) as err:
        raise ValueError(
            f"{path}: not a readable HDF5 calibration file ({err})"
        ) from None
    if not keys:
        raise ValueError(
            f"{path}: no calibration table (expected one of {CALIBRATION_KEYS}):"
            " not a dark-run calibration file"
        )

    columns = read_pandas_frame(path, keys[0])
    missing = {"dc_to_pe", "calib_flag"} - set(columns)
    if missing:
        raise ValueError(f"{path}: calibration table lacks columns {sorted(missing)}")
    dc_to_pe = np.asarray(columns["dc_to_pe"], dtype=np.float64)
    if dc_to_pe.shape != (n_pixels,):
        raise ValueError(f"{path}: {dc_to_pe.size} pixels, expected {n_pixels}")

    flag = np.asarray(columns["calib_flag"], dtype=np.float64)
    good = (flag == 1) & np.isfinite(dc_to_pe) & (dc_to_pe > 0)
    if not good.any():
        raise ValueError(f"{path}: no pixel has a good calibration")
    dc_to_pe = np.where(good, dc_to_pe, dc_to_pe[good].mean())
    return PixelCalibration(dc_to_pe=dc_to_pe, good=good, path=path)


def read_window_transmittance(path, n_pixels=1296):
    """
    Camera-window transmittance factors per pixel (``pixel_id  correction_factor``).

    Returns
    -------
    numpy.ndarray
        Factor per pixel in software-id order; DL1 charges are divided by it.
    """
    path = Path(path)
    try:
        table = np.loadtxt(path, skiprows=1, ndmin=2)
    except ValueError as err:
        raise ValueError(f"{path}: not a window transmittance table ({err})") from None
    if table.shape != (n_pixels, 2) or not np.array_equal(
        table[:, 0], np.arange(n_pixels)
    ):
        raise ValueError(
            f"{path}: expected {n_pixels} rows 'pixel_id correction_factor'"
        )
    factors = table[:, 1]
    if not np.all(np.isfinite(factors) & (factors > 0)):
        raise ValueError(f"{path}: factors must be finite and positive")
    return factors


def read_module_pixels(path):
    """
    Software pixel ids of each DigiCam module, from the camera mapping table.

    Parameters
    ----------
    path : str or Path
        DigiCam pixel mapping table (columns ``module``, ``pixel_hw_id`` and
        ``pixel_sw_id``, e.g. ``digicam_pixels_mapping_V5T.txt``).

    Returns
    -------
    dict[int, numpy.ndarray]
        Module number -> software pixel ids ordered by the pixel's number in the
        module (``pixel_hw_id``), so that two modules pair pixel by pixel.
    """
    path = Path(path)
    with open(path) as f:
        names = f.readline().lstrip("#").split()
    required = ("module", "pixel_hw_id", "pixel_sw_id")
    if not all(name in names for name in required):
        raise ValueError(
            f"{path}: not a DigiCam mapping table (needs columns {required})"
        )
    table = np.loadtxt(
        path, comments="#", usecols=[names.index(n) for n in required], dtype=int
    )
    modules = {}
    for module in np.unique(table[:, 0]):
        rows = table[table[:, 0] == module]
        modules[int(module)] = rows[np.argsort(rows[:, 1]), 2]
    return modules


def read_swapped_modules(path):
    """
    Periods during which two modules of a camera were cabled the wrong way round.

    Parameters
    ----------
    path : str or Path
        JSON ``{"entry": {"ntel", "date_sart", "date_stop", "module_1", "module_2"}}``
        (UTC dates; the key ``date_start`` is accepted too).

    Returns
    -------
    list of tuple
        ``(tel_id, start, stop, module_1, module_2)`` with astropy Times.
    """
    import json

    from astropy.time import Time

    path = Path(path)
    with open(path) as f:
        entries = json.load(f)
    swaps = []
    for name, entry in entries.items():
        try:
            start = entry.get("date_start", entry.get("date_sart"))
            swaps.append(
                (
                    int(entry["ntel"]),
                    Time(start, scale="utc"),
                    Time(entry["date_stop"], scale="utc"),
                    int(entry["module_1"]),
                    int(entry["module_2"]),
                )
            )
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(f"{path}: entry {name!r} is invalid ({err})") from None
    return swaps
