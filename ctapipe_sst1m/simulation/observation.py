"""
Observations of the fast SST-1M simulation: a source tracked from Ondrejov in wobble mode,
with cosmic-ray background at its measured rate.

`ObservationSimulator` draws the showers that reach the array during a run, in time order:
gammas from a point source with a power-law or log-parabola spectrum (by default the Crab,
HEGRA or MAGIC parametrisation), and protons and electrons arriving isotropically with
their measured spectra (pyirf's DAMPE p+He and CTA IRF-document spectra). The pointing
tracks the wobble position, so the Alt/Az of the pointing and of the source follow the
event times. Every shower goes through the same image and camera model as the
productions (`~ctapipe_sst1m.simulation.images.ShowerImager`,
`~ctapipe_sst1m.simulation.camera.CameraSimulator`); the events where a camera triggers
are returned with their true time. ``docs/simulation.md`` (observations) gives the rates.
"""

from dataclasses import dataclass

import astropy.units as u
import numpy as np
from astropy.coordinates import AltAz, SkyCoord
from ctapipe.core import Component
from ctapipe.core.traits import CaselessStrEnum, Float, Unicode
from pyirf.spectral import (
    CRAB_HEGRA,
    CRAB_MAGIC_JHEAP2015,
    IRFDOC_ELECTRON_SPECTRUM,
    IRFDOC_PROTON_SPECTRUM,
    DAMPE_P_He_SPECTRUM,
    LogParabola,
    PowerLaw,
)

from ..time import tai_ns
from .schedule import array_location
from .showers import Shower, ShowerSampler

__all__ = [
    "SOURCE_SPECTRA",
    "COSMIC_RAY_SPECTRA",
    "ObservedEvent",
    "ObservationSimulator",
]

#: named spectra of the point source (pyirf): the Crab of HEGRA (Aharonian et al. 2004,
#: ApJ 614, 897: 2.83e-11 (E/TeV)^-2.62 cm-2 s-1 TeV-1) and of MAGIC (Aleksic et al.
#: 2015, JHEAp 5-6, 30: log-parabola 3.23e-11 (E/TeV)^(-2.47 - 0.24 log10(E/TeV)))
SOURCE_SPECTRA = {"crab_hegra": CRAB_HEGRA, "crab_magic": CRAB_MAGIC_JHEAP2015}
#: isotropic backgrounds (pyirf): protons (DAMPE proton + helium, or the CTA IRF-document
#: proton power law) and electrons (CTA IRF-document electron spectrum)
COSMIC_RAY_SPECTRA = {
    "DAMPE_P_He": DAMPE_P_He_SPECTRUM,
    "IRFDOC_PROTON": IRFDOC_PROTON_SPECTRUM,
    "IRFDOC_ELECTRON": IRFDOC_ELECTRON_SPECTRUM,
}
#: CORSIKA id of electrons (their showers are drawn like gamma showers)
ELECTRON_ID = 3
#: proposal power laws of the rejection sampling of the energies: harder than every
#: spectrum above, so that the ratio spectrum / proposal is bounded by its value at the
#: lowest energy or on the grid
_PROPOSAL_INDEX = {"gamma": -1.5, "proton": -2.4, "electron": -2.4}
_ENERGY_GRID_POINTS = 2000


@dataclass
class ObservedEvent:
    """A shower of an observation that triggered at least one camera."""

    #: true trigger time (integer ns, TAI)
    time_ns: int
    #: "gamma", "proton" or "electron"
    particle: str
    #: the shower (scalars)
    shower: Shower
    #: pointing of the array at the event (rad)
    pointing_alt_rad: float
    pointing_az_rad: float
    #: R1 waveforms of the triggered telescopes, ``{tel_id: (1, n_pixels, n_samples)}``
    r1: dict


def _differential_flux(spectrum, energy_tev):
    """Spectrum in units of 1 / (m² s TeV) for a point source, 1 / (m² s TeV sr) diffuse."""
    flux = spectrum(energy_tev * u.TeV)
    unit = u.Unit("m-2 s-1 TeV-1")
    if flux.unit.is_equivalent(unit / u.sr):
        return flux.to_value(unit / u.sr)
    return flux.to_value(unit)


