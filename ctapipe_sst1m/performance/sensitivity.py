"""
Differential point-source sensitivity from ctapipe's IRF benchmarks, with errors.

``ctapipe-compute-irf --benchmark-output`` (`ctapipe.irf.benchmarks.Sensitivity2dMaker`,
pyirf's ``calculate_sensitivity``) writes a ``SENSITIVITY`` table: one row of 2-D columns
(FoV offset × reconstructed energy) and the ON/OFF size ratio ``ALPHA`` in the header.
In a bin, the gammas passing the cuts (θ < θ_cut around the source) give the signal
``S`` (weighted to the reference spectrum for the observation time), the background
events in the FoV-offset ring give the OFF counts ``B`` (scaled to ``1/ALPHA`` times the
ON region). The relative sensitivity ``r`` is the factor on the reference flux that
gives 5σ (Li & Ma) with at least 10 excess events and an excess of at least 5 % of the
background: ``r = E_req(B) / S``, the excess ``E_req`` needed depending on ``B`` only.

The columns of the file are at the sensitivity flux (``N_SIGNAL = r × n``) and scaled
(``N_BACKGROUND = n_ring × size_ratio / ALPHA``); `sensitivity_table` recovers the
simulated counts ``n_signal``, ``n_background`` from them (the θ cuts give the size
ratio) and propagates their Poisson errors:

    σ_r / r = sqrt(1 / n_signal + k² / n_background),   k = d ln E_req / d ln B,

with ``k`` computed from pyirf's ``relative_sensitivity`` (0 when the 10-event minimum
decides, ~1/2 in the background-dominated Li & Ma regime, 1 when the 5 % condition
decides). The weights within a bin are taken as equal: the relative variance of a
weighted sum, ``Σw²/(Σw)²``, is then ``1/n``.
"""

import astropy.units as u
import numpy as np
from astropy.io.fits import BinTableHDU
from astropy.table import QTable, Table
from matplotlib.figure import Figure
from pyirf.sensitivity import relative_sensitivity
from pyirf.spectral import CRAB_HEGRA
from pyirf.utils import cone_solid_angle

__all__ = [
    "SENSITIVITY_COLUMNS",
    "plot_sensitivity",
    "sensitivity_table",
    "theta_cut_table",
]

#: columns of ctapipe's SENSITIVITY table read here
SENSITIVITY_COLUMNS = (
    "ENERG_LO",
    "ENERG_HI",
    "THETA_LO",
    "THETA_HI",
    "N_SIGNAL",
    "N_SIGNAL_WEIGHTED",
    "N_BACKGROUND",
    "N_BACKGROUND_WEIGHTED",
    "RELATIVE_SENSITIVITY",
    "ENERGY_FLUX_SENSITIVITY",
)
#: unit of E² dN/dE
SED_UNIT = u.Unit("TeV cm-2 s-1")
#: relative step of the OFF counts for the derivative of the required excess
LOG_STEP = 0.01
#: largest relative deviation from an integer of a recovered simulated count
COUNT_TOLERANCE = 1e-6
#: fractions of the Crab flux drawn by `plot_sensitivity`
CRAB_FRACTIONS = (1.0, 0.1, 0.01)


def _as_qtable(hdu_or_table):
    """A QTable of a BinTableHDU or of an astropy table."""
    if isinstance(hdu_or_table, BinTableHDU):
        return QTable.read(hdu_or_table)
    return QTable(hdu_or_table)


def _values(column):
    """Plain float values (a copy) of a dimensionless column."""
    return np.array(u.Quantity(column).to_value(u.one), dtype=float)


def theta_cut_table(rad_max_table):
    """
    The θ cut per reconstructed-energy bin.

    Parameters
    ----------
    rad_max_table : astropy.table.Table or astropy.io.fits.BinTableHDU
        ctapipe's ``OptimizationResult.spatial_selection_table`` (the ``RAD_MAX`` table
        of the cuts file, ``THETA_CUTS`` of the SST-1M IRF files): ``low``, ``high``,
        ``center``, ``cut``.

    Returns
    -------
    astropy.table.QTable
        ``energy_min``, ``energy_max``, ``energy_center`` [TeV] (the table's ``center``)
        and ``theta_cut`` [deg].
    """
    cuts = _as_qtable(rad_max_table)
    table = QTable()
    table["energy_min"] = cuts["low"].to(u.TeV)
    table["energy_max"] = cuts["high"].to(u.TeV)
    table["energy_center"] = cuts["center"].to(u.TeV)
    table["theta_cut"] = cuts["cut"].to(u.deg)
    return table


def _background_count(scaled, factor):
    """The simulated background counts ``scaled × factor``, integers if the θ cuts match."""
    count = scaled * factor
    rounded = np.rint(count)
    if np.any(np.abs(count - rounded) > COUNT_TOLERANCE * np.maximum(1, rounded)):
        raise ValueError(
            "the simulated background counts recovered from the sensitivity table are"
            " not integers: are the θ cuts those the sensitivity was computed with?"
        )
    return rounded


