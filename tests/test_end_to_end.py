"""
End to end: a simulated source observed at raw level comes back out of gammapy.

A reduced version of ``examples/crab_end_to_end.py`` that fits in CI: the models of the
session's small production (pointing zenith 20°, azimuth 180°), IRFs from 15,000 point
gammas of the same node (fixture ``irfs``), and an observation of
a source that culminates at zenith 20° at Ondrejov (declination = latitude − 20°) with five
times the Crab's (HEGRA) flux, so that two 10-minute wobble runs give a few hundred
gammas per telescope; protons and electrons at 2 % of their rate. Raw runs →
``sst1m-process`` → ``sst1m-stereo-match`` → ``sst1m-apply-models`` → ``sst1m-dl3`` →
``sst1m-analysis``, for each telescope and for stereo; and the same runs without the source
(an empty field).
"""

import astropy.units as u
import numpy as np
import pytest
import yaml
from astropy.coordinates import SkyCoord
from conftest import run_cli

from ctapipe_sst1m.analysis.recovery import injected_vs_recovered, power_law_model
from ctapipe_sst1m.simulation.schedule import array_location

pytestmark = pytest.mark.slow

#: culminates at zenith 20°, the node of the small production
TARGET = SkyCoord(83.6331, array_location().lat.deg - 20.0, unit="deg")
#: 5 × HEGRA's Crab (cm-2 s-1 TeV-1 at 1 TeV), index
AMPLITUDE, INDEX = 5 * 2.83e-11, -2.62
#: pixels of the sky maps (the analysis defaults: 3 deg maps of 0.02 deg pixels)
MAP_PIXELS = 150**2
SETUPS = {"tel_021": "tel21", "tel_022": "tel22", "stereo": "stereo"}
OBSERVATION = [
    f"--ObservationSimulator.target_ra_deg={TARGET.ra.deg}",
    f"--ObservationSimulator.target_dec_deg={TARGET.dec.deg}",
    "--ObservationSimulator.target_name=Source",
    f"--ObservationSimulator.source_amplitude={AMPLITUDE}",
    f"--ObservationSimulator.source_index={INDEX}",
    # the range of the small production (its gammas from 0.5 TeV, protons from 1 TeV)
    "--ObservationSimulator.gamma_energy_min_tev=0.5",
    "--ObservationSimulator.proton_energy_min_tev=1.0",
    "--ObservationSchedule.n_runs=2",
    "--ObservationSchedule.run_duration_s=600",
    "--no-progress",
]


def observe(directory, spectrum, seed, first_run, data_config, models, irfs):
    """Simulate the runs and take them to the analysis of every set-up."""
    raw = directory / "raw"
    result = run_cli(
        "sst1m-simulate",
        "--observation",
        "--raw-dir",
        raw,
        "--seed",
        seed,
        f"--ObservationSimulator.source_spectrum={spectrum}",
        f"--ObservationSchedule.first_run={first_run}",
        *OBSERVATION,
    )
    assert result.returncode == 0, result.stderr
    for run in (first_run, first_run + 1):
        base = directory / f"run{run}"
        for tel, camera in ((21, 1), (22, 2)):
            (base / f"tel{tel}").mkdir(parents=True)
            result = run_cli(
                "sst1m-process",
                "--input",
                sorted(raw.glob(f"SST1M{camera}_*_{run:04d}_000.fits.fz"))[0],
                "--output",
                base / f"tel{tel}" / "dl1.h5",
                "--config",
                data_config,
                "--SST1MEventSource.all_subruns=True",
            )
            assert result.returncode == 0, result.stderr
        (base / "stereo").mkdir()
        result = run_cli(
            "sst1m-stereo-match",
            "--input-tel1",
            base / "tel21" / "dl1.h5",
            "--input-tel2",
            base / "tel22" / "dl1.h5",
            "--output",
            base / "stereo" / "dl1.h5",
        )
        assert result.returncode == 0, result.stderr
        for name in SETUPS.values():
            (directory / "dl2" / name).mkdir(parents=True, exist_ok=True)
            result = run_cli(
                "sst1m-apply-models",
                "--input",
                base / name / "dl1.h5",
                "--models-dir",
                models,
                "--variant",
                "stereo" if name == "stereo" else "mono",
                "--output",
                directory / "dl2" / name / f"run{run}.dl2.h5",
            )
            assert result.returncode == 0, result.stderr
    for setup, name in SETUPS.items():
        for kind in ("point-like", "full-enclosure"):
            result = run_cli(
                "sst1m-dl3",
                "--input",
                directory / "dl2" / name,
                "--irf-dir",
                irfs,
                "--output-dir",
                directory / "dl3" / setup / kind,
                "--setup",
                setup,
                "--kind",
                kind,
                "--source-ra",
                TARGET.ra.deg,
                "--source-dec",
                TARGET.dec.deg,
                # the thinned background gives stereo rates of ~1 Hz: gaps of more
                # than the default 5 s would split the runs
                "--DL3Tool.max_gap=60 s",
            )
            assert result.returncode == 0, result.stderr
        result = run_cli(
            "sst1m-analysis",
            "--datastore",
            directory / "dl3" / setup / "point-like",
            "--datastore-full-enclosure",
            directory / "dl3" / setup / "full-enclosure",
            "--output-dir",
            directory / "analysis" / setup,
            "--AnalysisTool.reference_energy_tev=3",
        )
        assert result.returncode == 0, result.stderr
    return directory


