"""
Stereo events of SST-1M telescopes 21 and 22 from their single-telescope DL1 files.

A telescope-21 run is matched with the telescope-22 runs overlapping it in time
(`overlapping_runs`, `match_run`, with a
`~ctapipe_sst1m.stereo.coincidence.CoincidenceMatcher`); `write_stereo_events` then
writes every matched pair as one event with both telescopes under the telescope-21
``(obs_id, event_id)``, with the pointing of both telescopes and the stereo geometry of
ctapipe's ``ShowerProcessor``, through ctapipe's ``DataWriter``.
"""

from collections import Counter
from typing import NamedTuple

import astropy.units as u
import numpy as np
from astropy.coordinates import EarthLocation
from ctapipe.containers import (
    EventIndexContainer,
    EventType,
    TelescopePointingContainer,
)
from ctapipe.instrument import SubarrayDescription
from ctapipe.io import DataWriter, HDF5EventSource, read_table
from ctapipe.reco import ShowerProcessor
from tqdm.auto import tqdm

from ..coordinates import TrackingPointing
from ..instrument import DATA_TEL_IDS
from ..time import tai_ns, tai_time
from .coincidence import MatchResult
from .tables import coincidence_metadata

__all__ = [
    "MergedRun",
    "NoCoincidence",
    "RunMatch",
    "StereoPair",
    "StereoPartner",
    "check_method",
    "match_run",
    "overlapping_runs",
    "tracking_pointing",
    "write_stereo_events",
]

TEL_1, TEL_2 = DATA_TEL_IDS


class NoCoincidence(Exception):
    """Nothing to match; not an error (e.g. runs that do not overlap in time)."""


class StereoPartner(NamedTuple):
    """The telescope-22 event matched with one telescope-21 event."""

    #: position of the telescope-22 run in the runs given to `match_run`
    file_number: int
    #: shower event number of the event in that run (file order, from 0)
    row: int
    #: times used for the matching (TAI ns) of the telescope-21 and 22 events
    time_1_ns: int
    time_2_ns: int
    #: ``time_2_ns - time_1_ns - offset_ns``
    delta_t_ns: int


class RunMatch(NamedTuple):
    """The matching of one telescope-21 run with the telescope-22 runs overlapping it."""

    result: MatchResult
    #: telescope-22 partner per shower event number of the telescope-21 run
    partners: dict[int, StereoPartner]
    #: shower events of the telescope-21 run and of all the telescope-22 runs
    n_events_1: int
    n_events_2: int


class StereoPair(NamedTuple):
    """A stereo event written: its ids and the original ids and times of the pair."""

    obs_id: int
    event_id: int
    obs_id_2: int
    event_id_2: int
    time_1_ns: int
    time_2_ns: int
    delta_t_ns: int


class MergedRun(NamedTuple):
    """What `write_stereo_events` wrote."""

    pairs: list[StereoPair]
    #: events written: stereo events and, with ``keep_mono``, single-telescope ones
    n_written: int


def _span(time_range_ns):
    if time_range_ns is None:
        return "(empty)"
    start, stop = (tai_time(t).utc.isot for t in time_range_ns)
    return f"[{start}, {stop}] UTC"


def overlapping_runs(index_1, indices_2, margin_ns):
    """
    The telescope-22 runs overlapping a telescope-21 run in time.

    Parameters
    ----------
    index_1 : ctapipe_sst1m.io.mono_dl1.MonoRunIndex
        The telescope-21 run.
    indices_2 : list of ctapipe_sst1m.io.mono_dl1.MonoRunIndex
        The telescope-22 runs to choose from.
    margin_ns : int
        Runs within this margin of the telescope-21 run (camera clocks) overlap it.

    Returns
    -------
    list of ctapipe_sst1m.io.mono_dl1.MonoRunIndex

    Raises
    ------
    NoCoincidence
        If the telescope-21 run has no shower events or no run overlaps it.
    """
    if index_1.time_range_ns is None:
        raise NoCoincidence("the telescope-21 file has no shower events")
    start, stop = index_1.time_range_ns
    chosen = [
        index
        for index in indices_2
        if index.time_range_ns is not None
        and index.time_range_ns[0] <= stop + margin_ns
        and index.time_range_ns[1] >= start - margin_ns
    ]
    if not chosen:
        ranges = ", ".join(f"{i.path.name} {_span(i.time_range_ns)}" for i in indices_2)
        raise NoCoincidence(
            f"no telescope-22 file overlaps {_span(index_1.time_range_ns)} (files: {ranges})"
        )
    return chosen


