"""
Reading and checking the simulated DL2 files of a performance evaluation.

The inputs of `ctapipe_sst1m.performance.metrics`: checks that refuse unusable files
(no simulation truth, wrong primaries, different model sets), the model variants a file
holds, its simulated spectrum, the weights to a target spectrum, and the events of every
*tag* as a `~astropy.table.QTable` with the columns ``obs_id``, ``event_id``,
``true_energy``, ``true_alt``, ``true_az``, ``reco_energy``, ``reco_alt``, ``reco_az``,
``gammaness`` and ``theta`` (true-to-reconstructed angular distance):

* ``tel_001``, ``tel_002``: telescope-level predictions of the ``mono`` variant;
* ``mono_combined``: subarray-level (combined) predictions of the ``mono`` variant;
* ``stereo``: subarray-level predictions of the ``stereo`` variant, events in which
  every telescope contributed to the three predictions.
"""

import astropy.units as u
import numpy as np
import tables
from astropy.table import QTable
from ctapipe.io import TableLoader
from pyirf.simulations import SimulatedEventsInfo
from pyirf.spectral import (
    DIFFUSE_FLUX_UNIT,
    POINT_SOURCE_FLUX_UNIT,
    PowerLaw,
    calculate_event_weights,
)
from pyirf.utils import calculate_theta

from ..event_index import event_keys
from ..io.model_sets import MODEL_KINDS, MODELS_ID_ATTR, reconstructor_prefix

__all__ = [
    "GAMMA_ID",
    "PROTON_ID",
    "SHOWER_TABLE",
    "VARIANTS",
    "PerformanceInputError",
    "available_variants",
    "check_primaries",
    "check_same_models",
    "check_simulated",
    "event_weights",
    "read_shower_reuse",
    "read_simulation_info",
    "read_tag_events",
]

#: model variants written by sst1m-apply-models (prefixes ``{variant}_regressor`` ...)
VARIANTS = ("mono", "stereo")
#: true_shower_primary_id of gammas and protons
GAMMA_ID = 0
PROTON_ID = 101
SHOWER_TABLE = "/simulation/event/subarray/shower"
RUN_TABLE = "/configuration/simulation/run"
DL2_SUBARRAY_GROUP = "/dl2/event/subarray"


class PerformanceInputError(ValueError):
    """An input file cannot be used for a performance evaluation (the message names it)."""


def check_simulated(path):
    """
    Refuse a file without simulation truth.

    Parameters
    ----------
    path : str or Path
        DL2 file.

    Raises
    ------
    PerformanceInputError
        If the file is not HDF5 or has no ``/simulation/event/subarray/shower`` table.
    """
    try:
        h5file = tables.open_file(path, mode="r")
    except tables.HDF5ExtError as err:
        raise PerformanceInputError(f"file {path} is not an HDF5 file") from err
    with h5file:
        if SHOWER_TABLE not in h5file:
            raise PerformanceInputError(
                f"file {path} has no {SHOWER_TABLE}: performance needs simulated DL2"
            )


def check_primaries(path, particle):
    """
    Refuse a gamma file that contains other primaries, or a proton file with gammas.

    Parameters
    ----------
    path : str or Path
        DL2 file with a ``/simulation/event/subarray/shower`` table.
    particle : {"gamma", "proton"}
        What the file is given as.

    Raises
    ------
    PerformanceInputError
        If the file holds primaries of the other kind.
    """
    with tables.open_file(path, mode="r") as h5file:
        primary = h5file.get_node(SHOWER_TABLE).col("true_shower_primary_id")
    wrong = (primary != GAMMA_ID) if particle == "gamma" else (primary == GAMMA_ID)
    if np.any(wrong):
        raise PerformanceInputError(
            f"file {path}, given as the {particle} input, contains {np.count_nonzero(wrong)}"
            f" showers of true_shower_primary_id {', '.join(map(str, np.unique(primary[wrong])))}"
            f" ({GAMMA_ID} = gamma, {PROTON_ID} = proton): are the gamma and proton inputs swapped?"
        )


