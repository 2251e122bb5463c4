"""SST-1M monitoring tables in ctapipe DL1 files: pedestal windows, charge histograms, NSB."""

from typing import NamedTuple

import numpy as np
import tables
from astropy.table import Table
from ctapipe.io import read_table, write_table

from ..time import tai_time

__all__ = [
    "PEDESTAL_GROUP",
    "CHARGE_HISTOGRAM_GROUP",
    "EVENT_NSB_GROUP",
    "SUMMARY_TABLE",
    "EventNsbRecord",
    "EVENT_NSB_DTYPE",
    "write_nsb_monitoring",
    "read_pedestal_window_table",
    "read_pedestal_windows",
]

PEDESTAL_GROUP = "/dl1/monitoring/telescope/pedestal"
CHARGE_HISTOGRAM_GROUP = "/dl1/monitoring/telescope/pixel_charge_histogram"
EVENT_NSB_GROUP = "/dl1/event/telescope/nsb"
SUMMARY_TABLE = "/dl1/service/sst1m_processing"


class EventNsbRecord(NamedTuple):
    """NSB level and voltage drop of one telescope event: a row of ``EVENT_NSB_GROUP``."""

    obs_id: int
    event_id: int
    tel_id: int
    #: ``ctapipe.containers.EventType`` value
    event_type: int
    #: mean pedestal charge over the camera (p.e.), NaN without pedestal statistics
    nsb_level_pe: float
    #: factor R1 was divided by (1 without voltage-drop correction)
    voltage_drop: float


#: column types of the ``EVENT_NSB_GROUP`` tables, one per field of EventNsbRecord
EVENT_NSB_DTYPE = np.dtype(
    list(
        zip(
            EventNsbRecord._fields,
            (np.int64, np.int64, np.int16, np.int16, np.float64, np.float64),
            strict=True,
        )
    )
)


def write_nsb_monitoring(path, nsb_calibrator, summary_rows):
    """
    Write the NsbCalibrator's monitoring into a DL1 file.

    Parameters
    ----------
    path : str or Path
        DL1 file (appended to).
    nsb_calibrator : ctapipe_sst1m.calibration.nsb.NsbCalibrator
        Calibrator after the last event (``finish()`` called).
    summary_rows : list of dict
        One row per telescope for the processing summary table.
    """
    for tel_id, windows in nsb_calibrator.pedestal_windows.items():
        if windows:
            table = Table(
                {
                    "time_start": tai_time([w["start_ns"] for w in windows]),
                    "time_stop": tai_time([w["stop_ns"] for w in windows]),
                    "time_start_ns": np.array(
                        [w["start_ns"] for w in windows], dtype=np.int64
                    ),
                    "n_events": np.array([w["n_events"] for w in windows]),
                    "charge_mean": np.array([w["charge_mean"] for w in windows]),
                    "charge_median": np.array([w["charge_median"] for w in windows]),
                    "charge_std": np.array([w["charge_std"] for w in windows]),
                    "raw_std_mean": np.array([w["raw_std_mean"] for w in windows]),
                }
            )
            table.meta["charge_unit"] = "p.e."
            table.meta["raw_std_unit"] = "ADC"
            write_table(
                table, path, f"{PEDESTAL_GROUP}/tel_{tel_id:03d}", overwrite=True
            )

        histogram = nsb_calibrator.charge_histograms[tel_id]
        if histogram.any():
            edges = nsb_calibrator.charge_histogram_edges
            table = Table(
                {"charge_low": edges[:-1], "charge_high": edges[1:], "count": histogram}
            )
            table.meta["charge_unit"] = "p.e."
            write_table(
                table,
                path,
                f"{CHARGE_HISTOGRAM_GROUP}/tel_{tel_id:03d}",
                overwrite=True,
            )

    records = np.array(nsb_calibrator.event_records, dtype=EVENT_NSB_DTYPE)
    for tel_id in np.unique(records["tel_id"]):
        rows = Table(records[records["tel_id"] == tel_id])
        write_table(rows, path, f"{EVENT_NSB_GROUP}/tel_{tel_id:03d}", overwrite=True)

    if summary_rows:
        write_table(Table(rows=summary_rows), path, SUMMARY_TABLE, overwrite=True)


def read_pedestal_window_table(path, tel_id):
    """Pedestal time windows of one telescope as a list of dicts (empty if absent)."""
    try:
        table = read_table(path, f"{PEDESTAL_GROUP}/tel_{tel_id:03d}")
    except tables.NoSuchNodeError:
        return []
    return [
        {
            "start_ns": int(row["time_start_ns"]),
            "n_events": int(row["n_events"]),
            "charge_mean": np.asarray(row["charge_mean"]),
            "charge_median": np.asarray(row["charge_median"]),
            "charge_std": np.asarray(row["charge_std"]),
        }
        for row in table
    ]


def read_pedestal_windows(path, tel_ids, min_number_pedestals):
    """
    Pedestal time windows of a first sst1m-process pass, per telescope.

    Only windows with more than ``min_number_pedestals`` pedestal events are kept.
    """
    return {
        tel_id: [
            row
            for row in read_pedestal_window_table(path, tel_id)
            if row["n_events"] > min_number_pedestals
        ]
        for tel_id in tel_ids
    }
