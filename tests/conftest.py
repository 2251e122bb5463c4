"""Shared fixtures: real SST-1M raw files from the protozfits wheel, ../shared reference data."""

import importlib
import io
import subprocess
import sys
import tempfile
import warnings
from contextlib import redirect_stderr, redirect_stdout
from importlib.resources import files
from pathlib import Path

import pytest
from ctapipe.core import run_tool

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

#: the Tool behind each command line the tests drive in-process
TOOLS = {
    "ctapipe-apply-models": "ctapipe.tools.apply_models:ApplyModels",
    "ctapipe-merge": "ctapipe.tools.merge:MergeTool",
    "ctapipe-process": "ctapipe.tools.process:ProcessorTool",
    "ctapipe-train-energy-regressor": "ctapipe.tools.train_energy_regressor:TrainEnergyRegressor",
    "sst1m-analysis": "ctapipe_sst1m.tools.analysis:AnalysisTool",
    "sst1m-apply-models": "ctapipe_sst1m.tools.apply_models:ApplyModelsTool",
    "sst1m-dl3": "ctapipe_sst1m.tools.dl3:DL3Tool",
    "sst1m-dl3-index": "ctapipe_sst1m.tools.dl3_index:DL3IndexTool",
    "sst1m-make-irfs": "ctapipe_sst1m.tools.make_irfs:MakeIrfsTool",
    "sst1m-night": "ctapipe_sst1m.tools.night:NightTool",
    "sst1m-performance": "ctapipe_sst1m.tools.performance:PerformanceTool",
    "sst1m-process": "ctapipe_sst1m.tools.process:SST1MProcessorTool",
    "sst1m-quickstart": "ctapipe_sst1m.tools.quickstart:QuickStartTool",
    "sst1m-simulate": "ctapipe_sst1m.tools.simulate:SimulateTool",
    "sst1m-stereo-match": "ctapipe_sst1m.tools.stereo_match:StereoMatchTool",
    "sst1m-train-models": "ctapipe_sst1m.tools.train_models:TrainModelsTool",
}


def run_cli(*args, cwd=None):
    """Run a command line in this process with ctapipe's ``run_tool``.

    The tool's console output is captured, and the result looks like the one of
    `run_subprocess`: ``returncode``, ``stdout``, ``stderr``.
    """
    module_name, class_name = TOOLS[args[0]].split(":")
    tool_class = getattr(importlib.import_module(module_name), class_name)
    argv = [str(arg) for arg in args[1:]]
    stdout, stderr = io.StringIO(), io.StringIO()
    with redirect_stdout(stdout), redirect_stderr(stderr), warnings.catch_warnings():
        # warnings reach the tool's stderr, as in a process of its own; the filters of
        # the test session (deprecations of ctapipe are errors) still apply
        warnings.showwarning = _warning_to_stderr
        returncode = run_tool(
            tool_class(), argv=argv, cwd=cwd or CLI_WORKDIR, raises=False
        )
    return subprocess.CompletedProcess(
        args, returncode, stdout.getvalue(), stderr.getvalue()
    )


def _warning_to_stderr(message, category, filename, lineno, file=None, line=None):
    sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))


def run_subprocess(*args, cwd=None):
    """Run a console script of this environment in a new process (tests of the command line itself)."""
    executable = Path(sys.executable).parent / args[0]
    return subprocess.run(
        [str(executable), *map(str, args[1:])],
        cwd=cwd or CLI_WORKDIR,
        capture_output=True,
        text=True,
        timeout=600,
    )


#: a small simulated production for the random-forest chain (sst1m-simulate options),
#: sized for the assertions of test_models.py: with these sizes the cross-validated
#: stereo energy resolution is ~0.34 (asserted < 0.6), the classifier AUC ~0.96 (> 0.7)
#: and the point gammas give ~55 stereo events (> 20)
SMALL_PRODUCTION = {
    "gamma_diffuse": [
        "--particle",
        "gamma",
        "--spectrum",
        "diffuse",
        "--n-showers",
        "1500",
        "--seed",
        "2",
        "--SimulateTool.viewcone_deg=3",
        "--SimulateTool.max_impact_m=400",
        "--SimulateTool.energy_min_tev=0.5",
    ],
    "proton": [
        "--particle",
        "proton",
        "--spectrum",
        "diffuse",
        "--n-showers",
        "2500",
        "--seed",
        "3",
        "--SimulateTool.viewcone_deg=3",
        "--SimulateTool.max_impact_m=400",
        "--SimulateTool.energy_min_tev=1.0",
    ],
    "gamma_point": [
        "--particle",
        "gamma",
        "--spectrum",
        "point",
        "--n-showers",
        "800",
        "--seed",
        "1",
        "--SimulateTool.max_impact_m=400",
        "--SimulateTool.energy_min_tev=0.5",
    ],
}


