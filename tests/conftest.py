"""Shared fixtures: real SST-1M raw files from the protozfits wheel, ../shared reference data."""

import subprocess
import sys
import tempfile
from importlib.resources import files
from pathlib import Path

import pytest

PROJECT_DIR = Path(__file__).resolve().parent.parent
SHARED_DIR = PROJECT_DIR.parent / "shared"
RESOURCES = Path(str(files("protozfits") / "tests" / "resources"))
CONFIG_DIR = Path(str(files("ctapipe_sst1m") / "resources"))


@pytest.fixture(scope="session")
def raw_2018():
    """Real SST-1M file, tel 22, 32 events (2 interleaved pedestals)."""
    return RESOURCES / "example_SST1M_20180822.fits.fz"


@pytest.fixture(scope="session")
def raw_2017():
    """Real 2017 DigiCam file, telescopeID 1, 100 events."""
    return RESOURCES / "example_100evts.fits.fz"


@pytest.fixture(scope="session")
def raw_2017_10():
    """First 10 events of the 2017 file."""
    return RESOURCES / "example_10evts.fits.fz"


@pytest.fixture(scope="session")
def other_zfits():
    """A CTA zfits file of another camera (NectarCAM)."""
    return RESOURCES / "example_9evts_NectarCAM.fits.fz"


@pytest.fixture(scope="session")
def shared_dir():
    """../shared with the reference data; tests using it skip when it is absent."""
    if not SHARED_DIR.is_dir():
        pytest.skip(f"reference data directory {SHARED_DIR} is absent")
    return SHARED_DIR


@pytest.fixture(scope="session")
def data_config():
    return CONFIG_DIR / "sst1m.yaml"


@pytest.fixture(scope="session")
def mc_config():
    return CONFIG_DIR / "sst1m_mc.yaml"


#: working directory of the command lines run by the tests (their provenance logs go there)
CLI_WORKDIR = tempfile.mkdtemp(prefix="ctapipe_sst1m_cli_")


def run_cli(*args, cwd=None):
    """Run a console script of this environment, return the CompletedProcess."""
    executable = Path(sys.executable).parent / args[0]
    return subprocess.run(
        [str(executable), *map(str, args[1:])],
        cwd=cwd or CLI_WORKDIR,
        capture_output=True,
        text=True,
        timeout=600,
    )


#: a small simulated production for the random-forest chain (sst1m-simulate options)
SMALL_PRODUCTION = {
    "gamma_diffuse": [
        "--particle", "gamma", "--spectrum", "diffuse", "--n-showers", "3000", "--seed", "2",
        "--SimulateTool.viewcone_deg=3", "--SimulateTool.max_impact_m=400", "--SimulateTool.energy_min_tev=0.5",
    ],
    "proton": [
        "--particle", "proton", "--spectrum", "diffuse", "--n-showers", "5000", "--seed", "3",
        "--SimulateTool.viewcone_deg=3", "--SimulateTool.max_impact_m=400", "--SimulateTool.energy_min_tev=1.0",
    ],
    "gamma_point": [
        "--particle", "gamma", "--spectrum", "point", "--n-showers", "1000", "--seed", "1",
        "--SimulateTool.max_impact_m=400", "--SimulateTool.energy_min_tev=0.5",
    ],
}


@pytest.fixture(scope="session")
def small_production(tmp_path_factory):
    """DL1 files of sst1m-simulate: diffuse gammas and protons (training), point gammas (test)."""
    directory = tmp_path_factory.mktemp("production")
    paths = {}
    for name, options in SMALL_PRODUCTION.items():
        paths[name] = directory / f"{name}.dl1.h5"
        result = run_cli("sst1m-simulate", *options, "--output", paths[name], "--SimulateTool.progress_bar=False")
        assert result.returncode == 0, result.stderr
    return paths


@pytest.fixture(scope="session")
def trained_models(small_production, tmp_path_factory):
    """A models directory with one model set (mono and stereo) trained on the small production."""
    directory = tmp_path_factory.mktemp("models")
    result = run_cli(
        "sst1m-train-models", "--gamma", small_production["gamma_diffuse"],
        "--proton", small_production["proton"], "--output-dir", directory,
    )
    assert result.returncode == 0, result.stderr
    return directory


@pytest.fixture(scope="session")
def small_dl2(small_production, trained_models, tmp_path_factory):
    """DL2 of the point gammas and of the protons (stereo models)."""
    directory = tmp_path_factory.mktemp("dl2")
    paths = {}
    for name in ("gamma_point", "proton"):
        paths[name] = directory / f"{name}.dl2.h5"
        result = run_cli(
            "sst1m-apply-models", "--input", small_production[name],
            "--models-dir", trained_models, "--output", paths[name],
        )
        assert result.returncode == 0, result.stderr
    return paths
