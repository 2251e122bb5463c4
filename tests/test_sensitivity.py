"""Differential sensitivity from ctapipe's Sensitivity2dMaker: values, errors, flags, plot."""

import astropy.units as u
import numpy as np
import pytest
from astropy.io import fits
from astropy.table import QTable, vstack
from ctapipe.irf import Sensitivity2dMaker, Spectra
from matplotlib.figure import Figure
from pyirf.binning import create_histogram_table
from pyirf.sensitivity import calculate_sensitivity
from pyirf.spectral import CRAB_HEGRA

from ctapipe_sst1m.performance.sensitivity import (
    plot_sensitivity,
    sensitivity_table,
    theta_cut_table,
)

ALPHA = 0.2
FOV_MAX = 1.0 * u.deg
N_SIGNAL, N_BACKGROUND = 20_000, 100_000
#: a bin of each regime of the events of `make_events`: the 5 % condition decides
#: (0.1-0.16 TeV), Li & Ma with many background events (0.63-1 TeV), the 10-event
#: minimum (10-16 TeV)
SYSTEMATIC_BIN, LI_MA_BIN, MIN_EVENTS_BIN = 0, 4, 10


def power_law(n, index, energy_min, energy_max, rng):
    """``n`` energies (TeV) drawn from E^index between energy_min and energy_max."""
    g = index + 1
    return (energy_min**g + rng.uniform(size=n) * (energy_max**g - energy_min**g)) ** (
        1 / g
    )


def make_events(rng):
    """
    Signal gammas after the θ cut: E^-2 in 0.1-20 TeV, 0.5 deg from the camera centre,
    weights ∝ E^-0.6 (a Crab-like spectrum). Background: E^-2 in 0.1-100 TeV, uniform
    per solid angle within 1 deg, weights ∝ E^-2.5 (huge at low energies, small at high).
    """
    signal_energy = power_law(N_SIGNAL, -2.0, 0.1, 20.0, rng)
    signal = QTable(
        {
            "reco_energy": signal_energy * u.TeV,
            "true_source_fov_offset": np.full(N_SIGNAL, 0.5) * u.deg,
            "weight": 0.05 * signal_energy**-0.6,
        }
    )
    background_energy = power_law(N_BACKGROUND, -2.0, 0.1, 100.0, rng)
    background = QTable(
        {
            "reco_energy": background_energy * u.TeV,
            "reco_source_fov_offset": np.sqrt(rng.uniform(size=N_BACKGROUND)) * FOV_MAX,
            "weight": 10 * background_energy**-2.5,
        }
    )
    return signal, background


def make_maker():
    """5 bins per decade in 0.1-100 TeV, one FoV bin 0-1 deg."""
    return Sensitivity2dMaker(
        reco_energy_min=0.1 * u.TeV,
        reco_energy_max=100 * u.TeV,
        reco_energy_n_bins_per_decade=5,
        fov_offset_min=0 * u.deg,
        fov_offset_max=FOV_MAX,
        fov_offset_n_bins=1,
        alpha=ALPHA,
    )


def make_theta_cuts(bins):
    """θ cuts from 0.3 deg (lowest bin) to 0.1 deg (highest), as ctapipe's RAD_MAX table."""
    return QTable(
        {
            "low": bins[:-1],
            "high": bins[1:],
            "center": 0.5 * (bins[:-1] + bins[1:]),
            "cut": np.linspace(0.3, 0.1, len(bins) - 1) * u.deg,
        }
    )


def sensitivity_hdu(signal, background, theta_cuts):
    return make_maker()(
        signal_events=signal,
        background_events=background,
        spatial_selection_table=theta_cuts,
        gamma_spectrum=Spectra.CRAB_HEGRA,
    )


@pytest.fixture(scope="module")
def events():
    return make_events(np.random.default_rng(1))


@pytest.fixture(scope="module")
def theta_cuts():
    return make_theta_cuts(make_maker().reco_energy_bins)


@pytest.fixture(scope="module")
def table(events, theta_cuts):
    return sensitivity_table(sensitivity_hdu(*events, theta_cuts), theta_cuts)


