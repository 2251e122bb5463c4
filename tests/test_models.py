"""sst1m-train-models and sst1m-apply-models on the project's simulation and on real data."""

import shutil

import astropy.units as u
import numpy as np
import pytest
import tables
import yaml
from astropy.coordinates import AltAz, EarthLocation, SkyCoord
from conftest import run_cli
from ctapipe.io import TableLoader, read_table
from ctapipe.reco import Reconstructor
from ctapipe.reco.disp import compute_true_disp

from ctapipe_sst1m.io.model_sets import (
    MODELS_ID_ATTR,
    ModelSetError,
    choose_model_set,
    node_name,
    read_models_record,
)
from ctapipe_sst1m.reco.training import classifier_sample_sizes

NODE = "ze20_az180_nsb080"
KINDS = ("regressor", "disp", "classifier")


# --------------------------------------------------------------------------- #
# pure functions
# --------------------------------------------------------------------------- #
def test_classifier_sample_sizes():
    # nominal split of the requested total
    assert classifier_sample_sizes(1000, 1000, 600, 1.0) == (300, 300)
    assert classifier_sample_sizes(1000, 1000, 900, 2.0) == (600, 300)
    # too few gammas: all gammas, protons follow the ratio
    assert classifier_sample_sizes(100, 1000, 600, 1.0) == (100, 100)
    # too few protons: all protons, gammas follow the ratio
    assert classifier_sample_sizes(1000, 50, 600, 2.0) == (100, 50)
    # no total: as many as the ratio allows
    assert classifier_sample_sizes(1000, 400, None, 1.0) == (400, 400)
    with pytest.raises(ValueError, match="ratio"):
        classifier_sample_sizes(10, 10, 10, 0)


def test_true_disp_sign_and_norm():
    """The disp target of sst1m-train-models: cog-to-source distance, signed along the axis."""
    from astropy.table import Table

    # pointing alt 70 az 180; the true source 1 deg above the pointing (fov_lon +1 deg)
    table = Table(
        {
            "true_alt": [71.0, 71.0] * u.deg,
            "true_az": [180.0, 180.0] * u.deg,
            "telescope_pointing_altitude": [70.0, 70.0] * u.deg,
            "telescope_pointing_azimuth": [180.0, 180.0] * u.deg,
            # image axes along fov_lat, cogs 0.5 deg below and 2 deg above the pointing
            "hillas_fov_lon": [0.0, 0.0] * u.deg,
            "hillas_fov_lat": [-0.5, 2.0] * u.deg,
            "hillas_psi": [90.0, 90.0] * u.deg,
        }
    )
    disp = compute_true_disp(table, project_disp=False).to_value(u.deg)
    np.testing.assert_allclose(disp, [1.5, -1.0], atol=1e-6)


def test_horizontal_to_icrs_matches_astropy():
    """The interpolated AltAz -> ICRS agrees with astropy to < 0.5 arcsec within 6 deg of the centre."""
    from astropy.coordinates import ICRS
    from astropy.time import Time

    from ctapipe_sst1m.coordinates import horizontal_to_icrs

    rng = np.random.default_rng(1)
    n = 2000
    times = Time(1.7e9 + np.sort(rng.uniform(0, 1800, n)), format="unix", scale="tai")
    location = EarthLocation(lon=14.78 * u.deg, lat=49.91 * u.deg, height=510 * u.m)
    # a tracking pointing drifting over half an hour, directions up to 6 deg away
    centre_alt = np.linspace(60, 64, n)
    centre_az = np.linspace(170, 185, n)
    radius, angle = rng.uniform(0, 6, n), rng.uniform(0, 2 * np.pi, n)
    alt = centre_alt + radius * np.sin(angle)
    az = centre_az + radius * np.cos(angle) / np.cos(np.deg2rad(alt))
    exact = SkyCoord(
        alt=alt * u.deg, az=az * u.deg, frame=AltAz(obstime=times, location=location)
    ).transform_to(ICRS())
    ra, dec = horizontal_to_icrs(
        alt * u.deg, az * u.deg, times, location, centre_alt * u.deg, centre_az * u.deg
    )
    separation = SkyCoord(ra=ra * u.deg, dec=dec * u.deg).separation(exact).arcsec
    assert separation.max() < 0.5


