"""
Primary particles of the fast SST-1M simulation: energy, direction, core, shower maximum.

Pure numpy, vectorised: ``ShowerSampler.sample(n)`` returns a `Shower` batch of
``n`` showers. Every formula and number is documented in ``docs/simulation-model.md``.

Conventions (those of ctapipe):

* directions are horizontal coordinates, altitude and azimuth in radians, the
  azimuth counted from north towards east;
* the ground frame has x pointing north, y west, z up, origin at the array
  reference point (observation level, 511 m a.s.l. at Ondrejov);
* shower cores are points of the **ground plane** z = 0, uniform in a disk of
  radius ``max_impact_m`` around the origin (so the simulated area is
  ``pi max_impact_m**2`` on the ground, not in the shower plane).
"""

from dataclasses import dataclass, fields

import numpy as np

__all__ = [
    "SHOWER_PARTICLES",
    "OBSERVATION_LEVEL_M",
    "ATMOSPHERE_SCALE_HEIGHT_M",
    "ATMOSPHERE_SEA_LEVEL_DEPTH_GCM2",
    "Shower",
    "ShowerSampler",
    "direction_vector",
    "height_of_slant_depth",
    "mean_x_max_gcm2",
    "slant_depth_of_height",
]

#: CORSIKA particle ids
SHOWER_PARTICLES = {"gamma": 0, "proton": 101}

#: height of the array reference point (Ondrejov), m a.s.l.
OBSERVATION_LEVEL_M = 511.0
#: isothermal (exponential) atmosphere: X_vert(h) = X0 exp(-h / H)
ATMOSPHERE_SCALE_HEIGHT_M = 8400.0
ATMOSPHERE_SEA_LEVEL_DEPTH_GCM2 = 1030.0

#: radiation length of air (g/cm^2) and critical energy of electrons in air (TeV)
RADIATION_LENGTH_GCM2 = 36.7
CRITICAL_ENERGY_TEV = 85e-6

#: mean free path of the first interaction (g/cm^2): gamma pair production 9/7 X_0;
#: proton-air inelastic interaction length m_air / sigma_p-air, sigma ~ 300 mb at TeV
FIRST_INTERACTION_LENGTH_GCM2 = {
    "gamma": 9.0 / 7.0 * RADIATION_LENGTH_GCM2,
    "proton": 80.0,
}

#: Heitler-Matthews proton shower maximum <X_max> = a + b log10(E / 1 PeV) (g/cm^2)
#: (J. Matthews 2005, Astropart. Phys. 22, 387)
_PROTON_XMAX_1PEV_GCM2 = 470.0
_PROTON_ELONGATION_GCM2 = 58.0

#: rms (g/cm^2) of the development after the first interaction, added to the
#: exponential fluctuation of the first interaction depth
_XMAX_DEVELOPMENT_RMS_GCM2 = {"gamma": 20.0, "proton": 40.0}
#: showers whose maximum would be below this height above the observation level are
#: given a maximum there (only deep, very high energy, low altitude showers)
_MIN_HEIGHT_ABOVE_GROUND_M = 500.0


def direction_vector(alt_rad, az_rad):
    """
    Unit vector(s) in the ground frame (x north, y west, z up) towards (alt, az).

    Returns
    -------
    numpy.ndarray
        shape ``(..., 3)``
    """
    alt = np.asarray(alt_rad, dtype=float)
    az = np.asarray(az_rad, dtype=float)
    cos_alt = np.cos(alt)
    return np.stack([cos_alt * np.cos(az), -cos_alt * np.sin(az), np.sin(alt)], axis=-1)


def _alt_az_of_vector(v):
    v = np.asarray(v, dtype=float)
    norm = np.linalg.norm(v, axis=-1)
    alt = np.arcsin(np.clip(v[..., 2] / norm, -1, 1))
    az = np.mod(np.arctan2(-v[..., 1], v[..., 0]), 2 * np.pi)
    return alt, az


def slant_depth_of_height(height_m, zenith_rad):
    """Slant depth (g/cm^2) at a height a.s.l. along a direction of this zenith angle (flat Earth)."""
    vertical = ATMOSPHERE_SEA_LEVEL_DEPTH_GCM2 * np.exp(
        -np.asarray(height_m) / ATMOSPHERE_SCALE_HEIGHT_M
    )
    return vertical / np.cos(zenith_rad)


def height_of_slant_depth(depth_gcm2, zenith_rad):
    """Height a.s.l. (m) of a slant depth along a direction of this zenith angle (flat Earth)."""
    vertical = np.asarray(depth_gcm2, dtype=float) * np.cos(zenith_rad)
    vertical = np.maximum(vertical, 1e-3)
    return -ATMOSPHERE_SCALE_HEIGHT_M * np.log(
        vertical / ATMOSPHERE_SEA_LEVEL_DEPTH_GCM2
    )


