"""sst1m-performance: metric functions on known distributions, DL2 reading, the command line."""

import astropy.units as u
import numpy as np
import pytest
import tables
from astropy.table import QTable, Table, join
from astropy.time import Time
from conftest import run_cli
from ctapipe.core import QualityQuery
from ctapipe.io import read_table, write_table
from pyirf.simulations import SimulatedEventsInfo
from pyirf.spectral import CRAB_HEGRA, IRFDOC_PROTON_SPECTRUM
from pyirf.utils import calculate_theta

from ctapipe_sst1m.instrument import sst1m_subarray
from ctapipe_sst1m.io.model_sets import MODELS_ID_ATTR
from ctapipe_sst1m.performance.effective_area import (
    effective_area_table,
    is_point_like,
)
from ctapipe_sst1m.performance.inputs import (
    PerformanceInputError,
    available_variants,
    check_primaries,
    check_same_models,
    check_simulated,
    event_weights,
    read_tag_events,
)
from ctapipe_sst1m.performance.metrics import (
    angular_resolution_table,
    auc_per_energy,
    energy_resolution,
    energy_threshold,
    gammaness_cut_table,
    roc_table,
    summarize_above_threshold,
)
from ctapipe_sst1m.statistics import bootstrap_error, weighted_quantile

POINTING_ALT, POINTING_AZ = 70.0, 180.0
#: energy threshold of the fake trigger: probability 1 / (1 + (E0 / E)^4)
TRIGGER_ENERGY = 0.5 * u.TeV
#: relative energy and per-axis direction (deg) smearing of the fake predictions
SMEARING = {"tel": (0.20, 0.20), "mono": (0.15, 0.15), "stereo": (0.10, 0.10)}
#: 68 % containment radius of a 2D Gaussian, in units of its sigma per axis
CONTAINMENT_68 = np.sqrt(-2 * np.log(1 - 0.6827))
#: AUC of scores N(1, 1) (gammas) against N(0, 1) (protons): Phi(1 / sqrt(2))
AUC_UNIT_SHIFT = 0.7602
DL2_GROUPS = {"regressor": "energy", "disp": "geometry", "classifier": "particle_type"}


def smear_direction(alt, az, sigma, rng):
    """Isotropic Gaussian smearing on the sky of alt, az (deg), sigma (deg) per axis."""
    return (
        alt + sigma * rng.normal(size=len(alt)),
        az + sigma * rng.normal(size=len(alt)) / np.cos(np.deg2rad(alt)),
    )


def tag_events(n, energy_smearing, direction_smearing, rng, gammaness_mean=1.0):
    """Tag events with E^-1 true energies in 0.2-300 TeV and Gaussian-smeared predictions."""
    true_energy = np.exp(rng.uniform(np.log(0.2), np.log(300), n))
    true_alt, true_az = np.full(n, POINTING_ALT), np.full(n, POINTING_AZ)
    reco_alt, reco_az = smear_direction(true_alt, true_az, direction_smearing, rng)
    events = QTable(
        {
            "true_energy": true_energy * u.TeV,
            "reco_energy": true_energy
            * (1 + energy_smearing * rng.normal(size=n))
            * u.TeV,
            "true_alt": true_alt * u.deg,
            "true_az": true_az * u.deg,
            "reco_alt": reco_alt * u.deg,
            "reco_az": reco_az * u.deg,
            "gammaness": sigmoid(rng.normal(gammaness_mean, 1.0, n)),
            "weight": np.ones(n),
        }
    )
    events["theta"] = calculate_theta(events, events["true_az"], events["true_alt"])
    return events


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def write(path, node, **columns):
    write_table(Table(columns), path, node)


def write_predictions(
    path,
    truth,
    variant,
    rows,
    tel_id,
    smearing,
    valid,
    rng,
    telescopes=None,
    energy_factor=1.0,
):
    """The three DL2 tables (regressor, disp, classifier) of a variant, tel or subarray level."""
    energy_smearing, direction_smearing = smearing
    alt, az = smear_direction(
        truth["alt"][rows], truth["az"][rows], direction_smearing, rng
    )
    predictions = {
        "regressor": {
            "energy": truth["energy"][rows]
            * energy_factor
            * (1 + energy_smearing * rng.normal(size=len(rows)))
            * u.TeV
        },
        "disp": {"alt": alt * u.deg, "az": az * u.deg},
        "classifier": {
            "prediction": sigmoid(rng.normal(truth["gammaness_mean"], 1.0, len(rows)))
        },
    }
    level = "" if tel_id is None else "_tel"
    for kind, values in predictions.items():
        prefix = f"{variant}_{kind}"
        columns = {"obs_id": truth["obs_id"][rows], "event_id": truth["event_id"][rows]}
        if tel_id is not None:
            columns["tel_id"] = np.full(len(rows), tel_id)
        for name, value in values.items():
            columns[f"{prefix}{level}_{name}"] = np.where(valid, value, np.nan)
        columns[f"{prefix}{level}_is_valid"] = valid
        node = f"/dl2/event/{'subarray' if tel_id is None else 'telescope'}/{DL2_GROUPS[kind]}/{prefix}"
        if tel_id is None:
            columns[f"{prefix}_telescopes"] = telescopes
        else:
            node += f"/tel_{tel_id:03d}"
        write(path, node, **columns)


