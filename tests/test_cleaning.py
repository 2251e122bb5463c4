"""ImageCleanerSST and its cleaning function."""

import subprocess
import sys

import numpy as np
import pytest
from conftest import run_cli
from ctapipe.containers import CameraMonitoringContainer, ChunkStatisticsContainer
from ctapipe.image.cleaning import apply_time_delta_cleaning, tailcuts_clean
from ctapipe.io import read_table

from ctapipe_sst1m import ImageCleanerSST
from ctapipe_sst1m.image.cleaning import CleaningParameters, sst_clean
from ctapipe_sst1m.instrument import digicam_geometry, sst1m_subarray

GEOMETRY = digicam_geometry()
PARAMETERS = CleaningParameters(
    min_nsb_level=0,
    stdev_scaling=2.5,
    picture_threshold_pe=8,
    boundary_threshold_pe=4,
    min_picture_neighbors=2,
    keep_isolated=False,
    min_time_neighbors=1,
    time_limit_ns=8,
    only_main_island=False,
)


def cluster(center, n=3):
    """A pixel and n - 1 of its neighbours."""
    return [center] + list(GEOMETRY.neighbors[center][: n - 1])


def test_static_thresholds():
    image = np.zeros(1296)
    times = np.full(1296, 20.0)
    pixels = cluster(600)
    image[pixels] = 10.0
    mask, n_raised = sst_clean(GEOMETRY, image, times, PARAMETERS)
    assert np.flatnonzero(mask).tolist() == sorted(pixels)
    assert n_raised == 0


def test_thresholds_raised_by_pedestal_noise():
    image = np.zeros(1296)
    times = np.full(1296, 20.0)
    pixels = cluster(600)
    image[pixels] = 10.0
    mean = np.full(1296, 3.0)
    std = np.full(1296, 1.0)
    # 3 + 2.5 * 1 = 5.5 < 8: nothing raised
    mask, n_raised = sst_clean(GEOMETRY, image, times, PARAMETERS, mean, std)
    assert mask.sum() == 3 and n_raised == 0
    # noisier pixel 600: threshold 3 + 2.5 * 3 = 10.5 > 10: pixel 600 is no picture pixel
    std[600] = 3.0
    mask, n_raised = sst_clean(GEOMETRY, image, times, PARAMETERS, mean, std)
    assert n_raised == 1
    # pixel 600 is no picture pixel any more, so its neighbours lack picture neighbours
    assert not mask.any()


def test_time_cleaning():
    image = np.zeros(1296)
    pixels = cluster(600, 4)
    image[pixels] = 20.0
    times = np.full(1296, 20.0)
    times[pixels[-1]] = 60.0  # 40 ns off its selected neighbours
    mask, _ = sst_clean(GEOMETRY, image, times, PARAMETERS)
    assert not mask[pixels[-1]]
    assert mask[pixels[:-1]].all()


def test_only_main_island():
    image = np.zeros(1296)
    big, small = cluster(600, 5), cluster(100, 3)
    image[big] = 20.0
    image[small] = 20.0
    times = np.full(1296, 20.0)
    mask, _ = sst_clean(GEOMETRY, image, times, PARAMETERS)
    assert mask.sum() == 8
    parameters = CleaningParameters(**{**PARAMETERS.__dict__, "only_main_island": True})
    mask, _ = sst_clean(GEOMETRY, image, times, parameters)
    assert np.flatnonzero(mask).tolist() == sorted(big)


def test_parameter_set_by_nsb_level():
    cleaner = ImageCleanerSST(subarray=sst1m_subarray())
    assert cleaner.parameters_for(21, 0.0).picture_threshold_pe == 7
    assert cleaner.parameters_for(21, 2.5).boundary_threshold_pe == 4
    assert cleaner.parameters_for(21, 2.5).min_nsb_level == 2.3526
    assert cleaner.parameters_for(22, 10.0).min_nsb_level == 3.2747
    assert cleaner.parameters_for(21, -1.0).min_nsb_level == 0


def test_cleaner_reads_monitoring():
    subarray = sst1m_subarray()
    cleaner = ImageCleanerSST(subarray=subarray)
    image = np.zeros(1296)
    image[cluster(600)] = 10.0
    times = np.full(1296, 20.0)
    monitoring = CameraMonitoringContainer()
    monitoring.pixel_statistics.pedestal_image = ChunkStatisticsContainer(
        mean=np.full((1, 1296), 3.0), std=np.full((1, 1296), 3.0), n_events=50
    )
    # NSB level 3 p.e. -> third set (picture 8); 3 + 7.5 = 10.5 > 10: nothing survives
    assert not cleaner(21, image, times, monitoring=monitoring).any()
    assert cleaner.raised_fraction_sum[21] == 1.0
    # without monitoring: static thresholds of the lowest set
    assert cleaner(21, image, times).sum() == 3


