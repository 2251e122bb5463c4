"""sst1m-make-irfs, sst1m-dl3 and sst1m-dl3-index on simulated productions and real files."""

import shutil

import astropy.units as u
import numpy as np
import pytest
import tables
from astropy.coordinates import AltAz, EarthLocation, SkyCoord
from astropy.io import fits
from astropy.table import QTable
from astropy.time import Time
from conftest import run_cli
from ctapipe.io import TableLoader, read_table
from gammapy.data import DataStore
from gammapy.irf import PSF3D, load_irf_dict_from_file

from ctapipe_sst1m.dl3.validation import check_data_store
from ctapipe_sst1m.io.gadf import MJDREF
from ctapipe_sst1m.io.irf_files import IrfFile, find_irf_files
from ctapipe_sst1m.io.model_sets import node_name
from ctapipe_sst1m.time import tai_ns

pytestmark = pytest.mark.slow

NODE = node_name(20, 180, 80)
#: true-energy bins of the comparison with sst1m-performance: 0.2-300 TeV, 3 per
#: decade (ctapipe: ceil(3 log10(1500)) = 10 bins), wide for the small production
TRUE_ENERGY_BINS = np.geomspace(0.2, 300, 11)


def test_make_irfs_tree(irf_tree):
    irfs = find_irf_files(irf_tree)
    assert {(i.setup.name, i.cuts, i.kind) for i in irfs} == {
        (setup, cuts, kind)
        for setup in ("tel_021", "tel_022", "stereo")
        for cuts in ("global", "efficiency")
        for kind in ("point-like", "full-enclosure")
    }
    assert not list(irf_tree.rglob("*.part"))
    for irf in irfs:
        assert irf.node == NODE and irf.zenith_deg == pytest.approx(20)
        assert irf.path.parent.parent.parent.name == NODE
        hdus = load_irf_dict_from_file(irf.path)
        expected = {"aeff", "edisp", "psf", "bkg"}
        if irf.kind == "point-like":
            expected.add("rad_max")
            assert irf.theta_cuts is not None
            assert (irf.path.parent / "sensitivity_point-like.ecsv").is_file()
            assert (irf.path.parent / "sensitivity_point-like.png").is_file()
        assert set(hdus) == expected
        assert any("valid" in name for name, _ in irf.quality_criteria)
        if irf.setup.name == "stereo":
            # both telescopes in each of the three predictions
            assert any(">= 2" in expr for _, expr in irf.quality_criteria)
        if irf.cuts == "global":
            np.testing.assert_array_equal(irf.gh_cuts["cut"], 0.0)
        with fits.open(irf.path) as hdul:
            assert hdul[0].header["IRFKIND"] == irf.kind.upper()
            assert "EFFECTIVE AREA PROTONS" not in hdul


def test_full_enclosure_offset_bins_start_at_the_centre(irf_tree):
    """Diffuse gammas: FoV offset bins from 0 deg, the innermost bin filled."""
    (irf,) = find_irf_files(irf_tree, "stereo", "global", "full-enclosure")
    aeff = load_irf_dict_from_file(irf.path)["aeff"]
    offset = aeff.axes["offset"]
    assert offset.edges[0] == 0 * u.deg and offset.nbin == 6
    # the innermost bin has events (this small production leaves some of its energy
    # bins empty: 1/36 of the 3 deg viewcone)
    data = aeff.quantity.to_value(u.m**2)
    assert np.count_nonzero(data[:, 0] > 0) >= 3


