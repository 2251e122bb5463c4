"""
Data quality of the runs of a night: one row per run and telescope.

The quantities of the reference pipeline's ``sst1mpipe_extract_dl1_distributions`` and
``analysis/data_quality.py`` (reference-pipeline-spec.md §13), read from what
sst1m-process and sst1m-stereo-match store in the DL1 files instead of parsed from logs
(the columns and their units are `COLUMNS`):

* elapsed time: the sum of the intervals shorter than `MAX_GAP_S` (10 s) between
  consecutive shower events; longer gaps are pauses of the data taking;
* live time: the elapsed time times the live fraction of the dead time per recorded
  event (`ctapipe_sst1m.dl3.dead_time.DeadTimeModel`, as for DL3); the rates are per
  second of live time, like those of the simulation, which has no dead time;
* zenith: 90° minus the mean altitude of the pointing of the shower events;
* integral rates: shower images (finite Hillas intensity) brighter than
  `RATE_THRESHOLDS_PE` per second, divided by cos(zenith) as the reference does (its
  ``MC_rate_ratio = 10^shift / cos z``): the rate of cosmic rays above a fixed
  intensity falls roughly as cos z, so the corrected rates of runs at different zenith
  angles compare (NaN without pointing);
* MC rate ratio: data over simulated proton rate per intensity bin
  (`ctapipe_sst1m.night.expected_rate`), both divided by the cosine of their zenith
  angle; in the bins whose centre lies in `MC_FIT_RANGE_PE`
  (400-4000 p.e.) with events in both, a straight line of the simulation's slope is
  fitted to log10(rate) against log10(intensity): its shift, the Poisson-weighted mean
  of log10(data / simulation), gives the ratio 10^shift (for a simulation at zenith 0,
  the reference's ``10^shift / cos z``); the fit fails with fewer than
  `MIN_FIT_BINS` such bins;
* NSB: the mean pedestal charge over the camera (p.e.) of the shower events, and the NSB
  rate (MHz) that sst1m-process gives it (``NsbCalibrator.mean_charge_to_nsb_rate``
  bins: with the defaults 80, 150 or 270 MHz);
* raised thresholds: the mean fraction of the pixels whose picture threshold the
  pedestal noise raised (the reference's ``tc_raised``; sst1m-process counts pixels per
  image, not events);
* surviving pedestals: the fraction of interleaved pedestal events with an image after
  cleaning (finite Hillas intensity); only when the DL1 keeps the pedestal events
  (``EventTypeFilter.allowed_types`` with ``SKY_PEDESTAL``; ``sst1m.yaml`` keeps the
  showers only), else NaN;
* stereo: the shower events of the telescope in stereo pairs of the coincidence tables,
  and the median time difference of the pairs (the clock offset between the
  telescopes in the times used for the matching).

The cuts that judge the rows are `ctapipe_sst1m.night.quality_cuts.QualityCuts`. The
module is long because it reads some thirty quantities from the DL1 files of a run and
declares the columns once (name, type, unit, description).
"""

from dataclasses import dataclass
from pathlib import Path

import astropy.units as u
import numpy as np
import tables
from astropy.table import Column, Table
from ctapipe.containers import EventType
from ctapipe.io.hdf5dataformat import (
    DL0_TEL_POINTING_GROUP,
    DL1_SUBARRAY_TRIGGER_TABLE,
    DL1_TEL_PARAMETERS_GROUP,
)

from ..dl3.dead_time import DeadTimeModel
from ..instrument import DATA_TEL_IDS
from ..io.atomic_output import AtomicOutput
from ..io.dl1_monitoring import EVENT_NSB_GROUP, SUMMARY_TABLE
from ..io.mono_dl1 import read_mono_index
from ..stereo.tables import COINCIDENCE_SUMMARY, COINCIDENCE_TABLE
from ..time import NS_PER_S, tai_ns, tai_time
from .quality_cuts import CUT_NAMES
from .time_series import read_optional_table

__all__ = [
    "COLUMNS",
    "MAX_GAP_S",
    "MC_FIT_RANGE_PE",
    "RATE_THRESHOLDS_PE",
    "elapsed_time_s",
    "quality_table",
    "run_quality",
    "write_quality_table",
]