def test_node_name():
    assert node_name(20, 180, 80) == "ze20_az180_nsb080"
    assert node_name(40.2, 360.0, 150) == "ze40_az000_nsb150"


def _fake_set(directory, name, zenith, azimuth, nsb):
    path = directory / name
    path.mkdir()
    record = {
        "node": {"zenith_deg": zenith, "azimuth_deg": azimuth, "nsb_rate_mhz": nsb},
        "variants": {},
    }
    (path / "training.yaml").write_text(yaml.safe_dump(record))


def test_choose_model_set(tmp_path):
    _fake_set(tmp_path, "ze20_az180_nsb080", 20, 180, 80)
    _fake_set(tmp_path, "ze20_az180_nsb150", 20, 180, 150)
    _fake_set(tmp_path, "ze40_az180_nsb080", 40, 180, 80)
    _fake_set(tmp_path, "ze20_az000_nsb080", 20, 0, 80)
    chosen, distance = choose_model_set(tmp_path, 35, 170)
    assert chosen.name == "ze40_az180_nsb080"
    # pointing nearer to the ze20 az180 node: NSB decides among the two sets there
    chosen, distance = choose_model_set(tmp_path, 22, 181, nsb_rate_mhz=140)
    assert chosen.name == "ze20_az180_nsb150"
    assert distance == pytest.approx(2.0, abs=0.1)
    # azimuth 350 is close to azimuth 0 (wrap), not to 180
    chosen, _ = choose_model_set(tmp_path, 20, 350)
    assert chosen.name == "ze20_az000_nsb080"
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ModelSetError, match="no model set"):
        choose_model_set(empty, 20, 180)


# --------------------------------------------------------------------------- #
# training
# --------------------------------------------------------------------------- #
@pytest.mark.slow
def test_model_set_contents(trained_models):
    set_dir = trained_models / NODE
    assert set_dir.is_dir()
    assert not list(trained_models.glob("*.part"))
    record = yaml.safe_load((set_dir / "training.yaml").read_text())
    assert record["node"] == {
        "name": NODE,
        "zenith_deg": 20.0,
        "azimuth_deg": 180.0,
        "nsb_rate_mhz": 80.0,
    }
    assert record["random_seed"] == 42
    for variant in ("mono", "stereo"):
        entry = record["variants"][variant]
        for kind in KINDS:
            model = entry[kind]
            assert (set_dir / model["file"]).is_file()
            stereo_features = {
                "HillasReconstructor_h_max",
                "HillasReconstructor_tel_impact_distance",
            }
            if variant == "stereo":
                assert stereo_features <= set(model["features"])
                assert [
                    "valid stereo geometry",
                    "HillasReconstructor_is_valid",
                ] in model["event_selection"]
            else:
                assert not stereo_features & set(model["features"])
            assert model["stereo_combiner"] == "SST1MStereoCombiner"
        counts = entry["event_counts"]["gamma"]
        assert (
            counts["read"]
            == counts["failed_event_selection"]
            + counts["non_finite_features"]
            + counts["selected"]
        )
        # the classifier's energy/disp features come from models that did not see its gammas
        n_gamma = entry["classifier"]["n_gamma"]
        assert (
            entry["classifier_feature_models_training_events"] + n_gamma
            <= entry["regressor"]["n_training_events"]
        )
        assert entry["regressor"]["n_training_events"] <= counts["selected"]
        assert entry["classifier"]["n_proton"] == n_gamma  # ratio 1
        assert "log_reco_energy" in entry["classifier"]["features"]
    metrics = {
        (row["variant"], row["model"], row["metric"]): row["mean"]
        for row in record["cross_validation"]
    }
    # the forests learn: energy resolution well below 100 %, AUC above chance, disp sign above chance
    assert metrics[("stereo", "regressor", "energy_resolution")] < 0.6
    assert metrics[("stereo", "classifier", "auc")] > 0.7
    assert metrics[("mono", "disp", "sign_accuracy")] > 0.6
    for name in (
        "feature_importances_stereo_regressor.ecsv",
        "feature_importances_mono_disp.png",
        "cross_validation.ecsv",
    ):
        assert (set_dir / "report" / name).is_file()