def check_method(method, indices):
    """
    Refuse a method the runs cannot be matched with.

    Parameters
    ----------
    method : str
        The `~ctapipe_sst1m.stereo.coincidence.CoincidenceMatcher` method.
    indices : list of ctapipe_sst1m.io.mono_dl1.MonoRunIndex
        The runs; runs without events are not checked.

    Raises
    ------
    ValueError
        Naming the first run without White Rabbit times (WhiteRabbitClosest) or with
        event ids that are not SWAT numbers (SWATEventIDs).
    """
    indices = [index for index in indices if len(index.event_id)]
    if method == "WhiteRabbitClosest":
        for index in indices:
            if not index.has_white_rabbit:
                raise ValueError(
                    f"{index.path}: no White Rabbit times (array and camera times are equal);"
                    " use --method SlidingWindow"
                )
    if method == "SWATEventIDs":
        for index in indices:
            if index.swat_event_ids is False:
                raise ValueError(
                    f"{index.path}: event ids are not SWAT numbers; use another --method"
                )


def match_run(matcher, index_1, runs_2):
    """
    Match the shower events of a telescope-21 run with those of telescope-22 runs.

    Parameters
    ----------
    matcher : ctapipe_sst1m.stereo.coincidence.CoincidenceMatcher
        Its ``method`` chooses the times: array times (White Rabbit when recorded) for
        SWATEventIDs and WhiteRabbitClosest, camera clocks for SlidingWindow.
    index_1 : ctapipe_sst1m.io.mono_dl1.MonoRunIndex
        The telescope-21 run.
    runs_2 : list of ctapipe_sst1m.io.mono_dl1.MonoRunIndex
        The telescope-22 runs (see `overlapping_runs`), matched as one.

    Returns
    -------
    RunMatch

    Raises
    ------
    ValueError
        If a run lacks what the method needs (White Rabbit times, SWAT event ids).
    """
    method = matcher.method
    check_method(method, [index_1, *runs_2])
    file_of = np.concatenate(
        [np.full(len(i.event_id), n) for n, i in enumerate(runs_2)]
    )
    row_of = np.concatenate([np.arange(len(i.event_id)) for i in runs_2])
    times_2 = np.concatenate(
        [i.time_ns if method != "SlidingWindow" else i.camera_time_ns for i in runs_2]
    )
    times_1 = index_1.time_ns if method != "SlidingWindow" else index_1.camera_time_ns
    ids_2 = np.concatenate([i.event_id for i in runs_2])
    result = matcher(times_1, times_2, event_ids_1=index_1.event_id, event_ids_2=ids_2)
    partners = {
        int(i1): StereoPartner(
            file_number=int(file_of[i2]),
            row=int(row_of[i2]),
            time_1_ns=int(times_1[i1]),
            time_2_ns=int(times_2[i2]),
            delta_t_ns=int(dt),
        )
        for i1, i2, dt in zip(result.index_1, result.index_2, result.delta_t_ns)
    }
    return RunMatch(result, partners, len(times_1), len(times_2))


def tracking_pointing(path, telescope_locations, log):
    """
    The pointing of each telescope from the ICRS pointing of a file's observation block.

    Parameters
    ----------
    path : Path
        A DL1 file of real data.
    telescope_locations : dict
        ``{tel_id: [lon_deg, lat_deg, height_m]}``.
    log : logging.Logger
        Told when the file has no pointing.

    Returns
    -------
    dict[int, ctapipe_sst1m.coordinates.TrackingPointing] or None
        None without a finite pointing.
    """
    block = read_table(path, "/configuration/observation/observation_block")
    ra = block["subarray_pointing_lon"].quantity[0].to_value(u.deg)
    dec = block["subarray_pointing_lat"].quantity[0].to_value(u.deg)
    if not (np.isfinite(ra) and np.isfinite(dec)):
        log.warning("%s: no pointing, stereo geometry cannot be reconstructed", path)
        return None
    return {
        tel_id: TrackingPointing(
            ra,
            dec,
            EarthLocation(lon=lon * u.deg, lat=lat * u.deg, height=height * u.m),
        )
        for tel_id, (lon, lat, height) in telescope_locations.items()
    }


def _shower_events(path):
    """The shower events of a single-telescope DL1 file, with their numbers (file order)."""
    with HDF5EventSource(path) as source:
        row = 0
        for event in source:
            if event.trigger.event_type != EventType.SUBARRAY:
                continue
            yield row, event
            row += 1


def _load_partner_events(runs_2, partners):
    """The telescope-22 events of the pairs, by ``(file_number, row)``."""
    wanted = {}
    for partner in partners.values():
        wanted.setdefault(partner.file_number, set()).add(partner.row)
    events = {}
    for file_number, rows in wanted.items():
        for row, event in _shower_events(runs_2[file_number].path):
            if row in rows:
                events[(file_number, row)] = event
    return events


def _add_telescope(event, other):
    """Put the telescope-22 image and trigger of ``other`` into ``event``."""
    event.dl1.tel[TEL_2] = other.dl1.tel[TEL_2]
    event.trigger.tel[TEL_2] = other.trigger.tel[TEL_2]
    event.trigger.tels_with_trigger = np.array([TEL_1, TEL_2], dtype=np.int16)


