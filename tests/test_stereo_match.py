"""sst1m-stereo-match on synthetic two-telescope runs processed by ctapipe-process."""

import numpy as np
import pytest
import tables
from astropy.table import Table
from conftest import run_cli
from ctapipe.io import HDF5EventSource, TableLoader, read_table

from ctapipe_sst1m.stereo.coincidence import MatchResult
from ctapipe_sst1m.stereo.merge import StereoPair
from ctapipe_sst1m.stereo.plots import plot_coincidences
from ctapipe_sst1m.stereo.tables import (
    coincidence_metadata,
    offset_scan_table,
    pair_table,
    summary_table,
)
from ctapipe_sst1m.testing import (
    SyntheticStereoRun,
    write_synthetic_stereo_run,
)

CLOCK_OFFSET_NS = 3_217_000


def make_dl1(directory, data_config, **options):
    """A synthetic stereo run through ctapipe-process; returns the DL1 paths and the truth."""
    stereo = SyntheticStereoRun(
        n_stereo=150, clock_offset_ns=CLOCK_OFFSET_NS, **options
    )
    paths, truth = write_synthetic_stereo_run(directory / "raw", stereo)
    dl1 = {}
    for tel_id in (21, 22):
        dl1[tel_id] = directory / f"tel{tel_id}" / f"tel{tel_id}.dl1.h5"
        dl1[tel_id].parent.mkdir()
        result = run_cli(
            "ctapipe-process",
            "-i",
            paths[tel_id][0],
            "-o",
            dl1[tel_id],
            "--config",
            data_config,
        )
        assert result.returncode == 0, result.stderr
    return dl1, truth


@pytest.fixture(scope="module")
def swat_wr_run(tmp_path_factory, data_config):
    return make_dl1(tmp_path_factory.mktemp("swat_wr"), data_config, seed=21)


@pytest.fixture(scope="module")
def clock_only_run(tmp_path_factory, data_config):
    return make_dl1(
        tmp_path_factory.mktemp("clock"),
        data_config,
        swat=False,
        white_rabbit=False,
        seed=22,
    )


def true_pairs_as_ids(truth, swat):
    """The true pairs as (tel-21 DL1 event id, tel-22 DL1 event id)."""
    pairs = set()
    for number_21, number_22 in truth["pairs"]:
        ids = []
        for tel_id, number in ((21, number_21), (22, number_22)):
            row = number - 1
            ids.append(
                int(truth[tel_id]["array_event_number"][row]) if swat else int(number)
            )
        pairs.add(tuple(ids))
    return pairs


def match(dl1, output, *options):
    return run_cli(
        "sst1m-stereo-match",
        "--input-tel1",
        dl1[21],
        "--input-tel2",
        dl1[22].parent,
        "--output",
        output,
        *options,
    )


def found_pairs(output):
    table = read_table(output, "/dl1/event/subarray/coincidence")
    return set(
        zip(table["tel_021_event_id"].tolist(), table["tel_022_event_id"].tolist())
    )


def precision_recall(found, true):
    correct = len(found & true)
    return correct / max(len(found), 1), correct / len(true)


@pytest.mark.parametrize(
    "fixture, method, swat, minimum",
    [
        ("swat_wr_run", "SWATEventIDs", True, 0.999),
        ("swat_wr_run", "WhiteRabbitClosest", True, 0.999),
        ("clock_only_run", "SlidingWindow", False, 0.99),
    ],
)
@pytest.mark.slow
def test_pairs_recovered(request, tmp_path, fixture, method, swat, minimum):
    dl1, truth = request.getfixturevalue(fixture)
    output = tmp_path / "stereo.h5"
    result = match(dl1, output, "--method", method)
    assert result.returncode == 0, result.stderr
    pairs = found_pairs(output)
    precision, recall = precision_recall(pairs, true_pairs_as_ids(truth, swat))
    assert precision >= minimum and recall >= minimum
    # one-to-one
    assert len({a for a, _ in pairs}) == len(pairs) == len({b for _, b in pairs})

    summary = read_table(output, "/dl1/service/coincidence")
    n_showers = {
        tel: int(np.count_nonzero(truth[tel]["camera_event_type"] != 8))
        for tel in (21, 22)
    }
    for tel in (21, 22):
        counts = [
            summary[f"tel_{tel:03d}_{k}"][0]
            for k in ("matched", "ambiguous", "rejected", "unmatched")
        ]
        assert sum(counts) == n_showers[tel]
    if method == "SlidingWindow":
        assert abs(summary["offset_ns"][0] - CLOCK_OFFSET_NS) <= 20_000
        assert len(read_table(output, "/dl1/service/coincidence_offset_scan")) > 100
    assert (tmp_path / "stereo_coincidences.png").is_file()
    with tables.open_file(output) as h5:
        assert h5.root._v_attrs["CONTEXT SST1M COINCIDENCE METHOD"] == method