def check_same_models(paths):
    """
    Refuse DL2 files made with different model sets.

    The model set is identified by the HDF5 root attribute ``SST1M_MODELS_ID`` written
    by ``sst1m-apply-models``; a file without it differs from a file with it.

    Parameters
    ----------
    paths : list of str or Path
        DL2 files.

    Raises
    ------
    PerformanceInputError
        Naming two files whose model sets differ.
    """
    ids = {}
    for path in paths:
        with tables.open_file(path, mode="r") as h5file:
            attrs = h5file.root._v_attrs
            ids[path] = str(attrs[MODELS_ID_ATTR]) if MODELS_ID_ATTR in attrs else None
    first, first_id = next(iter(ids.items()))
    for path, models_id in ids.items():
        if models_id != first_id:
            raise PerformanceInputError(
                f"{first} ({MODELS_ID_ATTR}={first_id or 'absent'}) and {path}"
                f" ({MODELS_ID_ATTR}={models_id or 'absent'})"
                " were made with different model sets: apply the same models to both"
            )


def available_variants(path):
    """
    Model variants with predictions in a DL2 file.

    Parameters
    ----------
    path : str or Path
        DL2 file.

    Returns
    -------
    variants : list of str
        Those of `VARIANTS` that have at least one ``{variant}_*`` table under
        ``/dl2/event/subarray``.
    """
    with tables.open_file(path, mode="r") as h5file:
        if DL2_SUBARRAY_GROUP not in h5file:
            return []
        prefixes = {
            node._v_name
            for group in h5file.get_node(DL2_SUBARRAY_GROUP)
            for node in group
        }
    return [v for v in VARIANTS if any(p.startswith(f"{v}_") for p in prefixes)]


def read_simulation_info(loader):
    """
    The simulated spectrum of a file (all its simulation runs).

    Parameters
    ----------
    loader : ctapipe.io.TableLoader
        Open loader of the file.

    Returns
    -------
    pyirf.simulations.SimulatedEventsInfo
        The number of showers counts the reuses.

    Raises
    ------
    PerformanceInputError
        If the runs of the file differ in energy range, index, viewcone or scatter range.
    """
    runs = loader.read_simulation_configuration()
    for name in (
        "energy_range_min",
        "energy_range_max",
        "spectral_index",
        "max_scatter_range",
        "min_viewcone_radius",
        "max_viewcone_radius",
    ):
        if len(np.unique(runs[name])) > 1:
            raise PerformanceInputError(
                f"file {loader.input_url}: the simulation runs differ in {name};"
                " evaluate them separately"
            )
    return SimulatedEventsInfo(
        n_showers=int(np.sum(runs["n_showers"] * runs["shower_reuse"])),
        energy_min=runs["energy_range_min"].quantity[0],
        energy_max=runs["energy_range_max"].quantity[0],
        max_impact=runs["max_scatter_range"].quantity[0],
        spectral_index=float(runs["spectral_index"][0]),
        viewcone_min=runs["min_viewcone_radius"].quantity[0],
        viewcone_max=runs["max_viewcone_radius"].quantity[0],
    )


def read_shower_reuse(path):
    """
    The number of uses of each simulated shower in a file.

    Parameters
    ----------
    path : str or Path
        Simulated DL2 file.

    Returns
    -------
    int
        ``shower_reuse`` of ``/configuration/simulation/run``, the largest one if the
        runs differ (it only enters statistical errors, which it enlarges).
    """
    with tables.open_file(path, mode="r") as h5file:
        reuse = h5file.get_node(RUN_TABLE).col("shower_reuse")
    return int(np.max(reuse))


