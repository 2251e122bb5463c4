"""
Cherenkov images and DigiCam waveforms of the fast SST-1M simulation.

* `ShowerImager`: per telescope, the photo-electrons per pixel and their arrival
  times for a `~ctapipe_sst1m.simulation.showers.Shower` (a parametric
  light-pool + 2D Gaussian image model, Poisson photo-electrons).
* `CameraSimulator`: DigiCam R1 waveforms (reference pulse sampled at 4 ns, night-sky
  background photo-electrons, electronic noise, gain spread), the camera trigger and
  the ADC (R0) samples.

Pure numpy + numba, no file I/O. Every formula and number: ``docs/simulation-model.md``.
"""

from dataclasses import dataclass

import numba
import numpy as np
from scipy.special import ndtri

from ..instrument import N_PIXELS, N_SAMPLES, reference_pulse_shape
from .showers import (
    ATMOSPHERE_SCALE_HEIGHT_M,
    OBSERVATION_LEVEL_M,
    SHOWER_PARTICLES,
    Shower,
    direction_vector,
)

__all__ = [
    "CherenkovImage",
    "ShowerImager",
    "CameraSimulator",
    "altaz_to_camera",
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

SPEED_OF_LIGHT_M_PER_NS = 0.299792458
#: refractive index of air at sea level minus 1 (scales with density, exp(-h / H))
_N_MINUS_ONE_SEA_LEVEL = 2.9e-4


def altaz_to_camera(alt_rad, az_rad, pointing_alt_rad, pointing_az_rad, focal_length_m):
    """
    Camera-frame position (m) of a direction seen by a telescope pointing at (alt_p, az_p).

    Exact rotation into the telescope frame (``fov_lon``, ``fov_lat``, as ctapipe's
    `~ctapipe.coordinates.TelescopeFrame`), then ctapipe's `~ctapipe.coordinates.CameraFrame`
    convention (ctapipe, equidistant mapping): ``x = f fov_lat``, ``y = f fov_lon``
    (camera x points towards higher altitude, y towards higher azimuth), checked
    against ctapipe in ``tests/test_simulation_model.py``.

    Returns
    -------
    x, y : numpy.ndarray
    """
    alt = np.asarray(alt_rad, dtype=float)
    daz = np.asarray(az_rad, dtype=float) - pointing_az_rad
    sin_alt, cos_alt = np.sin(alt), np.cos(alt)
    sin_p, cos_p = np.sin(pointing_alt_rad), np.cos(pointing_alt_rad)
    x_rot = cos_alt * cos_p * np.cos(daz) + sin_alt * sin_p
    y_rot = cos_alt * np.sin(daz)
    z_rot = sin_alt * cos_p - cos_alt * sin_p * np.cos(daz)
    fov_lon = np.arctan2(y_rot, x_rot)
    fov_lat = np.arctan2(z_rot, np.hypot(x_rot, y_rot))
    return focal_length_m * fov_lat, focal_length_m * fov_lon


def _camera_of_vector(v, pointing_alt_rad, pointing_az_rad, focal_length_m):
    """`altaz_to_camera` of ground-frame vectors (..., 3) (not necessarily unit)."""
    norm = np.linalg.norm(v, axis=-1)
    alt = np.arcsin(np.clip(v[..., 2] / norm, -1, 1))
    az = np.arctan2(-v[..., 1], v[..., 0])
    return altaz_to_camera(alt, az, pointing_alt_rad, pointing_az_rad, focal_length_m)


@dataclass
class CherenkovImage:
    """Photo-electrons of one shower in one telescope, and the true image parameters."""

    #: true photo-electrons per pixel (after Poisson), int (n_pixels,)
    n_pe: np.ndarray
    #: arrival (pulse-peak) time per pixel in ns in the readout window, nan without light
    peak_time_ns: np.ndarray
    #: distance of the telescope from the shower axis (m)
    impact_m: float
    #: expected number of p.e. of the whole image (before Poisson, unbounded camera)
    mean_pe: float
    #: true image centroid (camera frame, m) and in deg from the camera centre
    cog_x_m: float
    cog_y_m: float
    #: true source position in the camera (m)
    source_x_m: float
    source_y_m: float
    #: orientation of the image axis, from the source towards the centroid (rad, camera frame)
    psi_rad: float
    #: source-centroid distance (deg)
    disp_deg: float
    #: rms length and width of the (main) Gaussian image (deg)
    length_deg: float
    width_deg: float
    #: longitudinal asymmetry alpha: rms l (1 - alpha) towards the source, l (1 + alpha) away
    asymmetry: float
    #: time gradient along the image axis away from the source (ns/deg)
    time_gradient_ns_per_deg: float
    #: distance telescope - shower maximum (m)
    distance_to_max_m: float
    #: radius of the Cherenkov light-pool plateau (m)
    pool_radius_m: float
    #: number of extra sub-shower islands (protons)
    n_subshowers: int

    @property
    def intensity(self):
        """Sum of the true photo-electrons."""
        return int(self.n_pe.sum())


class ShowerImager:
    """
    Parametric Cherenkov image model of the SST-1M telescopes.

    Parameters
    ----------
    subarray : ctapipe.instrument.SubarrayDescription
        From ``sst1m_subarray((1, 2))``.
    rng : numpy.random.Generator
    pe_per_tev : float
        Mean photo-electrons per TeV of a gamma shower inside the light pool (whole image).
    proton_light_ratio : float
        Cherenkov light of a proton relative to a gamma of the same energy.
    pool_falloff_m : dict
        e-folding length of the lateral light density beyond the pool radius, per particle.
    time_offset_ns : float
        Pulse-peak time of the image centroid in the 200 ns readout window.
    time_jitter_ns : float
        Half-width of the uniform jitter of the trigger phase (same for all pixels of an event).
    """

    def __init__(
        self,
        subarray,
        rng=None,
        pe_per_tev=100.0,
        proton_light_ratio=0.4,
        pool_falloff_m=None,
        time_offset_ns=48.0,
        time_jitter_ns=2.0,
    ):
        self.subarray = subarray
        self.rng = rng if rng is not None else np.random.default_rng()
        self.pe_per_tev = float(pe_per_tev)
        self.proton_light_ratio = float(proton_light_ratio)
        self.pool_falloff_m = {"gamma": 70.0, "proton": 100.0, **(pool_falloff_m or {})}
        self.time_offset_ns = float(time_offset_ns)
        self.time_jitter_ns = float(time_jitter_ns)
        self._tel = {}
        for tel_id, tel in subarray.tel.items():
            geom = tel.camera.geometry
            x = geom.pix_x.to_value("m")
            y = geom.pix_y.to_value("m")
            # tiling area of a hexagonal pixel from the pixel pitch (nearest-neighbour distance)
            d2 = (x[1:] - x[0]) ** 2 + (y[1:] - y[0]) ** 2
            pitch = np.sqrt(d2.min())
            self._tel[tel_id] = dict(
                x=x,
                y=y,
                focal_length=geom.frame.focal_length.to_value("m"),
                position=subarray.positions[tel_id].to_value("m"),
                tile_area=np.sqrt(3) / 2 * pitch**2,
                # per-axis variance of a uniform hexagon of flat-to-flat size `pitch`
                pixel_var=5.0 / 72.0 * pitch**2,
            )

    # ------------------------------------------------------------------ geometry
    def shower_geometry(self, showers, tel_id, pointing_alt_rad, pointing_az_rad):
        """
        Deterministic per-telescope quantities of a batch of showers (dict of arrays):
        impact, distance to the maximum, pool radius, source and centroid in the camera,
        disp, psi, expected mean number of p.e. (without fluctuations), time gradient.
        """
        tel = self._tel[tel_id]
        f = tel["focal_length"]
        direction = np.atleast_2d(direction_vector(showers.alt_rad, showers.az_rad))
        core = np.atleast_2d(showers.core)
        energy = np.atleast_1d(np.asarray(showers.energy_tev, dtype=float))
        h_max = np.atleast_1d(np.asarray(showers.h_max_m, dtype=float))
        is_proton = np.atleast_1d(showers.primary_id) == SHOWER_PARTICLES["proton"]

        w = tel["position"] - core
        along = np.einsum("ij,ij->i", w, direction)
        impact = np.linalg.norm(w - along[:, None] * direction, axis=1)
        # shower maximum on the axis
        path = (h_max - OBSERVATION_LEVEL_M) / direction[:, 2]
        maximum = core + path[:, None] * direction
        to_max = maximum - tel["position"]
        distance = np.linalg.norm(to_max, axis=1)
        cog_x, cog_y = _camera_of_vector(to_max, pointing_alt_rad, pointing_az_rad, f)
        src_x, src_y = _camera_of_vector(
            direction, pointing_alt_rad, pointing_az_rad, f
        )
        dx, dy = cog_x - src_x, cog_y - src_y
        disp_m = np.hypot(dx, dy)
        psi = np.arctan2(dy, dx)

        # Cherenkov angle at the maximum and light-pool radius
        n_minus_one = _N_MINUS_ONE_SEA_LEVEL * np.exp(
            -h_max / ATMOSPHERE_SCALE_HEIGHT_M
        )
        theta_c = np.sqrt(2 * n_minus_one)
        pool_radius = path * theta_c
        falloff = np.where(
            is_proton, self.pool_falloff_m["proton"], self.pool_falloff_m["gamma"]
        )
        lateral = np.exp(-np.maximum(impact - pool_radius, 0.0) / falloff)
        light = np.where(is_proton, self.proton_light_ratio, 1.0)
        mean_pe = self.pe_per_tev * energy * light * lateral

        # time gradient (ns/rad -> ns/deg): isochronous at the pool radius
        gradient = (impact**2 - pool_radius**2) / (
            2 * SPEED_OF_LIGHT_M_PER_NS * np.maximum(impact, pool_radius)
        )
        return dict(
            impact=impact,
            distance=distance,
            path=path,
            pool_radius=pool_radius,
            cog_x=cog_x,
            cog_y=cog_y,
            source_x=src_x,
            source_y=src_y,
            disp_deg=np.rad2deg(disp_m / f),
            psi=psi,
            mean_pe_nominal=mean_pe,
            time_gradient=np.deg2rad(gradient),
            energy=energy,
            is_proton=is_proton,
            light_yield_factor=np.atleast_1d(
                np.asarray(showers.light_yield_factor, dtype=float)
            ),
            x_max=np.atleast_1d(np.asarray(showers.x_max_gcm2, dtype=float)),
            zenith=np.pi / 2 - np.atleast_1d(np.asarray(showers.alt_rad, dtype=float)),
        )

    # ------------------------------------------------------------------ images
    def images(self, showers, tel_id, pointing_alt_rad, pointing_az_rad):
        """`CherenkovImage` of each shower of a batch in one telescope (list)."""
        rng = self.rng
        g = self.shower_geometry(showers, tel_id, pointing_alt_rad, pointing_az_rad)
        tel = self._tel[tel_id]
        f = tel["focal_length"]
        n = len(g["impact"])
        log_e = np.log10(g["energy"])
        p = g["is_proton"]

        # light yield: the shower's fluctuation (common to the telescopes) and the local
        # fluctuation of the light density where this telescope samples it (log-normal)
        sigma_local = np.where(p, 0.25, np.clip(0.08 * g["energy"] ** -0.25, 0.03, 0.2))
        local = np.exp(sigma_local * rng.standard_normal(n) - 0.5 * sigma_local**2)
        mean_pe = g["mean_pe_nominal"] * g["light_yield_factor"] * local

        # width (deg): grows with log E and impact; protons twice as wide, more fluctuating
        width = 0.050 + 0.012 * np.clip(log_e, -1, 2.5) + 0.015 * g["impact"] / 100.0
        width = (
            width
            * np.where(p, 2.0, 1.0)
            * np.exp(np.where(p, 0.35, 0.10) * rng.standard_normal(n))
        )
        # length (deg): intrinsic + longitudinal extent of the shower seen under the disp angle
        sigma_x = np.where(p, 110.0, 90.0)  # longitudinal rms (g/cm^2)
        long_rms_m = sigma_x * ATMOSPHERE_SCALE_HEIGHT_M / g["x_max"]  # along the axis
        long_angle = long_rms_m * np.sin(np.deg2rad(g["disp_deg"])) / g["distance"]
        intrinsic = 0.06 + 0.03 * np.clip(log_e, -1, 2.5)
        length = np.hypot(intrinsic, np.rad2deg(long_angle))
        length = length * np.exp(np.where(p, 0.30, 0.10) * rng.standard_normal(n))
        length = np.maximum(length, width * np.where(p, 1.0, 1.05))
        # protons: image axis not pointing to the source
        psi = g["psi"] + np.where(p, np.deg2rad(20.0) * rng.standard_normal(n), 0.0)
        t0 = self.time_offset_ns + rng.uniform(
            -self.time_jitter_ns, self.time_jitter_ns, n
        )
        # longitudinal asymmetry (split Gaussian along the axis, wider away from the source):
        # gammas regularly skewed, protons irregularly
        asymmetry = np.where(
            p,
            np.clip(0.1 + 0.25 * rng.standard_normal(n), -0.5, 0.5),
            np.clip(0.3 + 0.08 * rng.standard_normal(n), 0.0, 0.6),
        )

        x, y = tel["x"], tel["y"]
        deg = np.deg2rad(1.0) * f  # metres per degree in the camera
        results = []
        for i in range(n):
            cos_psi, sin_psi = np.cos(psi[i]), np.sin(psi[i])
            blobs = []  # (fraction, centre x, y, length m, width m, cos, sin, asymmetry)
            n_sub = 0
            main_fraction = 1.0
            if p[i]:
                n_sub = rng.poisson(max(0.6 + 0.8 * log_e[i], 0.2))
                fractions = rng.uniform(0.05, 0.25, n_sub)
                if fractions.sum() > 0.6:
                    fractions *= 0.6 / fractions.sum()
                main_fraction = 1.0 - fractions.sum()
                for frac in fractions:
                    r = abs(rng.normal(0, 0.6)) + 0.2
                    a = rng.uniform(0, 2 * np.pi)
                    sub_psi = rng.uniform(0, np.pi)
                    blobs.append(
                        (
                            frac,
                            g["cog_x"][i] + r * deg * np.cos(a),
                            g["cog_y"][i] + r * deg * np.sin(a),
                            0.10 * deg,
                            0.06 * deg,
                            np.cos(sub_psi),
                            np.sin(sub_psi),
                            0.0,
                        )
                    )
            blobs.append(
                (
                    main_fraction,
                    g["cog_x"][i],
                    g["cog_y"][i],
                    length[i] * deg,
                    width[i] * deg,
                    cos_psi,
                    sin_psi,
                    asymmetry[i],
                )
            )
            mu = np.zeros(len(x))
            for frac, cx, cy, l_m, w_m, c, s, alpha in blobs:
                # split Gaussian: rms l (1 - alpha) towards the source, l (1 + alpha) away;
                # its mode is moved towards the source so that the light centroid stays at cog
                shift = np.sqrt(2 / np.pi) * 2 * alpha * l_m
                var_head = (l_m * (1 - alpha)) ** 2 + tel["pixel_var"]
                var_tail = (l_m * (1 + alpha)) ** 2 + tel["pixel_var"]
                var_w = w_m**2 + tel["pixel_var"]
                dx, dy = x - (cx - shift * c), y - (cy - shift * s)
                a_ = dx * c + dy * s
                b_ = -dx * s + dy * c
                var_l = np.where(a_ < 0, var_head, var_tail)
                norm = (
                    frac
                    * mean_pe[i]
                    * tel["tile_area"]
                    / (np.pi * (np.sqrt(var_head) + np.sqrt(var_tail)) * np.sqrt(var_w))
                )
                mu += norm * np.exp(-0.5 * (a_ * a_ / var_l + b_ * b_ / var_w))
            n_pe = rng.poisson(mu)
            lit = n_pe > 0
            # arrival times: gradient along the axis (away from the source), jitter
            along_deg = (
                (x - g["cog_x"][i]) * cos_psi + (y - g["cog_y"][i]) * sin_psi
            ) / deg
            peak_time = np.full(len(x), np.nan)
            jitter = (1.5 if p[i] else 0.3) + 2.0 / np.sqrt(np.maximum(n_pe[lit], 1))
            peak_time[lit] = (
                t0[i]
                + g["time_gradient"][i] * along_deg[lit]
                + jitter * rng.standard_normal(lit.sum())
            )
            results.append(
                CherenkovImage(
                    n_pe=n_pe,
                    peak_time_ns=peak_time,
                    impact_m=float(g["impact"][i]),
                    mean_pe=float(mean_pe[i]),
                    cog_x_m=float(g["cog_x"][i]),
                    cog_y_m=float(g["cog_y"][i]),
                    source_x_m=float(g["source_x"][i]),
                    source_y_m=float(g["source_y"][i]),
                    psi_rad=float(psi[i]),
                    disp_deg=float(g["disp_deg"][i]),
                    length_deg=float(length[i]),
                    width_deg=float(width[i]),
                    asymmetry=float(asymmetry[i]),
                    time_gradient_ns_per_deg=float(g["time_gradient"][i]),
                    distance_to_max_m=float(g["distance"][i]),
                    pool_radius_m=float(g["pool_radius"][i]),
                    n_subshowers=int(n_sub),
                )
            )
        return results

    def image(self, shower, tel_id, pointing_alt_rad, pointing_az_rad):
        """`CherenkovImage` of one shower (a `Shower` of scalars or of length 1) in one telescope."""
        if np.ndim(shower.energy_tev) == 0:
            shower = Shower(
                **{k: np.atleast_1d(v) for k, v in shower.as_dict().items()}
            )
        return self.images(shower, tel_id, pointing_alt_rad, pointing_az_rad)[0]


# ---------------------------------------------------------------------- camera
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


class CameraSimulator:
    """
    DigiCam detector model: R1 waveforms, camera trigger, ADC samples.

    Parameters
    ----------
    subarray : ctapipe.instrument.SubarrayDescription
    rng : numpy.random.Generator
    nsb_rate_mhz : float or dict
        Night-sky-background photo-electron rate per pixel (MHz), or {tel_id: rate}.
    electronic_noise_pe : float
        Gaussian electronic noise per sample, in R1 units (p.e. per sample).
    gain_spread : float
        Relative rms of the pixel gains (residual miscalibration), drawn once per telescope.
    spe_resolution : float
        Relative rms of the single-p.e. amplitude.
    trigger_threshold_pe : float
        Camera trigger: threshold on the signal of a 7-pixel cluster summed over
        ``trigger_window_samples`` consecutive samples (p.e.).
    trigger_window_samples : int
    """

    def __init__(
        self,
        subarray,
        rng=None,
        nsb_rate_mhz=80.0,
        electronic_noise_pe=0.1,
        gain_spread=0.05,
        spe_resolution=0.1,
        trigger_threshold_pe=30.0,
        trigger_window_samples=3,
    ):
        self.subarray = subarray
        self.rng = rng if rng is not None else np.random.default_rng()
        self.electronic_noise_pe = float(electronic_noise_pe)
        self.gain_spread = float(gain_spread)
        self.spe_resolution = float(spe_resolution)
        self.trigger_threshold_pe = float(trigger_threshold_pe)
        self.trigger_window_samples = int(trigger_window_samples)
        self._table = pulse_table()
        self._inverse_step = 1.0 / _PHASE_STEP_NS
        # NSB p.e. whose pulse reaches the window: pulse start in (-support, window end)
        support_ns = _PULSE_SUPPORT_SAMPLES * SAMPLE_NS
        self._nsb_t_min = PULSE_PEAK_NS - support_ns
        self._nsb_t_max = PULSE_PEAK_NS + N_SAMPLES * SAMPLE_NS
        self.nsb_rate_mhz = {}
        self.gain = {}
        self._cluster = {}
        for tel_id in sorted(subarray.tel):
            rate = (
                nsb_rate_mhz[tel_id] if isinstance(nsb_rate_mhz, dict) else nsb_rate_mhz
            )
            self.nsb_rate_mhz[tel_id] = float(rate)
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
        return self.nsb_rate_mhz[tel_id] * 1e-3 * SAMPLE_NS * self.gain[tel_id]

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
        rate_per_ns = self.nsb_rate_mhz[tel_id] * 1e-3
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
