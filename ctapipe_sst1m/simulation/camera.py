"""
DigiCam waveforms of the fast SST-1M simulation.

`CameraSimulator`: DigiCam R1 waveforms (reference pulse sampled at 4 ns, night-sky
background photo-electrons, electronic noise, gain spread) of the photo-electrons of
`~ctapipe_sst1m.simulation.images.ShowerImager`, the camera trigger and the ADC (R0)
samples.

Pure numpy + numba, no file I/O. Every formula and number: ``docs/simulation-model.md``.
"""

import numba
import numpy as np
from ctapipe.core import TelescopeComponent
from ctapipe.core.traits import Float, Int, TelescopeParameter
from scipy.special import ndtri

from ..instrument import N_PIXELS, N_SAMPLES, reference_pulse_shape

__all__ = [
    "CameraSimulator",
    "pulse_table",
    "SAMPLE_NS",
    "PULSE_PEAK_NS",
]

SAMPLE_NS = 4.0
#: time of the maximum of `reference_pulse_shape` after its start
PULSE_PEAK_NS = 27.5
#: the pulse table covers this long a time after the start of a pulse (25 samples)
_PULSE_SUPPORT_SAMPLES = 25
#: phase step of the pulse table (ns)
_PHASE_STEP_NS = 0.1


def pulse_table(n_support=_PULSE_SUPPORT_SAMPLES, step_ns=_PHASE_STEP_NS):
    """
    The reference pulse on the 4 ns grid for every phase.

    Row q holds the pulse at template times ``q * step_ns + 4 m`` (m = 0 .. n_support-1),
    normalised so that each row sums to 1 (one p.e. = 1 in R1 summed over the samples).
    """
    n_phases = int(round(SAMPLE_NS / step_ns)) + 1
    phases = np.arange(n_phases) * step_ns
    t = phases[:, None] + SAMPLE_NS * np.arange(n_support)[None, :]
    table = reference_pulse_shape(t)
    return table / table.sum(axis=1, keepdims=True)


@numba.njit(cache=True)
def _add_pulse(row, peak_time, amplitude, table, inverse_step):
    """Add one pulse (peak at ``peak_time`` ns, samples summing to ``amplitude``) to a row."""
    n_samples = row.shape[0]
    start = peak_time - PULSE_PEAK_NS
    first = np.int64(np.ceil(start / SAMPLE_NS))
    q = np.int64((first * SAMPLE_NS - start) * inverse_step + 0.5)
    for m in range(table.shape[1]):
        s = first + m
        if s < 0:
            continue
        if s >= n_samples:
            break
        row[s] += amplitude * table[q, m]


# ---- fast random numbers inside the numba kernel: xoroshiro128+ (Blackman & Vigna),
# Gaussian variates by inverse-CDF lookup of 16 random bits (4 variates per 64-bit draw)
_GAUSS_BITS = 16
#: standard-normal quantiles at the centres of 2**16 equal-probability bins (|z| < 4.3)
GAUSSIAN_TABLE = ndtri((np.arange(2**_GAUSS_BITS) + 0.5) / 2**_GAUSS_BITS)


@numba.njit(inline="always")
def _rotl(x, k):
    return (x << np.uint64(k)) | (x >> np.uint64(64 - k))


@numba.njit(inline="always")
def _next_u64(state):
    s0 = state[0]
    s1 = state[1]
    result = s0 + s1
    s1 ^= s0
    state[0] = _rotl(s0, 24) ^ s1 ^ (s1 << np.uint64(16))
    state[1] = _rotl(s1, 37)
    return result


@numba.njit(cache=True)
def _waveform_kernel(
    state,
    out,
    signal_amplitude,
    signal_time,
    gain,
    nsb_counts,
    nsb_t_min,
    nsb_t_max,
    spe_resolution,
    noise_sigma,
    baseline,
    table,
    inverse_step,
    gaussian,
):
    """
    R1 waveforms of one camera: Cherenkov pulses, NSB p.e. (uniform times, amplitude
    gain (1 + spe_resolution N(0,1))), Gaussian electronic noise, minus the baseline.
    ``state``: two uint64 seeding xoroshiro128+ (drawn from the caller's numpy Generator).
    """
    n_pixels, n_samples = out.shape
    row = np.empty(n_samples)
    span = (nsb_t_max - nsb_t_min) * 2.0**-48
    mask16 = np.uint64(0xFFFF)
    for pix in range(n_pixels):
        row[:] = 0.0
        if signal_amplitude[pix] != 0.0:
            _add_pulse(
                row, signal_time[pix], signal_amplitude[pix], table, inverse_step
            )
        g = gain[pix]
        for _ in range(nsb_counts[pix]):
            r = _next_u64(state)
            t = nsb_t_min + span * np.float64(r >> np.uint64(16))
            a = g * (1.0 + spe_resolution * gaussian[np.int64(r & mask16)])
            _add_pulse(row, t, a, table, inverse_step)
        b = baseline[pix]
        s = 0
        while s < n_samples:
            r = _next_u64(state)
            for k in range(4):
                if s >= n_samples:
                    break
                z = gaussian[np.int64((r >> np.uint64(16 * k)) & mask16)]
                out[pix, s] = row[s] - b + noise_sigma * z
                s += 1


