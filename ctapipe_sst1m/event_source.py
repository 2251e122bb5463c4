"""
EventSource for SST-1M DigiCam raw data (``.fits.fz``, DataModel.CameraEvent).

This module is long because an EventSource carries the run's state through all its
duties — finding the files of a run, checking their headers, decoding and merging
events in time order, time scales, event types, pointing and the warm-up of the NSB
calibration — which only make sense together; the calibration itself lives in
``calibration/``, the instrument in ``instrument.py``.
"""

import heapq
import itertools
import re
from collections import Counter
from datetime import UTC, timedelta
from functools import lru_cache
from pathlib import Path

import astropy.units as u
import numpy as np
from astropy.coordinates import EarthLocation
from astropy.time import Time
from ctapipe.containers import (
    CoordinateFrameType,
    EventIndexContainer,
    EventType,
    ObservationBlockContainer,
    ObservingMode,
    PointingMode,
    R0CameraContainer,
    R1CameraContainer,
    SchedulingBlockContainer,
    SchedulingBlockType,
)
from ctapipe.core.telescope_component import TelescopeParameterLookup
from ctapipe.core.traits import (
    Bool,
    CaselessStrEnum,
    Float,
    Int,
    List,
    TelescopeParameter,
)
from ctapipe.core.traits import (
    Path as PathTrait,
)
from ctapipe.io import DataLevel, EventSource
from traitlets import TraitError, validate

from .calibration.nsb import NsbCalibrator
from .calibration.r0_r1 import SST1MR0Corrections, detect_baseline_divisor
from .coordinates import TrackingPointing
from .instrument import (
    DATA_TEL_IDS,
    N_PIXELS,
    N_SAMPLES,
    SHOWER_TRIGGER_BITS,
    TRIGGER_INTERNAL,
    camera_number,
    sst1m_subarray,
    telescope_locations_trait,
)
from .io.containers import SST1MArrayEventContainer
from .io.target import Target, parse_target
from .io.zfits_check import ZFitsError, check_events_table, read_events_table
from .time import NS_PER_S, tai_time
from .version import __version__ as __version__  # for ctapipe-info --plugins

__all__ = ["SST1MEventSource", "obs_id_from_file_name", "camera_event_type_to_ctapipe"]

#: columns every DigiCam Events table has
REQUIRED_COLUMNS = {
    "telescopeID",
    "eventNumber",
    "hiGain_waveforms_samples",
    "hiGain_waveforms_pixelsIndices",
    "hiGain_waveforms_baselines",
    "local_time_sec",
    "local_time_nanosec",
    "event_type",
}

#: events calibrated before their times and pointing are set in one go (astropy
#: objects per chunk, not per event); small, as they are held in memory
CHUNK_EVENTS = 16

_RUN_NAME = re.compile(
    r"SST1M(?P<camera>[12])_(?P<date>\d{8})_(?P<run>\d{4})(?:_(?P<subrun>\d{3}))?"
)


def camera_event_type_to_ctapipe(camera_event_type):
    """
    Map the DigiCam trigger-type bit field to a ctapipe EventType.

    * exactly ``8`` (internal trigger only): interleaved pedestal, ``SKY_PEDESTAL``;
    * any shower-trigger bit (1 patch7, 2 patch19, 4 muon), alone or with other
      bits: ``SUBARRAY``;
    * anything else (0, external master 0x10, continuous 0x80 alone...): ``UNKNOWN``.
    """
    if camera_event_type == TRIGGER_INTERNAL:
        return EventType.SKY_PEDESTAL
    if camera_event_type & SHOWER_TRIGGER_BITS:
        return EventType.SUBARRAY
    return EventType.UNKNOWN


def obs_id_from_file_name(path):
    """
    ``obs_id = YYYYMMDDNNNN`` from a file named ``SST1M{1,2}_YYYYMMDD_NNNN[_SSS]``.

    Returns
    -------
    int or None
        None if the name does not follow the convention.
    """
    match = _RUN_NAME.search(Path(path).name)
    if match is None:
        return None
    return int(match["date"]) * 10_000 + int(match["run"])