def test_unknown_parameter_is_an_error():
    from traitlets.config import Config

    config = Config(
        {"ImageCleanerSST": {"telescope_defaults": [["id", 21, [{"picture": 5}]]]}}
    )
    with pytest.raises(ValueError, match=r"telescope_defaults\[21\]"):
        ImageCleanerSST(subarray=sst1m_subarray(), config=config)


def test_registered_in_a_fresh_interpreter():
    """Importing ctapipe's process tool (any plugin detection) registers ImageCleanerSST."""
    code = (
        "import ctapipe.tools.process\n"
        "from ctapipe.image import ImageCleaner\n"
        "assert 'ImageCleanerSST' in ImageCleaner.non_abstract_subclasses()\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_cleaner_on_non_raw_input(raw_2018, data_config, tmp_path):
    """ctapipe-process on a ctapipe DL1 file (HDF5EventSource) with ImageCleanerSST selected."""
    dl1 = tmp_path / "dl1.h5"
    assert (
        run_cli(
            "ctapipe-process", "-i", raw_2018, "-o", dl1, "--config", data_config
        ).returncode
        == 0
    )
    output = tmp_path / "recleaned.h5"
    result = run_cli(
        "ctapipe-process",
        "-i",
        dl1,
        "-o",
        output,
        "--recompute-dl1",
        "--write-images",
        "--write-parameters",
        "--ImageProcessor.image_cleaner_type=ImageCleanerSST",
        "--ImageCleanerSST.use_pedestal_statistics=False",
    )
    assert result.returncode == 0, result.stderr
    assert len(read_table(output, "/dl1/event/telescope/parameters/tel_022")) == 30


def _ctapipe_cleaning(image, peak_time, parameters, picture):
    """The definition sst_clean follows: ctapipe's tail cuts, then its time cleaning."""
    mask = tailcuts_clean(
        GEOMETRY,
        image,
        picture_thresh=picture,
        boundary_thresh=parameters.boundary_threshold_pe,
        keep_isolated_pixels=parameters.keep_isolated,
        min_number_picture_neighbors=parameters.min_picture_neighbors,
    )
    if parameters.min_time_neighbors > 0 and mask.any():
        mask = apply_time_delta_cleaning(
            GEOMETRY,
            mask,
            peak_time,
            min_number_neighbors=parameters.min_time_neighbors,
            time_limit=parameters.time_limit_ns,
        )
    return mask


@pytest.mark.parametrize("keep_isolated", [False, True])
@pytest.mark.parametrize("min_picture_neighbors", [0, 2])
@pytest.mark.parametrize("min_time_neighbors", [0, 1, 2])
def test_same_masks_as_ctapipe_functions(
    keep_isolated, min_picture_neighbors, min_time_neighbors
):
    """The compiled cleaning selects exactly the pixels of ctapipe's functions."""
    rng = np.random.default_rng(min_time_neighbors + 3 * min_picture_neighbors)
    parameters = CleaningParameters(
        **{
            **PARAMETERS.__dict__,
            "keep_isolated": keep_isolated,
            "min_picture_neighbors": min_picture_neighbors,
            "min_time_neighbors": min_time_neighbors,
        }
    )
    n_selected = 0
    for _ in range(200):
        # NSB-like noise, a few bright blobs, times with a gradient and jitter
        image = rng.normal(0, 2, 1296).astype(np.float32)
        for center in rng.integers(0, 1296, 3):
            pixels = cluster(center, 7)
            image[pixels] += rng.exponential(15, len(pixels)).astype(np.float32)
        peak_time = (20 + rng.normal(0, 4, 1296)).astype(np.float32)
        mean = rng.normal(1, 0.3, 1296)
        std = rng.uniform(0.5, 4, 1296)
        mask, n_raised = sst_clean(GEOMETRY, image, peak_time, parameters, mean, std)
        picture = np.maximum(8.0, mean + 2.5 * std)
        expected = _ctapipe_cleaning(image, peak_time, parameters, picture)
        np.testing.assert_array_equal(mask, expected)
        assert n_raised == np.count_nonzero(mean + 2.5 * std > 8.0)
        n_selected += np.count_nonzero(mask)
    assert n_selected > 200