@numba.njit(cache=True)
def _trigger_kernel(wave, clusters, window):
    """Max over clusters and time of the cluster signal summed over ``window`` samples."""
    n_pixels, n_samples = wave.shape
    n_windows = n_samples - window + 1
    sums = np.zeros((n_pixels, n_windows), dtype=np.float32)
    for pix in range(n_pixels):
        acc = np.float32(0.0)
        for s in range(window):
            acc += wave[pix, s]
        sums[pix, 0] = acc
        for t in range(1, n_windows):
            acc += wave[pix, t + window - 1] - wave[pix, t - 1]
            sums[pix, t] = acc
    best = -np.inf
    cluster = np.empty(n_windows, dtype=np.float32)
    for c in range(clusters.shape[0]):
        cluster[:] = 0.0
        for k in range(clusters.shape[1]):
            member = clusters[c, k]
            if member < 0:
                break
            for t in range(n_windows):
                cluster[t] += sums[member, t]
        for t in range(n_windows):
            if cluster[t] > best:
                best = cluster[t]
    return best


class CameraSimulator(TelescopeComponent):
    """
    DigiCam detector model: R1 waveforms, camera trigger, ADC samples.

    Parameters
    ----------
    subarray : ctapipe.instrument.SubarrayDescription
    rng : numpy.random.Generator
        Shared with the other parts of the simulation (the order of the draws is
        what makes a simulation reproducible); the pixel gains are drawn from it
        on construction.
    config, parent, **kwargs
        Of `ctapipe.core.Component`: the traits below.
    """

    nsb_rate_mhz = TelescopeParameter(
        trait=Float(min=0.0),
        default_value=80.0,
        help="Night-sky-background photo-electron rate per pixel (MHz), per telescope.",
    ).tag(config=True)
    electronic_noise_pe = Float(
        default_value=0.1,
        min=0.0,
        help="Gaussian electronic noise per sample, in R1 units (p.e. per sample).",
    ).tag(config=True)
    gain_spread = Float(
        default_value=0.05,
        min=0.0,
        max=1.0,
        help=(
            "Relative rms of the pixel gains (residual miscalibration), drawn once per"
            " telescope."
        ),
    ).tag(config=True)
    spe_resolution = Float(
        default_value=0.1,
        min=0.0,
        max=1.0,
        help="Relative rms of the single-p.e. amplitude.",
    ).tag(config=True)
    trigger_threshold_pe = Float(
        default_value=30.0,
        min=0.0,
        help=(
            "Camera trigger: threshold on the signal (p.e.) of a 7-pixel cluster summed"
            " over trigger_window_samples consecutive samples."
        ),
    ).tag(config=True)
    trigger_window_samples = Int(
        default_value=3,
        min=1,
        max=N_SAMPLES,
        help="Consecutive samples summed by the camera trigger.",
    ).tag(config=True)

    def __init__(self, subarray, rng=None, config=None, parent=None, **kwargs):
        super().__init__(subarray, config=config, parent=parent, **kwargs)
        self.rng = rng if rng is not None else np.random.default_rng()
        self._table = pulse_table()
        self._inverse_step = 1.0 / _PHASE_STEP_NS
        # NSB p.e. whose pulse reaches the window: pulse start in (-support, window end)
        support_ns = _PULSE_SUPPORT_SAMPLES * SAMPLE_NS
        self._nsb_t_min = PULSE_PEAK_NS - support_ns
        self._nsb_t_max = PULSE_PEAK_NS + N_SAMPLES * SAMPLE_NS
        self.gain = {}
        self._cluster = {}
        for tel_id in sorted(subarray.tel):
            self.gain[tel_id] = np.maximum(
                1.0 + self.gain_spread * self.rng.standard_normal(N_PIXELS), 0.1
            )
            geom = subarray.tel[tel_id].camera.geometry
            # 7-pixel clusters: each pixel and its neighbours (-1 padded at the edge)
            neighbors = geom.neighbor_matrix
            clusters = np.full(
                (geom.n_pixels, 1 + neighbors.sum(axis=1).max()), -1, dtype=np.int64
            )
            for pix in range(geom.n_pixels):
                members = np.concatenate([[pix], np.flatnonzero(neighbors[pix])])
                clusters[pix, : members.size] = members
            self._cluster[tel_id] = clusters

    def mean_nsb_pe_per_sample(self, tel_id):
        """Mean NSB signal per sample and pixel (R1 p.e.), what the baseline subtraction removes."""
        return self.nsb_rate_mhz.tel[tel_id] * 1e-3 * SAMPLE_NS * self.gain[tel_id]

    def r1_waveform(self, tel_id, n_pe, peak_time_ns):
        """
        R1 waveforms (p.e. per sample, baseline subtracted) of one event.

        Parameters
        ----------
        tel_id : int
        n_pe : array-like of int (n_pixels,)
            Cherenkov photo-electrons per pixel (None: pedestal event).
        peak_time_ns : array-like of float (n_pixels,)
            Pulse-peak time of each pixel's Cherenkov light (ns in the window).

        Returns
        -------
        numpy.ndarray
            float32 (1, n_pixels, n_samples)
        """
        rng = self.rng
        gain = self.gain[tel_id]
        amplitude = np.zeros(N_PIXELS)
        times = np.zeros(N_PIXELS)
        if n_pe is not None:
            n_pe = np.asarray(n_pe)
            times_in = np.asarray(peak_time_ns, dtype=float)
            lit = np.flatnonzero((n_pe > 0) & np.isfinite(times_in))
            if lit.size:
                n = n_pe[lit].astype(float)
                # sum of n single-p.e. amplitudes of relative rms spe_resolution
                amplitude[lit] = gain[lit] * (
                    n + self.spe_resolution * np.sqrt(n) * rng.standard_normal(lit.size)
                )
                times[lit] = times_in[lit]
        rate_per_ns = self.nsb_rate_mhz.tel[tel_id] * 1e-3
        if rate_per_ns > 0:
            counts = rng.poisson(
                rate_per_ns * (self._nsb_t_max - self._nsb_t_min), N_PIXELS
            )
            # DigiCam's baseline follows the NSB: its mean is subtracted
            baseline = self.mean_nsb_pe_per_sample(tel_id)
        else:
            counts = np.zeros(N_PIXELS, dtype=np.int64)
            baseline = np.zeros(N_PIXELS)
        out = np.empty((1, N_PIXELS, N_SAMPLES), dtype=np.float32)
        state = rng.integers(1, 2**63, size=2, dtype=np.uint64)
        _waveform_kernel(
            state,
            out[0],
            amplitude,
            times,
            gain,
            counts,
            self._nsb_t_min,
            self._nsb_t_max,
            self.spe_resolution,
            self.electronic_noise_pe,
            baseline,
            self._table,
            self._inverse_step,
            GAUSSIAN_TABLE,
        )
        return out

    def trigger_signal(self, tel_id, r1):
        """Maximum over clusters and time of the 7-pixel cluster signal summed over the window (p.e.)."""
        wave = np.ascontiguousarray(
            np.asarray(r1, dtype=np.float32).reshape(N_PIXELS, -1)
        )
        return float(
            _trigger_kernel(wave, self._cluster[tel_id], self.trigger_window_samples)
        )

    def triggers(self, tel_id, r1):
        """Camera trigger decision (bool) of an R1 waveform."""
        return self.trigger_signal(tel_id, r1) > self.trigger_threshold_pe

    @staticmethod
    def adc_waveform(tel_id, r1, dc_to_pe=26.8, baseline_adc=330.0):
        """
        Raw ADC samples: ``round(baseline + r1 * dc_to_pe)``, clipped to the 12-bit range.

        ``dc_to_pe`` is the integral (ADC x samples) of a single p.e. pulse. Returns int16
        (n_pixels, n_samples).
        """
        wave = np.asarray(r1, dtype=np.float32).reshape(N_PIXELS, -1)
        adc = np.rint(baseline_adc + wave * np.float32(dc_to_pe))
        return np.clip(adc, 0, 4095).astype(np.int16)