@pytest.mark.slow
def test_training_is_seeded(small_production, trained_models, tmp_path):
    """The same inputs and seed give the same forests (same predictions)."""
    result = run_cli(
        "sst1m-train-models",
        "--gamma",
        small_production["gamma_diffuse"],
        "--proton",
        small_production["proton"],
        "--output-dir",
        tmp_path,
        "--variant",
        "mono",
    )
    assert result.returncode == 0, result.stderr
    with TableLoader(small_production["gamma_point"]) as loader:
        events = loader.read_telescope_events()
        subarray = loader.subarray
    key = subarray.telescope_types[0]
    first = Reconstructor.read(
        trained_models / NODE / "mono_regressor.pkl", subarray=subarray
    )
    second = Reconstructor.read(
        tmp_path / NODE / "mono_regressor.pkl", subarray=subarray
    )
    energy_1 = first.predict_table(key, events)
    energy_2 = second.predict_table(key, events)
    for prop, table in energy_1.items():
        # identical forests; the multi-threaded mean over the trees may differ in the last bit
        np.testing.assert_allclose(
            table["mono_regressor_tel_energy"],
            energy_2[prop]["mono_regressor_tel_energy"],
            rtol=1e-12,
        )


@pytest.mark.slow
def test_training_errors(small_production, tmp_path, trained_models):
    # a real-data-like input without simulation truth
    result = run_cli(
        "sst1m-train-models",
        "--gamma",
        tmp_path / "missing.h5",
        "--output-dir",
        tmp_path,
    )
    assert result.returncode != 0
    # a feature missing from the input: an error naming it, no model set left behind
    output = tmp_path / "models"
    result = run_cli(
        "sst1m-train-models",
        "--gamma",
        small_production["gamma_diffuse"],
        "--output-dir",
        output,
        "--variant",
        "mono",
        '--TrainModelsTool.EnergyRegressor.features=["no_such_column"]',
    )
    assert result.returncode != 0
    assert "no_such_column" in result.stderr
    assert not list(output.iterdir())
    # an existing model set is not replaced silently
    result = run_cli(
        "sst1m-train-models",
        "--gamma",
        small_production["gamma_diffuse"],
        "--output-dir",
        trained_models,
    )
    assert result.returncode != 0
    assert "exists" in result.stderr


# --------------------------------------------------------------------------- #
# applying, simulations
# --------------------------------------------------------------------------- #
@pytest.mark.slow
def test_dl2_of_simulations(small_dl2, trained_models):
    path = small_dl2["gamma_point"]
    record = read_models_record(path)
    assert record["node"]["name"] == NODE
    assert set(record["variants"]) == {"mono", "stereo"}
    assert record["node_distance_deg"] == pytest.approx(0.0, abs=1e-6)
    with tables.open_file(path) as h5file:
        assert h5file.root._v_attrs[MODELS_ID_ATTR] == record["models_id"]
    assert record["variants"]["stereo"]["classifier"]["features"]

    with TableLoader(path) as loader:
        events = loader.read_subarray_events()
    stereo = events["stereo_regressor_is_valid"] & events["stereo_disp_is_valid"]
    assert np.count_nonzero(stereo) > 20
    # energy: trained on a few hundred events, but clearly correlated with the truth
    ratio = (
        events["stereo_regressor_energy"].quantity / events["true_energy"].quantity
    )[stereo].to_value(u.one)
    assert abs(np.median(ratio) - 1) < 0.25
    # direction: the point source at 0.4 deg offset
    true = SkyCoord(
        alt=events["true_alt"].quantity[stereo],
        az=events["true_az"].quantity[stereo],
        frame=AltAz(),
    )
    reco = SkyCoord(
        alt=events["stereo_disp_alt"].quantity[stereo],
        az=events["stereo_disp_az"].quantity[stereo],
        frame=AltAz(),
    )
    assert np.percentile(true.separation(reco).deg, 68) < 0.5
    gammaness = np.asarray(events["stereo_classifier_prediction"])[stereo]
    assert np.all((gammaness >= 0) & (gammaness <= 1))
    # mono predictions exist for every telescope with a valid image
    assert np.count_nonzero(events["mono_regressor_is_valid"]) >= np.count_nonzero(
        stereo
    )


