"""
sst1m-analysis on DataStores simulated with gammapy: θ², spectrum, sky maps, errors.

The test DataStores are made here, not by sst1m-dl3: analytic IRFs (the HESS effective
area parametrisation of gammapy, a Gaussian energy dispersion, a Gaussian PSF table, a
power-law background), events sampled by `gammapy.datasets.MapDatasetEventSampler` (a
point source with a known power law at 0.5 deg wobble offset, plus background), written
with `Observation.write` and indexed like the DL3 directories of the project. gammapy
cannot sample events with RAD_MAX point-like IRFs, so the point-like DataStore holds the
same events with point-like IRFs: the effective area times the PSF containment within
RAD_MAX (a constant 0.15 deg), the same energy dispersion and a RAD_MAX HDU, no PSF and
no background.

The 1D reduction predicts ~2 % more counts for the injected spectrum than the binned
sampler (0.02 deg pixels, 4 reconstructed-energy bins per decade), so the fitted
normalisation comes out ~1 σ low at 2 h (~3.5 % low in a 40 h check); the assertions
allow 3 σ.
"""

import shutil

import astropy.units as u
import numpy as np
import pytest
import yaml
from astropy.coordinates import EarthLocation, SkyCoord
from astropy.io import fits
from astropy.table import Table
from astropy.time import Time
from conftest import run_cli
from gammapy.data import DataStore, FixedPointingInfo, Observation
from gammapy.data.data_store import DataStoreMaker
from gammapy.datasets import MapDataset, MapDatasetEventSampler
from gammapy.irf import (
    PSF3D,
    Background2D,
    EffectiveAreaTable2D,
    EnergyDispersion2D,
    RadMax2D,
)
from gammapy.makers import MapDatasetMaker
from gammapy.maps import MapAxis, WcsGeom
from gammapy.modeling.models import (
    FoVBackgroundModel,
    Models,
    PointSpatialModel,
    PowerLawSpectralModel,
    SkyModel,
)

from ctapipe_sst1m.analysis.observations import (
    AnalysisInputError,
    resolve_target,
    select_observations,
    wobble_offsets,
)
from ctapipe_sst1m.analysis.output import OUTPUT_FILES
from ctapipe_sst1m.analysis.regions import OverlappingRegionsError, max_region_radius
from ctapipe_sst1m.analysis.theta2 import theta2_axis, usable_theta2_max

TARGET = SkyCoord(83.633, 22.0145, unit="deg")
WOBBLE_OFFSET = 0.5 * u.deg
#: the injected spectrum
INDEX = 2.6
AMPLITUDE = 4e-11 * u.Unit("cm-2 s-1 TeV-1")
PSF_SIGMA = 0.1 * u.deg
RAD_MAX = 0.15 * u.deg
#: observation id: position angle of the pointing around the target (deg)
WOBBLES = {100: 0.0, 101: 180.0}
LIVETIME = 1.0 * u.h
LOCATION = EarthLocation(lon=14.78 * u.deg, lat=49.91 * u.deg, height=510 * u.m)
REFERENCE_TIME = Time("2025-01-01T00:00:00", scale="tai")
HDU_TYPES = {
    "AEFF_2D": "aeff",
    "EDISP_2D": "edisp",
    "PSF_TABLE": "psf",
    "BKG_2D": "bkg",
    "RAD_MAX_2D": "rad_max",
}