#: the integral rates of the table: images brighter than these intensities (p.e.)
RATE_THRESHOLDS_PE = (100, 200, 400, 800, 1600)
#: intervals between consecutive events shorter than this count as observing time (s)
MAX_GAP_S = 10.0
#: intensity range (p.e.) of the comparison with the simulated proton rate
MC_FIT_RANGE_PE = (400.0, 4000.0)
#: fewest intensity bins with data and simulated events for that comparison
MIN_FIT_BINS = 3

#: the columns of the quality table (without ``good`` and ``failed_cuts``):
#: name, type, unit, description
COLUMNS = (
    ("night", str, None, "night of the run: YYYYMMDD of obs_id = YYYYMMDDNNNN"),
    ("target", str, None, "target of the TARGET keyword (sst1m-process summary)"),
    ("wobble", str, None, "wobble of the TARGET keyword"),
    ("obs_id", np.int64, None, "observation id"),
    ("run", np.int64, None, "run number"),
    ("tel_id", np.int64, None, "telescope"),
    ("n_files", np.int64, None, "DL1 files of the run and telescope"),
    ("time_start", "time", None, "first shower event (TAI)"),
    ("time_stop", "time", None, "last shower event (TAI)"),
    ("n_shower_events", np.int64, None, "shower events in the DL1 files"),
    ("n_pedestal_events", np.int64, None, "pedestal events recorded (summary)"),
    ("elapsed_time_s", float, u.s, "sum of the intervals < 10 s between events"),
    ("live_time_s", float, u.s, "elapsed time x live fraction (dead time)"),
    ("zenith_deg", float, u.deg, "mean zenith distance of the pointing"),
    *(
        (
            f"rate_above_{threshold}pe_hz",
            float,
            u.Hz,
            f"images above {threshold} p.e. per s of live time / cos(zenith)",
        )
        for threshold in RATE_THRESHOLDS_PE
    ),
    (
        "mc_expected_rate_hz",
        float,
        u.Hz,
        "simulated proton rate in 400-4000 p.e. / cos(its zenith)",
    ),
    ("mc_rate_ratio", float, None, "data / simulated protons in 400-4000 p.e."),
    ("mc_fit_success", bool, None, "the comparison with the simulation was made"),
    ("nsb_level_pe", float, None, "mean pedestal charge over the camera (p.e.)"),
    ("nsb_rate_mhz", float, u.MHz, "NSB rate of sst1m-process (its NSB-level bins)"),
    ("voltage_drop", float, None, "mean voltage-drop factor (1: no correction)"),
    (
        "raised_threshold_fraction",
        float,
        None,
        "mean fraction of pixels with raised picture threshold",
    ),
    (
        "surviving_pedestal_fraction",
        float,
        None,
        "pedestal events with an image after cleaning (NaN: none in the DL1)",
    ),
    ("n_stereo_events", np.int64, None, "shower events in stereo pairs"),
    ("stereo_fraction", float, None, "shower events in stereo pairs / shower events"),
    ("stereo_method", str, None, "matching method of the stereo DL1 files"),
    (
        "clock_offset_ns",
        float,
        u.ns,
        "median t(tel 22) - t(tel 21) of the stereo pairs",
    ),
)


def elapsed_time_s(times_ns, max_gap_s=MAX_GAP_S):
    """
    Observing time of a series of events: the sum of the intervals between consecutive
    events shorter than ``max_gap_s``.

    Parameters
    ----------
    times_ns : numpy.ndarray
        Event times (int64 ns), any order.
    max_gap_s : float
        Longer intervals are pauses of the data taking.

    Returns
    -------
    float
        Seconds (0 for fewer than two events).
    """
    intervals = np.diff(np.sort(np.asarray(times_ns, dtype=np.int64)))
    return float(intervals[intervals < max_gap_s * NS_PER_S].sum() / NS_PER_S)


@dataclass
class _TelescopeFile:
    """What one DL1 file holds of one telescope's run."""

    obs_id: int
    time_ns: np.ndarray
    #: Hillas intensity of the shower events (NaN: no image after cleaning)
    intensity: np.ndarray
    #: per pedestal event in the DL1: an image after cleaning
    pedestal_survived: np.ndarray
    altitude_deg: np.ndarray
    nsb_level_pe: np.ndarray
    voltage_drop: np.ndarray
    #: the row of the processing summary of sst1m-process, or None
    summary: dict | None


