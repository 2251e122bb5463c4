"""
Training samples of the random forests: selection, targets and seeded sampling.

The reconstructors are ctapipe's (``EnergyRegressor``, ``DispReconstructor``,
``ParticleClassifier``); this module prepares the tables they are fitted on, the way the
reference pipeline does, but seeded and with every dropped event counted:

* telescope events of one telescope type, with the true shower, the stereo geometry and
  the pointing joined (``TableLoader``);
* the quality query of the model (the event selection) and rows with non-finite features
  removed;
* ``n_training_events`` gammas drawn without replacement;
* the gamma/proton mixture of the classifier for a ``gamma_to_proton_training_ratio``;
* the fixed pointing of a simulated training input (`simulated_pointing`).
"""

from dataclasses import dataclass, field

import astropy.units as u
import numpy as np
import tables
from astropy.table import vstack
from ctapipe.io import read_table
from ctapipe.io.hdf5dataformat import OBSERVATION_BLOCK_TABLE, SIMULATION_SHOWER_TABLE
from ctapipe.reco.preprocessing import check_valid_rows

__all__ = [
    "SampleCounts",
    "read_training_table",
    "sample_rows",
    "split_rows",
    "classifier_sample_sizes",
    "simulated_pointing",
]


@dataclass
class SampleCounts:
    """What happened to the telescope events of one training input."""

    read: int = 0
    failed_selection: int = 0
    non_finite: int = 0
    selected: int = 0
    criteria: dict = field(default_factory=dict)

    def as_dict(self):
        return {
            "read": self.read,
            "failed_event_selection": self.failed_selection,
            "non_finite_features": self.non_finite,
            "selected": self.selected,
            "failed_per_criterion": dict(self.criteria),
        }


def read_training_table(
    loader, telescope_type, quality_query, feature_generator, columns, chunk_size, log
):
    """
    Selected telescope events of one type with the requested columns.

    Parameters
    ----------
    loader : ctapipe.io.TableLoader
    telescope_type : ctapipe.instrument.TelescopeDescription
    quality_query : ctapipe.core.QualityQuery
        event selection; its per-criterion counts are reported
    feature_generator : ctapipe.core.FeatureGenerator
        derived features (applied after the selection)
    columns : list of str
        columns to keep (features, targets, truth)
    chunk_size : int
        events per chunk read
    log : logging.Logger

    Returns
    -------
    table : astropy.table.Table
    counts : SampleCounts
    """
    counts = SampleCounts()
    tables = []
    chunks = loader.read_telescope_events_chunked(
        chunk_size,
        telescopes=[telescope_type],
        true_parameters=False,
        instrument=True,
        observation_info=True,
    )
    for _, _, chunk in chunks:
        counts.read += len(chunk)
        mask = quality_query.get_table_mask(chunk)
        counts.failed_selection += int(np.count_nonzero(~mask))
        chunk = feature_generator(chunk[mask], subarray=loader.subarray)
        missing = [c for c in columns if c not in chunk.colnames]
        if missing:
            raise KeyError(f"{loader.input_url}: columns {missing} are missing")
        chunk = chunk[columns]
        valid = check_valid_rows(chunk, warn=False)
        counts.non_finite += int(np.count_nonzero(~valid))
        tables.append(chunk[valid])

    for name, n_pass in zip(quality_query.criteria_names, quality_query._counts[1:]):
        counts.criteria[name] = int(quality_query._counts[0] - n_pass)
    table = vstack(tables) if tables else None
    counts.selected = 0 if table is None else len(table)
    log.info(
        "%s: %d telescope events, %d fail the event selection, %d have non-finite features",
        loader.input_url,
        counts.read,
        counts.failed_selection,
        counts.non_finite,
    )
    return table, counts


def sample_rows(table, n_events, rng):
    """At most ``n_events`` rows drawn without replacement (order kept)."""
    if n_events is None or n_events >= len(table):
        return table
    index = np.sort(rng.choice(len(table), n_events, replace=False))
    return table[index]


def split_rows(table, fraction, rng):
    """Random split: (rows not chosen, ``fraction`` of the rows)."""
    chosen = np.zeros(len(table), dtype=bool)
    chosen[rng.choice(len(table), int(round(fraction * len(table))), replace=False)] = (
        True
    )
    return table[~chosen], table[chosen]


def classifier_sample_sizes(n_gamma, n_proton, n_total, ratio):
    """
    Gammas and protons of the classifier training set.

    Nominal ``N_gamma = r / (r + 1) N`` and ``N_proton = N / (r + 1)``; if one species is
    short, all of it is used and the other follows the ratio (``N_gamma = r N_proton``),
    bounded by what is available.

    Parameters
    ----------
    n_gamma, n_proton : int
        available events
    n_total : int or None
        requested total (None: as many as the ratio allows)
    ratio : float
        gamma to proton ratio ``r``

    Returns
    -------
    (int, int)
    """
    if ratio <= 0:
        raise ValueError(
            f"gamma_to_proton_training_ratio must be positive, got {ratio}"
        )
    if n_total is None:
        n_total = n_gamma + n_proton
    want_gamma = int(ratio / (ratio + 1) * n_total)
    want_proton = int(n_total / (ratio + 1))
    if want_gamma > n_gamma:
        want_gamma = n_gamma
        want_proton = int(n_gamma / ratio)
    if want_proton > n_proton:
        want_proton = n_proton
        want_gamma = int(ratio * n_proton)
    return min(want_gamma, n_gamma), min(want_proton, n_proton)


def simulated_pointing(path):
    """
    The fixed pointing of a simulated file.

    Parameters
    ----------
    path : path-like
        Simulated DL1 file.

    Returns
    -------
    (float, float)
        Altitude and azimuth (deg) of the first observation block.

    Raises
    ------
    ValueError
        If the file has no simulated showers or no observation block.
    """
    with tables.open_file(path) as h5file:
        if SIMULATION_SHOWER_TABLE not in h5file:
            raise ValueError(
                f"{path} is not a simulation: no {SIMULATION_SHOWER_TABLE}"
            )
        if OBSERVATION_BLOCK_TABLE not in h5file:
            raise ValueError(
                f"{path}: no observation block ({OBSERVATION_BLOCK_TABLE})"
            )
    block = read_table(path, OBSERVATION_BLOCK_TABLE)
    return (
        float(block["subarray_pointing_lat"].quantity[0].to_value(u.deg)),
        float(block["subarray_pointing_lon"].quantity[0].to_value(u.deg)),
    )
