"""Telescope pointing time series in ctapipe DL1 files of real data."""

import logging

import astropy.units as u
import numpy as np
from astropy.coordinates import EarthLocation
from astropy.table import Table
from ctapipe.containers import CoordinateFrameType
from ctapipe.io import read_table, write_table
from ctapipe.io.hdf5dataformat import DL0_TEL_POINTING_GROUP

from ..coordinates import TrackingPointing
from ..time import tai_ns

__all__ = ["add_pointing_tables"]

log = logging.getLogger(__name__)

OBSERVATION_BLOCK_TABLE = "/configuration/observation/observation_block"
TELESCOPE_TRIGGER_TABLE = "/dl1/event/telescope/trigger"


def add_pointing_tables(path, telescope_locations):
    """
    Write ``/dl0/monitoring/telescope/pointing/tel_XXX`` (time, azimuth, altitude)
    into a DL1 file of real data, one row per telescope event.

    ctapipe's DataWriter writes pointing only for simulations; ctapipe's
    TableLoader and the apply-models tool read this table for observed data.
    The tracked position is the ICRS pointing of the observation block.

    Parameters
    ----------
    path : str or Path
        DL1 file written by ctapipe-process from SST-1M raw data.
    telescope_locations : dict
        ``{tel_id: [lon_deg, lat_deg, height_m]}``.

    Returns
    -------
    list of int
        Telescopes whose pointing was written (empty without ICRS pointing).
    """
    blocks = read_table(path, OBSERVATION_BLOCK_TABLE)
    if len(blocks) != 1:
        raise ValueError(f"{path}: expected one observation block, found {len(blocks)}")
    frame = CoordinateFrameType(blocks["subarray_pointing_frame"][0])
    ra = blocks["subarray_pointing_lon"].quantity[0].to_value(u.deg)
    dec = blocks["subarray_pointing_lat"].quantity[0].to_value(u.deg)
    if frame != CoordinateFrameType.ICRS or not np.isfinite(ra):
        log.warning(
            "%s: no ICRS pointing in the observation block, no pointing table", path
        )
        return []

    triggers = read_table(path, TELESCOPE_TRIGGER_TABLE)
    written = []
    for tel_id in np.unique(triggers["tel_id"]):
        rows = triggers[triggers["tel_id"] == tel_id]
        lon, lat, height = telescope_locations[int(tel_id)]
        location = EarthLocation(lon=lon * u.deg, lat=lat * u.deg, height=height * u.m)
        tracking = TrackingPointing(ra, dec, location)
        alt, az = tracking.altaz_rad_many(tai_ns(rows["time"]))
        table = Table(
            {"time": rows["time"], "azimuth": az * u.rad, "altitude": alt * u.rad}
        )
        write_table(
            table, path, f"{DL0_TEL_POINTING_GROUP}/tel_{tel_id:03d}", overwrite=True
        )
        written.append(int(tel_id))
    return written