def write_dl2(
    path,
    particle,
    n_events=3000,
    seed=0,
    variants=("mono", "stereo"),
    models_id="models-1",
    viewcone_deg=None,
):
    """
    A simulated DL2 file in the layout of sst1m-apply-models (ctapipe 0.32).

    E^-2 between 0.2 and 300 TeV, triggered with probability 1 / (1 + (E0 / E)^4);
    gammas from the pointing direction, protons within ~3 deg. 20 % of the events
    trigger one telescope; 10 % of the telescope predictions are invalid (NaN). The
    predictions are the truth smeared by SMEARING, gammaness = sigmoid(N(1, 1)) for
    gammas and sigmoid(N(0, 1)) for protons; the stereo energy of one-telescope events
    is 3 times too high (they must not enter the stereo tag). The simulated viewcone is
    ``viewcone_deg`` (default: 0 for gammas, point-like, and 5 for protons).
    """
    rng = np.random.default_rng(seed)
    sst1m_subarray((1, 2)).to_hdf(path)
    energy_min, energy_max = 0.2, 300.0
    energy = energy_min / (
        1 - rng.uniform(size=4 * n_events) * (1 - energy_min / energy_max)
    )
    triggered = rng.uniform(size=energy.size) < 1 / (
        1 + (TRIGGER_ENERGY.to_value(u.TeV) / energy) ** 4
    )
    energy = energy[triggered][:n_events]
    n = energy.size
    gamma = particle == "gamma"
    truth = {
        "obs_id": np.ones(n, np.int64),
        "event_id": 100 * np.arange(n, dtype=np.int64) + 1,
        "energy": energy,
        "alt": np.full(n, POINTING_ALT),
        "az": np.full(n, POINTING_AZ),
        "gammaness_mean": 1.0 if gamma else 0.0,
    }
    if not gamma:
        truth["alt"], truth["az"] = smear_direction(truth["alt"], truth["az"], 3.0, rng)
    keys = {"obs_id": truth["obs_id"], "event_id": truth["event_id"]}

    tels = np.ones((n, 2), dtype=bool)
    one = rng.uniform(size=n) < 0.2
    tels[one, rng.integers(0, 2, np.count_nonzero(one))] = False
    time = Time(1.7e9 + 1e-3 * np.arange(n), format="unix_tai")
    write(
        path,
        "/dl1/event/subarray/trigger",
        **keys,
        time=time,
        tels_with_trigger=tels,
        event_type=np.full(n, 32),
    )
    rows, tel_index = np.nonzero(tels)
    write(
        path,
        "/dl1/event/telescope/trigger",
        obs_id=truth["obs_id"][rows],
        event_id=truth["event_id"][rows],
        tel_id=tel_index + 1,
        time=time[rows],
        event_type=np.full(rows.size, 32),
        n_trigger_pixels=np.full(rows.size, -1),
    )
    for tel_id in (1, 2):
        tel_rows = rows[tel_index == tel_id - 1]
        write(
            path,
            f"/dl1/event/telescope/parameters/tel_{tel_id:03d}",
            obs_id=truth["obs_id"][tel_rows],
            event_id=truth["event_id"][tel_rows],
            tel_id=np.full(tel_rows.size, tel_id),
            hillas_intensity=10 ** rng.uniform(1, 4, tel_rows.size),
        )
    write(
        path,
        "/simulation/event/subarray/shower",
        **keys,
        true_energy=energy * u.TeV,
        true_alt=truth["alt"] * u.deg,
        true_az=truth["az"] * u.deg,
        true_shower_primary_id=np.full(n, 0 if gamma else 101, np.int16),
    )
    write(
        path,
        "/configuration/simulation/run",
        obs_id=[1],
        n_showers=[4 * n_events],
        shower_reuse=[1],
        energy_range_min=[energy_min] * u.TeV,
        energy_range_max=[energy_max] * u.TeV,
        spectral_index=[-2.0],
        max_scatter_range=[500.0] * u.m,
        min_viewcone_radius=[0.0] * u.deg,
        max_viewcone_radius=[
            viewcone_deg if viewcone_deg is not None else 0.0 if gamma else 5.0
        ]
        * u.deg,
    )
    for variant in variants:
        used = np.zeros((n, 2), dtype=bool)
        for tel_id in (1, 2):
            tel_rows = np.flatnonzero(tels[:, tel_id - 1])
            valid = rng.uniform(size=tel_rows.size) > 0.1
            used[tel_rows[valid], tel_id - 1] = True
            write_predictions(
                path, truth, variant, tel_rows, tel_id, SMEARING["tel"], valid, rng
            )
        energy_factor = (
            np.where(used.sum(axis=1) == 1, 3.0, 1.0) if variant == "stereo" else 1.0
        )
        write_predictions(
            path,
            truth,
            variant,
            np.arange(n),
            None,
            SMEARING[variant],
            used.any(axis=1),
            rng,
            telescopes=used,
            energy_factor=energy_factor,
        )
    if models_id is not None:
        with tables.open_file(path, mode="r+") as h5file:
            h5file.root._v_attrs[MODELS_ID_ATTR] = models_id
    return path


@pytest.fixture(scope="module")
def dl2_files(tmp_path_factory):
    directory = tmp_path_factory.mktemp("dl2")
    return (
        write_dl2(directory / "gamma.dl2.h5", "gamma", seed=1),
        write_dl2(directory / "proton.dl2.h5", "proton", seed=2),
    )


def test_energy_resolution_of_gaussian_smearing():
    events = tag_events(40_000, 0.10, 0.1, np.random.default_rng(1))
    bins = [0.2, 2, 20, 300] * u.TeV
    table = energy_resolution(events, bins, min_events=10)
    assert table["n_events"].sum() == 40_000
    np.testing.assert_allclose(table["resolution"], 0.10, atol=0.005)
    np.testing.assert_allclose(table["bias"], 0.0, atol=0.005)


