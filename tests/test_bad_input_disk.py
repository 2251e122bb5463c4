"""A full disk: the sst1m tools say "No space left on device", name the output, write nothing.

The full file system is a small tmpfs mounted for the test (root and ``mount`` are
needed: the tests skip with the reason elsewhere).
"""

import contextlib
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
import tables
from conftest import run_cli

from ctapipe_sst1m.io.atomic_output import AtomicOutput, DiskFullError

pytestmark = pytest.mark.slow


@pytest.fixture
def full_disk():
    """A 256 kB tmpfs: room for nothing our tools write."""
    if shutil.which("mount") is None:
        pytest.skip("no mount command")
    directory = Path(tempfile.mkdtemp(prefix="sst1m_full_disk_"))
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(directory)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        directory.rmdir()
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield directory
    finally:
        # a tool stopped by the full disk may leave its (broken) HDF5 file open in
        # this process, which would keep the file system busy
        with contextlib.suppress(tables.HDF5ExtError):
            tables.file._open_files.close_all()
        subprocess.run(["umount", "--lazy", str(directory)], check=False)
        directory.rmdir()


def _fill(directory, leave=8 * 1024):
    """Fill the file system of ``directory`` but ``leave`` bytes (small outputs no longer fit)."""
    free = shutil.disk_usage(directory).free
    (directory / "filler").write_bytes(bytes(max(free - leave, 0)))


def _assert_reported(result, output):
    assert result.returncode == 1, result.stderr
    assert "No space left on device" in result.stderr
    assert str(output) in result.stderr
    assert "Traceback" not in result.stderr
    assert not output.exists()
    assert not list(output.parent.glob("*.part"))


def test_commit_refuses_a_full_file_system(full_disk):
    output = full_disk / "table.txt"
    with AtomicOutput(output) as atomic:
        atomic.temporary.write_bytes(b"x" * 200_000)
        with pytest.raises(DiskFullError, match="No space left on device"):
            atomic.commit()
    assert not output.exists() and not list(full_disk.iterdir())


def test_apply_models_on_a_full_disk(small_production, trained_models, full_disk):
    output = full_disk / "gamma.dl2.h5"
    result = run_cli(
        "sst1m-apply-models",
        "--input",
        small_production["gamma_point"],
        "--models-dir",
        trained_models,
        "--output",
        output,
    )
    _assert_reported(result, output)


def test_performance_on_a_full_disk(small_dl2, full_disk):
    output = full_disk / "performance"
    result = run_cli(
        "sst1m-performance",
        "--gamma",
        small_dl2["gamma_point"],
        "--proton",
        small_dl2["proton"],
        "--output-dir",
        output,
        "--PerformanceTool.n_bootstrap_resamples=0",
    )
    _assert_reported(result, output)


def test_simulate_on_a_full_disk(full_disk):
    output = full_disk / "gamma.dl1.h5"
    result = run_cli(
        "sst1m-simulate",
        "--particle",
        "gamma",
        "--n-showers",
        "300",
        "--output",
        output,
        "--SimulateTool.progress_bar=False",
    )
    _assert_reported(result, output)


def test_simulated_raw_runs_on_a_full_disk(full_disk):
    """The raw files and the truth table of a run that cannot be completed are all removed."""
    raw = full_disk / "raw"
    result = run_cli(
        "sst1m-simulate",
        "--particle",
        "gamma",
        "--spectrum",
        "point",
        "--n-showers",
        "400",
        "--raw-dir",
        raw,
        "--SimulateTool.energy_min_tev=2.0",
        "--SimulateTool.max_impact_m=250",
    )
    assert result.returncode == 1, result.stderr
    assert "No space left on device" in result.stderr and str(raw) in result.stderr
    # no raw file, no heap file, no truth table; the simulation card (written whole
    # before the run, the recipe of a rerun) stays
    assert [p.name for p in raw.rglob("*")] == ["gamma_point.simcard.yaml"]


def test_process_on_a_full_disk(data_config, full_disk, tmp_path):
    """The disk fills up in the middle of the events: no DL1 file, the reason named."""
    from ctapipe_sst1m.testing import SyntheticRun, write_synthetic_run

    paths, _ = write_synthetic_run(tmp_path, SyntheticRun(n_events=100, seed=3))
    output = full_disk / "run.dl1.h5"
    result = run_cli(
        "sst1m-process",
        "--input",
        paths[0],
        "--output",
        output,
        "--config",
        data_config,
        "--no-progress",
    )
    _assert_reported(result, output)


def test_make_irfs_on_a_full_disk(small_dl2, full_disk):
    _fill(full_disk)
    output = full_disk / "irfs"
    result = run_cli(
        "sst1m-make-irfs",
        "--gamma-point",
        small_dl2["gamma_point"],
        "--proton",
        small_dl2["proton"],
        "-o",
        output,
        "--setup",
        "stereo",
        "--cuts",
        "global",
        "--kind",
        "full-enclosure",
    )
    assert result.returncode == 1, result.stderr
    assert "No space left on device" in result.stderr and str(output) in result.stderr
    assert "Traceback" not in result.stderr
    assert not list(output.rglob("*.fits.gz")) and not list(output.rglob("*.part"))


def test_dl3_on_a_full_disk(small_dl2, simulated_stereo_run, full_disk, tmp_path):
    irfs = tmp_path / "irfs"
    result = run_cli(
        "sst1m-make-irfs",
        "--gamma-point",
        small_dl2["gamma_point"],
        "--proton",
        small_dl2["proton"],
        "-o",
        irfs,
        "--setup",
        "stereo",
        "--cuts",
        "global",
        "--kind",
        "full-enclosure",
    )
    assert result.returncode == 0, result.stderr
    _fill(full_disk)
    output = full_disk / "dl3"
    result = run_cli(
        "sst1m-dl3",
        "--input",
        simulated_stereo_run["dl2"],
        "--irf-dir",
        irfs,
        "--output-dir",
        output,
        "--cuts",
        "global",
        "--kind",
        "full-enclosure",
    )
    assert result.returncode == 1, result.stderr
    assert "No space left on device" in result.stderr and str(output) in result.stderr
    assert "Traceback" not in result.stderr
    assert not list(output.glob("*.fits.gz")) and not list(output.glob("*.part"))