def test_irfs_agree_with_sst1m_performance(small_dl2, tmp_path):
    """Point gammas: effective area, energy bias/resolution and PSF of the IRFs and of sst1m-performance."""
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
        "--MakeIrfsTool.global_gammaness_cut=0",
        "--DefaultTrueEnergyBins.true_energy_n_bins_per_decade=3",
    )
    assert result.returncode == 0, result.stderr
    performance = tmp_path / "performance"
    result = run_cli(
        "sst1m-performance",
        "--gamma",
        small_dl2["gamma_point"],
        "--proton",
        small_dl2["proton"],
        "-o",
        performance,
        "--variant",
        "stereo",
        f"--PerformanceTool.log_energy_min={np.log10(0.2)}",
        f"--PerformanceTool.log_energy_max={np.log10(300)}",
        "--PerformanceTool.n_energy_bins=10",
        "--PerformanceTool.n_bootstrap_resamples=0",
        "--PerformanceTool.min_events_per_bin=5",
    )
    assert result.returncode == 0, result.stderr
    leaf = irfs / NODE / "stereo" / "global"
    irf = load_irf_dict_from_file(leaf / "irf_full-enclosure.fits.gz")

    # effective area: the same events, the same definition
    perf = QTable.read(performance / "effective_area_stereo.ecsv")
    np.testing.assert_allclose(
        perf["energy_min"].to_value(u.TeV), TRUE_ENERGY_BINS[:-1]
    )
    aeff = irf["aeff"].quantity[:, 0].to_value(u.m**2)
    filled = perf["n_selected"] > 0
    assert np.count_nonzero(filled) >= 5
    np.testing.assert_allclose(
        aeff[filled], perf["effective_area"].to_value(u.m**2)[filled], rtol=1e-9
    )

    bench = fits.open(leaf / "benchmarks_full-enclosure.fits.gz")
    bias = QTable.read(bench["ENERGY BIAS RESOLUTION"])
    perf = QTable.read(performance / "energy_resolution_stereo.ecsv")
    np.testing.assert_array_equal(bias["N_EVENTS"][0, 0], perf["n_events"])
    enough = perf["n_events"] >= 5
    assert np.count_nonzero(enough) >= 3
    np.testing.assert_allclose(
        bias["RESOLUTION"][0, 0][enough], perf["resolution"][enough], rtol=1e-9
    )
    # ctapipe's bias is the mean of ΔE/E (sst1m-performance: the median)
    with TableLoader(small_dl2["gamma_point"]) as loader:
        events = loader.read_subarray_events()
    stereo = np.ones(len(events), bool)
    for kind in ("regressor", "disp", "classifier"):
        stereo &= np.asarray(events[f"stereo_{kind}_is_valid"])
        stereo &= np.all(np.asarray(events[f"stereo_{kind}_telescopes"]), axis=1)
    true = events["true_energy"].quantity[stereo].to_value(u.TeV)
    relative = (
        events["stereo_regressor_energy"].quantity[stereo].to_value(u.TeV) / true - 1
    )
    index = np.digitize(true, TRUE_ENERGY_BINS) - 1
    mean = np.array([relative[index == i].mean() for i in np.flatnonzero(enough)])
    np.testing.assert_allclose(bias["BIAS"][0, 0][enough], mean, rtol=1e-9)

    angular = QTable.read(bench["ANGULAR RESOLUTION"])
    perf = QTable.read(performance / "angular_resolution_stereo.ecsv")
    np.testing.assert_allclose(
        angular["ANGULAR_RESOLUTION_68"][0, 0][enough].to_value(u.deg),
        perf["angular_resolution_68"][enough].to_value(u.deg),
        rtol=1e-6,
    )
    # the PSF table (0.01 deg bins of source offset) contains 68 % within the
    # angular resolution, to its histogram of n events (a containment step of 1/n):
    # 20 % with 10 events
    psf = PSF3D.read(leaf / "irf_full-enclosure.fits.gz", hdu="PSF")
    filled = perf["n_events"] >= 10
    assert np.count_nonzero(filled) >= 3
    radius = psf.containment_radius(
        0.682689,
        energy_true=perf["true_energy_center"][filled],
        offset=psf.axes["offset"].center[0],
    )
    np.testing.assert_allclose(
        radius.to_value(u.deg),
        perf["angular_resolution_68"][filled].to_value(u.deg),
        rtol=0.2,
    )