class _EventSink:
    """Pointing of every telescope of an event, stereo geometry, write; counts events."""

    def __init__(self, pointing, shower_processor, writer):
        self.pointing = pointing
        self.shower_processor = shower_processor
        self.writer = writer
        self.n_written = 0

    def __call__(self, event):
        if self.pointing is not None:
            for tel_id in event.trigger.tels_with_trigger:
                time = event.trigger.tel[tel_id].time
                alt, az = self.pointing[tel_id].altaz_rad(int(tai_ns(time)))
                event.monitoring.tel[tel_id].pointing = TelescopePointingContainer(
                    altitude=alt * u.rad, azimuth=az * u.rad
                )
            first = event.monitoring.tel[event.trigger.tels_with_trigger[0]].pointing
            event.monitoring.pointing.array_altitude = first.altitude
            event.monitoring.pointing.array_azimuth = first.azimuth
        self.shower_processor(event)
        self.writer(event)
        self.n_written += 1


def write_stereo_events(
    run,
    index_1,
    runs_2,
    output,
    *,
    parent,
    telescope_locations,
    keep_mono=False,
    write_images=True,
    mono_event_id_offset=10_000_000_000,
    progress_bar=True,
):
    """
    Write the stereo events of a matched run with ctapipe's ShowerProcessor and DataWriter.

    Parameters
    ----------
    run : RunMatch
        The matching of the run (`match_run`).
    index_1 : ctapipe_sst1m.io.mono_dl1.MonoRunIndex
        The telescope-21 run; its ``(obs_id, event_id)`` name the stereo events.
    runs_2 : list of ctapipe_sst1m.io.mono_dl1.MonoRunIndex
        The telescope-22 runs given to `match_run`.
    output : Path
        The DL1 file to write (overwritten).
    parent : ctapipe.core.Component
        Parent of the ShowerProcessor and DataWriter (their configuration) and the log.
    telescope_locations : dict
        ``{tel_id: [lon_deg, lat_deg, height_m]}``, for the pointing.
    keep_mono : bool
        Also write the unmatched events of both telescopes as single-telescope events.
    write_images : bool
        Copy the DL1 images (if the telescope-21 file has them).
    mono_event_id_offset : int
        Added to the event ids of unmatched telescope-22 events when the ids are not
        SWAT numbers, so that ids stay unique.
    progress_bar : bool
        Show a progress bar.

    Returns
    -------
    MergedRun
    """
    partners = run.partners
    tel2_events = _load_partner_events(runs_2, partners)
    pointing = tracking_pointing(index_1.path, telescope_locations, parent.log)
    shower_processor = ShowerProcessor(
        subarray=SubarrayDescription.from_hdf(index_1.path), parent=parent
    )
    counts = Counter()
    pairs = []
    with HDF5EventSource(index_1.path) as source:
        has_images = write_images and "DL1_IMAGES" in {
            d.name for d in source.datalevels
        }
        writer = DataWriter(
            event_source=source,
            output_path=output,
            parent=parent,
            overwrite=True,
            write_dl1_parameters=True,
            write_dl1_images=has_images,
            write_dl2=True,
        )
        writer.context_metadata = coincidence_metadata(run.result)
        with writer:
            sink = _EventSink(pointing, shower_processor, writer)
            row = 0
            for event in tqdm(
                source, desc=index_1.path.name, unit=" events", disable=not progress_bar
            ):
                if event.trigger.event_type != EventType.SUBARRAY:
                    continue
                partner = partners.get(row)
                row += 1
                if partner is None:
                    counts["tel 21 mono"] += 1
                    if not keep_mono:
                        continue
                else:
                    other = tel2_events[(partner.file_number, partner.row)]
                    _add_telescope(event, other)
                    pairs.append(
                        StereoPair(
                            obs_id=event.index.obs_id,
                            event_id=event.index.event_id,
                            obs_id_2=other.index.obs_id,
                            event_id_2=other.index.event_id,
                            time_1_ns=partner.time_1_ns,
                            time_2_ns=partner.time_2_ns,
                            delta_t_ns=partner.delta_t_ns,
                        )
                    )
                sink(event)
            if keep_mono:
                for n, index in enumerate(runs_2):
                    matched_rows = {
                        p.row for p in partners.values() if p.file_number == n
                    }
                    id_offset = 0 if index.swat_event_ids else mono_event_id_offset
                    for row, event in _shower_events(index.path):
                        if row not in matched_rows:
                            event.index = EventIndexContainer(
                                obs_id=index_1.obs_id,
                                event_id=event.index.event_id + id_offset,
                            )
                            sink(event)
    parent.log.info("written: %d stereo events, %s", len(pairs), dict(counts))
    return MergedRun(pairs, sink.n_written)