def test_sensitivity_table_matches_pyirf(events, theta_cuts, table):
    """Every bin against pyirf's calculate_sensitivity on histograms made by hand."""
    signal, background = events
    bins = make_maker().reco_energy_bins
    center = 0.5 * (bins[:-1] + bins[1:])
    in_ring = background["reco_source_fov_offset"] < FOV_MAX
    energy = background["reco_energy"][in_ring].to_value(u.TeV)
    n_ring, _ = np.histogram(energy, bins.to_value(u.TeV))
    weighted_ring, _ = np.histogram(
        energy, bins.to_value(u.TeV), weights=background["weight"][in_ring]
    )
    theta = np.interp(center, theta_cuts["center"], theta_cuts["cut"])
    size_ratio = ((1 - np.cos(theta)) / (1 - np.cos(FOV_MAX))).to_value(u.one)
    background_hist = QTable(
        {
            "reco_energy_low": bins[:-1],
            "reco_energy_high": bins[1:],
            "reco_energy_center": center,
            "n": n_ring * size_ratio / ALPHA,
            "n_weighted": weighted_ring * size_ratio / ALPHA,
        }
    )
    signal_hist = create_histogram_table(signal, bins)
    expected = calculate_sensitivity(signal_hist, background_hist, ALPHA)

    assert len(table) == 15 and table.meta["ALPHA"] == ALPHA
    assert table.meta["FOV_LO"] == 0 and table.meta["FOV_HI"] == 1
    assert u.allclose(table["energy_center"], center)
    signal_bins = table["n_signal"] > 0
    assert signal_bins.sum() == 12  # the signal ends at 20 TeV
    np.testing.assert_array_equal(
        table["n_signal"][signal_bins], signal_hist["n"][signal_bins]
    )
    np.testing.assert_array_equal(table["n_background"], n_ring)
    np.testing.assert_allclose(table["n_signal_weighted"], signal_hist["n_weighted"])
    np.testing.assert_allclose(
        table["n_background_weighted"], ALPHA * background_hist["n_weighted"]
    )
    np.testing.assert_allclose(
        table["relative_sensitivity"][signal_bins],
        expected["relative_sensitivity"][signal_bins],
        rtol=1e-12,
    )
    crab = (center**2 * CRAB_HEGRA(center)).to(u.Unit("TeV cm-2 s-1"))
    flux = expected["relative_sensitivity"] * crab
    assert table["flux_sensitivity"].unit == u.Unit("TeV cm-2 s-1")
    np.testing.assert_allclose(
        table["flux_sensitivity"][signal_bins].value,
        flux[signal_bins].value,
        rtol=1e-10,
    )
    # the reference spectrum is the Crab: % Crab = 100 × relative sensitivity
    np.testing.assert_allclose(
        table["crab_percent"][signal_bins],
        100 * table["relative_sensitivity"][signal_bins],
        rtol=1e-10,
    )
    # the 5σ excess needed (Li & Ma, ≥ 10 events, ≥ 5 % of the background)
    excess = table["n_excess"][signal_bins]
    on_background = table["n_background_weighted"][signal_bins]
    assert np.all(excess >= np.maximum(10, 0.05 * on_background) * (1 - 1e-9))
    assert table["n_excess"][MIN_EVENTS_BIN] == pytest.approx(10)
    assert table["n_excess"][SYSTEMATIC_BIN] == pytest.approx(
        0.05 * table["n_background_weighted"][SYSTEMATIC_BIN]
    )


def test_errors_in_the_three_regimes(table):
    """σ_r / r = sqrt(1/n_signal + k²/n_background), k = 1, ~1/2, 0."""
    exponent = table["background_exponent"]
    assert exponent[SYSTEMATIC_BIN] == pytest.approx(1, abs=1e-6)
    assert exponent[LI_MA_BIN] == pytest.approx(0.5, abs=0.03)
    assert exponent[MIN_EVENTS_BIN] == pytest.approx(0, abs=1e-6)
    for i, k in ((SYSTEMATIC_BIN, 1), (LI_MA_BIN, 0.5), (MIN_EVENTS_BIN, 0)):
        row = table[i]
        expected = row["relative_sensitivity"] * np.sqrt(
            1 / row["n_signal"] + k**2 / row["n_background"]
        )
        assert row["relative_sensitivity_err"] == pytest.approx(expected, rel=0.02)
        relative = row["relative_sensitivity_err"] / row["relative_sensitivity"]
        flux_relative = row["flux_sensitivity_err"] / row["flux_sensitivity"]
        assert flux_relative.to_value(u.one) == pytest.approx(relative)
        assert row["crab_percent_err"] / row["crab_percent"] == pytest.approx(relative)


def test_errors_shrink_with_the_simulated_counts(events, theta_cuts, table):
    """Twice the simulated events at half the weight: same sensitivity, errors / sqrt(2)."""
    doubled = []
    for sample in events:
        twice = vstack([sample, sample])
        twice["weight"] = twice["weight"] / 2
        doubled.append(twice)
    more = sensitivity_table(sensitivity_hdu(*doubled, theta_cuts), theta_cuts)
    valid = table["valid"]
    np.testing.assert_allclose(
        more["relative_sensitivity"][valid], table["relative_sensitivity"][valid]
    )
    np.testing.assert_array_equal(more["n_signal"], 2 * table["n_signal"])
    np.testing.assert_array_equal(more["n_background"], 2 * table["n_background"])
    for name in ("relative_sensitivity_err", "flux_sensitivity_err"):
        np.testing.assert_allclose(
            more[name][valid] / table[name][valid], 1 / np.sqrt(2), rtol=1e-6
        )