def analytic_irfs():
    """Full-enclosure IRFs (dict for `Observation.create`) and the RAD_MAX table."""
    energy_true = MapAxis.from_energy_bounds(
        0.03, 300, 10, per_decade=True, unit="TeV", name="energy_true"
    )
    energy = MapAxis.from_energy_bounds(
        0.03, 300, 5, per_decade=True, unit="TeV", name="energy"
    )
    offset = MapAxis.from_bounds(0, 5, 5, unit="deg", name="offset")
    parametrised = EffectiveAreaTable2D.from_parametrization(energy_true, "HESS")
    aeff = EffectiveAreaTable2D(
        axes=[energy_true, offset],
        data=parametrised.data * np.ones(offset.nbin),
        unit=parametrised.unit,
        meta={"TELESCOP": "SST1M", "INSTRUME": "SST1M"},
    )
    migra = MapAxis.from_bounds(0.2, 5, 60, interp="log", name="migra")
    edisp = EnergyDispersion2D.from_gauss(
        energy_true, migra, offset, bias=0, sigma=0.15
    )
    rad = MapAxis.from_bounds(0, 1, 100, unit="deg", name="rad")
    gauss = np.exp(-0.5 * (rad.center / PSF_SIGMA) ** 2) / (2 * np.pi * PSF_SIGMA**2)
    psf = PSF3D(
        axes=[energy_true, offset, rad],
        data=np.ones((energy_true.nbin, offset.nbin, 1)) * gauss.to_value("sr-1"),
        unit="sr-1",
    )
    rate = 1e-5 * energy.center.to_value(u.TeV) ** -2.7
    bkg = Background2D(
        axes=[energy, offset],
        data=rate[:, np.newaxis] * np.ones(offset.nbin),
        unit="s-1 MeV-1 sr-1",
    )
    rad_max = RadMax2D(
        axes=[energy, offset.squash()],
        data=np.full((energy.nbin, 1), RAD_MAX.to_value(u.deg)),
        unit="deg",
    )
    return {"aeff": aeff, "edisp": edisp, "psf": psf, "bkg": bkg}, rad_max


def sample_observation(obs_id, position_angle, irfs, with_source, seed):
    """One wobble observation with events sampled from the IRFs and the models."""
    pointing = TARGET.directional_offset_by(position_angle * u.deg, WOBBLE_OFFSET)
    observation = Observation.create(
        pointing=FixedPointingInfo(fixed_icrs=pointing.icrs),
        location=LOCATION,
        obs_id=obs_id,
        tstart=REFERENCE_TIME + (obs_id - 100) * 2 * u.h,
        livetime=LIVETIME,
        irfs=irfs,
        reference_time=REFERENCE_TIME,
        deadtime_fraction=0.05,
    )
    energy = MapAxis.from_energy_bounds(
        0.1, 100, 4, per_decade=True, unit="TeV", name="energy"
    )
    geom = WcsGeom.create(
        skydir=pointing, width=(4.5, 4.5), binsz=0.02, frame="icrs", axes=[energy]
    )
    empty = MapDataset.create(
        geom,
        energy_axis_true=irfs["aeff"].axes["energy_true"],
        migra_axis=irfs["edisp"].axes["migra"],
        name=f"obs_{obs_id}",
    )
    maker = MapDatasetMaker(selection=["exposure", "background", "psf", "edisp"])
    dataset = maker.run(empty, observation)
    models = [FoVBackgroundModel(dataset_name=dataset.name)]
    if with_source:
        spectral = PowerLawSpectralModel(index=INDEX, amplitude=AMPLITUDE)
        spatial = PointSpatialModel.from_position(TARGET)
        models.append(SkyModel(spectral, spatial, name="Crab"))
    dataset.models = Models(models)
    events = MapDatasetEventSampler(random_state=seed).run(dataset, observation)
    events.table.meta.update(
        OBJECT="Crab", RA_OBJ=TARGET.ra.deg, DEC_OBJ=TARGET.dec.deg
    )
    observation._events = events
    return observation


def write_index(directory):
    """hdu-index.fits.gz (one row per HDU, relative FILE_DIR) and obs-index.fits.gz."""
    paths = sorted(directory.glob("sst1m_stereo_*.fits.gz"))
    rows = []
    for path in paths:
        with fits.open(path) as hdus:
            obs_id = hdus["EVENTS"].header["OBS_ID"]
            rows += [
                (obs_id, "events", "events", ".", path.name, "EVENTS"),
                (obs_id, "gti", "gti", ".", path.name, "GTI"),
            ]
            for hdu in hdus[3:]:
                hdu_class = hdu.header["HDUCLAS4"]
                rows.append(
                    (
                        obs_id,
                        HDU_TYPES[hdu_class],
                        hdu_class.lower(),
                        ".",
                        path.name,
                        hdu.name,
                    )
                )
    names = ["OBS_ID", "HDU_TYPE", "HDU_CLASS", "FILE_DIR", "FILE_NAME", "HDU_NAME"]
    table = Table(rows=rows, names=names)
    table.meta.update(HDUCLASS="GADF", HDUCLAS1="INDEX", HDUCLAS2="HDU")
    table.write(directory / "hdu-index.fits.gz")
    DataStoreMaker(paths).make_obs_table().write(directory / "obs-index.fits.gz")


