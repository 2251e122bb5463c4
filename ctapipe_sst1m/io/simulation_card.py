"""Simulation cards: the YAML files that describe a production of the SST-1M simulation."""

from dataclasses import asdict, dataclass, fields
from pathlib import Path

import yaml

__all__ = ["SimulationCard", "read_card", "write_card", "CARD_MARKER"]

#: first key of every card; what SST1MSimulationSource.is_compatible looks for
CARD_MARKER = "sst1m_simulation_card"
CARD_VERSION = 1


@dataclass
class SimulationCard:
    """Parameters of one simulated production (one obs_id)."""

    particle: str = "gamma"
    #: "point" (source at source_offset_deg from the pointing) or "diffuse"
    spectrum: str = "point"
    n_showers: int = 1000
    #: each shower is used this many times with different core positions
    shower_reuse: int = 1
    seed: int = 0
    obs_id: int = 1
    energy_min_tev: float = 0.2
    energy_max_tev: float = 300.0
    spectral_index: float = -2.0
    max_impact_m: float = 500.0
    #: diffuse: directions within this radius around the pointing
    viewcone_deg: float = 0.0
    pointing_alt_deg: float = 70.0
    pointing_az_deg: float = 180.0
    #: point: offset of the source from the pointing (wobble)
    source_offset_deg: float = 0.4

    def __post_init__(self):
        if self.particle not in ("gamma", "proton"):
            raise ValueError(f"particle must be gamma or proton, not {self.particle!r}")
        if self.spectrum not in ("point", "diffuse"):
            raise ValueError(
                f"spectrum must be point or diffuse, not {self.spectrum!r}"
            )
        if self.n_showers < 1 or self.shower_reuse < 1:
            raise ValueError("n_showers and shower_reuse must be positive")
        if not 0 < self.energy_min_tev < self.energy_max_tev:
            raise ValueError("need 0 < energy_min_tev < energy_max_tev")


def write_card(path, card):
    """Write a card as YAML."""
    with open(path, "w") as f:
        yaml.safe_dump({CARD_MARKER: CARD_VERSION, **asdict(card)}, f, sort_keys=False)


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
    known = {field.name for field in fields(SimulationCard)}
    unknown = set(content) - known
    if unknown:
        raise ValueError(f"{path}: unknown simulation card entries {sorted(unknown)}")
    try:
        return SimulationCard(**content)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{path}: {err}") from None