@pytest.fixture(scope="session")
def small_production(tmp_path_factory):
    """DL1 files of sst1m-simulate: diffuse gammas and protons (training), point gammas (test)."""
    directory = tmp_path_factory.mktemp("production")
    paths = {}
    for name, options in SMALL_PRODUCTION.items():
        paths[name] = directory / f"{name}.dl1.h5"
        result = run_cli(
            "sst1m-simulate",
            *options,
            "--output",
            paths[name],
            "--SimulateTool.progress_bar=False",
        )
        assert result.returncode == 0, result.stderr
    return paths


@pytest.fixture(scope="session")
def trained_models(small_production, tmp_path_factory):
    """A models directory with one model set (mono and stereo) trained on the small production."""
    directory = tmp_path_factory.mktemp("models")
    result = run_cli(
        "sst1m-train-models",
        "--gamma",
        small_production["gamma_diffuse"],
        "--proton",
        small_production["proton"],
        "--output-dir",
        directory,
    )
    assert result.returncode == 0, result.stderr
    return directory


@pytest.fixture(scope="session")
def small_dl2(small_production, trained_models, tmp_path_factory):
    """DL2 of the point gammas, the diffuse gammas and the protons (mono and stereo models)."""
    directory = tmp_path_factory.mktemp("dl2")
    paths = {}
    for name in ("gamma_point", "gamma_diffuse", "proton"):
        paths[name] = directory / f"{name}.dl2.h5"
        result = run_cli(
            "sst1m-apply-models",
            "--input",
            small_production[name],
            "--models-dir",
            trained_models,
            "--output",
            paths[name],
        )
        assert result.returncode == 0, result.stderr
    return paths


@pytest.fixture(scope="session")
def irf_tree(small_dl2, tmp_path_factory):
    """IRFs of every set-up, global (gammaness >= 0: every valid event) and efficiency cuts."""
    directory = tmp_path_factory.mktemp("irfs")
    result = run_cli(
        "sst1m-make-irfs",
        "--gamma-point",
        small_dl2["gamma_point"],
        "--gamma-diffuse",
        small_dl2["gamma_diffuse"],
        "--proton",
        small_dl2["proton"],
        "--output-dir",
        directory,
        "--cuts",
        "global",
        "--cuts",
        "efficiency",
        "--MakeIrfsTool.global_gammaness_cut=0",
    )
    assert result.returncode == 0, result.stderr
    return directory


@pytest.fixture(scope="session")
def simulated_stereo_run(tmp_path_factory, data_config, trained_models):
    """
    Raw runs of both telescopes (sst1m-simulate, point gammas) -> sst1m-process ->
    sst1m-stereo-match -> sst1m-apply-models (stereo models): the stereo DL1 and DL2
    files and the single-telescope DL1 files.
    """
    directory = tmp_path_factory.mktemp("stereo_run")
    raw = directory / "raw"
    result = run_cli(
        "sst1m-simulate",
        "--particle",
        "gamma",
        "--spectrum",
        "point",
        "--n-showers",
        "300",
        "--seed",
        "5",
        "--raw-dir",
        raw,
        "--SimulateTool.energy_min_tev=2.0",
        "--SimulateTool.max_impact_m=250",
    )
    assert result.returncode == 0, result.stderr
    paths = {"raw": raw}
    for tel, prefix in ((21, "SST1M1"), (22, "SST1M2")):
        paths[tel] = directory / f"tel{tel}" / f"tel{tel}.dl1.h5"
        paths[tel].parent.mkdir()
        files = sorted(raw.glob(f"{prefix}_*.fits.fz"))
        result = run_cli(
            "sst1m-process",
            "--input",
            files[0],
            "--output",
            paths[tel],
            "--config",
            data_config,
        )
        assert result.returncode == 0, result.stderr
    paths["stereo_dl1"] = directory / "stereo.dl1.h5"
    result = run_cli(
        "sst1m-stereo-match",
        "--input-tel1",
        paths[21],
        "--input-tel2",
        paths[22].parent,
        "--output",
        paths["stereo_dl1"],
    )
    assert result.returncode == 0, result.stderr
    paths["dl2"] = directory / "stereo.dl2.h5"
    result = run_cli(
        "sst1m-apply-models",
        "--input",
        paths["stereo_dl1"],
        "--models-dir",
        trained_models,
        "--output",
        paths["dl2"],
        "--variant",
        "stereo",
    )
    assert result.returncode == 0, result.stderr
    return paths