def make_stores(directory, with_source, seed):
    """A full-enclosure and a point-like DataStore of the same sampled events."""
    irfs, rad_max = analytic_irfs()
    aeff, edisp = irfs["aeff"], irfs["edisp"]
    energy_true, offset = aeff.axes["energy_true"], aeff.axes["offset"]
    containment = irfs["psf"].containment(
        rad=RAD_MAX,
        energy_true=energy_true.center[:, np.newaxis],
        offset=offset.center,
    )
    point_like_irfs = [
        EffectiveAreaTable2D(
            axes=aeff.axes,
            data=aeff.quantity * containment,
            is_pointlike=True,
            meta=aeff.meta,
        ),
        EnergyDispersion2D(axes=edisp.axes, data=edisp.data, is_pointlike=True),
        rad_max,
    ]
    stores = {"full": directory / "full", "point": directory / "point"}
    for store in stores.values():
        store.mkdir()
    for n, (obs_id, position_angle) in enumerate(WOBBLES.items()):
        observation = sample_observation(
            obs_id, position_angle, irfs, with_source, seed + n
        )
        name = f"sst1m_stereo_{obs_id:08d}.fits.gz"
        observation.write(stores["full"] / name)
        with fits.open(stores["full"] / name) as hdus:
            point_like = [hdus["PRIMARY"], hdus["EVENTS"], hdus["GTI"]]
            point_like += [
                irf.to_table_hdu(format="gadf-dl3") for irf in point_like_irfs
            ]
            fits.HDUList(point_like).writeto(stores["point"] / name)
    for store in stores.values():
        write_index(store)
    return stores


@pytest.fixture(scope="module")
def source_stores(tmp_path_factory):
    """DataStores with the source and background."""
    return make_stores(tmp_path_factory.mktemp("dl3_source"), True, seed=1)


@pytest.fixture(scope="module")
def empty_stores(tmp_path_factory):
    """DataStores with background only."""
    return make_stores(tmp_path_factory.mktemp("dl3_background"), False, seed=11)


def run_analysis(output_dir, *options):
    """sst1m-analysis in this process; the results document when it succeeded."""
    result = run_cli("sst1m-analysis", "--output-dir", output_dir, *options)
    results = None
    if result.returncode == 0:
        results = yaml.safe_load((output_dir / "results.yaml").read_text())
    return result, results


@pytest.fixture(scope="module")
def point_like_run(source_stores, tmp_path_factory):
    """Point-like analysis, sky maps from the full-enclosure store."""
    output_dir = tmp_path_factory.mktemp("point_like_run") / "crab"
    return output_dir, *run_analysis(
        output_dir,
        "--datastore",
        source_stores["point"],
        "--datastore-full-enclosure",
        source_stores["full"],
    )


@pytest.fixture(scope="module")
def full_enclosure_run(source_stores, tmp_path_factory):
    """Full-enclosure analysis with a log-parabola fit."""
    output_dir = tmp_path_factory.mktemp("full_enclosure_run") / "crab"
    return output_dir, *run_analysis(
        output_dir,
        "--datastore",
        source_stores["full"],
        "--spectral-model",
        "log-parabola",
    )


def assert_map_finds_the_source(sky_map):
    """The map's peak at the target, > 10 σ, and a null distribution elsewhere."""
    peak = SkyCoord(
        sky_map["max_significance_ra_deg"],
        sky_map["max_significance_dec_deg"],
        unit="deg",
    )
    assert peak.separation(TARGET) < 0.05 * u.deg
    assert sky_map["significance_at_target"] > 10
    assert abs(sky_map["off_significance_mean"]) < 0.3
    assert 0.8 < sky_map["off_significance_std"] < 1.3


