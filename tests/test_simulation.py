"""The SST-1M fast simulation through ctapipe: EventSource, sst1m-simulate, truth tables."""

import numpy as np
import pytest
from astropy.table import Table
from conftest import run_cli
from ctapipe.containers import EventType
from ctapipe.io import EventSource, TableLoader, read_table
from traitlets.config import Config

from ctapipe_sst1m.io.simulation_card import SimulationCard, read_card, write_card
from ctapipe_sst1m.simulation.source import SST1MSimulationSource


def test_card_round_trip(tmp_path):
    card = SimulationCard(
        particle="proton", spectrum="diffuse", n_showers=10, viewcone_deg=8.0
    )
    path = tmp_path / "p.simcard.yaml"
    write_card(path, card)
    assert read_card(path) == card
    assert SST1MSimulationSource.is_compatible(path)
    path.write_text(path.read_text() + "unknown_key: 1\n")
    with pytest.raises(ValueError, match="unknown simulation card entries"):
        read_card(path)
    with pytest.raises(ValueError, match="particle must be"):
        SimulationCard(particle="iron")


def test_source_selected_and_deterministic(tmp_path, raw_2018):
    path = tmp_path / "g.simcard.yaml"
    write_card(path, SimulationCard(n_showers=60, seed=5, energy_min_tev=1.0))
    assert not SST1MSimulationSource.is_compatible(raw_2018)
    with EventSource(path) as source:
        assert isinstance(source, SST1MSimulationSource)
        assert source.is_simulation
        events = list(source)
        assert source.n_thrown == 60 and source.n_triggered == len(events) > 0
        distribution = source.simulated_shower_distributions[1]
        assert distribution.n_entries == 60
    with EventSource(path) as source:
        again = list(source)
    assert [e.index.event_id for e in events] == [e.index.event_id for e in again]
    for a, b in zip(events, again):
        for tel_id in a.r1.tel:
            assert np.array_equal(a.r1.tel[tel_id].waveform, b.r1.tel[tel_id].waveform)
    event = events[0]
    assert event.simulation.shower.energy.to_value("TeV") >= 1.0
    for tel_id in event.trigger.tels_with_trigger:
        assert event.r1.tel[tel_id].waveform.shape == (1, 1296, 50)
        assert event.simulation.tel[tel_id].true_image.sum() > 0


@pytest.fixture(scope="module")
def gamma_dl1(tmp_path_factory):
    output = tmp_path_factory.mktemp("sim") / "gamma_diffuse.dl1.h5"
    result = run_cli(
        "sst1m-simulate",
        "--particle",
        "gamma",
        "--spectrum",
        "diffuse",
        "--n-showers",
        "400",
        "--seed",
        "3",
        "--output",
        output,
        "--SimulateTool.progress_bar=False",
    )
    assert result.returncode == 0, result.stderr
    return output


def test_simulate_writes_dl1_with_truth(gamma_dl1):
    assert gamma_dl1.with_name("gamma_diffuse.simcard.yaml").is_file()
    assert gamma_dl1.with_name("gamma_diffuse_overview.png").is_file()
    with TableLoader(gamma_dl1) as loader:
        events = loader.read_telescope_events(
            dl1_parameters=True, simulated=True, dl2=True
        )
    assert len(events) > 20
    for column in (
        "true_energy",
        "true_impact_distance",
        "hillas_intensity",
        "HillasReconstructor_h_max",
        "telescope_pointing_altitude",
    ):
        assert column in events.colnames
    config = read_table(gamma_dl1, "/configuration/simulation/run")
    assert config["n_showers"][0] == 400
    assert config["spectral_index"][0] == -2.0
    distribution = read_table(gamma_dl1, "/simulation/service/shower_distribution")
    assert distribution["n_entries"][0] == 400


def test_thrown_spectrum_matches_configuration(gamma_dl1):
    """The thrown showers per energy bin follow the configured power law (Poisson)."""
    config = read_table(gamma_dl1, "/configuration/simulation/run")[0]
    distribution = read_table(gamma_dl1, "/simulation/service/shower_distribution")[0]
    counts = np.asarray(distribution["histogram"]).sum(axis=1)
    edges = np.asarray(distribution["bins_energy"])
    e_min, e_max = config["energy_range_min"], config["energy_range_max"]
    index = config["spectral_index"]
    cumulative = (edges ** (index + 1) - e_min ** (index + 1)) / (
        e_max ** (index + 1) - e_min ** (index + 1)
    )
    expected = config["n_showers"] * np.diff(cumulative)
    populated = expected > 5
    chi2 = np.sum((counts[populated] - expected[populated]) ** 2 / expected[populated])
    assert chi2 < populated.sum() + 4 * np.sqrt(2 * populated.sum())