def _column(table, name, fill_value):
    """A column as Quantity or array, masked entries (left joins) set to ``fill_value``."""
    column = table[name]
    data = column.filled(fill_value) if hasattr(column, "filled") else column
    return (
        u.Quantity(data, column.unit) if column.unit is not None else np.asarray(data)
    )


def _prefixes(variant):
    return {kind: reconstructor_prefix(variant, kind) for kind in MODEL_KINDS}


#: the predicted quantities of a variant: (reconstructor kind, column suffix)
PREDICTIONS = (
    ("regressor", "energy"),
    ("disp", "alt"),
    ("disp", "az"),
    ("classifier", "prediction"),
)


def _require_columns(path, table, variant, telescope_level, where):
    """Refuse a table without the prediction columns of ``variant``."""
    p = _prefixes(variant)
    if telescope_level:
        names = [f"{p[kind]}_tel_{suffix}" for kind, suffix in PREDICTIONS]
        names += [f"{prefix}_tel_is_valid" for prefix in p.values()]
    else:
        names = [f"{p[kind]}_{suffix}" for kind, suffix in PREDICTIONS]
        names += [
            f"{prefix}_{suffix}"
            for prefix in p.values()
            for suffix in ("is_valid", "telescopes")
        ]
    missing = [name for name in names if name not in table.colnames]
    if missing:
        raise PerformanceInputError(
            f"file {path} lacks the DL2 columns {', '.join(missing)} ({where});"
            " was it made by sst1m-apply-models with all three models of the variant?"
        )


def _normalised_events(table, variant, telescope_level, selected):
    """The tag's events of ``table`` in the common layout (see the module docstring)."""
    p = _prefixes(variant)
    tel = "_tel" if telescope_level else ""
    valid = selected.copy()
    for prefix in p.values():
        valid &= _column(table, f"{prefix}{tel}_is_valid", False).astype(bool)
    table = table[valid]
    events = QTable()
    events["obs_id"] = np.asarray(table["obs_id"])
    events["event_id"] = np.asarray(table["event_id"])
    for name in ("true_energy", "true_alt", "true_az"):
        events[name] = _column(table, name, np.nan)
    events["reco_energy"] = _column(table, f"{p['regressor']}{tel}_energy", np.nan)
    events["reco_alt"] = _column(table, f"{p['disp']}{tel}_alt", np.nan)
    events["reco_az"] = _column(table, f"{p['disp']}{tel}_az", np.nan)
    events["gammaness"] = _column(table, f"{p['classifier']}{tel}_prediction", np.nan)
    events["theta"] = calculate_theta(events, events["true_az"], events["true_alt"])
    return events


def _passing_quality(subarray, subarray_events, variant, failing):
    """Subarray events whose contributing telescopes all pass the quality query."""
    contributed = np.zeros((len(subarray_events), subarray.n_tels), dtype=bool)
    for prefix in _prefixes(variant).values():
        contributed |= _column(subarray_events, f"{prefix}_telescopes", False).astype(
            bool
        )
    keys = event_keys(subarray_events)
    passes = np.ones(len(subarray_events), dtype=bool)
    for tel_id, tel_failing in failing.items():
        index = subarray.tel_ids_to_indices(tel_id)[0]
        passes &= ~(contributed[:, index] & np.isin(keys, tel_failing))
    return passes


