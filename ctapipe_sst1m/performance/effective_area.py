"""
Effective area of point-like simulated gammas per true-energy bin.

pyirf's definition, the one of the ``EFFECTIVE AREA`` of ``ctapipe-compute-irf`` for a
point-like simulation: in a true-energy bin,

    A = N_selected / N_simulated · π r_max²,

with ``N_simulated`` the number of showers the simulated power law puts into the bin
(`pyirf.simulations.SimulatedEventsInfo.calculate_n_showers_per_energy`, counting every
reuse of a shower) and ``r_max`` the simulated scatter radius.

Statistical error. ``N_simulated`` is the *expected* number of showers in the bin, not
the number that fell into it, so the binomial error conditional on the bin's showers,
``sqrt(p (1 − p) / N_simulated)`` with ``p = N_selected / N_simulated``, misses the
fluctuation of that number (it vanishes for ``p → 1`` and is undefined for ``p > 1``,
which happens in bins with a few showers). Each of the ``N`` simulated showers (``N =
n_showers × shower_reuse``) lands in the bin and is selected with probability ``q ε``
(``q = N_simulated / N``, ``ε`` the selection efficiency), so ``N_selected`` is binomial
on all ``N`` showers, variance ``N q ε (1 − q ε)``. With ``R = shower_reuse`` the ``R``
uses of a CORSIKA shower share its energy: the ``N / R`` showers each contribute a
binomial ``(R, ε)`` (the uses taken as independent given the energy), variance
``N q ε (1 + (R − 1) ε − R q ε)``. With ``ε`` estimated by ``p``:

    σ_A = π r_max² / N_simulated · sqrt(N_selected (1 + (R − 1) p − R N_selected / N)).

For ``R = 1`` and ``q ≪ 1`` this is the Poisson error ``A / sqrt(N_selected)``; it is
0 in bins without selected showers.

A diffuse simulation needs a FoV-offset binning (the selection depends on the offset),
so only point-like gammas are handled here.
"""

import astropy.units as u
import numpy as np
from astropy.table import QTable
from pyirf.irf import effective_area_per_energy

__all__ = ["effective_area_table", "is_point_like"]


def is_point_like(simulation):
    """
    Whether a simulation is point-like (viewcone of zero radius).

    Parameters
    ----------
    simulation : pyirf.simulations.SimulatedEventsInfo
        Simulated spectrum of a file.

    Returns
    -------
    bool
    """
    return simulation.viewcone_min.value == 0 and simulation.viewcone_max.value == 0


def _effective_area_error(n_selected, n_simulated, simulation, shower_reuse, area):
    """σ_A of the module docstring (NaN in bins without simulated showers)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        efficiency = n_selected / n_simulated
        factor = (
            1
            + (shower_reuse - 1) * efficiency
            - shower_reuse * n_selected / simulation.n_showers
        )
        # clipped at 0: the estimate of ε can make the factor slightly negative
        return area / n_simulated * np.sqrt(n_selected * np.clip(factor, 0, None))


def effective_area_table(
    events, simulation, energy_bins, gammaness_cut, shower_reuse=1
):
    """
    Effective area per true-energy bin, before and after the global gammaness cut.

    Parameters
    ----------
    events : astropy.table.QTable
        Tag events with valid predictions (``true_energy``, ``gammaness``), of a
        point-like simulation.
    simulation : pyirf.simulations.SimulatedEventsInfo
        Simulated spectrum of their file.
    energy_bins : astropy.units.Quantity
        True-energy bin edges.
    gammaness_cut : float
        Global gammaness cut (events with gammaness >= cut pass).
    shower_reuse : int
        Uses of each simulated shower (``shower_reuse`` of the simulation runs; its
        ``n_showers`` counts them all); only the errors depend on it.

    Returns
    -------
    astropy.table.QTable
        ``energy_min``, ``energy_max``, ``energy_center`` (logarithmic centre) [TeV],
        ``n_simulated`` (expected simulated showers in the bin), and for the events with
        valid predictions ``n_selected``, ``effective_area``, ``effective_area_err``
        [m2] (the error of the module docstring), for those passing the gammaness cut the same with the suffix ``_gh_cut``.
        NaN in bins outside the simulated energy range. Meta: ``GH_CUT`` and the
        simulated spectrum (``N_SHOWERS``, ``E_MIN``, ``E_MAX`` [TeV], ``SPEC_IDX``,
        ``MAX_IMP`` [m], ``REUSE``).

    Raises
    ------
    ValueError
        If the simulation is not point-like.
    """
    if not is_point_like(simulation):
        raise ValueError(
            "the effective area per energy needs point-like gammas; this simulation has"
            f" a viewcone of {simulation.viewcone_min} to {simulation.viewcone_max}"
        )
    energy_bins = energy_bins.to(u.TeV)
    area = (np.pi * simulation.max_impact**2).to(u.m**2)
    n_simulated = simulation.calculate_n_showers_per_energy(energy_bins)
    table = QTable()
    table["energy_min"] = energy_bins[:-1]
    table["energy_max"] = energy_bins[1:]
    table["energy_center"] = np.sqrt(energy_bins[:-1] * energy_bins[1:])
    table["n_simulated"] = n_simulated
    passing = events[np.asarray(events["gammaness"]) >= gammaness_cut]
    for suffix, selected in (("", events), ("_gh_cut", passing)):
        n_selected, _ = np.histogram(
            selected["true_energy"].to_value(u.TeV), energy_bins.to_value(u.TeV)
        )
        with np.errstate(divide="ignore", invalid="ignore"):
            effective_area = effective_area_per_energy(
                selected, simulation, energy_bins
            )
        table[f"n_selected{suffix}"] = n_selected
        table[f"effective_area{suffix}"] = effective_area.to(u.m**2)
        table[f"effective_area{suffix}_err"] = _effective_area_error(
            n_selected, n_simulated, simulation, shower_reuse, area
        )
    table.meta.update(
        {
            "GH_CUT": gammaness_cut,
            "N_SHOWERS": simulation.n_showers,
            "E_MIN": simulation.energy_min.to_value(u.TeV),
            "E_MAX": simulation.energy_max.to_value(u.TeV),
            "SPEC_IDX": simulation.spectral_index,
            "MAX_IMP": simulation.max_impact.to_value(u.m),
            "REUSE": shower_reuse,
        }
    )
    return table
