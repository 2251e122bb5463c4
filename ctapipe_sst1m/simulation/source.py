"""EventSource of the SST-1M fast simulation: showers with truth for the two-telescope array."""

from dataclasses import replace

import astropy.units as u
import numpy as np
from astropy.time import Time
from ctapipe.containers import (
    ArrayEventContainer,
    CoordinateFrameType,
    EventIndexContainer,
    EventType,
    ObservationBlockContainer,
    ObservingMode,
    PointingMode,
    R1CameraContainer,
    SchedulingBlockContainer,
    SchedulingBlockType,
    SimulatedCameraContainer,
    SimulatedEventContainer,
    SimulatedShowerContainer,
    SimulatedShowerDistribution,
    SimulationConfigContainer,
    TelescopeImpactParameterContainer,
    TelescopePointingContainer,
)
from ctapipe.core.traits import Bool
from ctapipe.io import DataLevel, EventSource
from tqdm.auto import tqdm

from ..instrument import GOOD_PIXEL_STATUS, SIMULATION_TEL_IDS, sst1m_subarray
from ..io.simulation_card import CARD_MARKER, read_card
from ..version import __version__ as __version__  # for ctapipe-info --plugins
from .camera import CameraSimulator
from .images import ShowerImager
from .showers import ShowerSampler

__all__ = ["SST1MSimulationSource", "SIMULATION_START_TIME"]

#: trigger time of the first simulated event (TAI); events follow at EVENT_SPACING
SIMULATION_START_TIME = Time("2024-01-01T00:00:00", scale="tai")
EVENT_SPACING_NS = 1_000_000
#: observation level of the simulation (Ondrejov)
OBSERVATION_LEVEL = 511.0 * u.m

_ENERGY_BINS_PER_DECADE = 10
_CORE_BINS = 50