def read_tag_events(path, variants, quality_query=None):
    """
    Read the events of every tag of the given variants from a DL2 file.

    Only events whose three predictions (energy, direction, gammaness) are valid are
    kept; ``stereo`` events need every telescope of the subarray in the three
    combinations.

    Parameters
    ----------
    path : str or Path
        Simulated DL2 file of sst1m-apply-models.
    variants : list of str
        Variants to read (of `VARIANTS`).
    quality_query : ctapipe.core.QualityQuery or None
        Selection on the DL1 telescope parameters: telescope events must pass it, and
        subarray events need every contributing telescope to pass it.

    Returns
    -------
    events : dict[str, astropy.table.QTable]
        Per tag (``tel_001``, ``tel_002``, ``mono_combined``, ``stereo``).
    simulation : pyirf.simulations.SimulatedEventsInfo
        The simulated spectrum of the file.

    Raises
    ------
    PerformanceInputError
        If a variant's columns are missing.
    """
    use_quality = quality_query is not None and len(quality_query.quality_criteria) > 0
    with TableLoader(
        path,
        dl1_parameters=use_quality,
        dl2=True,
        simulated=True,
        true_parameters=False,
        true_images=False,
        observation_info=False,
        instrument=False,
        pointing=False,
    ) as loader:
        simulation = read_simulation_info(loader)
        subarray = loader.subarray
        subarray_events = loader.read_subarray_events()
        telescope_events = {}
        if "mono" in variants or use_quality:
            telescope_events = loader.read_telescope_events_by_id()

    tel_passes = {
        tel_id: quality_query.get_table_mask(table)
        if use_quality
        else np.ones(len(table), bool)
        for tel_id, table in telescope_events.items()
    }
    failing = {
        tel_id: event_keys(table[~tel_passes[tel_id]])
        for tel_id, table in telescope_events.items()
    }
    events = {}
    for variant in variants:
        _require_columns(
            path,
            subarray_events,
            variant,
            False,
            f"subarray predictions of the {variant} models",
        )
        selected = _passing_quality(subarray, subarray_events, variant, failing)
        if variant == "stereo":
            for prefix in _prefixes(variant).values():
                selected &= np.all(
                    _column(subarray_events, f"{prefix}_telescopes", False), axis=1
                )
            events["stereo"] = _normalised_events(
                subarray_events, variant, False, selected
            )
            continue
        for tel_id, table in telescope_events.items():
            if len(table) == 0:
                continue
            tag = f"tel_{tel_id:03d}"
            _require_columns(
                path,
                table,
                variant,
                True,
                f"telescope predictions of the mono models, {tag}",
            )
            events[tag] = _normalised_events(table, variant, True, tel_passes[tel_id])
        events["mono_combined"] = _normalised_events(
            subarray_events, variant, False, selected
        )
    return events, simulation


def event_weights(true_energy, simulation, target_spectrum, obstime=1 * u.h):
    """
    Weights that turn the simulated spectrum into ``target_spectrum``.

    A diffuse simulation weighted to a point-like spectrum is integrated over its
    viewcone first. The weights of the simulated events sum to the number of events
    that the target spectrum gives in ``obstime``; the performance uses only their
    ratios (the observation time is arbitrary there).

    Parameters
    ----------
    true_energy : astropy.units.Quantity
        True energies of the events.
    simulation : pyirf.simulations.SimulatedEventsInfo
        Simulated spectrum of their file.
    target_spectrum : callable
        pyirf spectrum, e.g. ``pyirf.spectral.CRAB_HEGRA``.
    obstime : astropy.units.Quantity
        Observation time the simulated events stand for.

    Returns
    -------
    numpy.ndarray
        One weight per event.
    """
    simulated = PowerLaw.from_simulation(simulation, obstime=obstime)
    target_unit = target_spectrum(1 * u.TeV).unit
    if target_unit.is_equivalent(
        POINT_SOURCE_FLUX_UNIT
    ) and simulated.normalization.unit.is_equivalent(DIFFUSE_FLUX_UNIT):
        simulated = simulated.integrate_cone(
            simulation.viewcone_min, simulation.viewcone_max
        )
    elif target_unit.is_equivalent(
        DIFFUSE_FLUX_UNIT
    ) and simulated.normalization.unit.is_equivalent(POINT_SOURCE_FLUX_UNIT):
        raise PerformanceInputError(
            "cannot weight a point-like simulation (viewcone 0) to a diffuse spectrum"
        )
    return calculate_event_weights(true_energy, target_spectrum, simulated)