def test_make_irfs_bad_input(small_dl2, tmp_path):
    # protons given as gammas: named, nothing written
    result = run_cli(
        "sst1m-make-irfs",
        "--gamma-point",
        small_dl2["proton"],
        "--proton",
        small_dl2["proton"],
        "-o",
        tmp_path / "irfs",
    )
    assert result.returncode != 0
    assert str(small_dl2["proton"]) in result.stderr and "swapped" in result.stderr
    assert not (tmp_path / "irfs").exists()
    # diffuse gammas given as point gammas
    result = run_cli(
        "sst1m-make-irfs",
        "--gamma-point",
        small_dl2["gamma_diffuse"],
        "--proton",
        small_dl2["proton"],
        "-o",
        tmp_path / "irfs",
    )
    assert result.returncode != 0 and "viewcone" in result.stderr


def _radec_of(dl1_path, alt=70.0, az=180.0):
    time = read_table(dl1_path, "/dl1/event/subarray/trigger")["time"][0]
    location = EarthLocation(lon=14.782 * u.deg, lat=49.912 * u.deg, height=510 * u.m)
    return SkyCoord(
        alt=alt * u.deg, az=az * u.deg, frame=AltAz(obstime=time, location=location)
    ).icrs


def _real_dl2(raw, data_config, models, directory):
    """A real raw file through sst1m-process (pointing at alt 70, az 180) and sst1m-apply-models."""
    no_pointing = directory / "no_pointing.dl1.h5"
    assert (
        run_cli(
            "sst1m-process",
            "--input",
            raw,
            "--output",
            no_pointing,
            "--config",
            data_config,
        ).returncode
        == 0
    )
    source = _radec_of(no_pointing)
    dl1, dl2 = directory / "run.dl1.h5", directory / "run.dl2.h5"
    result = run_cli(
        "sst1m-process",
        "--input",
        raw,
        "--output",
        dl1,
        "--config",
        data_config,
        f"--SST1MEventSource.pointing_ra_deg={source.ra.deg}",
        f"--SST1MEventSource.pointing_dec_deg={source.dec.deg}",
    )
    assert result.returncode == 0, result.stderr
    result = run_cli(
        "sst1m-apply-models", "--input", dl1, "--models-dir", models, "--output", dl2
    )
    assert result.returncode == 0, result.stderr
    return dl2, source