def _excess_exponent(signal, off, alpha):
    """d ln E_req / d ln B of pyirf's relative sensitivity (NaN where it is undefined)."""
    exponent = np.full(len(off), np.nan)
    usable = np.isfinite(signal) & (signal > 0) & np.isfinite(off) & (off > 0)
    if not np.any(usable):
        return exponent
    s, b = signal[usable], off[usable]
    up, down = b * np.exp(LOG_STEP), b * np.exp(-LOG_STEP)
    # E_req = r × S with S fixed: the ratio of the relative sensitivities
    ratio = relative_sensitivity(s + alpha * up, up, alpha) / relative_sensitivity(
        s + alpha * down, down, alpha
    )
    exponent[usable] = np.log(ratio) / (2 * LOG_STEP)
    return exponent


def sensitivity_table(sensitivity, theta_cuts, fov_bin=0, min_simulated_events=10):
    """
    Differential sensitivity per reconstructed-energy bin with statistical errors.

    Parameters
    ----------
    sensitivity : astropy.io.fits.BinTableHDU or astropy.table.Table
        The ``SENSITIVITY`` table of ctapipe's benchmark file.
    theta_cuts : astropy.table.Table or astropy.io.fits.BinTableHDU
        The θ cuts it was computed with (``center``, ``cut``: ctapipe's
        ``OptimizationResult.spatial_selection_table``); they give the size of the ON
        region to recover the simulated background counts.
    fov_bin : int
        FoV-offset bin (``THETA_LO``, ``THETA_HI``) of the table.
    min_simulated_events : int
        Bins with fewer simulated signal or background events are not ``valid``.

    Returns
    -------
    astropy.table.QTable
        ``energy_min``, ``energy_max``, ``energy_center`` [TeV] (the arithmetic centre,
        where ctapipe evaluates the flux); ``n_signal`` (simulated gammas in the ON
        region), ``n_background`` (simulated background events in the FoV ring);
        ``n_signal_weighted`` (gammas of the reference flux in the ON region),
        ``n_background_weighted`` (background in the ON region, ALPHA × OFF),
        ``n_excess`` (excess needed); ``relative_sensitivity`` (fraction of the
        reference flux) and ``crab_percent`` (% of ``CRAB_HEGRA``), ``flux_sensitivity``
        (E² dN/dE [TeV cm-2 s-1]), each with its ``_err``; ``background_exponent`` (k
        of the module docstring); ``valid`` (finite sensitivity and at least
        ``min_simulated_events`` of each kind). Bins without a sensitivity (NaN or
        infinite in the file) are kept with NaN and ``valid`` False. Meta: ``ALPHA``,
        ``FOV_LO``, ``FOV_HI`` [deg], ``MIN_SIM``.

    Raises
    ------
    ValueError
        If a column is missing, ``fov_bin`` is out of range or the θ cuts do not
        match the table.
    """
    table = _as_qtable(sensitivity)
    missing = [name for name in SENSITIVITY_COLUMNS if name not in table.colnames]
    if missing or "ALPHA" not in table.meta:
        raise ValueError(
            f"not a ctapipe SENSITIVITY table: {', '.join(missing) or 'ALPHA'} missing"
        )
    row = table[0]
    n_fov_bins = len(row["THETA_LO"])
    if not 0 <= fov_bin < n_fov_bins:
        raise ValueError(
            f"fov_bin {fov_bin} is out of range: the table has {n_fov_bins} FoV bins"
        )
    alpha = float(table.meta["ALPHA"])
    energy_min, energy_max = row["ENERG_LO"].to(u.TeV), row["ENERG_HI"].to(u.TeV)
    center = 0.5 * (energy_min + energy_max)
    fov_min, fov_max = row["THETA_LO"][fov_bin], row["THETA_HI"][fov_bin]

    relative = _values(row["RELATIVE_SENSITIVITY"][fov_bin])
    no_signal = np.isinf(relative)
    relative[no_signal] = np.nan
    with np.errstate(invalid="ignore"):
        signal_weighted = np.where(
            no_signal, 0, _values(row["N_SIGNAL_WEIGHTED"][fov_bin]) / relative
        )
        n_signal = np.where(
            no_signal, 0, np.rint(_values(row["N_SIGNAL"][fov_bin]) / relative)
        )
    cuts = _as_qtable(theta_cuts)
    theta_cut = np.interp(
        center.to_value(u.TeV),
        cuts["center"].to_value(u.TeV),
        cuts["cut"].to_value(u.deg),
    )
    size_ratio = (
        cone_solid_angle(theta_cut * u.deg)
        / (cone_solid_angle(fov_max) - cone_solid_angle(fov_min))
    ).to_value(u.one)
    n_background = _background_count(
        _values(row["N_BACKGROUND"][fov_bin]), alpha / size_ratio
    )
    off_weighted = _values(row["N_BACKGROUND_WEIGHTED"][fov_bin])

    exponent = _excess_exponent(signal_weighted, off_weighted, alpha)
    with np.errstate(divide="ignore", invalid="ignore"):
        relative_error = np.sqrt(1 / n_signal + exponent**2 / n_background)
    relative_error[~np.isfinite(relative_error)] = np.nan

    flux = u.Quantity(row["ENERGY_FLUX_SENSITIVITY"][fov_bin]).to(SED_UNIT)
    flux[~np.isfinite(relative)] = np.nan
    crab = (center**2 * CRAB_HEGRA(center)).to(SED_UNIT)

    result = QTable()
    result["energy_min"] = energy_min
    result["energy_max"] = energy_max
    result["energy_center"] = center
    result["n_signal"] = n_signal
    result["n_background"] = n_background
    result["n_signal_weighted"] = signal_weighted
    result["n_background_weighted"] = alpha * off_weighted
    result["n_excess"] = signal_weighted * relative
    result["relative_sensitivity"] = relative
    result["relative_sensitivity_err"] = relative * relative_error
    result["crab_percent"] = 100 * (flux / crab).to_value(u.one)
    result["crab_percent_err"] = result["crab_percent"] * relative_error
    result["flux_sensitivity"] = flux
    result["flux_sensitivity_err"] = flux * relative_error
    result["background_exponent"] = exponent
    with np.errstate(invalid="ignore"):
        result["valid"] = (
            np.isfinite(relative)
            & (relative > 0)
            & (n_signal >= min_simulated_events)
            & (n_background >= min_simulated_events)
        )
    result.meta.update(
        {
            "ALPHA": alpha,
            "FOV_LO": float(fov_min.to_value(u.deg)),
            "FOV_HI": float(fov_max.to_value(u.deg)),
            "MIN_SIM": min_simulated_events,
        }
    )
    return result


