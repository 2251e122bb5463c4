"""
The cuts of the data-quality table: the accepted range of each judged quantity (the
reference pipeline's ``analysis/data_quality.py`` defaults, reference-pipeline-spec.md
§13) and the verdict per row.
"""

import numpy as np
from ctapipe.core import Component
from ctapipe.core.traits import Float, List
from traitlets import TraitError, validate

__all__ = ["CUT_COLUMNS", "CUT_NAMES", "QualityCuts"]

#: the column of each cut quantity and the factor from the column's unit to the cut's
#: (``mc_fit_failed``: not ``mc_fit_success``, judged where an expected rate was given)
CUT_COLUMNS = {
    "zenith_deg": ("zenith_deg", 1.0),
    "livetime_h": ("live_time_s", 1 / 3600),
    "surviving_pedestal_fraction": ("surviving_pedestal_fraction", 1.0),
    "raised_threshold_fraction": ("raised_threshold_fraction", 1.0),
    "nsb_rate_mhz": ("nsb_rate_mhz", 1.0),
    "mc_rate_ratio": ("mc_rate_ratio", 1.0),
    "mc_fit_failed": ("mc_fit_success", None),
}
#: the quantities QualityCuts judges (its options), in the order of the table
CUT_NAMES = tuple(CUT_COLUMNS)


def _range(default, help):
    return List(
        Float(),
        default_value=default,
        minlen=2,
        maxlen=2,
        help=f"{help} Accepted range [min, max] (bounds included).",
    ).tag(config=True)


def _floats(column):
    """A table column as a float array, masked entries NaN."""
    return np.ma.filled(np.ma.asarray(column, dtype=float), np.nan)


class QualityCuts(Component):
    """
    Accepted ranges of the data-quality quantities (defaults: the reference pipeline's).

    A row is good when each of its quantities is within its range; a NaN quantity (not
    measured: no pointing, no pedestal events in the DL1, no expected rate) is not
    judged.
    """

    zenith_deg = _range([0.0, 70.0], "Mean zenith distance of the pointing (deg).")
    livetime_h = _range([0.0, 5.0], "Live time of the run (h).")
    surviving_pedestal_fraction = _range(
        [0.0, 0.05],
        "Fraction of the interleaved pedestal events with an image after cleaning.",
    )
    raised_threshold_fraction = _range(
        [0.0, 1.0],
        "Mean fraction of the pixels whose picture threshold the NSB raised.",
    )
    nsb_rate_mhz = _range([0.0, 600.0], "NSB rate (MHz).")
    mc_rate_ratio = _range(
        [0.7, 1.3],
        "Rate of images over the rate of simulated cosmic-ray protons in 400-4000 p.e."
        " (both zenith-corrected).",
    )
    mc_fit_failed = _range(
        [0.0, 0.5],
        "Failed comparison with the simulated protons: 1 failed (too few events),"
        " 0 made; not judged without an expected rate.",
    )

    @validate(*CUT_NAMES)
    def _check_range(self, proposal):
        low, high = proposal["value"]
        if not low <= high:
            raise TraitError(
                f"{proposal['trait'].name} needs min <= max, got {proposal['value']}"
            )
        return proposal["value"]

    def values(self, table, name):
        """
        The quantity of the cut ``name`` per row of a quality table, in its unit.

        Parameters
        ----------
        table : astropy.table.Table
            With the columns of `COLUMNS`.
        name : str
            One of `CUT_NAMES`.

        Returns
        -------
        numpy.ndarray
            float, NaN where not measured.
        """
        if name == "mc_fit_failed":
            attempted = np.isfinite(_floats(table["mc_expected_rate_hz"]))
            made = np.asarray(table["mc_fit_success"], dtype=float)
            return np.where(attempted, 1.0 - made, np.nan)
        column, factor = CUT_COLUMNS[name]
        return _floats(table[column]) * factor

    def flags(self, table):
        """
        Judge the rows of a quality table.

        Parameters
        ----------
        table : astropy.table.Table
            With the columns of `COLUMNS`.

        Returns
        -------
        good : numpy.ndarray
            bool per row: every measured quantity within its range.
        failed_cuts : numpy.ndarray
            str per row: the names of the cuts it fails, comma-separated ("" if none).
        """
        failed = np.zeros((len(CUT_NAMES), len(table)), dtype=bool)
        for row, name in enumerate(CUT_NAMES):
            low, high = getattr(self, name)
            values = self.values(table, name)
            with np.errstate(invalid="ignore"):
                failed[row] = (values < low) | (values > high)
        names = np.array(CUT_NAMES)
        failed_cuts = [",".join(names[column]) for column in failed.T]
        return ~failed.any(axis=0), np.array(failed_cuts, dtype=str)