@pytest.mark.slow
def test_apply_refuses_dl2(small_dl2, trained_models, tmp_path):
    # DL2 of a model set cannot be reconstructed again
    result = run_cli(
        "sst1m-apply-models",
        "--input",
        small_dl2["gamma_point"],
        "--models-dir",
        trained_models,
        "--output",
        tmp_path / "again.h5",
    )
    assert result.returncode != 0
    assert "already has DL2" in result.stderr
    assert not list(tmp_path.iterdir())


@pytest.mark.slow
def test_stock_apply_models_with_plugin_combiner(
    small_production, trained_models, tmp_path
):
    """ctapipe-apply-models uses the pickled models (and their SST1MStereoCombiner) as they are."""
    output = tmp_path / "stock.dl2.h5"
    set_dir = trained_models / NODE
    result = run_cli(
        "ctapipe-apply-models",
        "--input",
        small_production["gamma_point"],
        "--output",
        output,
        "-r",
        set_dir / "stereo_regressor.pkl",
        "-r",
        set_dir / "stereo_disp.pkl",
        "-r",
        set_dir / "stereo_classifier.pkl",
    )
    assert result.returncode == 0, result.stderr
    assert "skipping" not in result.stderr
    table = read_table(output, "/dl2/event/subarray/geometry/stereo_disp")
    assert np.count_nonzero(table["stereo_disp_is_valid"]) > 20


@pytest.mark.slow
def test_energy_uncertainty_event_wise_as_table_wise(
    small_production, small_dl2, trained_models, tmp_path
):
    """ctapipe-process with SST1MEnergyRegressor gives the energies of sst1m-apply-models."""
    output = tmp_path / "event_wise.h5"
    model = trained_models / NODE / "stereo_regressor.pkl"
    result = run_cli(
        "ctapipe-process",
        "--input",
        small_production["gamma_point"],
        "--output",
        output,
        "--write-showers",
        "--ShowerProcessor.reconstructor_types",
        "HillasReconstructor",
        "--ShowerProcessor.reconstructor_types",
        "SST1MEnergyRegressor",
        f"--SST1MEnergyRegressor.load_path={model}",
    )
    assert result.returncode == 0, result.stderr
    prefix = "stereo_regressor"
    for path in (output, small_dl2["gamma_point"]):
        tel = read_table(path, f"/dl2/event/telescope/energy/{prefix}/tel_001")
        valid = np.asarray(tel[f"{prefix}_tel_is_valid"])
        relative = (
            tel[f"{prefix}_tel_energy_uncert"].quantity
            / tel[f"{prefix}_tel_energy"].quantity
        )[valid]
        assert np.count_nonzero(valid) > 20
        assert np.all(np.isfinite(relative) & (relative > 0))
    event_wise = read_table(output, f"/dl2/event/subarray/energy/{prefix}")
    table_wise = read_table(
        small_dl2["gamma_point"], f"/dl2/event/subarray/energy/{prefix}"
    )
    assert list(event_wise["event_id"]) == list(table_wise["event_id"])
    both = np.asarray(event_wise[f"{prefix}_is_valid"]) & np.asarray(
        table_wise[f"{prefix}_is_valid"]
    )
    assert np.count_nonzero(both) > 20
    np.testing.assert_allclose(
        event_wise[f"{prefix}_energy"].quantity[both],
        table_wise[f"{prefix}_energy"].quantity[both],
        rtol=1e-10,
    )


# --------------------------------------------------------------------------- #
# applying, real data
# --------------------------------------------------------------------------- #
def _pointing_radec(dl1_path, alt=70.0, az=180.0):
    """RA/Dec of alt/az at the first trigger of a file, seen from the SST-1M site."""
    time = read_table(dl1_path, "/dl1/event/subarray/trigger")["time"][0]
    location = EarthLocation(lon=14.782 * u.deg, lat=49.912 * u.deg, height=510 * u.m)
    return SkyCoord(
        alt=alt * u.deg, az=az * u.deg, frame=AltAz(obstime=time, location=location)
    ).icrs