TRAIN_CONFIG = """
TrainEnergyRegressor:
  random_seed: 0
  CrossValidator:
    n_cross_validations: 2
  EnergyRegressor:
    log_target: true
    model_cls: RandomForestRegressor
    model_config: {n_estimators: 5, max_depth: 5, random_state: 0}
    QualityQuery:
      quality_criteria:
        - ["enough intensity", "hillas_intensity > 20"]
        - ["Positive width", "hillas_width > 0"]
    features:
      - hillas_intensity
      - hillas_width
      - hillas_length
      - HillasReconstructor_tel_impact_distance
"""


def test_training_tool_reads_the_simulation(gamma_dl1, tmp_path):
    config = tmp_path / "train.yaml"
    config.write_text(TRAIN_CONFIG)
    output = tmp_path / "energy.pkl"
    result = run_cli(
        "ctapipe-train-energy-regressor",
        "-i",
        gamma_dl1,
        "-o",
        output,
        "-c",
        config,
        "--cv-output",
        tmp_path / "cv.h5",
    )
    assert result.returncode == 0, result.stderr
    assert output.is_file()


def test_raw_runs_through_the_data_path(tmp_path, data_config):
    """Simulated raw runs of both telescopes: ctapipe-process, then the true pairs are matched."""
    from ctapipe_sst1m.simulation.raw_runs import write_simulated_raw_runs

    card = tmp_path / "raw.simcard.yaml"
    write_card(
        card,
        SimulationCard(
            n_showers=400,
            seed=9,
            energy_min_tev=1.0,
            spectrum="diffuse",
            viewcone_deg=3.0,
        ),
    )
    paths, truth = write_simulated_raw_runs(card, tmp_path / "raw", events_per_file=40)
    assert len(paths[21]) >= 2 and len(paths[22]) >= 2
    dl1 = {}
    for tel_id, files in paths.items():
        dl1[tel_id] = tmp_path / f"dl1_{tel_id}" / "run.dl1.h5"
        dl1[tel_id].parent.mkdir()
        result = run_cli(
            "ctapipe-process",
            "-i",
            files[0],
            "-o",
            dl1[tel_id],
            "--config",
            data_config,
            "--SST1MEventSource.all_subruns=True",
        )
        assert result.returncode == 0, result.stderr
        n_showers = np.count_nonzero(truth[f"tel_{tel_id:03d}_event_number"] > 0)
        assert len(read_table(dl1[tel_id], "/dl1/event/subarray/trigger")) == n_showers
    output = tmp_path / "stereo.h5"
    result = run_cli(
        "sst1m-stereo-match",
        "--input-tel1",
        dl1[21],
        "--input-tel2",
        dl1[22],
        "--output",
        output,
        "--method",
        "SWATEventIDs",
    )
    assert result.returncode == 0, result.stderr
    pairs = read_table(output, "/dl1/event/subarray/coincidence")
    stereo = (truth["tel_021_event_number"] > 0) & (truth["tel_022_event_number"] > 0)
    assert set(pairs["event_id"].tolist()) == set(
        truth["array_event_number"][stereo].tolist()
    )


def test_simulate_raw_dir_cli(tmp_path):
    directory = tmp_path / "raw"
    result = run_cli(
        "sst1m-simulate",
        "--particle",
        "gamma",
        "--spectrum",
        "diffuse",
        "--n-showers",
        "150",
        "--seed",
        "2",
        "--raw-dir",
        directory,
        "--SimulateTool.energy_min_tev=1.0",
    )
    assert result.returncode == 0, result.stderr
    raw = sorted(directory.glob("SST1M*_0001_*.fits.fz"))
    assert {path.name[:6] for path in raw} == {"SST1M1", "SST1M2"}
    truth = Table.read(directory / "SST1M_20240304_0001_truth.ecsv")
    assert len(truth) > 0
    assert (directory / "gamma_diffuse.simcard.yaml").is_file()