@dataclass(frozen=True)
class _PoissonEnergies:
    """
    Rejection sampling of a spectrum under a power-law envelope: proposals of
    ``E^index`` at an expected number ``envelope_integral`` per unit exposure, accepted
    with probability spectrum / envelope (a thinned Poisson process: the accepted
    energies are a Poisson process of the spectrum).
    """

    spectrum: object
    index: float
    energy_min_tev: float
    energy_max_tev: float
    #: envelope K E^index >= spectrum on [E_min, E_max]
    amplitude: float
    #: ∫ K E^index dE over [E_min, E_max]
    envelope_integral: float
    #: ∫ spectrum dE (for the report of the rates)
    integral: float

    @classmethod
    def build(cls, spectrum, index, energy_min_tev, energy_max_tev):
        energy = np.geomspace(energy_min_tev, energy_max_tev, _ENERGY_GRID_POINTS)
        flux = _differential_flux(spectrum, energy)
        # 1 % margin over the grid maximum: the grid is 2000 points per range
        amplitude = 1.01 * np.max(flux / energy**index)
        g = index + 1.0
        envelope_integral = amplitude * (energy_max_tev**g - energy_min_tev**g) / g
        integral = np.trapezoid(flux * energy, np.log(energy))
        return cls(
            spectrum,
            index,
            energy_min_tev,
            energy_max_tev,
            amplitude,
            envelope_integral,
            integral,
        )

    def acceptance(self, energy_tev):
        """Probability to keep a proposal of this energy."""
        flux = _differential_flux(self.spectrum, energy_tev)
        return flux / (self.amplitude * energy_tev**self.index)