def test_dl3_of_real_files(
    raw_2017, raw_2018, data_config, trained_models, irf_tree, tmp_path
):
    (tmp_path / "r2017").mkdir()
    (tmp_path / "r2018").mkdir()
    dl2, pointing = _real_dl2(raw_2017, data_config, trained_models, tmp_path / "r2017")
    dl3 = tmp_path / "dl3"
    result = run_cli(
        "sst1m-dl3",
        "--input",
        dl2,
        "--irf-dir",
        irf_tree,
        "--output-dir",
        dl3,
        "--cuts",
        "global",
        "--kind",
        "full-enclosure",
        "--source-name",
        "test",
        "--source-ra",
        pointing.ra.deg,
        "--source-dec",
        pointing.dec.deg - 0.4,
    )
    assert result.returncode == 0, result.stderr
    assert "gammapy checks" in result.stdout and "no problem" in result.stdout
    assert check_data_store(dl3) == []
    store = DataStore.from_dir(dl3)
    (obs_id,) = store.obs_table["OBS_ID"]
    observation = store.obs(obs_id)
    assert observation.aeff is not None and observation.psf is not None

    with TableLoader(dl2) as loader:
        events = loader.read_telescope_events([21], dl2=True)
    valid = np.asarray(events["mono_disp_tel_is_valid"]) & np.asarray(
        events["mono_regressor_tel_is_valid"]
    )
    valid &= np.asarray(events["mono_classifier_tel_is_valid"])
    table = observation.events.table
    # every valid event (gammaness >= 0), times exact to the microsecond on TAI
    assert len(table) == np.count_nonzero(valid) > 0
    expected_ns = np.sort(tai_ns(events["time"][valid]))
    dl3_times = Time(MJDREF.mjd, format="mjd", scale="tai") + u.Quantity(
        fits.getdata(next(dl3.glob("sst1m_*.fits.gz")), "EVENTS")["TIME"], u.s
    )
    np.testing.assert_allclose(
        (dl3_times.tai - Time(expected_ns / 1e9, format="unix_tai")).to_value(u.us),
        0,
        atol=1,
    )
    header = fits.getheader(next(dl3.glob("sst1m_*.fits.gz")), "EVENTS")
    assert header["TIMESYS"] == "TAI" and header["MJDREFI"] == 51910
    assert header["LIVETIME"] == pytest.approx(header["ONTIME"] * header["DEADC"])
    assert 0 < header["DEADC"] <= 1
    assert header["INSTRUME"] == "tel_021" and header["TELLIST"] == "21"
    assert header["RA_PNT"] == pytest.approx(pointing.ra.deg)
    assert header["ALTITUDE"] > 400  # metres
    assert observation.get_pointing_icrs(observation.tmid).separation(pointing) < (
        0.01 * u.deg
    )

    # DL2 without the pointing time series: named, exit status 2, nothing written
    broken = tmp_path / "no_pointing.dl2.h5"
    shutil.copy(dl2, broken)
    with tables.open_file(broken, "r+") as h5file:
        h5file.remove_node("/dl0/monitoring/telescope/pointing", recursive=True)
    result = run_cli(
        "sst1m-dl3",
        "--input",
        broken,
        "--irf-dir",
        irf_tree,
        "--output-dir",
        tmp_path / "no_pointing",
        "--cuts",
        "global",
    )
    assert result.returncode == 2
    assert "no pointing time series" in result.stderr and str(broken) in result.stderr
    assert not (tmp_path / "no_pointing").exists()

    # the 2018 file (telescope 22) goes to DL3 too: a data store of one event
    dl2_2018, _ = _real_dl2(raw_2018, data_config, trained_models, tmp_path / "r2018")
    dl3_2018 = tmp_path / "dl3_2018"
    result = run_cli(
        "sst1m-dl3",
        "--input",
        dl2_2018,
        "--irf-dir",
        irf_tree,
        "--output-dir",
        dl3_2018,
        "--cuts",
        "global",
        "--kind",
        "full-enclosure",
    )
    assert result.returncode == 0, result.stderr
    assert check_data_store(dl3_2018) == []
    header = fits.getheader(next(dl3_2018.glob("sst1m_*.fits.gz")), "EVENTS")
    assert header["INSTRUME"] == "tel_022" and header["EV_COUNT"] >= 1

    # cuts that no event passes: the reason, no DL3 file, exit status 1
    (irf,) = find_irf_files(irf_tree, "tel_022", "global", "full-enclosure")
    strict = tmp_path / "strict" / irf.path.name
    strict.parent.mkdir()
    with fits.open(irf.path) as hdul:
        hdul["GH_CUTS"].data["cut"] = 2.0
        hdul.writeto(strict)
    empty = tmp_path / "dl3_empty"
    result = run_cli(
        "sst1m-dl3",
        "--input",
        dl2_2018,
        "--irf-dir",
        strict,
        "--output-dir",
        empty,
        "--cuts",
        "global",
        "--kind",
        "full-enclosure",
    )
    assert result.returncode == 1
    assert "no event passes the cuts" in result.stderr
    assert not list(empty.glob("*.fits.gz"))


def _dl3(dl2, irf_tree, output, *options):
    return run_cli(
        "sst1m-dl3",
        "--input",
        dl2,
        "--irf-dir",
        irf_tree,
        "--output-dir",
        output,
        "--source-name",
        "simulated",
        *options,
    )