class SST1MSimulationSource(EventSource):
    """
    Simulated SST-1M events (telescopes 1 and 2) from a simulation card.

    The input is a YAML card (``sst1m-simulate`` writes one; see
    `ctapipe_sst1m.io.simulation_card`): primaries, spectrum, pointing, number of
    showers, seed. Events where at least one camera triggers are yielded with R1
    waveforms, true images, impacts and the simulated shower; the simulation
    configuration and the distribution of all thrown showers (energy x core
    distance) are provided for the normalisation of IRFs. Deterministic for a card
    and a configuration.

    The card is the production; the detector is configured like any ctapipe
    component, through its children `~ctapipe_sst1m.simulation.images.ShowerImager`
    and `~ctapipe_sst1m.simulation.camera.CameraSimulator` (e.g.
    ``--CameraSimulator.nsb_rate_mhz=120`` or a ``CameraSimulator:`` section of
    the configuration file).
    """

    progress_bar = Bool(
        default_value=False,
        help=(
            "Show a progress bar over the thrown showers (their number is known from the"
            " card, that of the triggered events is not)."
        ),
    ).tag(config=True)

    def __init__(self, input_url=None, config=None, parent=None, **kwargs):
        super().__init__(input_url=input_url, config=config, parent=parent, **kwargs)
        self.card = read_card(self.input_url)
        tel_ids = sorted(self.allowed_tels) if self.allowed_tels else SIMULATION_TEL_IDS
        self._subarray = sst1m_subarray(tuple(tel_ids))
        card = self.card
        self._rng = np.random.default_rng(card.seed)
        self.sampler = ShowerSampler(
            particle=card.particle,
            spectrum=card.spectrum,
            energy_min_tev=card.energy_min_tev,
            energy_max_tev=card.energy_max_tev,
            spectral_index=card.spectral_index,
            max_impact_m=card.max_impact_m,
            viewcone_deg=card.viewcone_deg,
            pointing_alt_deg=card.pointing_alt_deg,
            pointing_az_deg=card.pointing_az_deg,
            source_offset_deg=card.source_offset_deg,
            rng=self._rng,
        )
        self.imager = ShowerImager(self._subarray, self._rng, parent=self)
        self.camera = CameraSimulator(self._subarray, self._rng, parent=self)
        if card.nsb_rate_mhz:
            self._set_nsb_rates(card.nsb_rate_mhz)
        self._pointing_alt = np.deg2rad(card.pointing_alt_deg)
        self._pointing_az = np.deg2rad(card.pointing_az_deg)
        self._thrown_energy = []
        self._thrown_core_distance = []
        self.n_thrown = 0
        self.n_triggered = 0

    def _set_nsb_rates(self, rates):
        """The card's NSB rate per telescope, over the CameraSimulator configuration."""
        unknown = set(rates) - set(SIMULATION_TEL_IDS)
        if unknown:
            raise ValueError(
                f"{self.input_url}: nsb_rate_mhz for unknown telescopes {sorted(unknown)}"
                f" (the simulation has {list(SIMULATION_TEL_IDS)})"
            )
        rules = list(self.camera.nsb_rate_mhz)
        rules += [("id", tel_id, rate) for tel_id, rate in rates.items()]
        self.camera.nsb_rate_mhz = rules
        self.camera.nsb_rate_mhz.attach_subarray(self._subarray)

    @staticmethod
    def is_compatible(file_path):
        """True for a YAML file whose first key is the simulation card marker."""
        try:
            with open(file_path, "rb") as f:
                start = f.read(256)
        except (OSError, TypeError):
            return False
        return start.lstrip().startswith(CARD_MARKER.encode())

    @property
    def subarray(self):
        return self._subarray

    @property
    def is_simulation(self):
        return True

    @property
    def datalevels(self):
        return (DataLevel.R1,)

    @property
    def simulation_config(self):
        card = self.card
        viewcone = card.viewcone_deg if card.spectrum == "diffuse" else 0.0
        config = SimulationConfigContainer(
            run_number=np.int32(card.obs_id),
            energy_range_min=card.energy_min_tev * u.TeV,
            energy_range_max=card.energy_max_tev * u.TeV,
            prod_site_alt=OBSERVATION_LEVEL,
            spectral_index=card.spectral_index,
            n_showers=card.n_showers,
            shower_reuse=card.shower_reuse,
            max_alt=self._pointing_alt * u.rad,
            min_alt=self._pointing_alt * u.rad,
            max_az=self._pointing_az * u.rad,
            min_az=self._pointing_az * u.rad,
            diffuse=card.spectrum == "diffuse",
            max_viewcone_radius=viewcone * u.deg,
            min_viewcone_radius=0.0 * u.deg,
            max_scatter_range=card.max_impact_m * u.m,
            min_scatter_range=0.0 * u.m,
            core_pos_mode=1,
            detector_prog_id=1000,
            shower_prog_id=1000,
        )
        return {card.obs_id: config}

    @property
    def observation_blocks(self):
        card = self.card
        return {
            card.obs_id: ObservationBlockContainer(
                obs_id=np.uint64(card.obs_id),
                sb_id=np.uint64(card.obs_id),
                producer_id="SST-1M simulation",
                subarray_pointing_lat=card.pointing_alt_deg * u.deg,
                subarray_pointing_lon=card.pointing_az_deg * u.deg,
                subarray_pointing_frame=CoordinateFrameType.ALTAZ,
            )
        }

    @property
    def scheduling_blocks(self):
        card = self.card
        return {
            card.obs_id: SchedulingBlockContainer(
                sb_id=np.uint64(card.obs_id),
                sb_type=SchedulingBlockType.OBSERVATION,
                producer_id="SST-1M simulation",
                observing_mode=ObservingMode.WOBBLE
                if card.spectrum == "point"
                else ObservingMode.UNKNOWN,
                pointing_mode=PointingMode.DRIFT,
            )
        }

    @property
    def simulated_shower_distributions(self):
        """Histogram of all thrown showers (energy x core distance), complete after iteration."""
        card = self.card
        decades = np.log10(card.energy_max_tev / card.energy_min_tev)
        energy_bins = np.geomspace(
            card.energy_min_tev,
            card.energy_max_tev,
            int(np.ceil(decades * _ENERGY_BINS_PER_DECADE)) + 1,
        )
        core_bins = np.linspace(0, card.max_impact_m, _CORE_BINS + 1)
        energy = (
            np.concatenate(self._thrown_energy) if self._thrown_energy else np.empty(0)
        )
        core = (
            np.concatenate(self._thrown_core_distance)
            if self._thrown_core_distance
            else np.empty(0)
        )
        histogram, _, _ = np.histogram2d(energy, core, bins=[energy_bins, core_bins])
        return {
            card.obs_id: SimulatedShowerDistribution(
                obs_id=card.obs_id,
                hist_id=1,
                n_entries=len(energy),
                bins_energy=energy_bins * u.TeV,
                bins_core_dist=core_bins * u.m,
                histogram=histogram,
            )
        }

    def _generator(self):
        card = self.card
        self._thrown_energy, self._thrown_core_distance = [], []
        count = 0
        showers = self.sampler.sample(card.n_showers)
        bar = tqdm(
            desc=type(self).__name__,
            total=card.n_showers * card.shower_reuse,
            unit=" showers",
            disable=not self.progress_bar,
        )
        with bar:
            for reuse in range(card.shower_reuse):
                if reuse > 0:
                    showers = self._with_new_cores(showers)
                self._thrown_energy.append(showers.energy_tev)
                self._thrown_core_distance.append(
                    np.hypot(showers.core_x_m, showers.core_y_m)
                )
                for index in range(len(showers.energy_tev)):
                    self.n_thrown += 1
                    bar.update()
                    shower = showers[index]
                    event = self._simulate(shower, index * 100 + reuse, count)
                    if event is None:
                        continue
                    self.n_triggered += 1
                    bar.set_postfix(triggered=self.n_triggered, refresh=False)
                    count += 1
                    yield event

    def _with_new_cores(self, showers):
        """The same showers at new core positions (uniform in the scatter disk)."""
        radius = self.card.max_impact_m * np.sqrt(self._rng.random(len(showers)))
        angle = self._rng.uniform(0, 2 * np.pi, len(showers))
        return replace(
            showers, core_x_m=radius * np.cos(angle), core_y_m=radius * np.sin(angle)
        )

    def _simulate(self, shower, event_id, count):
        """One shower through both telescopes; None if no camera triggers."""
        triggered = {}
        for tel_id in self._subarray.tel:
            image = self.imager.image(
                shower, tel_id, self._pointing_alt, self._pointing_az
            )
            r1 = self.camera.r1_waveform(tel_id, image.n_pe, image.peak_time_ns)
            if self.camera.triggers(tel_id, r1):
                triggered[tel_id] = (image, r1)
        if not triggered:
            return None

        event = ArrayEventContainer(
            count=count,
            index=EventIndexContainer(obs_id=self.card.obs_id, event_id=event_id),
        )
        time = SIMULATION_START_TIME + (count * EVENT_SPACING_NS) * u.ns
        event.trigger.time = time
        event.trigger.event_type = EventType.SUBARRAY
        event.trigger.tels_with_trigger = np.array(sorted(triggered), dtype=np.int16)
        event.simulation = SimulatedEventContainer(
            shower=SimulatedShowerContainer(
                energy=shower.energy_tev * u.TeV,
                alt=shower.alt_rad * u.rad,
                az=shower.az_rad * u.rad,
                core_x=shower.core_x_m * u.m,
                core_y=shower.core_y_m * u.m,
                h_first_int=shower.h_first_int_m * u.m,
                x_max=shower.x_max_gcm2 * u.g / u.cm**2,
                shower_primary_id=np.int16(shower.primary_id),
            )
        )
        pointing = event.monitoring.pointing
        pointing.array_altitude = self._pointing_alt * u.rad
        pointing.array_azimuth = self._pointing_az * u.rad
        for tel_id, (image, r1) in triggered.items():
            n_pixels = r1.shape[1]
            event.trigger.tel[tel_id].time = time
            event.trigger.tel[tel_id].event_type = EventType.SUBARRAY
            event.simulation.tel[tel_id] = SimulatedCameraContainer(
                true_image=np.asarray(image.n_pe, dtype=np.int32),
                true_image_sum=np.int32(np.sum(image.n_pe)),
                impact=TelescopeImpactParameterContainer(
                    distance=image.impact_m * u.m,
                    distance_uncert=0 * u.m,
                    prefix="true_impact",
                ),
            )
            event.r1.tel[tel_id] = R1CameraContainer(
                waveform=r1,
                pixel_status=np.full(n_pixels, GOOD_PIXEL_STATUS),
                selected_gain_channel=np.zeros(n_pixels, dtype=np.int8),
                event_type=EventType.SUBARRAY,
                event_time=time,
            )
            event.monitoring.tel[tel_id].camera.coefficients.outlier_mask = np.zeros(
                (1, n_pixels), bool
            )
            event.monitoring.tel[tel_id].pointing = TelescopePointingContainer(
                altitude=self._pointing_alt * u.rad, azimuth=self._pointing_az * u.rad
            )
        return event