@pytest.mark.slow
def test_real_data_mono_radec(raw_2017, data_config, trained_models, tmp_path):
    no_pointing = tmp_path / "no_pointing.dl1.h5"
    result = run_cli(
        "sst1m-process",
        "--input",
        raw_2017,
        "--output",
        no_pointing,
        "--config",
        data_config,
    )
    assert result.returncode == 0, result.stderr
    source = _pointing_radec(no_pointing)

    # without pointing: a clear error naming the file, no output
    dl2 = tmp_path / "no_pointing.dl2.h5"
    result = run_cli(
        "sst1m-apply-models",
        "--input",
        no_pointing,
        "--models-dir",
        trained_models,
        "--output",
        dl2,
    )
    assert result.returncode == 2  # a configuration error, as docs/models.md says
    assert (
        "without telescope pointing" in result.stderr
        and str(no_pointing) in result.stderr
    )
    assert not dl2.exists() and not list(tmp_path.glob("*.part"))

    dl1 = tmp_path / "run.dl1.h5"
    result = run_cli(
        "sst1m-process",
        "--input",
        raw_2017,
        "--output",
        dl1,
        "--config",
        data_config,
        f"--SST1MEventSource.pointing_ra_deg={source.ra.deg}",
        f"--SST1MEventSource.pointing_dec_deg={source.dec.deg}",
    )
    assert result.returncode == 0, result.stderr
    dl2 = tmp_path / "run.dl2.h5"
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
    record = read_models_record(dl2)
    assert list(record["variants"]) == ["mono"]
    # one telescope: no stereo geometry for the stereo models
    result = run_cli(
        "sst1m-apply-models",
        "--input",
        dl1,
        "--models-dir",
        trained_models,
        "--output",
        tmp_path / "stereo.dl2.h5",
        "--variant",
        "stereo",
    )
    assert result.returncode != 0
    assert "no stereo geometry" in result.stderr
    assert record["node_distance_deg"] < 0.5  # pointing alt 70 az 180 ~ the node

    with TableLoader(dl2) as loader:
        events = loader.read_telescope_events([21])
        location = loader.subarray.reference_location
    valid = np.asarray(events["mono_disp_tel_is_valid"])
    assert np.count_nonzero(valid) >= 5
    reco = SkyCoord(
        ra=events["mono_disp_tel_ra"].quantity[valid],
        dec=events["mono_disp_tel_dec"].quantity[valid],
        frame="icrs",
    )
    # every direction in the field of view (camera radius ~4.5 deg) of the pointing
    assert np.all(reco.separation(source).deg < 6)
    # the same direction as alt/az at the event time (to 1 arcsec)
    altaz = SkyCoord(
        alt=events["mono_disp_tel_alt"].quantity[valid],
        az=events["mono_disp_tel_az"].quantity[valid],
        frame=AltAz(obstime=events["time"][valid], location=location),
    ).icrs
    assert np.all(altaz.separation(reco).arcsec < 1)
    assert np.all(~np.isfinite(np.asarray(events["mono_disp_tel_ra"][~valid])))


@pytest.mark.slow
def test_real_stereo_dl2(tmp_path, trained_models, simulated_stereo_run):
    """Simulated raw runs of both telescopes -> sst1m-process -> sst1m-stereo-match -> stereo DL2."""
    stereo, dl2 = simulated_stereo_run["stereo_dl1"], simulated_stereo_run["dl2"]
    with TableLoader(dl2) as loader:
        events = loader.read_subarray_events()
    valid = np.asarray(events["stereo_disp_is_valid"])
    assert np.count_nonzero(valid) >= 5
    assert np.all(np.isfinite(events["stereo_disp_ra"].quantity[valid]))
    assert np.all(np.isfinite(events["stereo_disp_dec"].quantity[valid]))
    block = read_table(stereo, "/configuration/observation/observation_block")
    pointing = SkyCoord(
        ra=block["subarray_pointing_lon"].quantity[0],
        dec=block["subarray_pointing_lat"].quantity[0],
    )
    reco = SkyCoord(
        ra=events["stereo_disp_ra"].quantity[valid],
        dec=events["stereo_disp_dec"].quantity[valid],
    )
    # the simulated point source is 0.4 deg from the pointing
    assert np.median(reco.separation(pointing).deg) < 1.0

    # the stock ctapipe-apply-models reads the stereo DL1 file and the pointing table too
    set_dir = trained_models / NODE
    stock = tmp_path / "stock.dl2.h5"
    result = run_cli(
        "ctapipe-apply-models",
        "--input",
        stereo,
        "--output",
        stock,
        "-r",
        set_dir / "stereo_regressor.pkl",
        "-r",
        set_dir / "stereo_disp.pkl",
    )
    assert result.returncode == 0, result.stderr
    stock_geometry = read_table(stock, "/dl2/event/subarray/geometry/stereo_disp")
    np.testing.assert_allclose(
        np.asarray(stock_geometry["stereo_disp_alt"]),
        np.asarray(events["stereo_disp_alt"]),
        equal_nan=True,
    )