class ObservationSimulator(Component):
    """
    A wobble observation of a point source with cosmic-ray background, shower by shower.

    Rates: a point source of differential flux F(E) gives ``F(E) · π R² cos Z`` showers
    per second and TeV with cores uniform on the ground disk of radius R (the disk seen
    from the source, zenith distance Z, has the area π R² cos Z); an isotropic flux J(E)
    (per steradian) within ``viewcone_deg`` of the pointing gives ``J(E) π R² ∫ cos θ_z dΩ``.
    Energies are drawn by rejection under a power-law envelope (the accepted showers are
    a Poisson process of the spectrum). The background is thinned by
    ``background_fraction``: the protons and electrons of the simulation are that
    fraction of those of the sky (the analysis estimates the background from the data;
    its level is lower by this factor).

    The pointing and the source move over the sky: the run is cut into slices of
    ``time_slice_s``, in which the showers are drawn for the Alt/Az of the pointing and
    of the source at the middle of the slice, and their times uniformly in the slice
    (in the camera the source moves only by the field rotation, ≤ 0.35 °/min at
    Ondrejov for the Crab, 0.001° at 0.4° offset in 5 s).

    Showers whose expected light (`ShowerImager.shower_geometry`, no fluctuation) is
    below ``prescreen_pe`` photo-electrons in every telescope are counted but not
    imaged: they cannot trigger (``tests/test_observation.py`` checks it on showers
    imaged regardless), and they are most of the protons.

    Parameters
    ----------
    imager : ctapipe_sst1m.simulation.images.ShowerImager
    camera : ctapipe_sst1m.simulation.camera.CameraSimulator
    rng : numpy.random.Generator
        Shared with ``imager`` and ``camera``: one seed reproduces the observation.
    """

    target_name = Unicode(
        default_value="Crab", help="Name of the source (the TARGET keyword)."
    ).tag(config=True)
    target_ra_deg = Float(
        default_value=83.6331,
        min=0.0,
        max=360.0,
        help="Source right ascension (ICRS, deg).",
    ).tag(config=True)
    target_dec_deg = Float(
        default_value=22.0145,
        min=-90.0,
        max=90.0,
        help="Source declination (ICRS, deg).",
    ).tag(config=True)
    source_spectrum = CaselessStrEnum(
        ["crab_hegra", "crab_magic", "power_law", "log_parabola", "none"],
        default_value="crab_hegra",
        help=(
            "Spectrum of the source: the Crab of HEGRA (power law) or of MAGIC"
            " (log-parabola), a power law or log-parabola of source_amplitude,"
            " source_index, source_curvature, or none (an empty field)."
        ),
    ).tag(config=True)
    source_amplitude = Float(
        default_value=2.83e-11,
        min=0.0,
        help="power_law/log_parabola: dN/dE at 1 TeV (cm-2 s-1 TeV-1).",
    ).tag(config=True)
    source_index = Float(
        default_value=-2.62,
        min=-6.0,
        max=0.0,
        help="power_law/log_parabola: spectral index at 1 TeV.",
    ).tag(config=True)
    source_curvature = Float(
        default_value=0.0,
        max=0.0,
        help="log_parabola: b of (E/TeV)^(index + b log10(E/TeV)) (pyirf's convention).",
    ).tag(config=True)
    proton_spectrum = CaselessStrEnum(
        ["DAMPE_P_He", "IRFDOC_PROTON", "none"],
        default_value="DAMPE_P_He",
        help="Cosmic-ray protons (DAMPE p+He: helium counted as protons of the same energy).",
    ).tag(config=True)
    electrons = CaselessStrEnum(
        ["IRFDOC_ELECTRON", "none"],
        default_value="IRFDOC_ELECTRON",
        help="Cosmic-ray electrons (showers drawn as gamma showers).",
    ).tag(config=True)
    background_fraction = Float(
        default_value=0.02,
        min=0.0,
        max=1.0,
        help=(
            "Fraction of the cosmic-ray protons and electrons of the sky that are"
            " simulated (thinning: CPU cost; the background level is lower by it)."
        ),
    ).tag(config=True)
    gamma_energy_min_tev = Float(
        default_value=0.2, min=0.0, help="Lowest gamma/electron energy (TeV)."
    ).tag(config=True)
    proton_energy_min_tev = Float(
        default_value=0.4, min=0.0, help="Lowest proton energy (TeV)."
    ).tag(config=True)
    energy_max_tev = Float(
        default_value=300.0, min=0.0, help="Highest energy (TeV)."
    ).tag(config=True)
    gamma_max_impact_m = Float(
        default_value=500.0, min=0.0, help="Core scatter radius of gammas (m)."
    ).tag(config=True)
    background_max_impact_m = Float(
        default_value=800.0,
        min=0.0,
        help="Core scatter radius of protons and electrons (m).",
    ).tag(config=True)
    background_viewcone_deg = Float(
        default_value=8.0,
        min=0.0,
        max=30.0,
        help="Protons and electrons arrive within this angle of the pointing (deg).",
    ).tag(config=True)
    time_slice_s = Float(
        default_value=10.0,
        min=0.1,
        help="Pointing and source Alt/Az are computed at the middle of slices this long (s).",
    ).tag(config=True)
    prescreen_pe = Float(
        default_value=15.0,
        min=0.0,
        help=(
            "Showers with less expected light (p.e., before fluctuations) in every"
            " telescope, or whose image centre is farther than prescreen_margin_deg"
            " outside every camera, are not imaged (they cannot trigger)."
        ),
    ).tag(config=True)
    prescreen_margin_deg = Float(
        default_value=1.5,
        min=0.0,
        help="Image centres up to this far outside the camera are imaged (deg).",
    ).tag(config=True)

    def __init__(self, imager, camera, rng, config=None, parent=None, **kwargs):
        super().__init__(config=config, parent=parent, **kwargs)
        self.imager = imager
        self.camera = camera
        self.rng = rng
        self.location = array_location()
        self._prescreen_reach_m = self._camera_reach_m()
        self.target = SkyCoord(
            ra=self.target_ra_deg * u.deg, dec=self.target_dec_deg * u.deg, frame="icrs"
        )
        self._components = self._build_components()
        #: thrown, prescreened-out and triggered showers per particle
        self.counts = {
            name: dict(thrown=0, not_imaged=0, triggered=0) for name in self._components
        }

    def _source_model(self):
        if self.source_spectrum in SOURCE_SPECTRA:
            return SOURCE_SPECTRA[self.source_spectrum]
        amplitude = self.source_amplitude * u.Unit("cm-2 s-1 TeV-1")
        if self.source_spectrum == "power_law":
            return PowerLaw(amplitude, self.source_index)
        return LogParabola(amplitude, self.source_index, self.source_curvature)

    def _build_components(self):
        components = {}
        e_max = self.energy_max_tev
        if self.source_spectrum != "none":
            components["gamma"] = _PoissonEnergies.build(
                self._source_model(),
                _PROPOSAL_INDEX["gamma"],
                self.gamma_energy_min_tev,
                e_max,
            )
        if self.background_fraction > 0 and self.proton_spectrum != "none":
            components["proton"] = _PoissonEnergies.build(
                COSMIC_RAY_SPECTRA[self.proton_spectrum],
                _PROPOSAL_INDEX["proton"],
                self.proton_energy_min_tev,
                e_max,
            )
        if self.background_fraction > 0 and self.electrons != "none":
            components["electron"] = _PoissonEnergies.build(
                COSMIC_RAY_SPECTRA[self.electrons],
                _PROPOSAL_INDEX["electron"],
                self.gamma_energy_min_tev,
                e_max,
            )
        return components

    def expected_rates_hz(self, zenith_deg):
        """
        Showers per second reaching the simulated areas (before any trigger), per
        particle, for a pointing (and source) at this zenith distance.
        """
        cos_z = np.cos(np.deg2rad(zenith_deg))
        rates = {}
        for name, energies in self._components.items():
            if name == "gamma":
                area = np.pi * self.gamma_max_impact_m**2 * cos_z
                rates[name] = energies.integral * area
            else:
                area = np.pi * self.background_max_impact_m**2
                rates[name] = (
                    self.background_fraction
                    * energies.integral
                    * area
                    * self._cone_cosine_integral(zenith_deg)
                )
        return rates

    def _cone_cosine_integral(self, zenith_deg):
        """∫ cos θ_z dΩ over the viewcone around a pointing at this zenith distance (sr)."""
        theta = np.deg2rad(self.background_viewcone_deg)
        zenith = np.deg2rad(zenith_deg)
        # the mean of cos θ_z over a cone is cos Z times the mean of cos θ (exact)
        solid_angle = 2 * np.pi * (1 - np.cos(theta))
        mean_cos_offset = (1 + np.cos(theta)) / 2
        return solid_angle * np.cos(zenith) * mean_cos_offset

    def run(self, start, duration_s, pointing):
        """
        The triggered showers of a run, in time order.

        Parameters
        ----------
        start : astropy.time.Time
            Start of the run.
        duration_s : float
            Length of the run (s).
        pointing : astropy.coordinates.SkyCoord
            The tracked position (ICRS), e.g. `wobble_pointing`.

        Yields
        ------
        ObservedEvent
        """
        start_ns = int(tai_ns(start))
        n_slices = max(int(np.ceil(duration_s / self.time_slice_s)), 1)
        slice_ns = int(round(duration_s * 1e9 / n_slices))
        for k in range(n_slices):
            slice_start = start_ns + k * slice_ns
            middle = start + ((k + 0.5) * slice_ns) * u.ns
            frame = AltAz(obstime=middle, location=self.location)
            pointing_altaz = pointing.transform_to(frame)
            source_altaz = self.target.transform_to(frame)
            showers = [
                (name, self._draw(name, pointing_altaz, source_altaz, slice_ns * 1e-9))
                for name in self._components
            ]
            yield from self._triggered(showers, slice_start, slice_ns, pointing_altaz)

    def _draw(self, name, pointing_altaz, source_altaz, seconds):
        """Showers of one particle in one slice (a `Shower` batch)."""
        energies = self._components[name]
        zenith_deg = 90.0 - pointing_altaz.alt.to_value(u.deg)
        if name == "gamma":
            cos_z = np.sin(source_altaz.alt.to_value(u.rad))
            area = np.pi * self.gamma_max_impact_m**2 * cos_z
            offset = pointing_altaz.separation(source_altaz).to_value(u.deg)
            angle = pointing_altaz.position_angle(source_altaz).to_value(u.deg)
            sampler = ShowerSampler(
                particle="gamma",
                spectrum="point",
                energy_min_tev=energies.energy_min_tev,
                energy_max_tev=energies.energy_max_tev,
                spectral_index=energies.index,
                max_impact_m=self.gamma_max_impact_m,
                pointing_alt_deg=90.0 - zenith_deg,
                pointing_az_deg=pointing_altaz.az.to_value(u.deg),
                source_offset_deg=offset,
                source_offset_direction_deg=angle,
                rng=self.rng,
            )
        else:
            # proposals at the largest cos θ_z of the cone, accepted with cos θ_z / that
            cos_max = np.cos(
                np.deg2rad(max(zenith_deg - self.background_viewcone_deg, 0.0))
            )
            area = (
                self.background_fraction
                * np.pi
                * self.background_max_impact_m**2
                * 2
                * np.pi
                * (1 - np.cos(np.deg2rad(self.background_viewcone_deg)))
                * cos_max
            )
            sampler = ShowerSampler(
                particle="proton" if name == "proton" else "gamma",
                spectrum="diffuse",
                energy_min_tev=energies.energy_min_tev,
                energy_max_tev=energies.energy_max_tev,
                spectral_index=energies.index,
                max_impact_m=self.background_max_impact_m,
                viewcone_deg=self.background_viewcone_deg,
                pointing_alt_deg=90.0 - zenith_deg,
                pointing_az_deg=pointing_altaz.az.to_value(u.deg),
                rng=self.rng,
            )
        n = self.rng.poisson(energies.envelope_integral * area * seconds)
        proposals = sampler.sample(n)
        acceptance = energies.acceptance(proposals.energy_tev)
        if name != "gamma":
            # isotropic flux through the ground: ∝ cos θ_z of each direction
            acceptance = acceptance * np.sin(proposals.alt_rad) / cos_max
        keep = self.rng.random(n) < acceptance
        showers = proposals[keep]
        if name == "electron":
            showers.primary_id = np.full(len(showers), ELECTRON_ID, dtype=np.int32)
        self.counts[name]["thrown"] += len(showers)
        return showers

    def _may_trigger(self, showers, alt, az):
        """Showers bright enough and close enough to a camera to be imaged (bool array)."""
        imaged = np.zeros(len(showers), dtype=bool)
        if len(showers) == 0:
            return imaged
        for tel_id, reach in self._prescreen_reach_m.items():
            geometry = self.imager.shower_geometry(showers, tel_id, alt, az)
            imaged |= (geometry["mean_pe_nominal"] >= self.prescreen_pe) & (
                np.hypot(geometry["cog_x"], geometry["cog_y"]) <= reach
            )
        return imaged

    def _camera_reach_m(self):
        """Per telescope, the largest image-centre distance (m) that is imaged."""
        reach = {}
        for tel_id, tel in self.imager.subarray.tel.items():
            camera = tel.camera.geometry
            focal_length = camera.frame.focal_length.to_value(u.m)
            radius = np.max(np.hypot(camera.pix_x, camera.pix_y)).to_value(u.m)
            margin = focal_length * np.deg2rad(self.prescreen_margin_deg)
            reach[tel_id] = radius + margin
        return reach

    def _triggered(self, showers_by_particle, slice_start_ns, slice_ns, pointing_altaz):
        """Times, prescreen, images and trigger of the showers of a slice, in time order."""
        alt = pointing_altaz.alt.to_value(u.rad)
        az = pointing_altaz.az.to_value(u.rad)
        entries = []
        for name, showers in showers_by_particle:
            times = slice_start_ns + self.rng.integers(0, slice_ns, len(showers))
            imaged = self._may_trigger(showers, alt, az)
            self.counts[name]["not_imaged"] += int(np.count_nonzero(~imaged))
            entries += [(times[i], name, showers[i]) for i in np.flatnonzero(imaged)]
        entries.sort(key=lambda entry: entry[0])
        for time_ns, name, shower in entries:
            r1 = {}
            for tel_id in self.imager.subarray.tel:
                image = self.imager.image(shower, tel_id, alt, az)
                waveform = self.camera.r1_waveform(
                    tel_id, image.n_pe, image.peak_time_ns
                )
                if self.camera.triggers(tel_id, waveform):
                    r1[tel_id] = waveform
            if r1:
                self.counts[name]["triggered"] += 1
                yield ObservedEvent(int(time_ns), name, shower, alt, az, r1)
