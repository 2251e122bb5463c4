"""
Cherenkov images of the fast SST-1M simulation.

`ShowerImager`: per telescope, the photo-electrons per pixel and their arrival
times for a `~ctapipe_sst1m.simulation.showers.Shower` (a parametric light-pool +
2D Gaussian image model, Poisson photo-electrons). The DigiCam waveforms of these
photo-electrons are `~ctapipe_sst1m.simulation.camera.CameraSimulator`'s.

Pure numpy, no file I/O. Every formula and number: ``docs/simulation-model.md``.
"""

from dataclasses import dataclass

import numpy as np
from ctapipe.core import TelescopeComponent
from ctapipe.core.traits import Float

from .showers import (
    ATMOSPHERE_SCALE_HEIGHT_M,
    OBSERVATION_LEVEL_M,
    SHOWER_PARTICLES,
    Shower,
    direction_vector,
    height_of_slant_depth,
    mean_x_max_gcm2,
)

__all__ = [
    "REFERENCE_POOL_RADIUS_M",
    "CherenkovImage",
    "ShowerImager",
    "altaz_to_camera",
    "light_pool_radius_m",
]

SPEED_OF_LIGHT_M_PER_NS = 0.299792458
#: refractive index of air at sea level minus 1 (scales with density, exp(-h / H))
_N_MINUS_ONE_SEA_LEVEL = 2.9e-4


def light_pool_radius_m(h_max_m, alt_rad):
    """
    Radius (m) of the Cherenkov light pool in the shower plane: the Cherenkov angle at
    the shower maximum times the distance from the maximum to the observation level
    along the axis.
    """
    h_max = np.asarray(h_max_m, dtype=float)
    theta_c = np.sqrt(
        2 * _N_MINUS_ONE_SEA_LEVEL * np.exp(-h_max / ATMOSPHERE_SCALE_HEIGHT_M)
    )
    return (h_max - OBSERVATION_LEVEL_M) / np.sin(alt_rad) * theta_c


#: pool radius (m) of a 1 TeV gamma shower at 20 deg zenith with the mean X_max: the
#: radius at which `ShowerImager.pe_per_tev` is the photo-electron yield
REFERENCE_POOL_RADIUS_M = float(
    light_pool_radius_m(
        height_of_slant_depth(mean_x_max_gcm2("gamma", 1.0), np.deg2rad(20.0)),
        np.deg2rad(70.0),
    )
)


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


class ShowerImager(TelescopeComponent):
    """
    Parametric Cherenkov image model of the SST-1M telescopes.

    Parameters
    ----------
    subarray : ctapipe.instrument.SubarrayDescription
        From ``sst1m_subarray((1, 2))``.
    rng : numpy.random.Generator
        Shared with the other parts of the simulation (the order of the draws is
        what makes a simulation reproducible).
    config, parent, **kwargs
        Of `ctapipe.core.Component`: the traits below.
    """

    pe_per_tev = Float(
        default_value=100.0,
        min=0.0,
        help=(
            "Mean photo-electrons per TeV of a gamma shower inside the light pool (whole"
            " image) when the pool has the reference radius (that of a 1 TeV gamma at 20"
            " deg zenith, mean X_max); the density scales as (reference radius / pool"
            " radius)**2."
        ),
    ).tag(config=True)
    proton_light_ratio = Float(
        default_value=0.4,
        min=0.0,
        max=10.0,
        help="Cherenkov light of a proton relative to a gamma of the same energy.",
    ).tag(config=True)
    hump_height = Float(
        default_value=0.3,
        min=0.0,
        max=5.0,
        help=(
            "Height of the Cherenkov ring (hump) at the pool radius of gamma showers,"
            " relative to the density inside the pool (protons have no hump)."
        ),
    ).tag(config=True)
    hump_width_m = Float(
        default_value=20.0,
        min=1.0,
        max=200.0,
        help="Gaussian rms (m) of the hump of the lateral distribution of gammas.",
    ).tag(config=True)
    tail_index_gamma = Float(
        default_value=2.5,
        min=0.5,
        max=10.0,
        help="Power-law index k of the lateral density of gammas beyond the pool radius, (b / r_pool)**-k.",
    ).tag(config=True)
    tail_index_proton = Float(
        default_value=2.0,
        min=0.5,
        max=10.0,
        help="Power-law index k of the lateral density of protons beyond the pool radius, (b / r_pool)**-k.",
    ).tag(config=True)
    time_offset_ns = Float(
        default_value=48.0,
        min=0.0,
        max=200.0,
        help="Pulse-peak time (ns) of the image centroid in the 200 ns readout window.",
    ).tag(config=True)
    time_jitter_ns = Float(
        default_value=2.0,
        min=0.0,
        max=50.0,
        help="Half-width (ns) of the uniform jitter of the trigger phase (same for all pixels of an event).",
    ).tag(config=True)

    def __init__(self, subarray, rng=None, config=None, parent=None, **kwargs):
        super().__init__(subarray, config=config, parent=parent, **kwargs)
        self.rng = rng if rng is not None else np.random.default_rng()
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

        # light pool: light emitted ~ E (less for hadrons) spread over the pool area;
        # lateral distribution: plateau, hump at the pool radius (gammas), power-law tail
        pool_radius = light_pool_radius_m(h_max, np.arcsin(direction[:, 2]))
        density = (
            self.pe_per_tev
            * energy
            * np.where(is_proton, self.proton_light_ratio, 1.0)
            * (REFERENCE_POOL_RADIUS_M / pool_radius) ** 2
        )
        tail_index = np.where(is_proton, self.tail_index_proton, self.tail_index_gamma)
        hump = np.where(is_proton, 0.0, self.hump_height) * np.exp(
            -0.5 * ((impact - pool_radius) / self.hump_width_m) ** 2
        )
        lateral = np.maximum(impact / pool_radius, 1.0) ** -tail_index + hump
        mean_pe = density * lateral

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

        # light yield: the shower's fluctuation is that of its X_max (pool radius, in
        # mean_pe_nominal); each telescope adds the local fluctuation of the light
        # density where it samples the pool (log-normal, unit mean)
        sigma_local = np.where(p, 0.25, np.clip(0.08 * g["energy"] ** -0.25, 0.03, 0.2))
        local = np.exp(sigma_local * rng.standard_normal(n) - 0.5 * sigma_local**2)
        mean_pe = g["mean_pe_nominal"] * local

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