def plot_sensitivity(tables, obs_time=None):
    """
    Flux sensitivity (E² dN/dE) and sensitivity in % Crab versus reconstructed energy.

    The valid bins are drawn with their statistical errors; the Crab Nebula
    (``CRAB_HEGRA``) at 100 %, 10 % and 1 % gives the scale.

    Parameters
    ----------
    tables : astropy.table.QTable or dict[str, astropy.table.QTable]
        One table of `sensitivity_table`, or several by label (e.g. per set-up).
    obs_time : astropy.units.Quantity or None
        Observation time of the sensitivity (for the title).

    Returns
    -------
    matplotlib.figure.Figure
    """
    if isinstance(tables, Table):
        tables = {"": tables}
    fig = Figure(figsize=(7, 8), layout="constrained")
    ax_flux, ax_crab = fig.subplots(2, 1, sharex=True)
    for i, (label, table) in enumerate(tables.items()):
        valid = table[table["valid"]]
        center = valid["energy_center"].to_value(u.TeV)
        xerr = [
            center - valid["energy_min"].to_value(u.TeV),
            valid["energy_max"].to_value(u.TeV) - center,
        ]
        style = {"fmt": "o", "ms": 4, "color": f"C{i}", "label": label or None}
        ax_flux.errorbar(
            center,
            valid["flux_sensitivity"].to_value(SED_UNIT),
            xerr=xerr,
            yerr=valid["flux_sensitivity_err"].to_value(SED_UNIT),
            **style,
        )
        ax_crab.errorbar(
            center,
            valid["crab_percent"],
            xerr=xerr,
            yerr=valid["crab_percent_err"],
            **style,
        )
    low = min(t["energy_min"].min() for t in tables.values())
    high = max(t["energy_max"].max() for t in tables.values())
    energy = np.geomspace(low, high, 100)
    crab = (energy**2 * CRAB_HEGRA(energy)).to_value(SED_UNIT)
    for fraction, style in zip(CRAB_FRACTIONS, ("-", "--", ":")):
        ax_flux.plot(
            energy.to_value(u.TeV),
            fraction * crab,
            color="gray",
            ls=style,
            lw=1,
            label=f"{100 * fraction:g} % Crab (HEGRA)",
        )
        ax_crab.axhline(100 * fraction, color="gray", ls=style, lw=1)
    ax_flux.set_ylabel("flux sensitivity E² dN/dE [TeV cm⁻² s⁻¹]")
    ax_crab.set_ylabel("sensitivity [% Crab (HEGRA)]")
    ax_crab.set_xlabel("reconstructed energy [TeV]")
    for ax in (ax_flux, ax_crab):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.grid(True, which="both", alpha=0.3)
    ax_flux.legend(fontsize="small")
    if obs_time is not None:
        ax_flux.set_title(f"differential sensitivity (5σ, {obs_time.to(u.h):.0f})")
    return fig
