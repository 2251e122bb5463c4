"""sst1m-night on a synthetic night: tree, manifest, resume, killed worker, external scheduler."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import tables
from astropy.table import Table
from conftest import run_cli, run_subprocess

from ctapipe_sst1m.night.manifest import MANIFEST_NAME
from ctapipe_sst1m.simulation.night import write_synthetic_night

pytestmark = pytest.mark.slow

#: DL1 tables compared between two runs of a night
DL1_TABLES = (
    "/dl1/event/telescope/parameters/tel_021",
    "/dl1/event/telescope/parameters/tel_022",
)


@pytest.fixture(scope="module")
def night(tmp_path_factory):
    """The default synthetic night: two targets, two runs each, a dark run, a corrupt file."""
    return write_synthetic_night(tmp_path_factory.mktemp("raw"))


def night_argv(night, output_dir, trained_models, irf_tree, *more):
    return [
        "--raw-dir",
        night.root,
        "--night",
        night.night,
        "--output-dir",
        output_dir,
        "--models-dir",
        trained_models,
        "--irf-dir",
        irf_tree,
        "--no-progress",
        # every valid event (the IRFs' global cuts are gammaness >= 0): the DL3 files
        # do not depend on how well the small test models separate the particles
        "--NightTool.dl3_cuts=global",
        *more,
    ]


@pytest.fixture(scope="module")
def processed(night, trained_models, irf_tree, tmp_path_factory):
    """The night processed on a LocalCluster of 2 workers."""
    output = tmp_path_factory.mktemp("night")
    result = run_cli(
        "sst1m-night",
        *night_argv(night, output, trained_models, irf_tree, "--workers=2"),
    )
    return output / night.night, result


def manifest_entries(night_dir):
    return json.loads((night_dir / MANIFEST_NAME).read_text())["products"]


def products(night_dir):
    """Every product of a night directory with its modification time."""
    return {
        str(p.relative_to(night_dir)): p.stat().st_mtime_ns
        for p in night_dir.rglob("*")
        if p.is_file() and p.suffix in (".h5", ".gz", ".ecsv", ".html")
    }


def test_night_tree_manifest_and_failure(night, processed):
    night_dir, result = processed
    # the corrupt file fails: exit 1, named in the summary; the rest completes
    assert result.returncode == 1, result.stderr
    corrupt = night.corrupt_file.name.removesuffix(".fits.fz")
    assert corrupt in result.stdout
    entries = manifest_entries(night_dir)
    not_done = {k: e["status"] for k, e in entries.items() if e["status"] != "done"}
    assert not_done == {
        f"TargetB/tel_022/dl1/{corrupt}.dl1.h5": "failed",
        f"TargetB/tel_022/dl2/{corrupt}.dl2.h5": "blocked",
    }
    assert (
        "corrupt Events table"
        in entries[f"TargetB/tel_022/dl1/{corrupt}.dl1.h5"]["message"]
    )
    # every other raw file gave DL1 and DL2, in the documented tree
    for run in night.runs:
        for tel_id, paths in run.files.items():
            for path in paths:
                name = path.name.removesuffix(".fits.fz")
                dl1 = (
                    night_dir
                    / run.target
                    / f"tel_{tel_id:03d}"
                    / "dl1"
                    / f"{name}.dl1.h5"
                )
                if path == night.corrupt_file:
                    assert not dl1.exists()
                    continue
                assert dl1.is_file()
                assert (dl1.parent.parent / "dl2" / f"{name}.dl2.h5").is_file()
                assert dl1.with_name(dl1.name + ".log").is_file()
                assert dl1.with_name(dl1.name + ".step.yaml").is_file()
        stereo = sorted(
            (night_dir / run.target / "stereo" / "dl1").glob(
                f"SST1M_*_{run.run:04d}_*.dl1.h5"
            )
        )
        assert len(stereo) == len(run.files[21])
    # DL3 with index files per target and set-up
    for target in ("TargetA", "TargetB"):
        for setup in ("tel_021", "tel_022", "stereo"):
            dl3 = night_dir / target / setup / "dl3"
            assert (dl3 / "hdu-index.fits.gz").is_file()
            obs = Table.read(dl3 / "obs-index.fits.gz")
            assert set(obs["OBJECT"]) == {target}
    # no dark run product, no temporary file left
    assert not any("DARK" in p.parts for p in night_dir.rglob("*"))
    assert not list(night_dir.rglob("*.part"))
    # manifest entries: inputs with checksums, versions, durations
    entry = next(e for k, e in entries.items() if k.endswith(".dl2.h5"))
    assert entry["inputs"][0]["sha256"] and entry["versions"]["ctapipe_sst1m"]
    assert entry["duration_s"] > 0


def test_quality_table_and_report(night, processed):
    night_dir, _ = processed
    quality = Table.read(night_dir / "quality.ecsv")
    # one row per run and telescope (the run with the corrupt file keeps its good files)
    assert len(quality) == 2 * len(night.runs)
    assert list(quality["target"]) == [r.target for r in night.runs for _ in (21, 22)]
    html = (night_dir / "report.html").read_text()
    assert "could not be made" not in html
    assert "TargetA" in html and "TargetB" in html
    assert night.corrupt_file.name.removesuffix(".fits.fz") in html
    assert "DARK" in html or "dark" in html.lower()


def test_rerun_recomputes_nothing(night, processed, trained_models, irf_tree, tmp_path):
    night_dir, _ = processed
    copy = tmp_path / night.night
    shutil.copytree(night_dir, copy, copy_function=shutil.copy2)
    before = products(copy)
    result = run_cli(
        "sst1m-night",
        *night_argv(night, tmp_path, trained_models, irf_tree, "--workers=2"),
    )
    # only the corrupt file is tried again
    assert result.returncode == 1
    assert products(copy) == before
    assert "1 failed, 54 skipped" in result.stdout

    # one DL1 product deleted: it and what depends on it are redone, nothing else
    run = night.runs[0]
    name = run.files[22][0].name.removesuffix(".fits.fz")
    deleted = f"{run.target}/tel_022/dl1/{name}.dl1.h5"
    (copy / deleted).unlink()
    result = run_cli(
        "sst1m-night",
        *night_argv(night, tmp_path, trained_models, irf_tree, "--workers=2"),
    )
    after = products(copy)
    redone = {k for k in before if after.get(k) != before[k]}
    stereo = {
        k
        for k in before
        if k.startswith(f"{run.target}/stereo/dl") and f"_{run.run:04d}_" in k
    }
    expected = {
        deleted,
        deleted.replace("dl1", "dl2"),
        *stereo,
        *(k for k in before if k.startswith(f"{run.target}/tel_022/dl3/")),
        *(k for k in before if k.startswith(f"{run.target}/stereo/dl3/")),
        "quality.ecsv",
        "report.html",
    }
    assert redone == expected, sorted(redone ^ expected)


def test_products_are_those_of_the_tools_by_hand(
    night, processed, data_config, tmp_path
):
    """A DL1 product of a worker is that of sst1m-process in a process of its own."""
    night_dir, _ = processed
    run = night.runs[1]
    raw = run.files[22][1]
    by_hand = tmp_path / "by_hand.dl1.h5"
    result = run_subprocess(
        "sst1m-process", "--input", raw, "--output", by_hand, "--config", data_config
    )
    assert result.returncode == 0, result.stderr
    product = (
        night_dir
        / run.target
        / "tel_022"
        / "dl1"
        / raw.name.replace(".fits.fz", ".dl1.h5")
    )
    with tables.open_file(product) as made, tables.open_file(by_hand) as expected:
        for name in (DL1_TABLES[1], "/dl1/event/telescope/images/tel_022"):
            assert_same_table(
                made.get_node(name).read(), expected.get_node(name).read(), name
            )


def read_products(night_dir):
    """The content of the products that must not depend on how the night ran."""
    content = {}
    for path in sorted(night_dir.rglob("*.dl1.h5")):
        with tables.open_file(path) as f:
            for name in DL1_TABLES:
                if name in f:
                    content[(path.name, name)] = f.get_node(name).read()
    for path in sorted(night_dir.rglob("sst1m_*.fits.gz")):
        content[path.name] = Table.read(path, hdu="EVENTS").as_array()
    return content


def assert_same_table(table, reference, name, rtol=0.0):
    """
    Two structured arrays equal column by column (NaN equal to NaN); float columns
    within ``rtol`` if given.
    """
    assert table.dtype == reference.dtype, name
    for column in table.dtype.names:
        if rtol and table[column].dtype.kind == "f":
            np.testing.assert_allclose(
                table[column], reference[column], rtol=rtol, err_msg=f"{name} {column}"
            )
        else:
            np.testing.assert_array_equal(
                table[column],
                reference[column],
                err_msg=f"{name} {column}",
                strict=True,
            )


#: DL3 (random-forest energies and directions) agree to this between a LocalCluster
#: and external workers, not bit for bit (measured: 3e-12 at most, docs/night.md)
DL3_RTOL = 1e-10


def assert_same_products(night_dir, reference_dir):
    content, reference = read_products(night_dir), read_products(reference_dir)
    assert content.keys() == reference.keys()
    for key, value in reference.items():
        # DL1 tables: bit for bit; DL3 event lists (keys are file names): DL3_RTOL
        rtol = DL3_RTOL if isinstance(key, str) else 0.0
        assert_same_table(content[key], value, key, rtol)


class ExternalCluster:
    """``dask scheduler`` and two ``dask worker`` processes on this machine."""

    def __init__(self, directory):
        self.scheduler_file = directory / "scheduler.json"
        dask = [sys.executable, "-m", "dask"]
        self.scheduler = subprocess.Popen(
            [
                *dask,
                "scheduler",
                "--port=0",
                "--no-dashboard",
                f"--scheduler-file={self.scheduler_file}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=open(directory / "scheduler.log", "w"),
        )
        for _ in range(300):
            if self.scheduler_file.exists():
                break
            time.sleep(0.1)
        self.address = json.loads(self.scheduler_file.read_text())["address"]
        self.workers = [
            subprocess.Popen(
                [
                    *dask,
                    "worker",
                    self.address,
                    "--nthreads=1",
                    "--no-nanny",
                    "--no-dashboard",
                ],
                stdout=subprocess.DEVNULL,
                stderr=open(directory / f"worker{i}.log", "w"),
            )
            for i in range(2)
        ]

    def close(self):
        # the workers first and without a goodbye (a worker stopped politely waits for
        # the scheduler), then the scheduler
        for worker in self.workers:
            worker.kill()
            worker.wait()
        self.scheduler.terminate()
        self.scheduler.wait(timeout=60)


def test_external_scheduler_and_killed_worker(
    night, processed, trained_models, irf_tree, tmp_path
):
    """
    The night on an external scheduler with two worker processes, one of which is
    killed while it writes a product: the night completes, every product whole and
    identical to those of the LocalCluster run.
    """
    cluster = ExternalCluster(tmp_path)
    try:
        output = tmp_path / "out"
        argv = night_argv(
            night,
            output,
            trained_models,
            irf_tree,
            f"--scheduler-address={cluster.address}",
        )
        night_process = subprocess.Popen(
            [str(Path(sys.executable).parent / "sst1m-night"), *map(str, argv)],
            stdout=open(tmp_path / "night.out", "w"),
            stderr=open(tmp_path / "night.err", "w"),
        )
        killed = None
        worker_pids = {w.pid for w in cluster.workers}
        deadline = time.monotonic() + 300
        while (
            killed is None
            and time.monotonic() < deadline
            and night_process.poll() is None
        ):
            for part in (output / night.night).rglob("*.dl1.h5.*.part"):
                pid = int(part.name.split(".")[-3])
                if pid in worker_pids:
                    os.kill(pid, signal.SIGKILL)
                    killed = pid
                    break
            time.sleep(0.05)
        night_process.wait(timeout=900)
    finally:
        cluster.close()
    assert killed is not None, "no worker was caught writing a product"
    assert night_process.returncode == 1, (tmp_path / "night.err").read_text()
    night_dir = output / night.night
    entries = manifest_entries(night_dir)
    assert {k for k, e in entries.items() if e["status"] != "done"} == {
        k for k, e in manifest_entries(processed[0]).items() if e["status"] != "done"
    }
    assert not list(night_dir.rglob("*.part"))
    assert_same_products(night_dir, processed[0])


def test_night_bad_options(night, tmp_path):
    result = run_cli(
        "sst1m-night",
        "--raw-dir",
        night.root,
        "--night",
        "2024-03-04",
        "--output-dir",
        tmp_path,
    )
    assert result.returncode != 0 and "YYYYMMDD" in result.stderr
    result = run_cli(
        "sst1m-night",
        "--raw-dir",
        night.root,
        "--night",
        "20240305",
        "--output-dir",
        tmp_path,
    )
    assert result.returncode != 0 and "no raw files of night 20240305" in result.stderr