def test_dl3_stereo_point_like(simulated_stereo_run, irf_tree, tmp_path):
    dl3 = tmp_path / "stereo"
    result = _dl3(simulated_stereo_run["dl2"], irf_tree, dl3)
    assert result.returncode == 0, result.stderr
    assert check_data_store(dl3) == []
    store = DataStore.from_dir(dl3)
    observations = store.get_observations(required_irf="point-like")
    (observation,) = observations
    assert observation.rad_max is not None

    # the events are those of the efficiency cuts of the IRF: recount from the DL2
    (irf,) = find_irf_files(irf_tree, "stereo", "efficiency", "point-like")
    with TableLoader(simulated_stereo_run["dl2"]) as loader:
        events = loader.read_subarray_events()
    passes = np.ones(len(events), bool)
    for kind in ("regressor", "disp", "classifier"):
        passes &= np.asarray(events[f"stereo_{kind}_is_valid"])
        passes &= np.all(np.asarray(events[f"stereo_{kind}_telescopes"]), axis=1)
    energy = events["stereo_regressor_energy"].quantity.to_value(u.TeV)
    edges = np.append(irf.gh_cuts["low"].to_value(u.TeV), irf.gh_cuts["high"][-1].value)
    index = np.searchsorted(edges, energy, side="right") - 1
    inside = (index >= 0) & (index < len(irf.gh_cuts))
    cut = np.full(len(events), np.inf)
    cut[inside] = np.asarray(irf.gh_cuts["cut"])[index[inside]]
    passes &= np.asarray(events["stereo_classifier_prediction"]) >= cut
    assert len(observation.events.table) == np.count_nonzero(passes) >= 3

    header = observation.events.table.meta
    assert header["N_TELS"] == 2 and header["TELLIST"] == "21,22"
    assert header["IRF_CHOI"] == "nearest" and header["IRF_NODE"] == NODE
    assert 0.9 < header["DEADC"] <= 1.0
    # the GTI covers the events, and the N events of a Poisson process N mean intervals
    times = observation.events.time
    assert observation.tstart < times.min() and times.max() < observation.tstop
    trigger_ns = np.sort(
        tai_ns(
            read_table(simulated_stereo_run["dl2"], "/dl1/event/subarray/trigger")[
                "time"
            ]
        )
    )
    n = len(trigger_ns)
    mean_interval_s = (trigger_ns[-1] - trigger_ns[0]) / (n - 1) / 1e9
    assert observation.observation_time_duration.to_value(u.s) == pytest.approx(
        n * mean_interval_s, rel=1e-6
    )
    pointing = fits.getdata(next(dl3.glob("sst1m_*.fits.gz")), "POINTING")
    assert len(pointing) >= 1 and np.all(np.abs(pointing["ALT_PNT"] - 70) < 0.5)


def test_dl3_index_of_several_directories(simulated_stereo_run, irf_tree, tmp_path):
    first, second = tmp_path / "night1", tmp_path / "night2"
    assert _dl3(simulated_stereo_run["dl2"], irf_tree, first).returncode == 0
    assert (
        _dl3(
            simulated_stereo_run["dl2"], irf_tree, second, "--cuts", "global"
        ).returncode
        == 0
    )
    # the same observation twice would clash: give the second night another obs_id
    path = next(second.glob("sst1m_*.fits.gz"))
    with fits.open(path, mode="update") as hdul:
        hdul["EVENTS"].header["OBS_ID"] = 7
    index = tmp_path / "all"
    result = run_cli("sst1m-dl3-index", "--input", tmp_path, "--output-dir", index)
    assert result.returncode == 0, result.stderr
    store = DataStore.from_dir(index)
    assert len(store.obs_table) == 2
    assert set(store.hdu_table["FILE_DIR"]) == {"../night1", "../night2"}
    assert len(store.get_observations(required_irf="point-like")) == 2