def _read_telescope_file(path, tel_id):
    index = read_mono_index(path, tel_id)
    telescope = f"tel_{tel_id:03d}"
    with tables.open_file(path) as h5file:
        parameters = read_optional_table(
            h5file, f"{DL1_TEL_PARAMETERS_GROUP}/{telescope}"
        )
        trigger = read_optional_table(h5file, DL1_SUBARRAY_TRIGGER_TABLE)
        pointing = read_optional_table(h5file, f"{DL0_TEL_POINTING_GROUP}/{telescope}")
        nsb = read_optional_table(h5file, f"{EVENT_NSB_GROUP}/{telescope}")
        summary = read_optional_table(h5file, SUMMARY_TABLE)
    intensity = np.full(len(index.event_id), np.nan)
    pedestal_survived = np.zeros(0, dtype=bool)
    if parameters is not None:
        event_id = np.asarray(parameters["event_id"])
        values = np.asarray(parameters["hillas_intensity"], dtype=float)
        # a row per telescope event, in the order of the trigger table
        intensity = values[np.isin(event_id, index.event_id)]
        if len(intensity) != len(index.event_id):
            raise ValueError(
                f"{path}: the parameters of telescope {tel_id} do not match its"
                " shower events"
            )
        pedestal = EventType.SKY_PEDESTAL.value
        pedestal_ids = np.asarray(trigger["event_id"])[
            trigger["event_type"] == pedestal
        ]
        pedestal_survived = np.isfinite(values[np.isin(event_id, pedestal_ids)])
    if nsb is not None:
        nsb = nsb[nsb["event_type"] == EventType.SUBARRAY.value]
    if summary is not None:
        summary = summary[summary["tel_id"] == tel_id]
    return _TelescopeFile(
        obs_id=index.obs_id,
        time_ns=index.time_ns,
        intensity=intensity,
        pedestal_survived=pedestal_survived,
        altitude_deg=np.zeros(0)
        if pointing is None
        else pointing["altitude"].quantity.to_value(u.deg),
        nsb_level_pe=np.zeros(0) if nsb is None else np.asarray(nsb["nsb_level_pe"]),
        voltage_drop=np.zeros(0) if nsb is None else np.asarray(nsb["voltage_drop"]),
        summary={k: summary[k][0] for k in summary.colnames}
        if summary is not None and len(summary)
        else None,
    )


def _mean(values):
    """Mean of the finite values, NaN if none."""
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    return float(values.mean()) if values.size else np.nan


def _weighted_mean(values, weights):
    """Weighted mean of the finite values with positive weight, NaN if none."""
    values = np.asarray(values, dtype=float)
    weights = np.asarray(weights, dtype=float)
    used = np.isfinite(values) & (weights > 0)
    if not used.any():
        return np.nan
    return float(np.average(values[used], weights=weights[used]))


def _night_and_run(obs_id):
    """The night (YYYYMMDD, "" if obs_id is not YYYYMMDDNNNN) and run of an obs_id."""
    date, run = divmod(obs_id, 10_000)
    return (str(date) if len(str(date)) == 8 else ""), run


def _stereo_pairs(stereo_paths, tel_id, obs_id):
    """
    Event ids of the telescope in the stereo pairs of its run, the time differences
    t(22) - t(21) of those pairs (ns) and the matching methods.
    """
    prefix = f"tel_{tel_id:03d}"
    obs_column = "obs_id" if tel_id == DATA_TEL_IDS[0] else f"{prefix}_obs_id"
    event_ids, differences, methods = [], [], set()
    for path in stereo_paths:
        with tables.open_file(path) as h5file:
            pairs = read_optional_table(h5file, COINCIDENCE_TABLE)
            summary = read_optional_table(h5file, COINCIDENCE_SUMMARY)
        if summary is not None:
            methods.update(str(m) for m in summary["method"])
        if pairs is None or f"{prefix}_event_id" not in pairs.colnames:
            continue
        pairs = pairs[pairs[obs_column] == obs_id]
        event_ids.append(np.asarray(pairs[f"{prefix}_event_id"]))
        differences.append(
            np.asarray(pairs["tel_022_time_ns"]) - np.asarray(pairs["tel_021_time_ns"])
        )
    if not event_ids:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), methods
    return np.concatenate(event_ids), np.concatenate(differences), methods


