"""Outputs appear under their final name only when complete (io/atomic_output.py)."""

import subprocess
import sys

import pytest

from ctapipe_sst1m.io.atomic_output import TEMPORARY_SUFFIX, AtomicOutput


def test_commit_renames_the_temporary_file(tmp_path):
    final = tmp_path / "out.h5"
    with AtomicOutput(final) as output:
        assert output.temporary.parent == tmp_path
        assert output.temporary.name.startswith("out.h5.")
        assert output.temporary.name.endswith(TEMPORARY_SUFFIX)
        output.temporary.write_text("complete")
        assert not final.exists()
        output.commit()
    assert final.read_text() == "complete"
    assert list(tmp_path.iterdir()) == [final]


def test_failure_leaves_nothing(tmp_path):
    final = tmp_path / "out.h5"
    with pytest.raises(RuntimeError, match="mid-run"):
        with AtomicOutput(final) as output:
            output.temporary.write_text("half")
            raise RuntimeError("mid-run")
    assert list(tmp_path.iterdir()) == []


def test_existing_output_refused_or_replaced_by_the_commit(tmp_path):
    final = tmp_path / "out.h5"
    final.write_text("old")
    with pytest.raises(FileExistsError, match=f"{final} exists"):
        AtomicOutput(final)
    with AtomicOutput(final, overwrite=True) as output:
        output.temporary.write_text("new")
        # the old file stays until the new one is complete
        assert final.read_text() == "old"
        output.commit()
    assert final.read_text() == "new"


def test_two_writers_of_one_output_have_their_own_temporary_files(tmp_path):
    final = tmp_path / "out.h5"
    first, second = AtomicOutput(final), AtomicOutput(final)
    assert first.temporary != second.temporary
    first.temporary.write_text("first")
    second.temporary.write_text("second")
    second.discard()
    assert first.temporary.read_text() == "first"
    first.commit()
    assert final.read_text() == "first"


def test_directory_output(tmp_path):
    final = tmp_path / "models" / "ze20_az180_nsb080"
    with AtomicOutput(final, directory=True) as output:
        (output.temporary / "model.pkl").write_text("forest")
        output.commit()
    assert (final / "model.pkl").read_text() == "forest"
    # replaced whole, old content gone
    with AtomicOutput(final, overwrite=True, directory=True) as output:
        (output.temporary / "other.pkl").write_text("forest")
        output.commit()
    assert sorted(p.name for p in final.iterdir()) == ["other.pkl"]
    with pytest.raises(KeyboardInterrupt):
        with AtomicOutput(final, overwrite=True, directory=True) as output:
            (output.temporary / "half.pkl").write_text("")
            raise KeyboardInterrupt
    assert sorted(p.name for p in final.parent.iterdir()) == [final.name]


def test_two_runs_with_the_same_output(tmp_path, data_config):
    """Two sst1m-process at once, same output: both complete, one whole file remains."""
    from ctapipe.io import read_table

    from ctapipe_sst1m.testing import SyntheticRun, write_synthetic_run

    paths, truth = write_synthetic_run(tmp_path, SyntheticRun(n_events=150, seed=4))
    output = tmp_path / "dl1.h5"
    executable = [sys.executable, "-m", "ctapipe_sst1m.tools.process"]
    command = [*executable, "-i", str(paths[0]), "-o", str(output)]
    command += ["--config", str(data_config), "--overwrite", "--no-progress"]
    runs = [
        subprocess.Popen(command, cwd=tmp_path, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    for run in runs:
        _, stderr = run.communicate(timeout=300)
        assert run.returncode == 0, stderr
    n_showers = int((truth["camera_event_type"] != 8).sum())
    assert len(read_table(output, "/dl1/event/subarray/trigger")) == n_showers
    assert not list(tmp_path.glob("*.part"))


def test_an_input_is_never_an_output(tmp_path):
    source = tmp_path / "run.fits.fz"
    source.write_text("raw")
    with pytest.raises(ValueError, match=f"output {source} is the input"):
        AtomicOutput(tmp_path / "." / "run.fits.fz", overwrite=True, inputs=[source])
    assert source.read_text() == "raw"


@pytest.fixture(scope="module")
def synthetic_dl1(tmp_path_factory, data_config):
    """A raw synthetic run of telescope 21 and its DL1 (sst1m-process)."""
    from conftest import run_cli

    from ctapipe_sst1m.testing import SyntheticRun, write_synthetic_run

    directory = tmp_path_factory.mktemp("same_output")
    paths, _ = write_synthetic_run(directory, SyntheticRun(n_events=30, seed=3))
    dl1 = directory / "run.dl1.h5"
    result = run_cli(
        "sst1m-process", "-i", paths[0], "-o", dl1, "--config", data_config
    )
    assert result.returncode == 0, result.stderr
    return paths[0], dl1


@pytest.mark.parametrize(
    "command",
    [
        ["sst1m-process", "-i", "{raw}", "-o", "{raw}", "--config", "{config}"],
        [
            "sst1m-apply-models",
            "--input",
            "{dl1}",
            "--output",
            "{dl1}",
            "--models-dir",
            "{dir}",
        ],
        [
            "sst1m-stereo-match",
            "--input-tel1",
            "{dl1}",
            "--input-tel2",
            "{dl1}",
            "--output",
            "{dl1}",
        ],
    ],
    ids=["process", "apply-models", "stereo-match"],
)
def test_output_equal_to_input_refused(synthetic_dl1, data_config, command):
    """Even with --overwrite: a non-zero exit naming the input, the input unchanged."""
    from conftest import run_cli

    raw, dl1 = synthetic_dl1
    values = {"raw": raw, "dl1": dl1, "config": data_config, "dir": dl1.parent}
    argv = [part.format(**values) for part in command] + ["--overwrite"]
    before = {path: path.read_bytes() for path in (raw, dl1)}
    result = run_cli(*argv)
    assert result.returncode != 0
    assert "is the input" in result.stderr
    assert {path: path.read_bytes() for path in (raw, dl1)} == before
    assert not list(dl1.parent.glob("*.part"))
