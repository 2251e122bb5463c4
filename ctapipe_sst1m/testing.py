"""
Test data: synthetic DigiCam raw runs and toy stereo trigger times.

* `write_synthetic_run`, `write_synthetic_stereo_run`: raw runs with noise,
  interleaved pedestals and simple shower images. These files exercise the
  raw-data path (event source, time handling, several files per run, White Rabbit
  times, SWAT numbers, TARGET) where the real example files lack features. The
  images are 2D Gaussians, not air showers.
* `simulate_stereo_times`: trigger times and SWAT ids of two telescopes with the
  true stereo pairs, for the tests and benchmarks of the coincidence matching.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .instrument import (
    N_PIXELS,
    N_SAMPLES,
    camera_number,
    digicam_geometry,
    reference_pulse_shape,
)
from .io.zfits_writer import DigiCamZFitsWriter
from .simulation.raw_runs import synthetic_pixel_indices
from .time import NS_PER_S, tai_time

__all__ = [
    "SimulatedStereoTimes",
    "SyntheticRun",
    "SyntheticStereoRun",
    "simulate_stereo_times",
    "write_synthetic_run",
    "write_synthetic_stereo_run",
]

SAMPLE_NS = 4.0


@dataclass
class SyntheticRun:
    """Parameters of a synthetic raw run of one telescope."""

    #: telescope id written in the files (21, 22)
    tel_id: int = 21
    #: night date YYYYMMDD and run number, for the file names
    date: str = "20240304"
    run: int = 12
    n_events: int = 100
    #: number of files the run is split into
    n_files: int = 1
    #: every n-th event is an interleaved pedestal (camera event_type 8)
    pedestal_interval: int = 10
    #: no pedestal events before this event index
    first_pedestal_event: int = 0
    #: software ids of pixels without signal or noise (dead)
    dead_pixels: tuple = ()
    #: mean trigger rate in Hz (exponential time gaps)
    rate_hz: float = 200.0
    #: camera clock of the first event, ns since 1970-01-01 (TAI)
    start_time_ns: int = 1_709_590_000 * NS_PER_S
    #: offset of the White Rabbit time relative to the camera clock (ns); None: no WR column
    white_rabbit_offset_ns: int | None = 0
    #: first SWAT array event number; None: no arrayEvtNum column
    first_array_event_number: int | None = 1_000_000
    #: TARGET keyword; None: not written
    target: str | None = "Crab_W1,83.6331,22.0145"
    #: dc to p.e. of the synthetic camera (ADC x samples per p.e.)
    dc_to_pe: float = 26.8
    #: baseline (ADC) and its spread between pixels
    baseline_adc: float = 330.0
    #: NSB + electronic noise per sample (ADC)
    noise_adc: float = 6.0
    #: baselines stored as 16 x ADC (current firmware) or plain ADC (2017)
    baseline_divisor: int = 16
    seed: int = 0

    def file_paths(self, directory):
        """Paths of the files of the run: SST1M{1,2}_YYYYMMDD_NNNN[_SSS].fits.fz."""
        base = f"SST1M{camera_number(self.tel_id)}_{self.date}_{self.run:04d}"
        if self.n_files == 1:
            return [Path(directory) / f"{base}.fits.fz"]
        return [
            Path(directory) / f"{base}_{i:03d}.fits.fz" for i in range(self.n_files)
        ]


class _ImageModel:
    """Gaussian images with a time gradient on the DigiCam camera."""

    def __init__(self, rng, dc_to_pe):
        geom = digicam_geometry()
        self.x = geom.pix_x.to_value("m")
        self.y = geom.pix_y.to_value("m")
        self.rng = rng
        self.dc_to_pe = dc_to_pe
        # pulse on the 4 ns grid, normalised so that its samples sum to 1
        fine_t = np.arange(0, N_SAMPLES * SAMPLE_NS, 0.1)
        self._fine_t = fine_t
        self._pulse = reference_pulse_shape(fine_t)

    def pulse_samples(self, peak_ns):
        """Pulse samples per pixel (n_pixels, n_samples), each summing to 1."""
        sample_times = np.arange(N_SAMPLES) * SAMPLE_NS
        shifted = sample_times[np.newaxis, :] - (peak_ns[:, np.newaxis] - 27.5)
        pulses = np.interp(shifted, self._fine_t, self._pulse, left=0.0, right=0.0)
        return pulses / pulses.sum(axis=1, keepdims=True)

    def adc(self):
        """ADC signal of a random image, (n_pixels, n_samples) float."""
        rng = self.rng
        intensity = 10 ** rng.uniform(2, 3.3)
        cog = rng.uniform(-0.25, 0.25, 2)
        psi = rng.uniform(0, np.pi)
        length, width = rng.uniform(0.03, 0.07), rng.uniform(0.01, 0.025)
        dx, dy = self.x - cog[0], self.y - cog[1]
        along = dx * np.cos(psi) + dy * np.sin(psi)
        across = -dx * np.sin(psi) + dy * np.cos(psi)
        density = np.exp(-0.5 * ((along / length) ** 2 + (across / width) ** 2))
        n_pe = rng.poisson(intensity * density / density.sum())
        peak_ns = 40.0 + 100.0 * along  # 1 ns per cm along the axis
        return n_pe[:, np.newaxis] * self.dc_to_pe * self.pulse_samples(peak_ns)


def _file_creation_date(clock_ns):
    """DATE keyword (UTC) of a file whose first event has this TAI camera clock: 1 s later."""
    first = tai_time((clock_ns // NS_PER_S + 1) * NS_PER_S).utc
    return first.strftime("%Y-%m-%dT%H:%M:%S")


def write_synthetic_run(directory, run=None):
    """
    Write a synthetic raw run and return its file paths and event truth.

    Parameters
    ----------
    directory : str or Path
        Output directory.
    run : SyntheticRun
        Run parameters (defaults if None).

    Returns
    -------
    paths : list of Path
    truth : dict of numpy.ndarray
        Per event in time order: ``event_number``, ``array_event_number``,
        ``camera_event_type``, ``clock_ns``, ``white_rabbit_ns``.
    """
    run = run or SyntheticRun()
    rng = np.random.default_rng(run.seed)
    gaps = rng.exponential(NS_PER_S / run.rate_hz, run.n_events).astype(np.int64) + 4
    clock_ns = run.start_time_ns + np.cumsum(gaps) // 4 * 4
    index = np.arange(run.n_events)
    is_pedestal = (index % run.pedestal_interval == run.pedestal_interval - 1) & (
        index >= run.first_pedestal_event
    )
    truth = {
        "event_number": 1 + index,
        "camera_event_type": np.where(is_pedestal, 8, 1),
        "clock_ns": clock_ns,
        "array_event_number": (
            run.first_array_event_number + index
            if run.first_array_event_number is not None
            else np.full(run.n_events, -1)
        ),
        "white_rabbit_ns": (
            clock_ns + run.white_rabbit_offset_ns
            if run.white_rabbit_offset_ns is not None
            else np.full(run.n_events, -1)
        ),
    }
    return _write_run_files(directory, run, truth, rng), truth


def _write_run_files(directory, run, truth, rng):
    """Write the events described by ``truth`` (time ordered) into the files of ``run``."""
    images = _ImageModel(rng, run.dc_to_pe)
    pixel_indices = synthetic_pixel_indices()
    pixel_baseline = run.baseline_adc + rng.normal(0, 10, N_PIXELS)
    baselines = np.rint(pixel_baseline * run.baseline_divisor).astype(np.int16)[
        pixel_indices
    ]
    dead = list(run.dead_pixels)
    clock_ns = truth["clock_ns"]
    n_events = len(clock_ns)

    paths = run.file_paths(directory)
    Path(directory).mkdir(parents=True, exist_ok=True)
    bounds = np.linspace(0, n_events, run.n_files + 1).astype(int)
    header = {"DATE": _file_creation_date(clock_ns[0])}
    if run.target is not None:
        header["TARGET"] = run.target
    for path, start, stop in zip(paths, bounds[:-1], bounds[1:]):
        with DigiCamZFitsWriter(path, header=header) as writer:
            for i in range(start, stop):
                signal = pixel_baseline[:, np.newaxis] + rng.normal(
                    0, run.noise_adc, (N_PIXELS, N_SAMPLES)
                )
                if truth["camera_event_type"][i] != 8:
                    signal += images.adc()
                signal[dead] = pixel_baseline[dead, np.newaxis]
                samples = np.clip(np.rint(signal), 0, 4095).astype(np.int16)
                optional = {}
                if truth["array_event_number"][i] >= 0:
                    optional["array_event_number"] = int(truth["array_event_number"][i])
                if truth["white_rabbit_ns"][i] >= 0:
                    wr = int(truth["white_rabbit_ns"][i])
                    optional["trig_time_sec"] = wr // NS_PER_S
                    optional["trig_time_nanosec"] = wr % NS_PER_S
                writer.write_event(
                    telescope_id=run.tel_id,
                    event_number=int(truth["event_number"][i]),
                    samples=samples[pixel_indices],
                    pixel_indices=pixel_indices,
                    baselines=baselines,
                    local_time_sec=int(clock_ns[i] // NS_PER_S),
                    local_time_nanosec=int(clock_ns[i] % NS_PER_S),
                    event_type=int(truth["camera_event_type"][i]),
                    **optional,
                )
    return paths


@dataclass
class SyntheticStereoRun:
    """Parameters of a synthetic two-telescope run (telescopes 21 and 22)."""

    #: showers seen by both telescopes
    n_stereo: int = 200
    #: fraction of each telescope's shower triggers that are single-telescope
    single_fraction: float = 0.4
    #: rate of stereo showers (Hz)
    stereo_rate_hz: float = 100.0
    #: interleaved pedestal rate of each camera (Hz)
    pedestal_rate_hz: float = 20.0
    #: camera clock of telescope 22 minus that of telescope 21 (ns)
    clock_offset_ns: int = 3_217_000
    #: White Rabbit timestamps (true time + jitter) in both cameras
    white_rabbit: bool = True
    white_rabbit_jitter_ns: float = 5.0
    #: SWAT array event numbers, equal for the two halves of a stereo event
    swat: bool = True
    date: str = "20240304"
    run: int = 12
    n_files: int = 1
    start_time_ns: int = 1_709_590_000 * NS_PER_S
    target: str | None = "Crab_W1,83.6331,22.0145"
    seed: int = 0


def write_synthetic_stereo_run(directory, stereo=None):
    """
    Write the raw runs of both telescopes for the same showers, with a known pairing.

    Returns
    -------
    paths : dict
        ``{21: [Path, ...], 22: [Path, ...]}``.
    truth : dict
        ``{21: per-event truth, 22: per-event truth, "pairs": (n, 2) camera event numbers
        of telescope 21 and 22 seeing the same shower}``.
    """
    stereo = stereo or SyntheticStereoRun()
    rng = np.random.default_rng(stereo.seed)
    duration_ns = int(stereo.n_stereo / stereo.stereo_rate_hz * NS_PER_S)
    n_single = int(
        round(stereo.n_stereo * stereo.single_fraction / (1 - stereo.single_fraction))
    )
    n_pedestals = max(1, int(duration_ns / NS_PER_S * stereo.pedestal_rate_hz))
    stereo_times = np.sort(rng.integers(0, duration_ns, stereo.n_stereo))
    next_swat = 1_000_000

    paths, truth, stereo_numbers = {}, {}, {}
    for tel_id, clock_offset in ((21, 0), (22, stereo.clock_offset_ns)):
        single_times = rng.integers(0, duration_ns, n_single)
        pedestal_times = (
            np.linspace(0, duration_ns, n_pedestals, endpoint=False).astype(np.int64)
            + 777
        )
        true_times = np.concatenate([stereo_times, single_times, pedestal_times])
        kind = np.concatenate(
            [
                np.zeros(stereo.n_stereo, int),
                np.ones(n_single, int),
                np.full(n_pedestals, 2),
            ]
        )
        source_index = np.concatenate(
            [np.arange(stereo.n_stereo), np.full(n_single + n_pedestals, -1)]
        )
        order = np.argsort(true_times, kind="stable")
        true_times, kind, source_index = (
            true_times[order],
            kind[order],
            source_index[order],
        )
        n_events = len(true_times)

        array_numbers = np.full(n_events, -1)
        if stereo.swat:
            array_numbers[kind == 0] = next_swat + source_index[kind == 0]
            others = np.flatnonzero(kind != 0)
            array_numbers[others] = (
                next_swat
                + stereo.n_stereo
                + (tel_id - 21) * n_events
                + np.arange(len(others))
            )
        absolute = stereo.start_time_ns + true_times
        jitter = np.rint(rng.normal(0, stereo.white_rabbit_jitter_ns, n_events)).astype(
            np.int64
        )
        tel_truth = {
            "event_number": 1 + np.arange(n_events),
            "camera_event_type": np.where(kind == 2, 8, 1),
            "clock_ns": (absolute + clock_offset) // 4 * 4,
            "array_event_number": array_numbers,
            "white_rabbit_ns": absolute + jitter
            if stereo.white_rabbit
            else np.full(n_events, -1),
        }
        run = SyntheticRun(
            tel_id=tel_id,
            date=stereo.date,
            run=stereo.run,
            n_files=stereo.n_files,
            target=stereo.target,
            seed=stereo.seed + tel_id,
        )
        paths[tel_id] = _write_run_files(directory, run, tel_truth, rng)
        truth[tel_id] = tel_truth
        stereo_numbers[tel_id] = tel_truth["event_number"][kind == 0][
            np.argsort(source_index[kind == 0])
        ]
    truth["pairs"] = np.column_stack([stereo_numbers[21], stereo_numbers[22]])
    return paths, truth


@dataclass
class SimulatedStereoTimes:
    """
    Toy trigger times of two telescopes with the true stereo pairs.

    Attributes
    ----------
    times_1_ns, times_2_ns : numpy.ndarray
        int64 times of each telescope (telescope 2 in its own clock).
    event_ids_1, event_ids_2 : numpy.ndarray
        int64 SWAT ids, equal for the two events of a shower, unique otherwise.
    true_index_1, true_index_2 : numpy.ndarray
        int64 indices of the true pairs (same shower) into the arrays.
    """

    times_1_ns: np.ndarray
    times_2_ns: np.ndarray
    event_ids_1: np.ndarray
    event_ids_2: np.ndarray
    true_index_1: np.ndarray
    true_index_2: np.ndarray

    def precision_recall(self, result):
        """
        Fraction of the found pairs that are true, and of the true pairs found.

        Parameters
        ----------
        result : ctapipe_sst1m.stereo.coincidence.MatchResult

        Returns
        -------
        precision, recall : float
            Precision is 1 if no pair was found.
        """
        n_2 = len(self.times_2_ns)
        found = result.index_1 * n_2 + result.index_2
        true = self.true_index_1 * n_2 + self.true_index_2
        n_true_found = np.count_nonzero(np.isin(found, true))
        precision = n_true_found / len(found) if len(found) else 1.0
        return precision, n_true_found / max(len(true), 1)


def simulate_stereo_times(
    n_stereo,
    rng,
    stereo_rate_hz=150.0,
    single_fraction=0.4,
    pedestal_rate_hz=20.0,
    clock_offset_ns=0,
    delay_sigma_ns=5.0,
    start_time_ns=1_709_590_000 * NS_PER_S,
    shuffle=True,
):
    """
    Toy trigger times of two telescopes, for tests and benchmarks.

    Stereo showers form a Poisson process seen by both telescopes (telescope 2
    with a Gaussian delay, e.g. the White Rabbit jitter); each telescope also has
    uniformly distributed single-telescope triggers and periodic interleaved
    pedestals with an independent random phase.

    Parameters
    ----------
    n_stereo : int
        Number of stereo showers.
    rng : numpy.random.Generator
    stereo_rate_hz : float
        Rate of stereo showers.
    single_fraction : float
        Single-telescope triggers of each telescope, as a fraction of ``n_stereo``.
    pedestal_rate_hz : float
        Interleaved pedestal rate of each telescope (0: none).
    clock_offset_ns : int
        Clock of telescope 2 minus clock of telescope 1.
    delay_sigma_ns : float
        Standard deviation of ``t2 - t1 - clock_offset_ns`` of a stereo shower.
    start_time_ns : int
        Time of the start of the run.
    shuffle : bool
        Shuffle the events of each telescope (otherwise stereo, singles,
        pedestals).

    Returns
    -------
    SimulatedStereoTimes
    """
    gaps = rng.exponential(NS_PER_S / stereo_rate_hz, n_stereo)
    stereo = start_time_ns + np.cumsum(gaps).astype(np.int64)
    duration = int(stereo[-1] - start_time_ns) + 1 if n_stereo else 1
    n_single = int(round(single_fraction * n_stereo))
    delays = np.rint(rng.normal(0.0, delay_sigma_ns, n_stereo)).astype(np.int64)

    times, ids, true_index = [], [], []
    next_id = 1_000_000 + n_stereo
    for stereo_times, clock_offset in ((stereo, 0), (stereo + delays, clock_offset_ns)):
        singles = start_time_ns + rng.integers(0, duration, n_single)
        pedestals = np.empty(0, dtype=np.int64)
        if pedestal_rate_hz > 0:
            period = int(round(NS_PER_S / pedestal_rate_hz))
            phase = rng.integers(period)
            pedestals = start_time_ns + np.arange(phase, duration, period)
        tel_times = np.concatenate([stereo_times, singles, pedestals]) + clock_offset
        n_others = len(tel_times) - n_stereo
        tel_ids = np.concatenate(
            [1_000_000 + np.arange(n_stereo), next_id + np.arange(n_others)]
        )
        next_id += n_others
        n_events = len(tel_times)
        position = rng.permutation(n_events) if shuffle else np.arange(n_events)
        shuffled_times = np.empty_like(tel_times)
        shuffled_ids = np.empty_like(tel_ids)
        shuffled_times[position] = tel_times
        shuffled_ids[position] = tel_ids
        times.append(shuffled_times)
        ids.append(shuffled_ids)
        true_index.append(position[:n_stereo].astype(np.int64))
    return SimulatedStereoTimes(times[0], times[1], ids[0], ids[1], *true_index)