def _mc_comparison(intensity, live_time_s, zenith_deg, expected, tel_id):
    """``(expected rate in the fit range, rate ratio, fit made)`` of a run (see module)."""
    if expected is None or tel_id not in expected.rate_hz:
        return np.nan, np.nan, False
    edges = expected.intensity_edges_pe
    centres = np.sqrt(edges[:-1] * edges[1:])
    in_range = (centres >= MC_FIT_RANGE_PE[0]) & (centres <= MC_FIT_RANGE_PE[1])
    correction = np.cos(np.deg2rad(expected.zenith_deg))
    simulated = expected.rate_hz[tel_id] / correction
    simulated_error = expected.rate_error_hz[tel_id] / correction
    expected_hz = float(simulated[in_range].sum())
    counts = np.histogram(intensity[np.isfinite(intensity)], edges)[0]
    used = in_range & (counts > 0) & (simulated > 0)
    if live_time_s <= 0 or not np.isfinite(zenith_deg) or used.sum() < MIN_FIT_BINS:
        return expected_hz, np.nan, False
    rate = counts[used] / live_time_s / np.cos(np.deg2rad(zenith_deg))
    log_ratio = np.log10(rate / simulated[used])
    variance = 1 / counts[used] + (simulated_error[used] / simulated[used]) ** 2
    shift = np.average(log_ratio, weights=1 / variance)
    return expected_hz, float(10**shift), True


def run_quality(
    dl1_paths, tel_id, stereo_paths=(), expected_rate=None, dead_time_model=None
):
    """
    The data-quality row of one run of one telescope (see the module for each quantity).

    Parameters
    ----------
    dl1_paths : list of str or Path
        The telescope's DL1 files of the run (sst1m-process).
    tel_id : int
        The telescope (21 or 22).
    stereo_paths : list of str or Path
        Stereo DL1 files of the run (sst1m-stereo-match); none: stereo columns NaN.
    expected_rate : ctapipe_sst1m.night.expected_rate.ExpectedRate or None
        Simulated proton rate
        (`~ctapipe_sst1m.night.expected_rate.expected_proton_rate`); None: MC columns
        NaN.
    dead_time_model : ctapipe_sst1m.dl3.dead_time.DeadTimeModel or None
        For the live time; default: the dead time estimated from the events.

    Returns
    -------
    dict
        The columns of `COLUMNS` (times as astropy Time, None without events).

    Raises
    ------
    ValueError
        For a file that is no DL1 of this telescope, or files of several runs.
    """
    dl1_paths = [Path(p) for p in dl1_paths]
    files = [_read_telescope_file(path, tel_id) for path in dl1_paths]
    obs_ids = {f.obs_id for f in files if f.obs_id >= 0}
    if len(obs_ids) > 1:
        raise ValueError(
            f"DL1 files of several runs ({sorted(obs_ids)}) for one quality row:"
            f" {', '.join(map(str, dl1_paths))}"
        )
    obs_id = obs_ids.pop() if obs_ids else -1
    times = np.sort(np.concatenate([f.time_ns for f in files]))
    intensity = np.concatenate([f.intensity for f in files])
    summaries = [f.summary for f in files if f.summary is not None]

    def summed(key):
        return int(sum(s[key] for s in summaries))

    def weighted(key, weight_key):
        return _weighted_mean(
            [s[key] for s in summaries], [s[weight_key] for s in summaries]
        )

    elapsed = elapsed_time_s(times)
    model = dead_time_model or DeadTimeModel()
    n_recorded = (
        summed("n_shower_events")
        + summed("n_pedestal_events")
        + summed("n_unknown_events")
        if summaries
        else len(times)
    )
    tau = model.dead_time(times, f"run {obs_id}, telescope {tel_id}")
    live = elapsed * model.live_fraction(n_recorded, tau, elapsed)
    zenith = 90.0 - _mean(np.concatenate([f.altitude_deg for f in files]))
    per_live_time = np.nan
    if live > 0:
        per_live_time = 1 / live / np.cos(np.deg2rad(zenith))
    expected_hz, ratio, fitted = _mc_comparison(
        intensity, live, zenith, expected_rate, tel_id
    )
    pedestal_survived = np.concatenate([f.pedestal_survived for f in files])
    stereo_ids, differences, methods = _stereo_pairs(stereo_paths, tel_id, obs_id)
    n_stereo = len(np.unique(stereo_ids))
    targets = [s["target"] for s in summaries if s["target"]]
    wobbles = [s["wobble"] for s in summaries if s["wobble"]]
    night, run = _night_and_run(obs_id)
    return {
        "night": night,
        "target": str(targets[0]) if targets else "",
        "wobble": str(wobbles[0]) if wobbles else "",
        "obs_id": obs_id,
        "run": run,
        "tel_id": tel_id,
        "n_files": len(files),
        "time_start": tai_time(times[0]) if len(times) else None,
        "time_stop": tai_time(times[-1]) if len(times) else None,
        "n_shower_events": len(times),
        "n_pedestal_events": summed("n_pedestal_events")
        if summaries
        else len(pedestal_survived),
        "elapsed_time_s": elapsed,
        "live_time_s": live,
        "zenith_deg": zenith,
        **{
            f"rate_above_{threshold}pe_hz": np.count_nonzero(intensity > threshold)
            * per_live_time
            for threshold in RATE_THRESHOLDS_PE
        },
        "mc_expected_rate_hz": expected_hz,
        "mc_rate_ratio": ratio,
        "mc_fit_success": fitted,
        "nsb_level_pe": _mean(np.concatenate([f.nsb_level_pe for f in files])),
        "nsb_rate_mhz": weighted("nsb_rate_mhz", "n_pedestal_events"),
        "voltage_drop": _mean(np.concatenate([f.voltage_drop for f in files])),
        "raised_threshold_fraction": weighted(
            "mean_raised_threshold_fraction", "n_shower_events"
        ),
        "surviving_pedestal_fraction": _mean(pedestal_survived),
        "n_stereo_events": n_stereo,
        "stereo_fraction": n_stereo / len(times)
        if stereo_paths and len(times)
        else np.nan,
        "stereo_method": ",".join(sorted(methods)),
        "clock_offset_ns": float(np.median(differences))
        if len(differences)
        else np.nan,
    }