def test_dl3_refuses_foreign_irfs_and_far_nodes(
    simulated_stereo_run, irf_tree, tmp_path
):
    dl2 = simulated_stereo_run["dl2"]
    # IRFs made with other models
    foreign = tmp_path / "foreign"
    shutil.copytree(irf_tree, foreign)
    for path in foreign.rglob("irf_*.fits.gz"):
        with fits.open(path) as hdul:
            hdul[0].header["MODELSID"] = "0" * 64
            hdul.writeto(path, overwrite=True)
    result = _dl3(dl2, foreign, tmp_path / "out")
    assert result.returncode == 2
    assert "other stereo models" in result.stderr
    assert not (tmp_path / "out").exists()
    # a pointing farther than allowed from every node: refused, reported, no file
    result = _dl3(dl2, irf_tree, tmp_path / "far", "--DL3Tool.max_node_distance=0")
    assert result.returncode == 1
    assert "from the nearest IRF node" in result.stderr
    assert not list((tmp_path / "far").glob("*.fits.gz"))
    # a DL1 file (no DL2 of sst1m-apply-models)
    result = _dl3(simulated_stereo_run["stereo_dl1"], irf_tree, tmp_path / "dl1")
    assert result.returncode == 2 and "no models record" in result.stderr


def test_irf_interpolation_in_cos_zenith(simulated_stereo_run, irf_tree, tmp_path):
    """Two nodes around the pointing (zenith 20): the effective area between theirs."""
    (irf,) = find_irf_files(irf_tree, "stereo", "efficiency", "point-like")
    grid = tmp_path / "grid"
    for zenith, scale in ((10, 1.0), (30, 0.5)):
        node = node_name(zenith, 180, 80)
        path = grid / node / "stereo" / "efficiency" / irf.path.name
        path.parent.mkdir(parents=True)
        with fits.open(irf.path) as hdul:
            hdul[0].header["ZEN_PNT"] = zenith
            hdul[0].header["NODE"] = node
            hdul["EFFECTIVE AREA"].data["EFFAREA"] *= scale
            hdul.writeto(path)
    dl3 = tmp_path / "dl3"
    result = _dl3(simulated_stereo_run["dl2"], grid, dl3, "--irf-choice", "interpolate")
    assert result.returncode == 0, result.stderr
    path = next(dl3.glob("sst1m_*.fits.gz"))
    header = fits.getheader(path, "EVENTS")
    assert header["IRF_CHOI"] == "interpolated"
    cos = np.cos(np.deg2rad([10, header["ZEN_PNT"], 30]))
    weight = (cos[1] - cos[0]) / (cos[2] - cos[0])
    original = fits.getdata(irf.path, "EFFECTIVE AREA")["EFFAREA"][0]
    interpolated = fits.getdata(path, "EFFECTIVE AREA")["EFFAREA"][0]
    filled = original > 1
    # linear in cos(zenith) of log(A): A0 × 0.5**weight
    np.testing.assert_allclose(
        interpolated[filled], original[filled] * 0.5**weight, rtol=1e-3
    )
    assert IrfFile.read(irf.path).models_id == header["MODELSID"]


def test_analysis_of_our_dl3(simulated_stereo_run, irf_tree, tmp_path):
    """sst1m-dl3 (point-like and full-enclosure) → sst1m-analysis: the simulated source is seen."""
    source = _radec_of(simulated_stereo_run["stereo_dl1"], alt=70.4)
    stores = {}
    for kind in ("point-like", "full-enclosure"):
        stores[kind] = tmp_path / kind
        # the global cuts of irf_tree keep every valid event (gammaness >= 0)
        result = _dl3(
            simulated_stereo_run["dl2"],
            irf_tree,
            stores[kind],
            "--cuts",
            "global",
            "--kind",
            kind,
            "--source-ra",
            source.ra.deg,
            "--source-dec",
            source.dec.deg,
        )
        assert result.returncode == 0, result.stderr
    output = tmp_path / "analysis"
    result = run_cli(
        "sst1m-analysis",
        "--datastore",
        stores["point-like"],
        "--datastore-full-enclosure",
        stores["full-enclosure"],
        "--output-dir",
        output,
    )
    assert result.returncode == 0, result.stderr
    for name in ("theta2.png", "spectrum_counts.png", "sky_maps.png", "results.yaml"):
        assert (output / name).is_file()
    theta2 = QTable.read(output / "theta2.ecsv")
    # point gammas only: every ON count is excess, at the source
    assert theta2["excess"][0] > 10 and theta2["sqrt_ts"][0] > 3