def test_sparse_bins_are_nan():
    events = tag_events(2000, 0.10, 0.1, np.random.default_rng(2))
    bins = [0.2, 200, 250, 300] * u.TeV  # E^-1: ~ 70 and 60 events in the last two bins
    assert np.isfinite(
        energy_resolution(events, bins, min_events=10)["resolution"]
    ).all()
    table = energy_resolution(events, bins, min_events=100)
    assert (
        np.isfinite(table["resolution"][0]) and np.isnan(table["resolution"][1:]).all()
    )
    table = angular_resolution_table(events, bins, min_events=100)
    assert np.isnan(table["angular_resolution_68"][1:]).all()
    assert table["n_events"].sum() == 2000


def test_angular_resolution_of_gaussian_smearing():
    events = tag_events(40_000, 0.10, 0.1, np.random.default_rng(3))
    table = angular_resolution_table(events, [0.2, 2, 300] * u.TeV, min_events=10)
    assert table["angular_resolution_68"].unit == u.deg
    np.testing.assert_allclose(
        table["angular_resolution_68"].to_value(u.deg), 0.1 * CONTAINMENT_68, rtol=0.03
    )


def test_roc_and_auc_per_energy():
    rng = np.random.default_rng(4)
    gammas = tag_events(20_000, 0.1, 0.1, rng, gammaness_mean=1.0)
    protons = tag_events(20_000, 0.1, 0.1, rng, gammaness_mean=0.0)
    roc = roc_table(gammas["gammaness"], protons["gammaness"])
    assert roc.meta["AUC"] == pytest.approx(AUC_UNIT_SHIFT, abs=0.01)
    # monotonic curve from (0, 0) to (1, 1); the efficiencies are those of each cut
    assert roc["gamma_efficiency"][0] == 0 and roc["proton_efficiency"][-1] == 1
    i = len(roc) // 2
    assert roc["gamma_efficiency"][i] == np.mean(
        gammas["gammaness"] >= roc["gammaness_cut"][i]
    )
    assert roc["proton_efficiency"][i] == np.mean(
        protons["gammaness"] >= roc["gammaness_cut"][i]
    )

    # perfectly separated above 10 TeV; a bin without 10 protons gets NaN
    high = protons["reco_energy"] > 10 * u.TeV
    protons["gammaness"][high] = 0.0
    gammas["gammaness"][gammas["reco_energy"] > 10 * u.TeV] = 1.0
    keep = ~(
        (protons["reco_energy"] > 100 * u.TeV) & (np.arange(len(protons)) % 1000 != 0)
    )
    table = auc_per_energy(
        gammas, protons[keep], [0.2, 10, 100, 1000] * u.TeV, min_events=10
    )
    assert table["auc"][0] == pytest.approx(AUC_UNIT_SHIFT, abs=0.01)
    assert table["auc"][1] == 1.0
    assert table["n_protons"][2] < 10 and np.isnan(table["auc"][2])


def test_gammaness_cuts_keep_the_target_efficiency():
    rng = np.random.default_rng(5)
    gammas = tag_events(20_000, 0.1, 0.1, rng)
    gammas["gammaness"] = rng.uniform(size=len(gammas))
    protons = tag_events(20_000, 0.1, 0.1, rng)
    protons["gammaness"] = rng.uniform(size=len(protons)) ** 3
    bins = [0.2, 2, 20, 380, 1000] * u.TeV
    cuts = gammaness_cut_table(
        gammas, protons, bins, gamma_efficiency=0.7, min_events=100
    )
    assert cuts.colnames[:5] == ["low", "high", "center", "n_events", "cut"]
    assert cuts["n_events"][2] >= 100 and cuts["n_events"][3] < 100
    np.testing.assert_allclose(cuts["cut"][:3], 0.3, atol=0.02)
    np.testing.assert_allclose(cuts["gamma_efficiency"][:3], 0.7, atol=0.01)
    np.testing.assert_allclose(
        cuts["proton_efficiency"][:3], 1 - 0.3 ** (1 / 3), atol=0.02
    )
    # the sparse bin gets the cut of all gammas; clipping to [0.1, 0.95]
    assert cuts["cut"][3] == pytest.approx(
        np.quantile(gammas["gammaness"], 0.3), abs=1e-3
    )
    assert (gammaness_cut_table(gammas, protons, bins, 0.01, 100)["cut"] == 0.95).all()
    assert (gammaness_cut_table(gammas, protons, bins, 0.99, 100)["cut"] == 0.1).all()


def test_weighted_quantile():
    rng = np.random.default_rng(6)
    values = rng.normal(size=1001)
    np.testing.assert_allclose(
        weighted_quantile(values, [0.1, 0.5, 0.9]),
        np.quantile(values, [0.1, 0.5, 0.9], method="hazen"),
    )
    # integer weights are repetitions
    weights = rng.integers(1, 4, values.size)
    np.testing.assert_allclose(
        weighted_quantile(values, 0.3, weights),
        np.quantile(np.repeat(values, weights), 0.3),
        atol=0.01,
    )
    assert np.isnan(weighted_quantile([], 0.5))


def test_event_weights_follow_the_spectra():
    point = SimulatedEventsInfo(
        n_showers=1000,
        energy_min=0.2 * u.TeV,
        energy_max=300 * u.TeV,
        max_impact=500 * u.m,
        spectral_index=-2.0,
        viewcone_min=0 * u.deg,
        viewcone_max=0 * u.deg,
    )
    energy = [1, 10] * u.TeV
    weights = event_weights(energy, point, CRAB_HEGRA)
    assert weights[1] / weights[0] == pytest.approx(10**-0.62)
    diffuse = SimulatedEventsInfo(
        n_showers=1000,
        energy_min=0.4 * u.TeV,
        energy_max=300 * u.TeV,
        max_impact=800 * u.m,
        spectral_index=-2.0,
        viewcone_min=0 * u.deg,
        viewcone_max=8 * u.deg,
    )
    for spectrum in (CRAB_HEGRA, IRFDOC_PROTON_SPECTRUM):
        weights = event_weights(energy, diffuse, spectrum)
        assert weights[1] / weights[0] == pytest.approx(10**-0.62)
    with pytest.raises(PerformanceInputError, match="point-like simulation"):
        event_weights(energy, point, IRFDOC_PROTON_SPECTRUM)