def mean_x_max_gcm2(particle, energy_tev):
    """
    Mean slant depth of the shower maximum (g/cm^2) of a gamma or proton shower.

    Gammas: Heitler model, ``X_0 ln(E / E_c)`` (elongation X_0 ln 10 = 84.5 g/cm^2 per
    decade); protons: Heitler-Matthews, ``470 + 58 log10(E / 1 PeV)``.
    """
    energy = np.asarray(energy_tev, dtype=float)
    if particle == "gamma":
        return RADIATION_LENGTH_GCM2 * np.log(energy / CRITICAL_ENERGY_TEV)
    if particle == "proton":
        return _PROTON_XMAX_1PEV_GCM2 + _PROTON_ELONGATION_GCM2 * np.log10(
            energy / 1000.0
        )
    raise ValueError(
        f"particle must be one of {list(SHOWER_PARTICLES)}, got {particle!r}"
    )


@dataclass
class Shower:
    """
    A batch of showers (numpy arrays of equal length) or, indexed with an
    integer, a single shower (numpy scalars).
    """

    #: primary energy (TeV)
    energy_tev: np.ndarray
    #: true altitude and azimuth of the shower direction (where it comes from), rad
    alt_rad: np.ndarray
    az_rad: np.ndarray
    #: core position on the ground plane, ground frame relative to the array reference (m)
    core_x_m: np.ndarray
    core_y_m: np.ndarray
    #: height a.s.l. of the first interaction (m)
    h_first_int_m: np.ndarray
    #: slant depth of the shower maximum (g/cm^2)
    x_max_gcm2: np.ndarray
    #: height a.s.l. of the shower maximum (m)
    h_max_m: np.ndarray
    #: CORSIKA particle id (0 gamma, 101 proton)
    primary_id: np.ndarray

    def __len__(self):
        return np.size(self.energy_tev)

    def __getitem__(self, index):
        return Shower(**{f.name: getattr(self, f.name)[index] for f in fields(self)})

    @property
    def direction(self):
        """Unit vector(s) towards the shower origin, ground frame, shape (..., 3)."""
        return direction_vector(self.alt_rad, self.az_rad)

    @property
    def core(self):
        """Core position(s) on the ground plane z = 0, shape (..., 3)."""
        x = np.asarray(self.core_x_m, dtype=float)
        return np.stack(
            [x, np.asarray(self.core_y_m, dtype=float), np.zeros_like(x)], axis=-1
        )

    def as_dict(self):
        """The fields as a dict of arrays."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def concatenate(cls, showers):
        """One batch from several batches."""
        return cls(
            **{
                f.name: np.concatenate(
                    [np.atleast_1d(getattr(s, f.name)) for s in showers]
                )
                for f in fields(cls)
            }
        )


def sample_power_law(rng, n, e_min, e_max, index):
    """Energies following dN/dE ∝ E**index between e_min and e_max (inverse CDF)."""
    u = rng.random(n)
    g = index + 1.0
    if abs(g) < 1e-12:
        return e_min * (e_max / e_min) ** u
    return (e_min**g + u * (e_max**g - e_min**g)) ** (1.0 / g)


def _offset_directions(alt_p, az_p, theta, phi):
    """Directions at angular distance theta from (alt_p, az_p), position angle phi
    (phi = 0 towards higher altitude, pi/2 towards higher azimuth)."""
    p = direction_vector(alt_p, az_p)
    # unit vectors of increasing altitude and increasing azimuth at the pointing
    e_alt = np.array(
        [-np.sin(alt_p) * np.cos(az_p), np.sin(alt_p) * np.sin(az_p), np.cos(alt_p)]
    )
    e_az = np.array([-np.sin(az_p), -np.cos(az_p), 0.0])
    theta = np.asarray(theta)[..., np.newaxis]
    phi = np.asarray(phi)[..., np.newaxis]
    v = np.cos(theta) * p + np.sin(theta) * (np.cos(phi) * e_alt + np.sin(phi) * e_az)
    return _alt_az_of_vector(v)


class ShowerSampler:
    """
    Draws primaries: power-law energies, point-like or diffuse directions, cores on the
    ground, first interaction and shower maximum.

    Parameters
    ----------
    particle : str
        "gamma" or "proton".
    spectrum : str
        "point": every shower comes from the source, ``source_offset_deg`` from the
        pointing towards higher altitude (``source_offset_direction_deg`` = 0) -- a
        wobble position; "diffuse": uniform in solid angle within ``viewcone_deg``
        around the pointing.
    energy_min_tev, energy_max_tev, spectral_index : float
        dN/dE ∝ E**spectral_index between the limits.
    max_impact_m : float
        Cores uniform on the ground in a disk of this radius around the array reference.
    viewcone_deg : float
        Opening half-angle of the diffuse cone (0 for "point").
    pointing_alt_deg, pointing_az_deg : float
        Telescope pointing (both telescopes point parallel).
    source_offset_deg : float
        Wobble offset of the point source from the pointing.
    source_offset_direction_deg : float
        Position angle of the wobble offset: 0 = +altitude, 90 = +azimuth.
    rng : numpy.random.Generator
    """

    def __init__(
        self,
        particle="gamma",
        spectrum="point",
        energy_min_tev=0.2,
        energy_max_tev=300.0,
        spectral_index=-2.0,
        max_impact_m=500.0,
        viewcone_deg=0.0,
        pointing_alt_deg=70.0,
        pointing_az_deg=180.0,
        source_offset_deg=0.4,
        source_offset_direction_deg=0.0,
        rng=None,
    ):
        if particle not in SHOWER_PARTICLES:
            raise ValueError(
                f"particle must be one of {list(SHOWER_PARTICLES)}, got {particle!r}"
            )
        if spectrum not in ("point", "diffuse"):
            raise ValueError(f"spectrum must be 'point' or 'diffuse', got {spectrum!r}")
        if not 0 < energy_min_tev < energy_max_tev:
            raise ValueError("need 0 < energy_min_tev < energy_max_tev")
        self.particle = particle
        self.spectrum = spectrum
        self.energy_min_tev = float(energy_min_tev)
        self.energy_max_tev = float(energy_max_tev)
        self.spectral_index = float(spectral_index)
        self.max_impact_m = float(max_impact_m)
        self.viewcone_deg = float(viewcone_deg)
        self.pointing_alt_deg = float(pointing_alt_deg)
        self.pointing_az_deg = float(pointing_az_deg)
        self.source_offset_deg = float(source_offset_deg)
        self.source_offset_direction_deg = float(source_offset_direction_deg)
        self.rng = rng if rng is not None else np.random.default_rng()

    @property
    def source_alt_az_rad(self):
        """Direction (alt, az) in rad of the point source."""
        alt, az = _offset_directions(
            np.deg2rad(self.pointing_alt_deg),
            np.deg2rad(self.pointing_az_deg),
            np.deg2rad(self.source_offset_deg),
            np.deg2rad(self.source_offset_direction_deg),
        )
        return float(alt), float(az)

    def sample(self, n):
        """Draw ``n`` showers, returns a `Shower` batch."""
        rng = self.rng
        n = int(n)
        energy = sample_power_law(
            rng, n, self.energy_min_tev, self.energy_max_tev, self.spectral_index
        )
        alt_p = np.deg2rad(self.pointing_alt_deg)
        az_p = np.deg2rad(self.pointing_az_deg)
        if self.spectrum == "point":
            alt0, az0 = self.source_alt_az_rad
            alt, az = np.full(n, alt0), np.full(n, az0)
        else:
            cos_max = np.cos(np.deg2rad(self.viewcone_deg))
            theta = np.arccos(1.0 - rng.random(n) * (1.0 - cos_max))
            phi = rng.uniform(0, 2 * np.pi, n)
            alt, az = _offset_directions(alt_p, az_p, theta, phi)

        radius = self.max_impact_m * np.sqrt(rng.random(n))
        angle = rng.uniform(0, 2 * np.pi, n)
        core_x, core_y = radius * np.cos(angle), radius * np.sin(angle)

        zenith = np.pi / 2 - alt
        # X_max = X_1 + (<X_max> - <X_1>) + development fluctuation: the mean is the
        # published one, the rms that of the first interaction and of the development
        interaction_length = FIRST_INTERACTION_LENGTH_GCM2[self.particle]
        x_first = rng.exponential(interaction_length, n)
        x_max = (
            x_first
            + mean_x_max_gcm2(self.particle, energy)
            - interaction_length
            + rng.normal(0, _XMAX_DEVELOPMENT_RMS_GCM2[self.particle], n)
        )
        x_max = np.maximum(x_max, x_first + 10.0)
        # keep the maximum above the ground (deep showers: maximum at the floor height)
        x_floor = slant_depth_of_height(
            OBSERVATION_LEVEL_M + _MIN_HEIGHT_ABOVE_GROUND_M, zenith
        )
        x_max = np.minimum(x_max, x_floor)
        x_first = np.minimum(x_first, x_max - 10.0)
        return Shower(
            energy_tev=energy,
            alt_rad=alt,
            az_rad=az,
            core_x_m=core_x,
            core_y_m=core_y,
            h_first_int_m=height_of_slant_depth(x_first, zenith),
            x_max_gcm2=x_max,
            h_max_m=height_of_slant_depth(x_max, zenith),
            primary_id=np.full(n, SHOWER_PARTICLES[self.particle], dtype=np.int32),
        )