def within(parameter, expected, n_sigma=3):
    """Whether a fitted parameter of the results is within n σ of the expected value."""
    return abs(parameter["value"] - expected) < n_sigma * parameter["error"]


def test_point_like_analysis_recovers_the_source(point_like_run):
    output_dir, result, results = point_like_run
    assert result.returncode == 0, result.stderr
    assert results["irf_kind"] == "point-like"
    assert results["target"]["name"] == "Crab"
    assert [o["obs_id"] for o in results["observations"]] == list(WOBBLES)
    for observation in results["observations"]:
        assert observation["wobble_offset_deg"] == pytest.approx(0.5, abs=1e-6)
    theta2 = results["theta2"]
    assert theta2["theta_cut_deg"] == pytest.approx(RAD_MAX.to_value(u.deg))
    assert theta2["theta_cut_source"] == "RAD_MAX at 1 TeV"
    assert theta2["alpha"] == pytest.approx(1 / 3)
    assert theta2["significance"] > 10
    spectrum = results["spectrum"]
    assert spectrum["fit_success"]
    assert spectrum["li_ma_significance"] > 10
    assert spectrum["ts"] > 100
    assert within(spectrum["parameters"]["index"], INDEX)
    assert within(spectrum["parameters"]["amplitude"], AMPLITUDE.value)
    assert spectrum["parameters"]["amplitude"]["unit"] == "1 / (TeV s cm2)"
    # the excess is at the target: the θ² table (0.11 deg² at the 0.5 deg wobble, 3
    # OFF regions) holds it as the Gaussian PSF does, 1 - exp(-θ²/2σ²): 95 % below
    # 0.06 deg², and none in the last bins
    table = Table.read(output_dir / "theta2.ecsv")
    assert theta2["theta2_max_deg2"] == pytest.approx(0.11)
    assert table["theta2_max"][-1] == pytest.approx(0.11)
    inner = table["theta2_max"] <= 0.06
    assert table["excess"][inner].sum() > 0.9 * table["excess"].sum()
    assert np.all(np.abs(table["sqrt_ts"][-3:]) < 3)
    sky_map = results["sky_map"]
    assert sky_map["made"]
    assert_map_finds_the_source(sky_map)
    assert sky_map["acceptance"] == "background-irf"
    assert sky_map["pixels_without_background"] == 0


def test_sky_maps_without_background_counts(source_stores, tmp_path):
    """
    A background IRF that predicts no count (few simulated protons): the ring's
    acceptance falls back on the exposure, and the map finds the source as well.
    """
    store = tmp_path / "zero_background"
    shutil.copytree(source_stores["full"], store)
    for path in store.glob("sst1m_stereo_*.fits.gz"):
        with fits.open(path) as hdus:
            hdus["BACKGROUND"].data["BKG"][:] = 0
            hdus.writeto(path, overwrite=True)
    output_dir = tmp_path / "crab"
    result, results = run_analysis(output_dir, "--datastore", store)
    assert result.returncode == 0, result.stderr
    sky_map = results["sky_map"]
    assert sky_map["acceptance"] == "exposure"
    assert sky_map["pixels_without_background"] == 0
    assert_map_finds_the_source(sky_map)