def test_errors_match_the_scatter_of_resampled_simulations(events, theta_cuts, table):
    """The errors predict the scatter of the sensitivity between simulations (Poisson
    resampling of the simulated events), in the three regimes."""
    rng = np.random.default_rng(2)
    relative = []
    for _ in range(60):
        resampled = [
            sample[np.repeat(np.arange(len(sample)), rng.poisson(1, len(sample)))]
            for sample in events
        ]
        relative.append(
            sensitivity_table(sensitivity_hdu(*resampled, theta_cuts), theta_cuts)[
                "relative_sensitivity"
            ]
        )
    scatter = np.std(relative, axis=0)
    ratio = table["relative_sensitivity_err"] / scatter
    valid = table["valid"]
    assert np.all((ratio[valid] > 0.7) & (ratio[valid] < 1.4)), ratio
    assert np.median(ratio[valid]) == pytest.approx(1, abs=0.15)


def test_bins_without_sensitivity_are_flagged(events, theta_cuts, table):
    # no signal above 25 TeV: kept, NaN, not valid
    empty = table["n_signal"] == 0
    assert empty.sum() == 3 and not table["valid"][empty].any()
    for name in ("relative_sensitivity", "flux_sensitivity", "crab_percent"):
        assert np.isnan(table[name][empty]).all(), name
        assert np.isfinite(table[name][~empty]).all(), name
    assert table["valid"][~empty].all()
    # the last signal bin (25 gammas) needs 30 simulated events: flagged, values kept
    strict = sensitivity_table(
        sensitivity_hdu(*events, theta_cuts), theta_cuts, min_simulated_events=30
    )
    sparse = ~empty & (table["n_signal"] < 30)
    assert sparse.sum() == 1
    assert not strict["valid"][sparse].any() and strict["valid"][~empty & ~sparse].all()
    assert np.isfinite(strict["relative_sensitivity"][sparse]).all()
    assert strict.meta["MIN_SIM"] == 30


def test_read_from_the_benchmark_file(events, theta_cuts, table, tmp_path):
    """The HDU through a FITS file, the θ cuts as the RAD_MAX HDU; inconsistent inputs."""
    path = tmp_path / "benchmarks.fits.gz"
    fits.HDUList([fits.PrimaryHDU(), sensitivity_hdu(*events, theta_cuts)]).writeto(
        path
    )
    cuts_hdu = fits.BinTableHDU(theta_cuts, name="RAD_MAX")
    with fits.open(path) as hdul:
        read = sensitivity_table(hdul["SENSITIVITY"], cuts_hdu)
    for name in table.colnames:
        np.testing.assert_allclose(
            u.Quantity(read[name]).value, u.Quantity(table[name]).value, err_msg=name
        )
    cuts = theta_cut_table(cuts_hdu)
    assert cuts.colnames == ["energy_min", "energy_max", "energy_center", "theta_cut"]
    assert cuts["theta_cut"].unit == u.deg and cuts["energy_min"].unit == u.TeV
    np.testing.assert_allclose(cuts["theta_cut"].value, theta_cuts["cut"].value)
    np.testing.assert_allclose(cuts["energy_center"].value, theta_cuts["center"].value)

    hdu = sensitivity_hdu(*events, theta_cuts)
    wider = theta_cuts.copy()
    wider["cut"] = wider["cut"] * 1.3
    with pytest.raises(ValueError, match="θ cuts"):
        sensitivity_table(hdu, wider)
    with pytest.raises(ValueError, match="fov_bin 1 is out of range.*1 FoV bins"):
        sensitivity_table(hdu, theta_cuts, fov_bin=1)
    no_flux = QTable.read(hdu)
    no_flux.remove_column("ENERGY_FLUX_SENSITIVITY")
    with pytest.raises(ValueError, match="ENERGY_FLUX_SENSITIVITY missing"):
        sensitivity_table(no_flux, theta_cuts)


def test_plot_sensitivity(table, tmp_path):
    fig = plot_sensitivity(table, obs_time=50 * u.h)
    assert isinstance(fig, Figure)
    ax_flux, ax_crab = fig.axes
    assert "50 h" in ax_flux.get_title()
    labels = [text.get_text() for text in ax_flux.get_legend().get_texts()]
    assert labels == ["100 % Crab (HEGRA)", "10 % Crab (HEGRA)", "1 % Crab (HEGRA)"]
    # one point per valid bin, with its error bar, in both panels
    (points,) = ax_flux.containers
    assert len(points.lines[0].get_xdata()) == table["valid"].sum()
    np.testing.assert_allclose(
        points.lines[0].get_ydata(), table["flux_sensitivity"][table["valid"]].value
    )
    assert len(ax_crab.containers) == 1
    fig.savefig(tmp_path / "sensitivity.png")
    assert (tmp_path / "sensitivity.png").stat().st_size > 0

    fig = plot_sensitivity({"tel_021": table, "stereo": table})
    labels = [text.get_text() for text in fig.axes[0].get_legend().get_texts()]
    assert {"tel_021", "stereo"} <= set(labels)
    assert len(fig.axes[0].containers) == 2
