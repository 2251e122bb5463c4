"""
Simulation cards: the YAML files that describe a production of the SST-1M simulation.

The entries of a card are declared once, as the traits of `SimulationCardOptions`:
`SimulationCard` is built from them, and ``sst1m-simulate`` inherits them as its
options (``--SimulateTool.energy_min_tev`` ...).
"""

from pathlib import Path

import yaml
from ctapipe.core.traits import (
    CaselessStrEnum,
    Dict,
    Float,
    Int,
    TraitError,
    TraitType,
)
from traitlets import HasTraits

__all__ = [
    "SimulationCardOptions",
    "SimulationCard",
    "PRODUCTION_DEFAULTS",
    "read_card",
    "write_card",
    "CARD_MARKER",
]

#: first key of every card; what SST1MSimulationSource.is_compatible looks for
CARD_MARKER = "sst1m_simulation_card"
CARD_VERSION = 1

#: defaults per particle and spectrum: (max impact m, viewcone deg, minimum energy TeV)
PRODUCTION_DEFAULTS = {
    ("gamma", "point"): (500.0, 0.0, 0.2),
    ("gamma", "diffuse"): (500.0, 6.0, 0.2),
    ("proton", "diffuse"): (800.0, 8.0, 0.4),
    ("proton", "point"): (800.0, 8.0, 0.4),
}


class SimulationCardOptions(HasTraits):
    """
    The entries of a simulation card, as traits (the one declaration of them).

    ``max_impact_m``, ``viewcone_deg`` and ``energy_min_tev`` may be None: the
    `PRODUCTION_DEFAULTS` of the particle and spectrum.
    """

    particle = CaselessStrEnum(
        ["gamma", "proton"], default_value="gamma", help="Primary particle."
    ).tag(config=True)
    spectrum = CaselessStrEnum(
        ["point", "diffuse"],
        default_value="point",
        help="point: source at source_offset_deg from the pointing; diffuse: within viewcone_deg.",
    ).tag(config=True)
    n_showers = Int(default_value=1000, min=1, help="Number of simulated showers.").tag(
        config=True
    )
    shower_reuse = Int(
        default_value=1, min=1, help="Uses of each shower with other core positions."
    ).tag(config=True)
    seed = Int(default_value=0, min=0, help="Random seed.").tag(config=True)
    obs_id = Int(
        default_value=1, min=0, help="obs_id (run number) of the production."
    ).tag(config=True)
    energy_min_tev = Float(
        default_value=None,
        allow_none=True,
        min=0.0,
        help="Minimum energy (TeV); default 0.2 gammas, 0.4 protons.",
    ).tag(config=True)
    energy_max_tev = Float(
        default_value=300.0, min=0.0, help="Maximum energy (TeV)."
    ).tag(config=True)
    spectral_index = Float(
        default_value=-2.0,
        min=-6.0,
        max=0.0,
        help="Power-law index of the simulated spectrum.",
    ).tag(config=True)
    max_impact_m = Float(
        default_value=None,
        allow_none=True,
        min=0.0,
        help="Core scatter radius (m); default 500 gammas, 800 protons.",
    ).tag(config=True)
    viewcone_deg = Float(
        default_value=None,
        allow_none=True,
        min=0.0,
        max=180.0,
        help="Diffuse viewcone radius (deg); default 0 point gammas, 6 diffuse gammas, 8 protons.",
    ).tag(config=True)
    pointing_alt_deg = Float(
        default_value=70.0, min=0.0, max=90.0, help="Pointing altitude (deg)."
    ).tag(config=True)
    pointing_az_deg = Float(
        default_value=180.0, min=-360.0, max=360.0, help="Pointing azimuth (deg)."
    ).tag(config=True)
    source_offset_deg = Float(
        default_value=0.4,
        min=0.0,
        max=90.0,
        help="Point source offset from the pointing (deg, wobble).",
    ).tag(config=True)

    nsb_rate_mhz = Dict(
        key_trait=Int(min=1),
        value_trait=Float(min=0.0),
        default_value=None,
        allow_none=True,
        help=(
            "Night-sky-background rate per pixel (MHz) per simulated telescope id, e.g."
            " {1: 80, 2: 120}; wins over CameraSimulator.nsb_rate_mhz for these"
            " telescopes. None: the CameraSimulator configuration (80 MHz)."
        ),
    ).tag(config=True)

    @classmethod
    def card_entries(cls):
        """Names of the card's entries, in the order of their declaration (and of the file)."""
        return tuple(
            name
            for name, value in vars(SimulationCardOptions).items()
            if isinstance(value, TraitType)
        )

    def card_values(self):
        """The entries as a dict (None where the production default applies)."""
        return {name: getattr(self, name) for name in self.card_entries()}


def _expected(trait):
    """What a trait accepts, in words (for the errors of a card)."""
    bounds = [
        f"{sign} {limit}"
        for sign, limit in (
            (">=", getattr(trait, "min", None)),
            ("<=", getattr(trait, "max", None)),
        )
        if limit is not None
    ]
    return " ".join([trait.info(), *bounds])


class SimulationCard(SimulationCardOptions):
    """
    Parameters of one simulated production (one obs_id).

    Built from keyword arguments (the entries of `SimulationCardOptions`); the
    entries left None get the `PRODUCTION_DEFAULTS` of the particle and spectrum.

    Raises
    ------
    ValueError
        For an unknown or invalid entry, or ``energy_min_tev >= energy_max_tev``.
    """

    def __init__(self, **entries):
        unknown = set(entries) - set(self.card_entries())
        if unknown:
            raise ValueError(f"unknown simulation card entries {sorted(unknown)}")
        super().__init__()
        traits = self.traits()
        for name, value in entries.items():
            try:
                setattr(self, name, value)
            except TraitError:
                raise ValueError(
                    f"{name} must be {_expected(traits[name])}, not {value!r}"
                ) from None
        max_impact, viewcone, energy_min = PRODUCTION_DEFAULTS[
            (self.particle, self.spectrum)
        ]
        if self.energy_min_tev is None:
            self.energy_min_tev = energy_min
        if self.max_impact_m is None:
            self.max_impact_m = max_impact
        if self.viewcone_deg is None:
            self.viewcone_deg = viewcone
        if not 0 < self.energy_min_tev < self.energy_max_tev:
            raise ValueError("need 0 < energy_min_tev < energy_max_tev")

    def __eq__(self, other):
        if not isinstance(other, SimulationCard):
            return NotImplemented
        return self.card_values() == other.card_values()

    __hash__ = None

    def __repr__(self):
        entries = ", ".join(f"{k}={v!r}" for k, v in self.card_values().items())
        return f"{type(self).__name__}({entries})"


def write_card(path, card):
    """Write a card as YAML."""
    with open(path, "w") as f:
        yaml.safe_dump(
            {CARD_MARKER: CARD_VERSION, **card.card_values()}, f, sort_keys=False
        )


def read_card(path):
    """
    Read a simulation card.

    Raises
    ------
    ValueError
        If the file is no card or has unknown or invalid entries (the file is named).
    """
    path = Path(path)
    try:
        with open(path) as f:
            content = yaml.safe_load(f)
    except yaml.YAMLError as err:
        raise ValueError(f"{path}: not a YAML simulation card ({err})") from None
    if not isinstance(content, dict) or content.pop(CARD_MARKER, None) != CARD_VERSION:
        raise ValueError(
            f"{path}: not an SST-1M simulation card (version {CARD_VERSION})"
        )
    try:
        return SimulationCard(**content)
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from None
