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
