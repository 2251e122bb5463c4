"""
The gamma-ray candidates of a DL2 file of real data, selected with the cuts of an IRF.

The reading is that of the IRF's telescope set-up (`ctapipe_sst1m.io.irf_setups`), the
selection is the one stored in the IRF file: its quality criteria, then the
multiplicity cut and the gammaness cut per reconstructed-energy bin (pyirf's
``evaluate_binned_cut``, as ``ctapipe-compute-irf``). Events outside the energy range of
the cut table fail the gammaness cut, as in the IRFs.
"""

import operator

import astropy.units as u
import numpy as np
from astropy.table import QTable, vstack
from ctapipe.core import QualityQuery
from ctapipe.io import TableLoader
from pyirf.cuts import evaluate_binned_cut

from ..io.model_sets import MODEL_KINDS
from ..time import tai_ns

__all__ = ["SELECTION_STEPS", "read_observed_events"]

#: the counts reported for every file, in order
SELECTION_STEPS = ("read", "quality", "multiplicity", "gammaness")


def _multiplicity(events, setup):
    """Telescopes in the least-supported of the three predictions of each event."""
    counts = [
        np.count_nonzero(np.asarray(events[f"{setup.prefix(kind)}_telescopes"]), axis=1)
        for kind in MODEL_KINDS
    ]
    return np.min(counts, axis=0)


def _quantity(column, unit):
    data = column.filled(np.nan) if hasattr(column, "filled") else column
    return u.Quantity(data, column.unit or unit).to(unit)


def read_observed_events(path, irf, chunk_size=100_000):
    """
    Read the events of a DL2 file that pass the selection and cuts of an IRF.

    Parameters
    ----------
    path : path-like
        DL2 file of real data (``sst1m-apply-models``).
    irf : ctapipe_sst1m.io.irf_files.IrfFile
        The IRF whose set-up, selection and cuts are applied.
    chunk_size : int
        Events read at once.

    Returns
    -------
    events : astropy.table.QTable
        ``obs_id``, ``event_id``, ``time_ns`` (TAI ns), ``ra``, ``dec``, ``alt``, ``az``,
        ``energy``, ``gammaness``, ``multiplicity``.
    counts : dict
        Events after each of `SELECTION_STEPS`.
    """
    setup = irf.setup
    quality = QualityQuery(quality_criteria=irf.quality_criteria)
    counts = dict.fromkeys(SELECTION_STEPS, 0)
    chunks = []
    options = dict(dl2=True, observation_info=False, simulated=False)
    with TableLoader(path) as loader:
        if setup.telescope_level:
            reader = loader.read_telescope_events_chunked(
                chunk_size, telescopes=[setup.data_tel_id], **options
            )
        else:
            reader = loader.read_subarray_events_chunked(chunk_size, **options)
        for _, _, table in reader:
            counts["read"] += len(table)
            table = table[quality.get_table_mask(table)]
            counts["quality"] += len(table)
            multiplicity = _multiplicity(table, setup)
            energy = _quantity(table[setup.column("regressor", "energy")], u.TeV)
            if irf.multiplicity_cuts is not None:
                passes = evaluate_binned_cut(
                    multiplicity, energy, irf.multiplicity_cuts, operator.ge
                )
                table, multiplicity, energy = (
                    table[passes],
                    multiplicity[passes],
                    energy[passes],
                )
            counts["multiplicity"] += len(table)
            gammaness = np.asarray(table[setup.column("classifier", "prediction")])
            passes = evaluate_binned_cut(gammaness, energy, irf.gh_cuts, operator.ge)
            table = table[passes]
            counts["gammaness"] += len(table)
            events = QTable()
            events["obs_id"] = np.asarray(table["obs_id"], dtype=np.int64)
            events["event_id"] = np.asarray(table["event_id"], dtype=np.int64)
            events["time_ns"] = tai_ns(table["time"]) if len(table) else []
            for name in ("ra", "dec", "alt", "az"):
                events[name] = _quantity(table[setup.column("disp", name)], u.deg)
            events["energy"] = energy[passes]
            events["gammaness"] = gammaness[passes]
            events["multiplicity"] = multiplicity[passes].astype(np.int16)
            chunks.append(events)
    events = vstack(chunks) if chunks else QTable()
    return events, counts