@pytest.mark.slow
def test_stock_tools_read_the_output(swat_wr_run, tmp_path):
    dl1, truth = swat_wr_run
    output = tmp_path / "stereo.h5"
    assert match(dl1, output).returncode == 0
    n_pairs = len(truth["pairs"])
    with TableLoader(output) as loader:
        events = loader.read_telescope_events(
            [21, 22], dl1_parameters=True, dl2=True, pointing=True
        )
    assert len(events) == 2 * n_pairs
    assert np.all(np.isfinite(events["telescope_pointing_altitude"]))
    geometry = read_table(output, "/dl2/event/subarray/geometry/HillasReconstructor")
    assert len(geometry) == n_pairs
    with HDF5EventSource(output) as source:
        n_events = sum(1 for event in source if len(event.dl1.tel) == 2)
    assert n_events == n_pairs
    dl2 = tmp_path / "stereo_dl2.h5"
    result = run_cli(
        "ctapipe-process",
        "-i",
        output,
        "-o",
        dl2,
        "--write-showers",
        "--ShowerProcessor.reconstructor_types=HillasReconstructor",
    )
    assert result.returncode == 0, result.stderr
    assert (
        len(read_table(dl2, "/dl2/event/subarray/geometry/HillasReconstructor"))
        == n_pairs
    )


def test_keep_mono(swat_wr_run, tmp_path):
    dl1, truth = swat_wr_run
    output = tmp_path / "stereo_mono.h5"
    assert match(dl1, output, "--keep-mono").returncode == 0
    trigger = read_table(output, "/dl1/event/subarray/trigger")
    n_showers = sum(
        int(np.count_nonzero(truth[t]["camera_event_type"] != 8)) for t in (21, 22)
    )
    # every shower event of both telescopes, the pairs once
    assert len(trigger) == n_showers - len(truth["pairs"])
    assert len(np.unique(np.asarray(trigger["event_id"]))) == len(trigger)


def test_missing_white_rabbit(clock_only_run, tmp_path):
    dl1, _ = clock_only_run
    output = tmp_path / "stereo.h5"
    result = match(dl1, output, "--method", "WhiteRabbitClosest")
    assert result.returncode != 0
    assert "no White Rabbit times" in result.stderr
    assert not output.exists() and not list(tmp_path.glob("*.part"))


def test_wrong_telescope(swat_wr_run, tmp_path):
    dl1, _ = swat_wr_run
    output = tmp_path / "stereo.h5"
    result = run_cli(
        "sst1m-stereo-match",
        "--input-tel1",
        dl1[22],
        "--input-tel2",
        dl1[22],
        "--output",
        output,
    )
    assert result.returncode != 0
    assert "expected telescope 21" in result.stderr
    assert not output.exists()


def test_no_overlap(swat_wr_run, tmp_path, data_config):
    """Telescope 22 of the same night, 3 hours later: a warning, no output, exit 0."""
    dl1, _ = swat_wr_run
    later = make_dl1(
        tmp_path, data_config, start_time_ns=(1_709_590_000 + 3 * 3600) * 10**9, seed=23
    )[0]
    output = tmp_path / "stereo.h5"
    result = run_cli(
        "sst1m-stereo-match",
        "--input-tel1",
        dl1[21],
        "--input-tel2",
        later[22],
        "--output",
        output,
    )
    assert result.returncode == 0, result.stderr
    assert "0 stereo events, no output: no telescope-22 file overlaps" in result.stdout
    assert not output.exists()


def test_simulated_input_refused(swat_wr_run, tmp_path):
    dl1, _ = swat_wr_run
    simulated = tmp_path / "simulated.h5"
    simulated.write_bytes(dl1[21].read_bytes())
    with tables.open_file(simulated, "a") as h5:
        h5.root._v_attrs["CTA PROCESS TYPE"] = "Simulation"
    output = tmp_path / "stereo.h5"
    result = run_cli(
        "sst1m-stereo-match",
        "--input-tel1",
        simulated,
        "--input-tel2",
        dl1[22],
        "--output",
        output,
    )
    assert result.returncode != 0
    assert "simulated events need no matching" in result.stderr
    assert not output.exists()


def _result(scan):
    counts = {"matched": 2, "ambiguous": 0, "rejected": 0, "unmatched": 1}
    return MatchResult(
        index_1=np.array([0, 2]),
        index_2=np.array([1, 2]),
        delta_t_ns=np.array([-5, 7]),
        offset_ns=3_000 if scan else 0,
        counts_1=counts,
        counts_2=dict(counts, unmatched=3),
        method="SlidingWindow" if scan else "SWATEventIDs",
        scan_offsets_ns=np.array([0, 1_000, 3_000]) if scan else None,
        scan_coincidences=np.array([1, 2, 9]) if scan else None,
    )