def _time_column(values, description):
    """A TAI Time column of Time scalars, masked where None."""
    missing = np.array([v is None for v in values], dtype=bool)
    time_ns = [0 if v is None else int(tai_ns(v)) for v in values]
    time = tai_time(np.array(time_ns, dtype=np.int64))
    if missing.any():
        time[missing] = np.ma.masked
    time.format = "isot"
    time.info.description = description
    return time


def quality_table(rows, cuts):
    """
    The quality table of a night: the rows sorted by obs_id and telescope, with units,
    and the judgement of the cuts.

    Parameters
    ----------
    rows : list of dict
        From `run_quality`.
    cuts : QualityCuts

    Returns
    -------
    astropy.table.Table
        The columns of `COLUMNS`, ``good`` (bool) and ``failed_cuts`` (the names of
        the failed cuts, comma-separated); the cut ranges in the metadata.
    """
    table = Table()
    for name, dtype, unit, description in COLUMNS:
        values = [row[name] for row in rows]
        if dtype == "time":
            table[name] = _time_column(values, description)
        else:
            array = np.array(values, dtype=dtype) if values else np.zeros(0, dtype)
            table[name] = Column(array, unit=unit, description=description)
    table.sort(["obs_id", "tel_id"])
    good, failed_cuts = cuts.flags(table)
    table["good"] = Column(good, description="every measured quantity within its cut")
    table["failed_cuts"] = Column(failed_cuts, description="the cuts failed")
    table.meta["cuts"] = {name: list(getattr(cuts, name)) for name in CUT_NAMES}
    table.meta["max_gap_s"] = MAX_GAP_S
    table.meta["mc_fit_range_pe"] = list(MC_FIT_RANGE_PE)
    return table


def write_quality_table(table, path, overwrite=True):
    """
    Write a quality table as ECSV, under its name only once complete.

    Parameters
    ----------
    table : astropy.table.Table
        From `quality_table`.
    path : str or Path
        The ECSV file.
    overwrite : bool
        Replace an existing file (the table of a night remade).
    """
    with AtomicOutput(path, overwrite=overwrite) as output:
        table.write(output.temporary, format="ascii.ecsv")
        output.commit()