def pedestal_variance(source, tel_id, n_events=10):
    """Variance of the R1 samples of pedestal-only (NSB and noise) waveforms."""
    waveforms = [source.camera.r1_waveform(tel_id, None, None) for _ in range(n_events)]
    return float(np.var(waveforms))


def test_nsb_rate_set_through_the_configuration(tmp_path):
    """The NSB rate is a telescope parameter of CameraSimulator; the pedestal noise grows with it."""
    path = tmp_path / "nsb.simcard.yaml"
    write_card(path, SimulationCard(n_showers=10, seed=4))
    variance = {}
    for rate in (20.0, 80.0, 240.0):
        config = Config({"CameraSimulator": {"nsb_rate_mhz": rate}})
        with SST1MSimulationSource(path, config=config) as source:
            assert source.camera.nsb_rate_mhz.tel[1] == rate
            variance[rate] = pedestal_variance(source, 1)
    with SST1MSimulationSource(path) as source:
        assert source.camera.nsb_rate_mhz.tel[2] == 80.0
        assert pedestal_variance(source, 1) == pytest.approx(variance[80.0], rel=0.05)
    assert variance[20.0] < variance[80.0] < variance[240.0]
    # the NSB part of the variance is proportional to the rate
    assert variance[240.0] - variance[80.0] > 1.5 * (variance[80.0] - variance[20.0])

    per_telescope = [("type", "*", 80.0), ("id", 2, 240.0)]
    config = Config(
        {"SST1MSimulationSource": {"CameraSimulator": {"nsb_rate_mhz": per_telescope}}}
    )
    with SST1MSimulationSource(path, config=config) as source:
        assert source.camera.nsb_rate_mhz.tel[1] == 80.0
        assert source.camera.nsb_rate_mhz.tel[2] == 240.0
        assert pedestal_variance(source, 2) > 2 * pedestal_variance(source, 1)


def raw_pedestal_std(directory, tel_id):
    """Standard deviation of the ADC samples of the interleaved pedestals of a raw run."""
    samples = []
    for path in sorted(directory.glob(f"SST1M{tel_id - 20}_*.fits.fz")):
        with EventSource(path) as source:
            for event in source:
                if event.trigger.event_type == EventType.SKY_PEDESTAL:
                    samples.append(event.r0.tel[tel_id].waveform.astype(float))
    assert samples, f"no pedestal event in {directory}"
    return float(np.std(samples))


def test_nsb_rate_of_sst1m_simulate_from_command_line_and_yaml(tmp_path):
    """--CameraSimulator.nsb_rate_mhz and a CameraSimulator section of --config reach the simulation."""
    options = ["--n-showers", "150", "--seed", "2", "--SimulateTool.energy_min_tev=1.0"]
    options += ["--spectrum", "diffuse", "--no-progress"]
    result = run_cli("sst1m-simulate", *options, "--raw-dir", tmp_path / "default")
    assert result.returncode == 0, result.stderr
    result = run_cli(
        "sst1m-simulate",
        *options,
        "--CameraSimulator.nsb_rate_mhz=240",
        "--raw-dir",
        tmp_path / "bright",
    )
    assert result.returncode == 0, result.stderr
    for tel_id in (21, 22):
        assert raw_pedestal_std(tmp_path / "bright", tel_id) > 1.3 * raw_pedestal_std(
            tmp_path / "default", tel_id
        )

    # DL1: the configuration goes through to the processing of the card
    config = tmp_path / "detector.yaml"
    config.write_text("CameraSimulator:\n  trigger_threshold_pe: 45.0\n")
    output = tmp_path / "dl1" / "high_threshold.dl1.h5"
    output.parent.mkdir()
    result = run_cli("sst1m-simulate", *options, "--config", config, "--output", output)
    assert result.returncode == 0, result.stderr
    card = output.with_name("high_threshold.simcard.yaml")
    counts = {}
    for threshold in (30.0, 45.0):
        simulation = Config({"CameraSimulator": {"trigger_threshold_pe": threshold}})
        with SST1MSimulationSource(card, config=simulation) as source:
            counts[threshold] = sum(1 for _ in source)
    assert counts[45.0] < counts[30.0]
    showers = read_table(output, "/simulation/event/subarray/shower")
    assert len(showers) == counts[45.0]
