"""Readers of the SST-1M dark-run calibration files (dc to p.e. per pixel)."""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tables

__all__ = ["PixelCalibration", "read_pandas_frame", "read_pixel_calibration"]

#: HDF5 keys of the two file formats: dated fits and averaged parameters
CALIBRATION_KEYS = ("df_param", "param")


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
    """
    columns = {}
    with tables.open_file(path, mode="r") as h5:
        group = h5.get_node("/", key)
        n_blocks = int(group._v_attrs.nblocks)
        for block in range(n_blocks):
            names = [n.decode() for n in h5.get_node(group, f"block{block}_items").read()]
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
        raise ValueError(f"{path}: not a readable HDF5 calibration file ({err})") from None
    if not keys:
        raise ValueError(f"{path}: no calibration table (expected one of {CALIBRATION_KEYS})")

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