def test_coincidence_tables():
    pairs = [
        StereoPair(1, 10, 2, 11, 100, 95, -5),
        StereoPair(1, 12, 2, 14, 200, 207, 7),
    ]
    table = pair_table(pairs)
    assert table.colnames == [
        "obs_id",
        "event_id",
        "tel_021_event_id",
        "tel_022_obs_id",
        "tel_022_event_id",
        "tel_021_time_ns",
        "tel_022_time_ns",
        "delta_t_ns",
    ]
    assert table["tel_022_event_id"].tolist() == [11, 14]
    assert table["delta_t_ns"].dtype == np.int64
    assert len(pair_table([])) == 0 and pair_table([])["obs_id"].dtype == np.int64

    result = _result(scan=True)
    summary = summary_table(result, len(pairs))
    assert summary["n_stereo"][0] == 2 and summary["tel_022_unmatched"][0] == 3
    assert offset_scan_table(result)["n_coincidences"].tolist() == [1, 2, 9]
    assert offset_scan_table(_result(scan=False)) is None
    metadata = coincidence_metadata(result)
    assert metadata["SST1M COINCIDENCE METHOD"] == "SlidingWindow"
    assert metadata["SST1M COINCIDENCE TEL022 UNMATCHED"] == 3.0


@pytest.mark.parametrize("scan", [True, False])
def test_coincidence_plot(tmp_path, scan):
    figure = plot_coincidences(_result(scan))
    assert "2 matched pairs" in figure.axes[0].get_title()
    figure.savefig(tmp_path / "plot.png", dpi=80)
    assert (tmp_path / "plot.png").stat().st_size > 0


def test_one_folder_with_both_telescopes(swat_wr_run, tmp_path):
    """--input-tel2 a folder holding the files of both telescopes: telescope 22's are used."""
    import shutil

    dl1, _ = swat_wr_run
    both = tmp_path / "dl1"
    both.mkdir()
    for tel_id in (21, 22):
        shutil.copy(dl1[tel_id], both / dl1[tel_id].name)
    (both / "notes.h5").write_bytes(b"not an HDF5 file")
    reference, output = tmp_path / "reference.h5", tmp_path / "stereo.h5"
    assert match(dl1, reference).returncode == 0
    result = run_cli(
        "sst1m-stereo-match",
        "--input-tel1",
        both / dl1[21].name,
        "--input-tel2",
        both,
        "--output",
        output,
    )
    assert result.returncode == 0, result.stderr
    # the unreadable file is named, not silently dropped
    assert "notes.h5: skipped" in result.stderr
    pairs = read_table(output, "/dl1/event/subarray/coincidence")
    expected = read_table(reference, "/dl1/event/subarray/coincidence")
    assert list(pairs["event_id"]) == list(expected["event_id"])


@pytest.fixture(scope="module")
def simulated_raw_dl1(tmp_path_factory, data_config):
    """
    2,000 point gammas of sst1m-simulate as raw runs of both telescopes (a Poisson
    process of 200 Hz, telescope 22's camera clock 3.217 ms ahead), through
    sst1m-process: the DL1 files and the truth table of the pairs.
    """
    directory = tmp_path_factory.mktemp("simulated_raw")
    raw = directory / "raw"
    result = run_cli(
        "sst1m-simulate",
        "--particle",
        "gamma",
        "--spectrum",
        "point",
        "--n-showers",
        "2000",
        "--seed",
        "0",
        "--raw-dir",
        raw,
        "--SimulateTool.progress_bar=False",
    )
    assert result.returncode == 0, result.stderr
    dl1 = {}
    for tel_id, prefix in ((21, "SST1M1"), (22, "SST1M2")):
        (raw_file,) = raw.glob(f"{prefix}_*.fits.fz")
        dl1[tel_id] = directory / f"tel{tel_id}" / f"tel{tel_id}.dl1.h5"
        dl1[tel_id].parent.mkdir()
        result = run_cli(
            "sst1m-process",
            "--input",
            raw_file,
            "--output",
            dl1[tel_id],
            "--config",
            data_config,
            "--no-progress",
        )
        assert result.returncode == 0, result.stderr
    (truth_file,) = raw.glob("*_truth.ecsv")
    return dl1, Table.read(truth_file)


@pytest.mark.slow
def test_sliding_window_on_simulated_raw_runs(simulated_raw_dl1, tmp_path):
    """The true clock offset, every true pair and no other, a peak that stands out."""
    dl1, truth = simulated_raw_dl1
    output = tmp_path / "stereo.h5"
    result = match(dl1, output, "--method", "SlidingWindow")
    assert result.returncode == 0, result.stderr
    both = (truth["tel_021_event_number"] > 0) & (truth["tel_022_event_number"] > 0)
    # the DL1 event ids are the SWAT numbers, equal for the two halves of a pair
    true = {(int(n), int(n)) for n in truth["array_event_number"][both]}
    precision, recall = precision_recall(found_pairs(output), true)
    summary = read_table(output, "/dl1/service/coincidence")
    print(
        f"SlidingWindow on simulated raw runs: {len(true)} true pairs, precision"
        f" {precision:.3f}, recall {recall:.3f}, offset {summary['offset_ns'][0]} ns,"
        f" significance {summary['scan_significance'][0]:.1f} sigma, excess ratio"
        f" {summary['scan_excess_ratio'][0]:.1f}"
    )
    assert len(true) >= 50
    assert precision == 1.0 and recall == 1.0
    assert abs(summary["offset_ns"][0] - CLOCK_OFFSET_NS) <= 4  # the 4 ns clock
    assert summary["scan_significance"][0] >= 5
    assert summary["scan_excess_ratio"][0] >= 2
    assert summary["tolerance_ns"][0] == 10_000