def test_energy_threshold_is_the_peak():
    rng = np.random.default_rng(7)
    energy = np.exp(rng.normal(np.log(0.8), 0.3, 50_000)) * u.TeV
    bins = np.logspace(-1, 3, 41) * u.TeV
    threshold = energy_threshold(energy, np.ones(energy.size), bins)
    assert 0.63 < threshold.to_value(u.TeV) < 1.0
    # weights move the peak: E^-2 weights on a flat dN/dlogE peak at the lowest energy
    flat = np.exp(rng.uniform(np.log(0.3), np.log(30), 50_000)) * u.TeV
    threshold = energy_threshold(flat, flat.to_value(u.TeV) ** -2, bins)
    assert 0.3 < threshold.to_value(u.TeV) < 0.4
    assert np.isnan(energy_threshold([] * u.TeV, [], bins))


def test_summary_above_threshold():
    rng = np.random.default_rng(8)
    gammas = tag_events(40_000, 0.10, 0.1, rng)
    protons = tag_events(40_000, 0.10, 0.1, rng, gammaness_mean=0.0)
    # below 1 TeV: energy wrong by a factor 2, directions 1 deg off, classification perfect
    low_gammas = gammas["true_energy"] < 1 * u.TeV
    gammas["reco_energy"][low_gammas] *= 2
    gammas["theta"][low_gammas] = 1 * u.deg
    gammas["gammaness"][gammas["reco_energy"] < 1 * u.TeV] = 1.0
    protons["gammaness"][protons["reco_energy"] < 1 * u.TeV] = 0.0
    summary = summarize_above_threshold(
        gammas, protons, 1 * u.TeV, gammaness_cut=sigmoid(0.5)
    )
    assert summary["energy_bias"] == pytest.approx(0, abs=0.005)
    assert summary["energy_resolution"] == pytest.approx(0.10, abs=0.005)
    assert summary["angular_resolution"].to_value(u.deg) == pytest.approx(
        0.1 * CONTAINMENT_68, rel=0.03
    )
    assert summary["auc"] == pytest.approx(AUC_UNIT_SHIFT, abs=0.01)
    # gammaness >= sigmoid(0.5): N(1, 1) > 0.5 and N(0, 1) > 0.5
    assert summary["gamma_efficiency"] == pytest.approx(0.6915, abs=0.01)
    assert summary["proton_efficiency"] == pytest.approx(0.3085, abs=0.01)
    assert summary["n_gammas"] == np.count_nonzero(~low_gammas)
    # the weights count: a weight 0 above 10 TeV removes those events from the statistics
    gammas["weight"][gammas["true_energy"] > 10 * u.TeV] = 0.0
    gammas["reco_energy"][gammas["true_energy"] > 10 * u.TeV] *= 5
    assert summarize_above_threshold(gammas, protons, 1 * u.TeV, 0.5)[
        "energy_bias"
    ] == pytest.approx(0, abs=0.005)


def test_bootstrap_error():
    rng = np.random.default_rng(9)
    assert bootstrap_error(rng.normal(3.0, 0.2, 100_000)) == pytest.approx(
        0.2, rel=0.02
    )
    assert np.isnan(bootstrap_error([np.nan, np.nan])) and np.isnan(bootstrap_error([]))


def test_bootstrap_errors_match_the_scatter_of_repeated_samples():
    """The errors from resampling one data set predict the scatter between independent data sets."""
    rng = np.random.default_rng(10)
    bins = [0.2, 2, 300] * u.TeV
    repeated = [tag_events(2000, 0.10, 0.1, rng) for _ in range(100)]
    scatter = {
        "resolution": bootstrap_error(
            [
                summarize_above_threshold(e, e, 2 * u.TeV, 0.5)["energy_resolution"]
                for e in repeated
            ]
        ),
        "angular": bootstrap_error(
            [
                summarize_above_threshold(e, e, 2 * u.TeV, 0.5)[
                    "angular_resolution"
                ].value
                for e in repeated
            ]
        ),
        "bin_resolution": bootstrap_error(
            [energy_resolution(e, bins, 10)["resolution"][1] for e in repeated]
        ),
        "bin_bias": bootstrap_error(
            [energy_resolution(e, bins, 10)["bias"][1] for e in repeated]
        ),
        "bin_angular": bootstrap_error(
            [
                angular_resolution_table(e, bins, 10)["angular_resolution_68"][1].value
                for e in repeated
            ]
        ),
    }
    events = repeated[0]
    summary = summarize_above_threshold(
        events, events, 2 * u.TeV, 0.5, n_resamples=300, rng=rng
    )
    energy = energy_resolution(events, bins, 10, n_resamples=300, rng=rng)
    angular = angular_resolution_table(events, bins, 10, n_resamples=300, rng=rng)
    assert summary["energy_resolution_err"] == pytest.approx(
        scatter["resolution"], rel=0.35
    )
    assert summary["angular_resolution_err"].to_value(u.deg) == pytest.approx(
        scatter["angular"], rel=0.35
    )
    assert energy["resolution_err"][1] == pytest.approx(
        scatter["bin_resolution"], rel=0.35
    )
    assert energy["bias_err"][1] == pytest.approx(scatter["bin_bias"], rel=0.35)
    assert angular["angular_resolution_68_err"][1].to_value(u.deg) == pytest.approx(
        scatter["bin_angular"], rel=0.35
    )
    # fewer events, larger errors: the low bin holds about a third of the events
    assert energy["resolution_err"][0] > energy["resolution_err"][1] * 1.2

    # reproducible with the seed; none without resamples
    again = energy_resolution(
        events, bins, 10, n_resamples=300, rng=np.random.default_rng(1)
    )
    np.testing.assert_array_equal(
        again["resolution_err"],
        energy_resolution(events, bins, 10, 300, np.random.default_rng(1))[
            "resolution_err"
        ],
    )
    assert np.isnan(energy_resolution(events, bins, 10)["resolution_err"]).all()
    assert np.isnan(
        summarize_above_threshold(events, events, 2 * u.TeV, 0.5)[
            "energy_resolution_err"
        ]
    )