def test_outputs_are_written(point_like_run):
    output_dir, result, _ = point_like_run
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in output_dir.iterdir()) == sorted(OUTPUT_FILES)
    for name in OUTPUT_FILES:
        assert (output_dir / name).stat().st_size > 0, name
    for name in ("theta2.png", "spectrum_sed.png", "sky_maps.png"):
        assert (output_dir / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    points = Table.read(output_dir / "flux_points.ecsv")
    assert {"e_ref", "dnde", "dnde_err", "dnde_ul", "sqrt_ts"} <= set(points.colnames)
    detected = points["sqrt_ts"] > 5
    assert detected.sum() >= 3
    with fits.open(output_dir / "sky_maps.fits") as hdus:
        names = [hdu.name for hdu in hdus[1:]]
        assert names == ["SIGNIFICANCE", "EXCESS", "COUNTS", "BACKGROUND", "EXCLUSION"]
        assert hdus["SIGNIFICANCE"].data.shape == (150, 150)
    assert "sst1m-analysis finished" in result.stdout
    assert not list(output_dir.parent.glob("*.part"))


def test_full_enclosure_analysis_with_log_parabola(full_enclosure_run):
    output_dir, result, results = full_enclosure_run
    assert result.returncode == 0, result.stderr
    assert results["irf_kind"] == "full-enclosure"
    theta2 = results["theta2"]
    # the θ cut of a full-enclosure store is the ON radius of the spectrum
    assert theta2["theta_cut_deg"] == pytest.approx(0.2)
    assert theta2["theta_cut_source"] == "--on-radius-deg"
    assert theta2["significance"] > 10
    spectrum = results["spectrum"]
    assert spectrum["model"] == "log-parabola"
    assert spectrum["containment_correction"]
    assert spectrum["fit_success"]
    parameters = spectrum["parameters"]
    # a power law is a log-parabola with beta = 0 and alpha = index
    assert within(parameters["alpha"], INDEX)
    assert within(parameters["beta"], 0.0)
    assert within(parameters["amplitude"], AMPLITUDE.value)
    assert results["sky_map"]["made"]
    assert results["sky_map"]["datastore"] == results["datastore"]
    assert (output_dir / "sky_maps.fits").is_file()


def test_no_source_is_not_detected(empty_stores, tmp_path):
    """Background only, one observation, no sky map without a full-enclosure store."""
    output_dir = tmp_path / "empty"
    result, results = run_analysis(
        output_dir, "--datastore", empty_stores["point"], "--obs-id", "101"
    )
    assert result.returncode == 0, result.stderr
    assert [o["obs_id"] for o in results["observations"]] == [101]
    assert abs(results["theta2"]["significance"]) < 3
    assert abs(results["spectrum"]["li_ma_significance"]) < 3
    assert not results["sky_map"]["made"]
    assert "--datastore-full-enclosure" in results["sky_map"]["reason"]
    assert not (output_dir / "sky_maps.fits").exists()
    assert not (output_dir / "sky_maps.png").exists()


@pytest.mark.parametrize(
    ("options", "what"),
    [
        # the θ² ON region (RAD_MAX 0.15 deg) is too wide for 10 OFF regions at 0.5 deg
        (["--n-off-regions", "10"], "θ cut, RAD_MAX at 1 TeV"),
        # the θ² cut passes, the spectrum's RAD_MAX does not (gammapy masks all counts)
        (["--n-off-regions", "10", "--theta-cut-deg", "0.1"], "largest RAD_MAX"),
    ],
)
def test_overlapping_regions_are_refused(source_stores, tmp_path, options, what):
    output_dir = tmp_path / "out"
    result, _ = run_analysis(
        output_dir, "--datastore", source_stores["point"], *options
    )
    assert result.returncode == 1
    assert "overlap at the wobble offset 0.500 deg" in result.stderr
    assert "radius 0.150 deg" in result.stderr
    assert "10 OFF region(s)" in result.stderr
    assert what in result.stderr
    assert not output_dir.exists()
    assert not list(tmp_path.glob("*.part"))


def test_full_enclosure_on_region_wider_than_the_offset(source_stores, tmp_path):
    output_dir = tmp_path / "out"
    result, _ = run_analysis(
        output_dir,
        "--datastore",
        source_stores["full"],
        "--on-radius-deg",
        "0.6",
        "--theta-cut-deg",
        "0.1",
    )
    assert result.returncode == 1
    assert "no OFF region fits outside the ON region of radius 0.600 deg" in (
        result.stderr
    )
    assert not output_dir.exists()


def test_bad_inputs_are_refused(source_stores, tmp_path):
    output_dir = tmp_path / "out"
    missing = tmp_path / "missing"
    result, _ = run_analysis(output_dir, "--datastore", missing)
    assert result.returncode == 1
    assert f"DataStore directory {missing} does not exist" in result.stderr
    no_index = tmp_path / "no_index"
    no_index.mkdir()
    result, _ = run_analysis(output_dir, "--datastore", no_index)
    assert result.returncode == 1
    assert "hdu-index.fits.gz and obs-index.fits.gz missing" in result.stderr
    result, _ = run_analysis(
        output_dir, "--datastore", source_stores["point"], "--obs-id", "999"
    )
    assert result.returncode == 1
    assert "observation(s) 999 not in the DataStore" in result.stderr
    empty = tmp_path / "empty"
    shutil.copytree(source_stores["point"], empty)
    Table.read(empty / "obs-index.fits.gz")[:0].write(
        empty / "obs-index.fits.gz", overwrite=True
    )
    result, _ = run_analysis(output_dir, "--datastore", empty)
    assert result.returncode == 1
    assert "no observation selected" in result.stderr
    broken = tmp_path / "broken"
    shutil.copytree(source_stores["point"], broken)
    (broken / "sst1m_stereo_00000101.fits.gz").unlink()
    result, _ = run_analysis(output_dir, "--datastore", broken)
    assert result.returncode == 1
    assert "sst1m_stereo_00000101.fits.gz" in result.stderr
    assert "missing" in result.stderr
    result, _ = run_analysis(
        output_dir,
        "--datastore",
        source_stores["point"],
        "--datastore-full-enclosure",
        source_stores["point"],
    )
    assert result.returncode == 1
    assert "has point-like IRFs" in result.stderr
    result, _ = run_analysis(
        output_dir, "--datastore", source_stores["point"], "--target-ra", "83.6"
    )
    assert result.returncode == 2
    assert "give both --target-ra and --target-dec" in result.stderr
    result, _ = run_analysis(
        output_dir,
        "--datastore",
        source_stores["full"],
        "--AnalysisTool.map_acceptance=flat",
    )
    assert result.returncode != 0
    assert "map_acceptance" in result.stderr
    assert "flat" in result.stderr
    assert not output_dir.exists()


def test_targets_of_the_observations_must_agree(source_stores, tmp_path):
    store = tmp_path / "two_targets"
    shutil.copytree(source_stores["point"], store)
    with fits.open(store / "sst1m_stereo_00000101.fits.gz", mode="update") as hdus:
        hdus["EVENTS"].header["RA_OBJ"] += 1.0
    observations = select_observations(DataStore.from_dir(store))
    with pytest.raises(AnalysisInputError, match="different targets"):
        resolve_target(observations)
    target = resolve_target(observations, 83.633, 22.0145)
    assert target.position.separation(TARGET) < 1 * u.arcsec
    assert target.name == "Crab"
    offsets = wobble_offsets(observations, target.position)
    assert offsets.to_value(u.deg) == pytest.approx([0.5, 0.5])


def test_region_limits():
    offset = 0.5 * u.deg
    assert max_region_radius(offset, 1).to_value(u.deg) == pytest.approx(0.5)
    assert max_region_radius(offset, 3).to_value(u.deg) == pytest.approx(
        0.5 * np.sqrt(0.5)
    )
    bin_width = 0.01 * u.deg**2
    # at 0.5 deg with 3 OFF regions: (0.354 - 0.01 deg)² = 0.118 deg² → 0.11 deg²
    usable = usable_theta2_max(
        u.Quantity([0.6, 0.5], u.deg), 3, 0.3 * u.deg**2, bin_width
    )
    assert usable.to_value(u.deg**2) == pytest.approx(0.11)
    wanted = 0.05 * u.deg**2
    assert usable_theta2_max(offset[np.newaxis], 3, wanted, bin_width) == wanted
    with pytest.raises(OverlappingRegionsError, match="not even one θ² bin"):
        usable_theta2_max(u.Quantity([0.1], u.deg), 3, wanted, bin_width)
    axis = theta2_axis(0.11 * u.deg**2, bin_width)
    assert axis.nbin == 11
    assert axis.edges[-1].to_value(u.deg**2) == pytest.approx(0.11)