def test_apply_models_to_a_short_file(trained_models, tmp_path):
    """A file with fewer events than the feature check's sample (a run's short last file)."""
    dl1, dl2 = tmp_path / "short.dl1.h5", tmp_path / "short.dl2.h5"
    result = run_cli(
        "sst1m-simulate",
        "--particle=gamma",
        "--spectrum=point",
        "--n-showers=3",
        "--seed=7",
        "--SimulateTool.energy_min_tev=5",
        "--SimulateTool.max_impact_m=100",
        "--output",
        dl1,
        "--no-progress",
    )
    assert result.returncode == 0, result.stderr
    n_events = len(read_table(dl1, "/dl1/event/subarray/trigger"))
    assert 0 < n_events < 5
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
    with TableLoader(dl2) as loader:
        assert len(loader.read_subarray_events()) == n_events


@pytest.mark.slow
def test_models_directory_errors(small_production, tmp_path, trained_models):
    empty = tmp_path / "empty"
    empty.mkdir()
    output = tmp_path / "out.dl2.h5"
    result = run_cli(
        "sst1m-apply-models",
        "--input",
        small_production["gamma_point"],
        "--models-dir",
        empty,
        "--output",
        output,
    )
    assert result.returncode != 0
    assert "no model set" in result.stderr
    # a model set without its classifier file
    broken = tmp_path / "broken"
    shutil.copytree(trained_models, broken)
    (broken / NODE / "stereo_classifier.pkl").unlink()
    result = run_cli(
        "sst1m-apply-models",
        "--input",
        small_production["gamma_point"],
        "--models-dir",
        broken,
        "--output",
        output,
    )
    assert result.returncode != 0
    assert "stereo_classifier.pkl is missing" in result.stderr
    assert not output.exists()
    # a corrupt model file: named, exit status 2
    corrupt = broken / NODE / "mono_regressor.pkl"
    corrupt.write_bytes(b"garbage")
    result = run_cli(
        "sst1m-apply-models",
        "--input",
        small_production["gamma_point"],
        "--models-dir",
        broken,
        "--output",
        output,
        "--variant",
        "mono",
    )
    assert result.returncode == 2
    assert f"model file {corrupt} cannot be read" in result.stderr
    assert not output.exists()


@pytest.mark.slow
def test_performance_of_the_small_production(small_dl2, tmp_path):
    """The documented chain ends in the performance report (small production; the protons
    are the training file: a test of the chain, not of the figures)."""
    from astropy.table import Table

    output = tmp_path / "performance"
    result = run_cli(
        "sst1m-performance",
        "--gamma",
        small_dl2["gamma_point"],
        "--proton",
        small_dl2["proton"],
        "--output-dir",
        output,
    )
    assert result.returncode == 0, result.stderr
    summary = Table.read(output / "summary.ecsv")
    assert list(summary["tag"]) == ["tel_001", "tel_002", "mono_combined", "stereo"]
    stereo = summary[summary["tag"] == "stereo"][0]
    assert np.isfinite(stereo["energy_resolution"]) and np.isfinite(
        stereo["angular_resolution"]
    )
    assert stereo["auc"] > 0.8
    for name in (
        "energy_resolution_stereo.ecsv",
        "gammaness_cuts_efficiency_tel_001.ecsv",
        "roc.png",
        "performance.h5",
    ):
        assert (output / name).is_file()