def test_bootstrap_is_chunked(monkeypatch):
    """Resampling in chunks (bounded memory) gives the same replicates as at once."""
    import ctapipe_sst1m.statistics as statistics

    events = tag_events(3000, 0.10, 0.1, np.random.default_rng(11))
    bins = [0.2, 300] * u.TeV
    whole = energy_resolution(events, bins, 10, 50, np.random.default_rng(2))
    monkeypatch.setattr(statistics, "BOOTSTRAP_CHUNK_VALUES", 7 * len(events))
    chunked = energy_resolution(events, bins, 10, 50, np.random.default_rng(2))
    assert chunked["resolution_err"][0] == whole["resolution_err"][0]


def power_law_energies(n, index, energy_min, energy_max, rng):
    """``n`` energies (TeV) drawn from E^index between energy_min and energy_max."""
    g = index + 1
    return (energy_min**g + rng.uniform(size=n) * (energy_max**g - energy_min**g)) ** (
        1 / g
    )


def test_effective_area_of_a_known_selection():
    """30 % of the simulated showers kept at random: A = 0.3 π r², binomial errors."""
    rng = np.random.default_rng(12)
    n_showers, radius = 400_000, 500 * u.m
    simulation = SimulatedEventsInfo(
        n_showers=n_showers,
        energy_min=0.2 * u.TeV,
        energy_max=300 * u.TeV,
        max_impact=radius,
        spectral_index=-2.0,
        viewcone_min=0 * u.deg,
        viewcone_max=0 * u.deg,
    )
    assert is_point_like(simulation)
    energy = power_law_energies(n_showers, -2.0, 0.2, 300.0, rng)
    kept = rng.uniform(size=n_showers) < 0.3
    events = QTable(
        {
            "true_energy": energy[kept] * u.TeV,
            "gammaness": rng.uniform(size=np.count_nonzero(kept)),
        }
    )
    bins = np.logspace(-1, 3, 21) * u.TeV
    table = effective_area_table(events, simulation, bins, gammaness_cut=0.75)
    area = (np.pi * radius**2).to(u.m**2)

    assert table["effective_area"].unit == u.m**2 and table.meta["GH_CUT"] == 0.75
    assert table["n_simulated"].sum() == pytest.approx(n_showers)
    assert table["n_selected"].sum() == np.count_nonzero(kept)
    # bins outside 0.2-300 TeV (0.1-0.16, 398-1000 TeV) have no simulated showers
    outside = (bins[1:] <= 0.2 * u.TeV) | (bins[:-1] >= 300 * u.TeV)
    assert np.count_nonzero(outside) == 3
    assert np.isnan(table["effective_area"][outside]).all()
    assert np.isnan(table["effective_area_err"][outside]).all()
    # the binomial errors describe the scatter around 0.3 π r² (17 bins, 56 to 36 000
    # selected showers each)
    inside = ~outside
    pulls = (table["effective_area"][inside] - 0.3 * area) / table[
        "effective_area_err"
    ][inside]
    assert 0.6 < np.std(pulls) < 1.5 and abs(np.mean(pulls)) < 0.75
    assert np.max(np.abs(pulls)) < 4
    # the gammaness cut keeps a quarter of them, in every bin at most as many
    assert table["n_selected_gh_cut"].sum() / table["n_selected"].sum() == (
        pytest.approx(0.25, abs=0.01)
    )
    assert np.all(
        table["effective_area_gh_cut"][inside] <= table["effective_area"][inside]
    )
    np.testing.assert_allclose(
        table["effective_area_gh_cut"][inside] / area, 0.3 * 0.25, rtol=0.5
    )

    diffuse = SimulatedEventsInfo(
        n_showers=n_showers,
        energy_min=0.2 * u.TeV,
        energy_max=300 * u.TeV,
        max_impact=radius,
        spectral_index=-2.0,
        viewcone_min=0 * u.deg,
        viewcone_max=3 * u.deg,
    )
    assert not is_point_like(diffuse)
    with pytest.raises(ValueError, match="point-like"):
        effective_area_table(events, diffuse, bins, 0.75)