class SST1MEventSource(EventSource):
    """
    Read SST-1M DigiCam raw data and calibrate it to R1 (photo-electrons).

    Reads one ``.fits.fz`` file or a whole run made of several files (events
    merged in time order), fills R0 (raw ADC) and R1 (p.e. per sample) with the
    fields ctapipe needs, trigger times on the TAI scale with ns precision,
    event types, pointing from the ``TARGET`` keyword or the configuration, and
    the observation and scheduling blocks.
    """

    pointing_ra_deg = Float(
        default_value=None,
        allow_none=True,
        min=0.0,
        max=360.0,
        help="Pointing right ascension (ICRS, deg). Overrides the TARGET header keyword.",
    ).tag(config=True)

    pointing_dec_deg = Float(
        default_value=None,
        allow_none=True,
        min=-90.0,
        max=90.0,
        help="Pointing declination (ICRS, deg). Overrides the TARGET header keyword.",
    ).tag(config=True)

    calibration_path = TelescopeParameter(
        trait=PathTrait(exists=True, directory_ok=False, allow_none=True),
        default_value=[("type", "*", None)],
        help=(
            "Dark-run calibration file (dc to p.e. per pixel) per telescope; a single"
            " path applies to every telescope. None: the default dc to p.e. of"
            " SST1MR0Corrections."
        ),
    ).tag(config=True)

    input_urls = List(
        PathTrait(exists=True, directory_ok=False),
        default_value=[],
        help="Further files of the same run as input_url (subruns); events are merged in time order.",
    ).tag(config=True)

    all_subruns = Bool(
        default_value=False,
        help=(
            "Also read every file in the directory of input_url whose name starts with"
            " the same SST1M{1,2}_YYYYMMDD_NNNN run prefix."
        ),
    ).tag(config=True)

    obs_id = Int(
        default_value=None,
        allow_none=True,
        min=0,
        help=(
            "obs_id to use instead of YYYYMMDDNNNN from the file name. Files whose name"
            " does not follow SST1M{1,2}_YYYYMMDD_NNNN get YYYYMMDD0000 with the date"
            " of the night (UTC date of the first event minus 12 h)."
        ),
    ).tag(config=True)

    camera_clock_scale = CaselessStrEnum(
        ["auto", "tai", "utc"],
        default_value="auto",
        help=(
            "Time scale of the camera clock (local_time_sec/nanosec, seconds since"
            " 1970-01-01). auto: compare the first event with the file creation time"
            " (DATE keyword, UTC) and take the scale that agrees; tai if DATE is absent."
        ),
    ).tag(config=True)

    verify_checksums = Bool(
        default_value=True,
        help=(
            "Compare each file with its DATASUM and CHECKSUM keywords before reading it"
            " (a corrupt file is refused). False, or a file without DATASUM: decode the"
            " file once in a separate process instead, so that corrupt data that crash"
            " protozfits cannot crash this one (slower, and damage that decodes"
            " passes unseen)."
        ),
    ).tag(config=True)

    telescope_locations = telescope_locations_trait()

    @validate("pointing_ra_deg", "pointing_dec_deg")
    def _check_finite(self, proposal):
        value = proposal["value"]
        if value is not None and not np.isfinite(value):
            raise TraitError(
                f"SST1MEventSource.{proposal['trait'].name} must be a finite angle"
                f" in degrees, got {value}"
            )
        return value

    classes = [SST1MR0Corrections, NsbCalibrator]

    def __init__(self, input_url=None, config=None, parent=None, **kwargs):
        super().__init__(input_url=input_url, config=config, parent=parent, **kwargs)
        self.file_paths = self._collect_files()
        self.headers = {}
        for path in self.file_paths:
            table = read_events_table(path)
            if table is None or not self._header_is_digicam(table.header):
                raise ZFitsError(f"{path}: not an SST-1M DigiCam raw data file")
            if table.header.get("ZNAXIS2", 0) == 0:
                raise ZFitsError(f"{path}: the Events table has no events")
            # before protozfits reads the file: corrupt data can crash its decoder
            check_events_table(path, table, self.verify_checksums)
            self.headers[path] = table.header

        self._subarray = sst1m_subarray(DATA_TEL_IDS)
        if self.allowed_tels:
            self._subarray = self._subarray.select_subarray(sorted(self.allowed_tels))
        calibration_paths = TelescopeParameterLookup(self.calibration_path)
        calibration_paths.attach_subarray(self._subarray)
        self.r0_r1 = SST1MR0Corrections(
            subarray=self._subarray, calibration_path=calibration_paths, parent=self
        )
        self.nsb_calibrator = NsbCalibrator(subarray=self._subarray, parent=self)

        first_header = self.headers[self.file_paths[0]]
        self.target = self._find_target(first_header)
        self.event_counts = Counter()
        self._first_event = _peek_first_event_of(self.file_paths[0])
        #: event ids are SWAT array event numbers (decided on the first event)
        self.uses_swat = self._first_event["array_event_number"] > 0
        self.camera_clock_is_tai = self._decide_clock_scale(first_header)
        self._obs_id = self._decide_obs_id()
        self._observation_blocks, self._scheduling_blocks = self._make_blocks()
        self._pointing = {}

    # ------------------------------------------------------------------ files
    def _collect_files(self):
        paths = [Path(self.input_url)] + [Path(p) for p in self.input_urls]
        if self.all_subruns:
            match = _RUN_NAME.search(paths[0].name)
            if match is None:
                raise ValueError(
                    f"{paths[0]}: all_subruns needs a SST1M{{1,2}}_YYYYMMDD_NNNN file name"
                )
            prefix = paths[0].name[: match.end("run")]
            paths += sorted(paths[0].parent.glob(prefix + "*.fits.fz"))
        unique = []
        for path in paths:
            if path.resolve() not in {p.resolve() for p in unique}:
                unique.append(path)
        return unique

    @staticmethod
    def _header_is_digicam(header):
        columns = {
            header.get(f"TTYPE{i}") for i in range(1, header.get("TFIELDS", 0) + 1)
        }
        return (
            header.get("XTENSION") == "BINTABLE"
            and header.get("ZTABLE") is True
            and header.get("PBFHEAD") == "DataModel.CameraEvent"
            and REQUIRED_COLUMNS <= columns
        )

    @staticmethod
    def is_compatible(file_path):
        """
        True for a FITS file whose Events table holds DigiCam CameraEvents.

        Decided from the header only, never from the file name. An empty
        ``.fits.fz`` file raises, so that ctapipe reports the problem.
        """
        path = Path(file_path)
        if (
            path.name.endswith(".fits.fz")
            and path.is_file()
            and path.stat().st_size == 0
        ):
            raise ValueError(
                f"{path}: empty file (0 bytes), not an SST-1M raw data file"
            )
        try:
            table = read_events_table(path)
        except (OSError, ValueError):
            return False
        return table is not None and SST1MEventSource._header_is_digicam(table.header)

    # ------------------------------------------------------------ properties
    @property
    def subarray(self):
        return self._subarray

    @property
    def is_simulation(self):
        return False

    @property
    def datalevels(self):
        return (DataLevel.R0, DataLevel.R1)

    @property
    def observation_blocks(self):
        return self._observation_blocks

    @property
    def scheduling_blocks(self):
        return self._scheduling_blocks

    # ------------------------------------------------------------- run setup
    def _find_target(self, header):
        """Pointing target from the configuration or the TARGET keyword."""
        path = self.file_paths[0]
        configured = (self.pointing_ra_deg, self.pointing_dec_deg)
        if (configured[0] is None) != (configured[1] is None):
            raise ValueError(
                "Give both SST1MEventSource.pointing_ra_deg and pointing_dec_deg"
            )

        keyword_target = None
        if "TARGET" in header:
            try:
                keyword_target = parse_target(header["TARGET"])
            except ValueError as err:  # includes NoPointingTarget (dark, transition)
                self.log.warning("%s: %s", path, err)

        if configured[0] is not None:
            name = keyword_target.name if keyword_target else "UNKNOWN"
            wobble = keyword_target.wobble if keyword_target else "UNDEF"
            return Target(
                name=name, wobble=wobble, ra_deg=configured[0], dec_deg=configured[1]
            )
        if keyword_target is None:
            self.log.warning(
                "%s: no usable pointing (no TARGET keyword and no"
                " SST1MEventSource.pointing_ra_deg/dec_deg): events get no pointing",
                path,
            )
        return keyword_target

    def _decide_clock_scale(self, header):
        if self.camera_clock_scale != "auto":
            return self.camera_clock_scale == "tai"
        if "DATE" not in header:
            self.log.info("No DATE keyword: camera clock taken as TAI")
            return True
        created = Time(header["DATE"], scale="utc")
        first = self._first_event
        as_utc = Time(
            first["clock_sec"], first["clock_nsec"] * 1e-9, format="unix", scale="utc"
        )
        as_tai = Time(first["clock_sec"], first["clock_nsec"] * 1e-9, format="unix_tai")
        is_tai = abs((created - as_tai).sec) < abs((created - as_utc).sec)
        self.log.info(
            "Camera clock scale from DATE=%s: %s",
            header["DATE"],
            "TAI" if is_tai else "UTC",
        )
        return is_tai

    def _clock_to_tai_ns(self, seconds, nanoseconds):
        """Camera clock reading to integer TAI ns since 1970-01-01T00:00:00 TAI."""
        time_ns = seconds * NS_PER_S + nanoseconds
        if self.camera_clock_is_tai:
            return time_ns
        return time_ns + _tai_minus_utc_ns(seconds // 86_400)

    def _decide_obs_id(self):
        if self.obs_id is not None:
            return self.obs_id
        obs_id = obs_id_from_file_name(self.file_paths[0])
        if obs_id is not None:
            return obs_id
        first = self._first_event
        tai_ns = self._clock_to_tai_ns(first["clock_sec"], first["clock_nsec"])
        utc = tai_time(tai_ns).utc
        night = utc.to_datetime(timezone=UTC) - timedelta(hours=12)
        obs_id = int(night.strftime("%Y%m%d")) * 10_000
        self.log.warning(
            "%s: file name does not follow SST1M{1,2}_YYYYMMDD_NNNN, using obs_id=%d",
            self.file_paths[0],
            obs_id,
        )
        return obs_id

    def _make_blocks(self):
        tracking = self.target is not None
        sb = SchedulingBlockContainer(
            sb_id=np.uint64(self._obs_id),
            sb_type=SchedulingBlockType.OBSERVATION,
            producer_id="SST-1M",
            observing_mode=ObservingMode.WOBBLE if tracking else ObservingMode.UNKNOWN,
            pointing_mode=PointingMode.TRACK if tracking else PointingMode.UNKNOWN,
        )
        first = self._first_event
        tai_ns = self._clock_to_tai_ns(first["clock_sec"], first["clock_nsec"])
        ob = ObservationBlockContainer(
            obs_id=np.uint64(self._obs_id),
            sb_id=np.uint64(self._obs_id),
            producer_id="SST-1M",
            actual_start_time=tai_time(tai_ns),
        )
        if tracking:
            ob.subarray_pointing_lon = self.target.ra_deg * u.deg
            ob.subarray_pointing_lat = self.target.dec_deg * u.deg
            ob.subarray_pointing_frame = CoordinateFrameType.ICRS
        return {self._obs_id: ob}, {self._obs_id: sb}

    def _tracking(self, tel_id):
        if tel_id not in self._pointing:
            lon, lat, height = self.telescope_locations[tel_id]
            location = EarthLocation(
                lon=lon * u.deg, lat=lat * u.deg, height=height * u.m
            )
            self._pointing[tel_id] = TrackingPointing(
                self.target.ra_deg, self.target.dec_deg, location
            )
        return self._pointing[tel_id]

    # ------------------------------------------------------------- reading
    def _file_events(self, path):
        from protozfits import File

        try:
            with File(str(path)) as f:
                for event in f.Events:
                    yield _raw_fields(event)
        except (RuntimeError, ValueError, OSError) as err:
            raise OSError(f"{path}: corrupt DigiCam data ({err})") from err

    def _raw_event_stream(self):
        """
        Raw events of all files of the run, in time order.

        A file is opened only when the merged stream reaches the time of its first
        event (each open file holds a decoded tile of tens of MB): the files of a
        camera follow each other in time, so one or two are open at once however many
        a run has.
        """
        if len(self.file_paths) == 1:
            return self._file_events(self.file_paths[0])
        return _merge_in_time_order(
            [
                (_event_key(self._first_event_of(path)), path)
                for path in self.file_paths
            ],
            self._file_events,
        )

    def _first_event_of(self, path):
        """The raw fields of the first event of a file of the run."""
        if path == self.file_paths[0]:
            return self._first_event
        return _peek_first_event_of(path)

    def _generator(self):
        """
        Calibrated events in time order, with trigger times and pointing.

        Events are calibrated one by one and get their astropy times and pointing
        per chunk of `CHUNK_EVENTS` (integer TAI ns until then); at most
        ``max_events`` are read and calibrated.
        """
        events = self._calibrated_events()
        if self.max_events:
            events = itertools.islice(events, self.max_events)
        for chunk in _in_chunks(events, CHUNK_EVENTS):
            self._set_times_and_pointing(chunk)
            # handed over one by one, keeping no reference to those handed over
            chunk.reverse()
            while chunk:
                yield chunk.pop()

    def _calibrated_events(self):
        """
        Calibrated events in time order, without times and pointing.

        The first events are held back (at most ``NsbCalibrator.max_warm_up_events``)
        until ``NsbCalibrator.warm_up_pedestals`` interleaved pedestals have been
        read, so that they are calibrated with pedestal statistics too.
        """
        nsb = self.nsb_calibrator
        decoder = None
        warm_up, n_warm_up_pedestals = [], 0
        count = 0
        for raw in self._raw_event_stream():
            tel_id = _data_tel_id(raw["telescope_id"], self.file_paths[0])
            if tel_id not in self._subarray.tel:
                self.event_counts["not in allowed_tels"] += 1
                continue
            if decoder is None:
                decoder = self._make_decoder(tel_id)
            if warm_up is not None:
                warm_up.append((tel_id, _copy_arrays(raw)))
                n_warm_up_pedestals += raw["camera_event_type"] == TRIGGER_INTERNAL
                if (
                    n_warm_up_pedestals >= nsb.warm_up_pedestals
                    or len(warm_up) >= nsb.max_warm_up_events
                ):
                    for event in self._calibrate_warm_up(warm_up, decoder):
                        event.count, count = count, count + 1
                        yield event
                    warm_up = None
                continue
            event = self._calibrated_event(raw, tel_id, decoder)
            event.count, count = count, count + 1
            yield event
        if warm_up:
            for event in self._calibrate_warm_up(warm_up, decoder):
                event.count, count = count, count + 1
                yield event

    def _make_decoder(self, tel_id):
        first = self._first_event
        first_time = tai_time(
            self._clock_to_tai_ns(first["clock_sec"], first["clock_nsec"])
        )
        permutation = self.nsb_calibrator.module_permutation(tel_id, first_time)
        return _DigiCamDecoder(self.file_paths[0], first, permutation)

    def _calibrate_warm_up(self, warm_up, decoder):
        """Calibrate the held-back events: pedestals first, then all in time order."""
        nsb = self.nsb_calibrator
        pedestal_indices = [
            i
            for i, (_, raw) in enumerate(warm_up)
            if raw["camera_event_type"] == TRIGGER_INTERNAL
        ]
        for i in pedestal_indices:
            tel_id, raw = warm_up[i]
            nsb.add_pedestal_waveform(tel_id, decoder.decode(raw)[0])
        pedestals = {
            i: self._calibrated_event(
                *warm_up[i][::-1], decoder, add_pedestal_waveform=False
            )
            for i in pedestal_indices
        }
        self.log.info(
            "warm-up: %d events held back, %d pedestal events",
            len(warm_up),
            len(pedestals),
        )
        for i, (tel_id, raw) in enumerate(warm_up):
            yield (
                pedestals[i]
                if i in pedestals
                else self._calibrated_event(raw, tel_id, decoder)
            )

    def _calibrated_event(self, raw, tel_id, decoder, add_pedestal_waveform=True):
        """One event through R0 -> R1 and the NSB calibrator."""
        nsb = self.nsb_calibrator
        event, waveform, baseline_adc = self._make_event(raw, tel_id, decoder)
        is_pedestal = event.trigger.event_type == EventType.SKY_PEDESTAL
        if is_pedestal and add_pedestal_waveform:
            nsb.add_pedestal_waveform(tel_id, waveform)
        nsb.fill_monitoring(event, tel_id, waveform, baseline_adc)
        if is_pedestal:
            nsb.add_pedestal_image(event, tel_id, event.sst1m[tel_id].camera_clock_ns)
        self.event_counts[event.trigger.event_type.name] += 1
        return event

    def _make_event(self, raw, tel_id, decoder):
        event_id = raw["array_event_number"] or raw["event_number"]
        if self.uses_swat and not raw["array_event_number"]:
            self.event_counts["without SWAT number"] += 1
        event = SST1MArrayEventContainer(
            index=EventIndexContainer(obs_id=self._obs_id, event_id=event_id),
        )
        event_type = camera_event_type_to_ctapipe(raw["camera_event_type"])
        camera_ns = self._clock_to_tai_ns(raw["clock_sec"], raw["clock_nsec"])
        wr_ns = raw["wr_ns"]
        event.trigger.event_type = event_type
        event.trigger.tels_with_trigger = np.array([tel_id], dtype=np.int16)
        event.trigger.tel[tel_id].event_type = event_type

        waveform, baseline_adc, present = decoder.decode(raw)
        event.r0.tel[tel_id] = R0CameraContainer(waveform=waveform[np.newaxis])
        voltage_drop = self.nsb_calibrator.voltage_drop(tel_id)
        r1_waveform, pixel_status, outliers = self.r0_r1(
            tel_id, waveform, baseline_adc, present, voltage_drop
        )
        event.r1.tel[tel_id] = R1CameraContainer(
            waveform=r1_waveform,
            pixel_status=pixel_status,
            selected_gain_channel=np.zeros(N_PIXELS, dtype=np.int8),
            event_type=event_type,
        )
        event.monitoring.tel[tel_id].camera.coefficients.outlier_mask = outliers[
            np.newaxis
        ]

        sst1m = event.sst1m[tel_id]
        sst1m.camera_event_number = raw["event_number"]
        sst1m.array_event_number = raw["array_event_number"] or -1
        sst1m.camera_event_type = raw["camera_event_type"]
        sst1m.camera_clock_ns = camera_ns
        sst1m.white_rabbit_time_ns = wr_ns if wr_ns > 0 else -1
        sst1m.baseline_adc = baseline_adc
        sst1m.voltage_drop = float(np.mean(voltage_drop))
        return event, waveform, baseline_adc

    def _set_times_and_pointing(self, events):
        """
        Trigger and camera times and the pointing of a chunk of calibrated events.

        The times are those of ``event.sst1m`` (integer TAI ns): the array trigger
        time is the White Rabbit time if there is one, else the camera time, which
        is the telescope trigger, R1 and (pedestals calibrated in the source) DL0
        time. The pointing is the Alt/Az of the tracked target at the camera time.
        """
        tel_ids = [int(event.trigger.tels_with_trigger[0]) for event in events]
        camera_ns = np.array(
            [e.sst1m[t].camera_clock_ns for e, t in zip(events, tel_ids)], np.int64
        )
        wr_ns = np.array(
            [e.sst1m[t].white_rabbit_time_ns for e, t in zip(events, tel_ids)],
            np.int64,
        )
        has_wr = wr_ns > 0
        # one Time array for the chunk; indexing it is cheaper than a Time per value
        times = tai_time(np.concatenate([camera_ns, wr_ns[has_wr]]))
        wr_index = len(events) + np.cumsum(has_wr) - 1
        pointing = self._chunk_pointing(tel_ids, camera_ns)
        for i, (event, tel_id) in enumerate(zip(events, tel_ids)):
            camera_time = times[i]
            event.trigger.time = times[wr_index[i]] if has_wr[i] else camera_time
            event.trigger.tel[tel_id].time = camera_time
            event.r1.tel[tel_id].event_time = camera_time
            if tel_id in event.dl0.tel:
                event.dl0.tel[tel_id].event_time = camera_time
            if pointing is not None:
                alt, az, ra, dec = pointing
                tel_pointing = event.monitoring.tel[tel_id].pointing
                tel_pointing.altitude = alt[i]
                tel_pointing.azimuth = az[i]
                array_pointing = event.monitoring.pointing
                array_pointing.array_altitude = alt[i]
                array_pointing.array_azimuth = az[i]
                array_pointing.array_ra = ra[i]
                array_pointing.array_dec = dec[i]

    def _chunk_pointing(self, tel_ids, camera_ns):
        """Alt, az, RA and Dec (Quantity arrays, rad) of a chunk, or None without target."""
        if self.target is None:
            return None
        tel_ids = np.asarray(tel_ids)
        alt = np.empty(len(camera_ns))
        az = np.empty(len(camera_ns))
        for tel_id in np.unique(tel_ids):
            mask = tel_ids == tel_id
            alt[mask], az[mask] = self._tracking(tel_id).altaz_rad_sequence(
                camera_ns[mask]
            )
        n = len(camera_ns)
        ra = np.full(n, np.deg2rad(self.target.ra_deg))
        dec = np.full(n, np.deg2rad(self.target.dec_deg))
        return alt * u.rad, az * u.rad, ra * u.rad, dec * u.rad

    def __len__(self):
        """Camera events in the files (at most ``max_events``): the total of progress bars."""
        n_events = sum(header["ZNAXIS2"] for header in self.headers.values())
        return min(n_events, self.max_events) if self.max_events else n_events

    def __exit__(self, exc_type, exc_value, traceback):
        self.close()

    def close(self):
        """Report how many events of each kind were read."""
        if self.event_counts:
            summary = ", ".join(
                f"{n} {kind}" for kind, n in sorted(self.event_counts.items())
            )
            self.log.info("%s: read %s", self.file_paths[0].name, summary)
            if not self.event_counts["SUBARRAY"]:
                self.log.warning(
                    "%s: no shower events, read only %s",
                    self.file_paths[0],
                    summary,
                )
        super().close()


@lru_cache
def _tai_minus_utc_ns(unix_day):
    """TAI - UTC (leap seconds) in ns on a day given as days since 1970-01-01."""
    t = Time(unix_day * 86_400, format="unix", scale="utc")
    return round(t.tai.unix_tai - t.unix) * NS_PER_S


def _in_chunks(events, size):
    """
    Lists of up to ``size`` consecutive events.

    If reading fails, the events read before the failure come first, then the error.
    """
    chunk = []
    try:
        for event in events:
            chunk.append(event)
            if len(chunk) == size:
                yield chunk
                chunk = []
    except Exception:
        if chunk:
            yield chunk
        raise
    if chunk:
        yield chunk


def _copy_arrays(raw):
    """A raw event whose arrays do not share memory with the reader."""
    return {k: v.copy() if isinstance(v, np.ndarray) else v for k, v in raw.items()}


def _data_tel_id(camera_telescope_id, path):
    """Telescope id of real data: 21/22, the 2017-2018 cameras reporting 1/2."""
    try:
        return DATA_TEL_IDS[camera_number(camera_telescope_id) - 1]
    except ValueError:
        raise ValueError(
            f"{path}: unknown SST-1M telescopeID {camera_telescope_id}"
        ) from None


def _peek_first_event_of(path):
    """The raw fields of the first event of a file (the file is closed again)."""
    from protozfits import File

    try:
        with File(str(path)) as f:
            for event in f.Events:
                return _copy_arrays(_raw_fields(event))
    except (RuntimeError, ValueError, OSError) as err:
        raise ZFitsError(f"{path}: corrupt DigiCam data ({err})") from err
    raise ZFitsError(f"{path}: the Events table has no events")


def _event_key(raw):
    """Sort key of a raw event: its camera clock."""
    return raw["clock_sec"], raw["clock_nsec"]


def _merge_in_time_order(first_keys_and_paths, open_events):
    """
    The events of several files in the order of `_event_key`, opening a file only
    when the merge reaches the key of its first event.

    Parameters
    ----------
    first_keys_and_paths : list of (key, path)
        The key of the first event of each file, and the file.
    open_events : callable
        ``open_events(path)`` iterates over the raw events of a file.

    Yields
    ------
    dict
        Raw events; equal keys in the order of the files in the list.
    """
    pending = sorted(
        (key, index, path) for index, (key, path) in enumerate(first_keys_and_paths)
    )
    pending.reverse()  # pop() takes the earliest
    heap = []

    def push_next(index, events):
        event = next(events, None)
        if event is not None:
            heapq.heappush(heap, (_event_key(event), index, event, events))

    while heap or pending:
        while pending and (not heap or pending[-1][:2] <= heap[0][:2]):
            _, index, path = pending.pop()
            push_next(index, iter(open_events(path)))
        _, index, event, events = heapq.heappop(heap)
        yield event
        push_next(index, events)


def _raw_fields(event):
    """The fields of a protozfits CameraEvent that the source uses, as plain values."""
    waveforms = event.hiGain.waveforms
    trig = event.trig
    wr_ns = 0
    if trig is not None and trig.timeSec:
        wr_ns = int(trig.timeSec) * NS_PER_S + int(trig.timeNanoSec)
    return {
        "telescope_id": int(event.telescopeID),
        "event_number": int(event.eventNumber),
        "array_event_number": int(event.arrayEvtNum or 0),
        "camera_event_type": int(event.event_type or 0),
        "clock_sec": int(event.local_time_sec),
        "clock_nsec": int(event.local_time_nanosec),
        "wr_ns": wr_ns,
        "samples": waveforms.samples,
        "pixel_indices": waveforms.pixelsIndices,
        "baselines": waveforms.baselines,
        "pixels_flags": event.pixels_flags,
    }


class _DigiCamDecoder:
    """Per-run state for turning raw DigiCam arrays into software pixel order."""

    def __init__(self, path, first_event, module_permutation=None):
        self.path = path
        self.module_permutation = module_permutation
        self.baseline_divisor = detect_baseline_divisor(
            first_event["samples"], first_event["baselines"], path
        )
        self._pixel_indices = None
        self._order = None

    def decode(self, raw):
        samples = raw["samples"]
        if samples.size != N_PIXELS * N_SAMPLES:
            raise ValueError(
                f"{self.path}: event {raw['event_number']} has {samples.size} samples,"
                f" expected {N_PIXELS} pixels x {N_SAMPLES}"
            )
        indices = raw["pixel_indices"]
        if self._pixel_indices is None or not np.array_equal(
            indices, self._pixel_indices
        ):
            if np.sort(indices).tolist() != list(range(N_PIXELS)):
                raise ValueError(
                    f"{self.path}: event {raw['event_number']}: pixelsIndices is not a"
                    " permutation of the 1296 DigiCam pixels"
                )
            self._pixel_indices = indices.copy()
            self._order = np.argsort(indices)
            if self.module_permutation is not None:
                self._order = self._order[self.module_permutation]
        order = self._order
        waveform = samples.reshape(N_PIXELS, N_SAMPLES)[order]
        baseline_adc = (
            raw["baselines"][order].astype(np.float32) / self.baseline_divisor
        )
        flags = raw["pixels_flags"]
        present = (
            flags[order] != 0
            if flags is not None and flags.size
            else np.ones(N_PIXELS, bool)
        )
        return waveform, baseline_adc, present