@pytest.fixture(scope="module")
def irfs(tmp_path_factory, trained_models, small_dl2):
    """
    IRFs of the observation's node from a production of point gammas large enough that
    their statistical errors are small against those of the observation (the session's
    800 point gammas leave 10-30 % per energy bin); background and full-enclosure IRFs
    from the session's protons and diffuse gammas.
    """
    directory = tmp_path_factory.mktemp("irf_production")
    dl1, dl2 = directory / "gamma_point.dl1.h5", directory / "gamma_point.dl2.h5"
    result = run_cli(
        "sst1m-simulate",
        "--particle",
        "gamma",
        "--spectrum",
        "point",
        "--n-showers",
        "15000",
        "--seed",
        "23",
        "--SimulateTool.energy_min_tev=0.5",
        "--output",
        dl1,
        "--no-progress",
    )
    assert result.returncode == 0, result.stderr
    result = run_cli(
        "sst1m-apply-models",
        "--input",
        dl1,
        "--models-dir",
        trained_models,
        "--output",
        dl2,
    )
    assert result.returncode == 0, result.stderr
    result = run_cli(
        "sst1m-make-irfs",
        "--gamma-point",
        dl2,
        "--gamma-diffuse",
        small_dl2["gamma_diffuse"],
        "--proton",
        small_dl2["proton"],
        "--cuts",
        "efficiency",
        "--output-dir",
        directory / "irfs",
    )
    assert result.returncode == 0, result.stderr
    return directory / "irfs"


@pytest.fixture(scope="module")
def source_field(tmp_path_factory, data_config, trained_models, irfs):
    directory = tmp_path_factory.mktemp("source_field")
    return observe(directory, "power_law", 21, 1, data_config, trained_models, irfs)


@pytest.fixture(scope="module")
def empty_field(tmp_path_factory, data_config, trained_models, irfs):
    directory = tmp_path_factory.mktemp("empty_field")
    return observe(directory, "none", 22, 11, data_config, trained_models, irfs)


def recovered(source_field, setup):
    """The injected-vs-recovered numbers of a set-up."""
    return injected_vs_recovered(
        source_field / "analysis" / setup,
        source_field / "dl3" / setup / "point-like",
        power_law_model(AMPLITUDE, INDEX),
        TARGET,
    )


def analysis_results(field, setup):
    """results.yaml of sst1m-analysis of a set-up."""
    return yaml.safe_load((field / "analysis" / setup / "results.yaml").read_text())


@pytest.mark.parametrize("setup", SETUPS)
def test_the_source_is_detected_where_it_is(source_field, setup):
    """Detected, at its position within the excess centroid's error, as significant as expected."""
    row = recovered(source_field, setup)
    assert row["significance"] > 5
    assert row["excess"] > 30
    # the excess centroid within 3 of its standard errors (per-axis errors in
    # quadrature, i.e. the PSF / sqrt(N_excess)); measured 0.005-0.012 deg, errors
    # 0.012-0.013 deg
    assert row["offset_deg"] < 3 * row["position_error_deg"], row
    # the spectrum's Li & Ma significance against the one the injected spectrum gives
    # through the same IRFs, OFF counts and safe energy range (a significance has a
    # spread of about 1 σ)
    assert abs(row["spectrum_significance"] - row["expected_significance"]) < max(
        3.0, 0.3 * row["expected_significance"]
    ), row


@pytest.mark.parametrize("setup", SETUPS)
def test_the_source_map_peaks_at_the_source(source_field, setup):
    """The ring-background map's highest significance is the source's."""
    sky = analysis_results(source_field, setup)["sky_map"]
    assert sky["significance_at_target"] > 5, sky
    peak = SkyCoord(
        sky["max_significance_ra_deg"], sky["max_significance_dec_deg"], unit="deg"
    )
    # within the correlation radius (0.1 deg) of the source
    assert peak.separation(TARGET) < 0.1 * u.deg, sky


@pytest.mark.parametrize("setup", SETUPS)
def test_the_spectrum_comes_back(source_field, setup):
    """Flux at 3 TeV and index within 2 statistical σ of the injected ones."""
    row = recovered(source_field, setup)
    assert row["fit_success"]
    assert row["reference_tev"] == pytest.approx(3.0)
    # measured (mono): flux pulls -1.5 and -0.1, index pulls +1.1 and +0.8
    assert abs(row["flux_pull"]) < 2, row
    assert abs(row["index_pull"]) < 2, row


@pytest.mark.parametrize("setup", SETUPS)
def test_an_empty_field_shows_no_source(empty_field, setup):
    """No detection at the target: |S| < 3 σ (θ², reflected OFF regions)."""
    results = analysis_results(empty_field, setup)
    # measured: 0.76 and 1.07 σ (mono)
    assert abs(results["theta2"]["significance"]) < 3, results["theta2"]
    assert u.Quantity(results["livetime_s"], u.s) > 1000 * u.s


@pytest.mark.parametrize("setup", SETUPS)
def test_an_empty_field_map_shows_no_source(empty_field, setup):
    """
    No detection across the field: the ring-background map. The session's 2,500
    protons leave the background IRFs patchy (mono) or empty (stereo): the ring's
    acceptance is the exposure.
    """
    sky = analysis_results(empty_field, setup)["sky_map"]
    assert sky["made"]
    assert sky["acceptance"] in ("background-irf", "exposure")
    # without a background estimate: beyond offset_max (2 deg) of both pointings, and
    # where the ring holds no count (measured 21-26 %, the stereo events few)
    assert sky["pixels_without_background"] < 0.5 * MAP_PIXELS, sky
    if np.isfinite(sky["significance_at_target"]):
        assert abs(sky["significance_at_target"]) < 3
    # the maximum of a map of correlated pixels: a few σ by chance (measured 4.8, 3.7
    # and 0.0), a source far more (18-21 σ in the source field)
    assert sky["max_significance"] < 5.5, sky
    assert abs(sky["off_significance_mean"]) < 0.5, sky