@pytest.mark.parametrize(
    ("n_corsika", "reuse", "efficiency"), [(20_000, 1, 0.9), (5_000, 10, 0.6)]
)
def test_effective_area_errors_match_the_scatter_of_simulations(
    n_corsika, reuse, efficiency
):
    """The errors predict the scatter of A between independent simulations, for a high
    efficiency and with reused showers (where the binomial error of the showers in the
    bin, sqrt(p (1 - p) / N_simulated), is 3 times too small)."""
    rng = np.random.default_rng(13)
    radius = 500 * u.m
    simulation = SimulatedEventsInfo(
        n_showers=n_corsika * reuse,
        energy_min=0.2 * u.TeV,
        energy_max=300 * u.TeV,
        max_impact=radius,
        spectral_index=-2.0,
        viewcone_min=0 * u.deg,
        viewcone_max=0 * u.deg,
    )
    # 5 bins with 28 % to 0.16 % of the CORSIKA showers each (5500 to 8 showers)
    bins = np.logspace(-0.5, 2, 6) * u.TeV
    areas, errors = [], []
    for _ in range(200):
        energy = np.repeat(power_law_energies(n_corsika, -2.0, 0.2, 300.0, rng), reuse)
        kept = rng.uniform(size=energy.size) < efficiency
        events = QTable(
            {
                "true_energy": energy[kept] * u.TeV,
                "gammaness": np.ones(np.count_nonzero(kept)),
            }
        )
        table = effective_area_table(events, simulation, bins, 0.5, shower_reuse=reuse)
        assert table.meta["REUSE"] == reuse
        areas.append(table["effective_area"].to_value(u.m**2))
        errors.append(table["effective_area_err"].to_value(u.m**2))
    scatter, error = np.std(areas, axis=0), np.mean(errors, axis=0)
    np.testing.assert_allclose(scatter / error, 1, atol=0.2)
    np.testing.assert_allclose(
        np.mean(areas, axis=0),
        efficiency * np.pi * radius.to_value(u.m) ** 2,
        rtol=0.02,
    )
    n_simulated = simulation.calculate_n_showers_per_energy(bins)
    binomial = (
        np.pi
        * radius.to_value(u.m) ** 2
        * np.sqrt(efficiency * (1 - efficiency) / n_simulated)
    )
    assert np.all(scatter / binomial > 2.5)


def hand_effective_area(path, low, high, gammaness_cut):
    """
    Stereo effective area in [low, high) TeV from the tables of a DL2 file, without pyirf.

    N_selected: showers with the three stereo predictions valid and made with every
    telescope (and gammaness >= cut); N_simulated: the showers of the runs'
    power law in the bin (n_showers × shower_reuse); A = N_selected / N_simulated π r².
    """
    runs = read_table(path, "/configuration/simulation/run")
    n_showers = np.sum(runs["n_showers"] * runs["shower_reuse"])
    g = runs["spectral_index"][0] + 1
    energy_min = runs["energy_range_min"].quantity[0].to_value(u.TeV)
    energy_max = runs["energy_range_max"].quantity[0].to_value(u.TeV)
    low, high = max(low, energy_min), min(high, energy_max)
    n_simulated = n_showers * (high**g - low**g) / (energy_max**g - energy_min**g)
    area = np.pi * runs["max_scatter_range"].quantity[0].to_value(u.m) ** 2

    events = read_table(path, "/simulation/event/subarray/shower")[
        "obs_id", "event_id", "true_energy"
    ]
    for group, prefix in (
        ("energy", "stereo_regressor"),
        ("geometry", "stereo_disp"),
        ("particle_type", "stereo_classifier"),
    ):
        table = read_table(path, f"/dl2/event/subarray/{group}/{prefix}")
        keep = table[f"{prefix}_is_valid"] & np.all(
            table[f"{prefix}_telescopes"], axis=1
        )
        names = ["obs_id", "event_id"]
        if prefix == "stereo_classifier":
            names.append("stereo_classifier_prediction")
        events = join(events, table[keep][names], keys=["obs_id", "event_id"])
    energy = events["true_energy"].quantity.to_value(u.TeV)
    in_bin = (energy >= low) & (energy < high)
    passes = in_bin & (events["stereo_classifier_prediction"] >= gammaness_cut)
    n_selected, n_passing = np.count_nonzero(in_bin), np.count_nonzero(passes)
    return {
        "n_selected": n_selected,
        "n_selected_gh_cut": n_passing,
        "effective_area": n_selected / n_simulated * area,
        "effective_area_gh_cut": n_passing / n_simulated * area,
    }


def check_effective_area(table):
    """Finite positive areas where events are, the gammaness cut never adds any."""
    assert table["effective_area"].unit == u.m**2
    filled = table["n_selected"] > 0
    assert filled.any()
    assert (table["effective_area"][filled] > 0 * u.m**2).all()
    assert (table["effective_area_err"][filled] > 0 * u.m**2).all()
    passing = table["n_selected_gh_cut"] > 0
    assert (table["effective_area_gh_cut"][passing] > 0 * u.m**2).all()
    assert (table["n_selected_gh_cut"] <= table["n_selected"]).all()
    simulated = table["n_simulated"] > 0
    assert np.isfinite(table["effective_area"][simulated]).all()
    assert (
        table["effective_area_gh_cut"][simulated] <= table["effective_area"][simulated]
    ).all()
    # the simulated area bounds it, up to the fluctuations of the simulated showers
    area = np.pi * (table.meta["MAX_IMP"] * u.m) ** 2
    assert (
        table["effective_area"][simulated] - 3 * table["effective_area_err"][simulated]
        <= area
    ).all()


def check_hand_effective_area(table, path):
    """The fullest bin of a stereo table against `hand_effective_area`."""
    i = np.argmax(table["n_selected"])
    expected = hand_effective_area(
        path,
        table["energy_min"][i].to_value(u.TeV),
        table["energy_max"][i].to_value(u.TeV),
        table.meta["GH_CUT"],
    )
    assert expected["n_selected"] > 0 and expected["n_selected_gh_cut"] > 0
    for name, value in expected.items():
        if name.startswith("n_"):
            assert table[name][i] == value, name
        else:
            assert table[name][i].to_value(u.m**2) == pytest.approx(value, rel=1e-9)


def test_read_tag_events(dl2_files):
    gamma_path, _ = dl2_files
    assert available_variants(gamma_path) == ["mono", "stereo"]
    events, simulation = read_tag_events(gamma_path, ["mono", "stereo"])
    assert list(events) == ["tel_001", "tel_002", "mono_combined", "stereo"]
    assert simulation.n_showers == 12_000 and simulation.spectral_index == -2.0

    tel_valid = {}
    for tel_id in (1, 2):
        table = read_table(
            gamma_path, f"/dl2/event/telescope/energy/mono_regressor/tel_{tel_id:03d}"
        )
        tel_valid[tel_id] = table["mono_regressor_tel_is_valid"].sum()
        assert len(events[f"tel_{tel_id:03d}"]) == tel_valid[tel_id]
    stereo = read_table(gamma_path, "/dl2/event/subarray/energy/stereo_regressor")
    assert (
        len(events["stereo"])
        == np.all(stereo["stereo_regressor_telescopes"], axis=1).sum()
    )
    assert len(events["mono_combined"]) > len(events["stereo"])
    for tag, (energy_smearing, direction_smearing) in (
        ("tel_001", SMEARING["tel"]),
        ("mono_combined", SMEARING["mono"]),
        ("stereo", SMEARING["stereo"]),
    ):
        table = events[tag]
        relative = (table["reco_energy"] / table["true_energy"]).to_value(u.one) - 1
        assert np.std(relative) == pytest.approx(energy_smearing, rel=0.1), tag
        assert np.median(table["theta"].to_value(u.deg)) == pytest.approx(
            direction_smearing * np.sqrt(2 * np.log(2)), rel=0.1
        ), tag
        assert np.isfinite(table["gammaness"]).all()

    quality = QualityQuery(quality_criteria=[("bright", "hillas_intensity > 1000")])
    selected, _ = read_tag_events(gamma_path, ["mono", "stereo"], quality)
    for tel_id in (1, 2):
        parameters = read_table(
            gamma_path, f"/dl1/event/telescope/parameters/tel_{tel_id:03d}"
        )
        bright = parameters[parameters["hillas_intensity"] > 1000]
        tag = f"tel_{tel_id:03d}"
        assert set(selected[tag]["event_id"]) == set(events[tag]["event_id"]) & set(
            bright["event_id"]
        )
    # stereo: both telescopes bright (intensity uniform in log 1-4: 1/3 each)
    assert len(selected["stereo"]) == pytest.approx(len(events["stereo"]) / 9, rel=0.25)
    assert set(selected["stereo"]["event_id"]) <= set(events["stereo"]["event_id"])


def test_input_checks(dl2_files, tmp_path):
    gamma_path, proton_path = dl2_files
    check_primaries(gamma_path, "gamma")
    check_primaries(proton_path, "proton")
    with pytest.raises(
        PerformanceInputError, match=f"{proton_path}.*gamma input.*101.*swapped"
    ):
        check_primaries(proton_path, "gamma")
    with pytest.raises(
        PerformanceInputError, match=f"{gamma_path}.*proton input.*swapped"
    ):
        check_primaries(gamma_path, "proton")

    check_same_models([gamma_path, proton_path])
    other = write_dl2(
        tmp_path / "other.dl2.h5",
        "proton",
        n_events=100,
        variants=(),
        models_id="models-2",
    )
    with pytest.raises(
        PerformanceInputError, match=f"{gamma_path}.*models-1.*{other}.*models-2"
    ):
        check_same_models([gamma_path, other])
    anonymous = write_dl2(
        tmp_path / "anonymous.dl2.h5",
        "proton",
        n_events=100,
        variants=(),
        models_id=None,
    )
    check_same_models([anonymous, anonymous])
    with pytest.raises(PerformanceInputError, match="absent"):
        check_same_models([gamma_path, anonymous])

    assert available_variants(other) == []
    check_simulated(other)
    with tables.open_file(other, mode="r+") as h5file:
        h5file.remove_node("/simulation", recursive=True)
    with pytest.raises(
        PerformanceInputError,
        match=f"file {other} has no /simulation/event/subarray/shower",
    ):
        check_simulated(other)


def run_performance(*args):
    return run_cli("sst1m-performance", *args)


def test_cli(dl2_files, tmp_path):
    gamma_path, proton_path = dl2_files
    output = tmp_path / "performance"
    result = run_performance(
        "--gamma", gamma_path, "--proton", proton_path, "--output-dir", output
    )
    assert result.returncode == 0, result.stderr
    tags = ["tel_001", "tel_002", "mono_combined", "stereo"]
    stems = [
        "energy_resolution",
        "angular_resolution",
        "roc",
        "auc_per_energy",
        "gammaness_cuts_efficiency",
    ]
    # the gammas are point-like: effective areas too
    stems.append("effective_area")
    expected = {f"{stem}_{tag}.ecsv" for stem in stems for tag in tags}
    expected |= {
        "summary.ecsv",
        "performance.h5",
        "energy_resolution.png",
        "angular_resolution.png",
        "roc.png",
        "gammaness_cuts.png",
        "effective_area.png",
    }
    assert {p.name for p in output.iterdir()} == expected
    assert not [
        p for p in tmp_path.iterdir() if p.name != "performance"
    ]  # no temporary directory left

    summary = QTable.read(output / "summary.ecsv")
    assert list(summary["tag"]) == tags
    assert (
        summary["energy_threshold"].unit == u.TeV
        and summary["angular_resolution"].unit == u.deg
    )
    row = summary[summary["tag"] == "stereo"][0]
    assert row["energy_resolution"] == pytest.approx(0.10, abs=0.02)
    assert row["energy_bias"] == pytest.approx(0.0, abs=0.02)
    assert row["angular_resolution"].to_value(u.deg) == pytest.approx(
        0.1 * CONTAINMENT_68, rel=0.15
    )
    assert row["auc"] == pytest.approx(AUC_UNIT_SHIFT, abs=0.04)
    # bootstrap errors (200 resamples): of the order sigma / sqrt(n) for 10 % smearing
    assert (
        0.1 / np.sqrt(row["n_gammas"]) / 3
        < row["energy_resolution_err"]
        < 3 * 0.1 / np.sqrt(row["n_gammas"])
    )
    assert (
        0 < row["angular_resolution_err"].to_value(u.deg) < 0.02
        and row["energy_bias_err"] > 0
    )
    per_bin = QTable.read(output / "energy_resolution_stereo.ecsv")
    filled = per_bin["n_events"] >= 10
    assert (
        np.isfinite(per_bin["resolution_err"][filled]).all()
        and np.isnan(per_bin["resolution_err"][~filled]).all()
    )
    # Crab-weighted E^-1.62 dN/dlogE times the trigger efficiency peaks at 1.1 E0 (10 bins per decade)
    assert 0.35 < row["energy_threshold"].to_value(u.TeV) < 0.8
    assert "stereo" in result.stdout and "energy_threshold" in result.stdout

    cuts = QTable.read(output / "gammaness_cuts_efficiency_stereo.ecsv")
    filled = cuts["n_events"] >= 10
    np.testing.assert_allclose(cuts["gamma_efficiency"][filled], 0.7, atol=0.1)
    stored = read_table(output / "performance.h5", "/stereo/gammaness_cuts_efficiency")
    np.testing.assert_allclose(stored["cut"], cuts["cut"])
    assert stored["low"].unit == u.TeV

    for tag in tags:
        check_effective_area(QTable.read(output / f"effective_area_{tag}.ecsv"))
    effective_area = QTable.read(output / "effective_area_stereo.ecsv")
    check_hand_effective_area(effective_area, gamma_path)
    assert effective_area.meta["GH_CUT"] == 0.75
    stored = read_table(output / "performance.h5", "/stereo/effective_area")
    np.testing.assert_allclose(
        stored["effective_area_gh_cut"], effective_area["effective_area_gh_cut"]
    )

    # the output exists: refused without --overwrite, replaced with it
    result = run_performance(
        "--gamma",
        gamma_path,
        "--proton",
        proton_path,
        "--output-dir",
        output,
        "--variant",
        "stereo",
    )
    assert result.returncode != 0 and "exists" in result.stderr
    result = run_performance(
        "--gamma",
        gamma_path,
        "--proton",
        proton_path,
        "--output-dir",
        output,
        "--variant",
        "stereo",
        "--overwrite",
    )
    assert result.returncode == 0, result.stderr
    assert list(QTable.read(output / "summary.ecsv")["tag"]) == ["stereo"]


def test_cli_refuses_bad_inputs(dl2_files, tmp_path):
    gamma_path, proton_path = dl2_files
    result = run_performance(
        "--gamma",
        proton_path,
        "--proton",
        gamma_path,
        "--output-dir",
        tmp_path / "swapped",
    )
    assert result.returncode == 1
    assert f"file {proton_path}, given as the gamma input" in result.stderr
    assert not (tmp_path / "swapped").exists()

    dl1 = write_dl2(tmp_path / "gamma.dl1.h5", "gamma", n_events=100, variants=())
    result = run_performance(
        "--gamma", dl1, "--proton", proton_path, "--output-dir", tmp_path / "dl1"
    )
    assert result.returncode == 1
    assert f"file {dl1} holds no DL2 predictions" in result.stderr
    assert not (tmp_path / "dl1").exists()


def test_cli_diffuse_gammas_have_no_effective_area(dl2_files, tmp_path):
    _, proton_path = dl2_files
    diffuse = write_dl2(
        tmp_path / "gamma_diffuse.dl2.h5", "gamma", n_events=1000, viewcone_deg=3.0
    )
    output = tmp_path / "performance"
    result = run_performance(
        "--gamma",
        diffuse,
        "--proton",
        proton_path,
        "--output-dir",
        output,
        "--variant",
        "stereo",
        "--PerformanceTool.n_bootstrap_resamples=0",
        "--log-level",
        "INFO",
    )
    assert result.returncode == 0, result.stderr
    assert "no effective area" in result.stderr and "diffuse" in result.stderr
    names = {p.name for p in output.iterdir()}
    assert "energy_resolution_stereo.ecsv" in names
    assert not [name for name in names if name.startswith("effective_area")]
    with tables.open_file(output / "performance.h5") as h5file:
        assert "/stereo/roc" in h5file and "/stereo/effective_area" not in h5file


@pytest.mark.slow
def test_effective_area_of_the_small_production(small_dl2, tmp_path):
    """Point gammas of sst1m-simulate through the models: the effective area of every
    tag, the stereo one checked by hand against the DL2 file's tables."""
    output = tmp_path / "performance"
    gamma_path = small_dl2["gamma_point"]
    result = run_performance(
        "--gamma",
        gamma_path,
        "--proton",
        small_dl2["proton"],
        "--output-dir",
        output,
        "--PerformanceTool.n_bootstrap_resamples=0",
    )
    assert result.returncode == 0, result.stderr
    tags = list(QTable.read(output / "summary.ecsv")["tag"])
    assert "stereo" in tags
    assert {p.name for p in output.glob("effective_area_*.ecsv")} == {
        f"effective_area_{tag}.ecsv" for tag in tags
    }
    for tag in tags:
        check_effective_area(QTable.read(output / f"effective_area_{tag}.ecsv"))
    stereo = QTable.read(output / "effective_area_stereo.ecsv")
    check_hand_effective_area(stereo, gamma_path)
    runs = read_table(gamma_path, "/configuration/simulation/run")
    assert stereo.meta["REUSE"] == runs["shower_reuse"][0]
    assert stereo.meta["N_SHOWERS"] == np.sum(runs["n_showers"] * runs["shower_reuse"])
    assert (output / "effective_area.png").stat().st_size > 0
