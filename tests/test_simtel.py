"""
Real sim_telarray output: ctapipe-process with ``sst1m_mc.yaml`` on the DigiCam
telescope of a public sim_telarray file, and the DigiCam description written by
sim_telarray against the built-in instrument (``docs/instrument.md``).
"""

import astropy.units as u
import numpy as np
import pytest
from ctapipe.containers import EventType
from ctapipe.core import Tool, run_tool
from ctapipe.image.extractor import integration_correction
from ctapipe.instrument import ReflectorShape, SizeType
from ctapipe.io import SimTelEventSource, TableLoader, read_table
from ctapipe.io.monitoringtypes import MonitoringType
from ctapipe.tools.process import ProcessorTool

from ctapipe_sst1m import ImageCleanerSST, SST1MSimulationCorrections
from ctapipe_sst1m.image.cleaning import sst_clean
from ctapipe_sst1m.instrument import N_PIXELS, sst1m_telescope

#: the DigiCam telescope of the file (a prod3-style array, one telescope per camera type)
SIMTEL_TEL_ID = 6
#: pixel pitch (flat-to-flat centre distance) of the file's and the built-in DigiCam
SIMTEL_PITCH = 23.6 * u.mm
BUILTIN_PITCH = 24.3 * u.mm
#: agreement of the pixel positions after scaling the grid and matching the ids
POSITION_TOLERANCE = 0.01 * u.mm


def load_config(path):
    """The traitlets configuration of a ctapipe configuration file."""
    tool = Tool()
    tool.load_config_file(path)
    return tool.config


@pytest.fixture(scope="module")
def simtel_path(shared_dir):
    return shared_dir / "reference/simtel/calib_events.simtel.gz"


@pytest.fixture(scope="module")
def simtel_subarray(simtel_path):
    """The subarray of the file, tel 6 only (the file has no effective focal length)."""
    with SimTelEventSource(
        simtel_path, focal_length_choice="EQUIVALENT", allowed_tels=[SIMTEL_TEL_ID]
    ) as source:
        return source.subarray


@pytest.fixture(scope="module")
def simtel_telescope(simtel_subarray):
    return simtel_subarray.tel[SIMTEL_TEL_ID]


@pytest.fixture(scope="module")
def processed(simtel_path, mc_config, tmp_path_factory):
    """ctapipe-process run in-process on tel 6: the finished tool and its DL1 file."""
    directory = tmp_path_factory.mktemp("simtel")
    output = directory / "calib_events.dl1.h5"
    tool = ProcessorTool()
    argv = [
        f"--input={simtel_path}",
        f"--output={output}",
        f"--config={mc_config}",
        # properties of this test file: a calibration event (kept, gain-selected)
        # and no effective focal length
        "--SimTelEventSource.skip_calibration_events=False",
        "--SimTelEventSource.select_gain=True",
        "--SimTelEventSource.focal_length_choice=EQUIVALENT",
        f"--SimTelEventSource.allowed_tels={SIMTEL_TEL_ID}",
        "--DataWriter.write_dl1_images=True",
    ]
    assert run_tool(tool, argv=argv, cwd=directory) == 0
    return tool, output


def pixel_pitch(geometry):
    """Median distance of each pixel to its nearest pixel."""
    x, y = geometry.pix_x.to_value(u.mm), geometry.pix_y.to_value(u.mm)
    distance = np.hypot(x[:, np.newaxis] - x, y[:, np.newaxis] - y)
    np.fill_diagonal(distance, np.inf)
    return np.median(distance.min(axis=1)) * u.mm


def match_pixels(geometry, reference, scale=1.0, flip_y=False):
    """
    Nearest reference pixel of every pixel, the reference grid scaled by ``scale``.

    Parameters
    ----------
    geometry, reference : ctapipe.instrument.CameraGeometry
        Geometries to match.
    scale : float
        Factor applied to the reference positions.
    flip_y : bool
        Mirror ``geometry`` at its x axis before matching.

    Returns
    -------
    index : numpy.ndarray
        Reference pixel id of each pixel of ``geometry``.
    distance : astropy.units.Quantity
        Distance to it.
    """
    x = geometry.pix_x.to_value(u.mm)
    y = geometry.pix_y.to_value(u.mm) * (-1 if flip_y else 1)
    x_ref = reference.pix_x.to_value(u.mm) * scale
    y_ref = reference.pix_y.to_value(u.mm) * scale
    distance = np.hypot(x[:, np.newaxis] - x_ref, y[:, np.newaxis] - y_ref)
    index = distance.argmin(axis=1)
    return index, distance[np.arange(len(index)), index] * u.mm


def reversed_within_rows(geometry):
    """Pixel ids with the order reversed within each row of constant x."""
    row = np.round(geometry.pix_x.to_value(u.mm), 1)
    reversed_ids = np.empty(geometry.n_pixels, dtype=int)
    for row_x in np.unique(row):
        ids = np.flatnonzero(row == row_x)
        reversed_ids[ids] = ids[::-1]
    return reversed_ids


def hexagon_flat_to_flat(area):
    """Flat-to-flat size of a regular hexagon of the given area."""
    return np.sqrt(area / (np.sqrt(3) / 2)).to(u.mm)


def pulse_peak_and_fwhm(readout):
    """
    Peak time and full width at half maximum of a readout's reference pulse.

    Returns
    -------
    peak_time, fwhm : astropy.units.Quantity
        In ns, the half-maximum crossings linearly interpolated.
    """
    pulse = readout.reference_pulse_shape[0]
    step_ns = readout.reference_pulse_sample_width.to_value(u.ns)
    time = np.arange(pulse.size) * step_ns
    peak = pulse.argmax()
    half = pulse[peak] / 2
    rise = np.interp(half, pulse[: peak + 1], time[: peak + 1])
    fall = np.interp(half, pulse[peak:][::-1], time[peak:][::-1])
    return time[peak] * u.ns, (fall - rise) * u.ns


def config_integration_correction(readout, mc_config):
    """Integration correction of the LocalPeakWindowSum window of sst1m_mc.yaml."""
    window = load_config(mc_config).CameraCalibrator.LocalPeakWindowSum
    return integration_correction(
        readout.reference_pulse_shape,
        readout.reference_pulse_sample_width.to_value(u.ns),
        (1 / readout.sampling_rate).to_value(u.ns),
        window.window_width,
        window.window_shift,
    )[0]


# ------------------------------------------------------------------ ctapipe-process


def test_process_writes_tel_6_image(processed):
    _, output = processed
    trigger = read_table(output, "/dl1/event/subarray/trigger")
    assert len(trigger) == 1
    assert trigger["event_type"][0] == EventType.SKY_PEDESTAL.value
    with TableLoader(output, focal_length_choice="EQUIVALENT") as loader:
        events = loader.read_telescope_events(
            [SIMTEL_TEL_ID], dl1_images=True, dl1_parameters=True
        )
    assert len(events) == 1
    image = events["image"][0]
    assert image.shape == (N_PIXELS,)
    assert np.all(np.isfinite(image)) and np.all(np.isfinite(events["peak_time"][0]))
    # night-sky background only, in p.e. (ADC counts would be hundreds):
    # the peak-searching window sums 1.5 p.e. per pixel, 1.2 p.e. spread
    assert 0.5 < np.median(image) < 3 and 0.5 < np.std(image) < 3


def test_process_cleans_with_sst1m_cleaner(processed, simtel_subarray):
    tool, output = processed
    cleaner = tool.process_images.clean
    assert isinstance(cleaner, ImageCleanerSST)
    assert cleaner.n_images[SIMTEL_TEL_ID] == 1
    # tel 6 gets the SST_1M_* parameter set of sst1m_mc.yaml (static 8 / 4 p.e.)
    parameters = cleaner.parameters_for(SIMTEL_TEL_ID, nsb_level=0)
    assert parameters.picture_threshold_pe == 8
    assert parameters.boundary_threshold_pe == 4

    images = read_table(output, f"/dl1/event/telescope/images/tel_{SIMTEL_TEL_ID:03d}")
    image, peak_time = images["image"][0], images["peak_time"][0]
    geometry = simtel_subarray.tel[SIMTEL_TEL_ID].camera.geometry
    mask, _ = sst_clean(geometry, image, peak_time, parameters)
    np.testing.assert_array_equal(images["image_mask"][0], mask)
    # a pedestal event: a few pixels pass the boundary threshold, nothing survives
    assert np.count_nonzero(image > parameters.boundary_threshold_pe) > 0
    assert not images["image_mask"][0].any()


def test_simulation_corrections_of_other_telescope_ids(simtel_subarray, mc_config):
    corrections = SST1MSimulationCorrections(
        subarray=simtel_subarray, config=load_config(mc_config)
    )
    values = corrections.get_values(
        MonitoringType.CAMERA_COEFFICIENTS, time=None, tel_id=SIMTEL_TEL_ID
    )
    np.testing.assert_array_equal(values["factor"], np.ones((1, N_PIXELS)))
    assert not values["outlier_mask"].any()
    table = corrections.get_table(
        MonitoringType.CAMERA_COEFFICIENTS, tel_id=SIMTEL_TEL_ID
    )
    assert len(table) == 1 and table["factor"].shape == (1, 1, N_PIXELS)
    with pytest.raises(KeyError):
        corrections.get_values(
            MonitoringType.PIXEL_STATISTICS, time=None, tel_id=SIMTEL_TEL_ID
        )


# ------------------------------------------------------------------ camera geometry


def test_pixel_grid_is_scaled_built_in_grid(simtel_telescope):
    geometry = simtel_telescope.camera.geometry
    builtin = sst1m_telescope().camera.geometry
    assert geometry.n_pixels == builtin.n_pixels == N_PIXELS
    assert u.isclose(pixel_pitch(geometry), SIMTEL_PITCH, atol=0.01 * u.mm)
    assert u.isclose(pixel_pitch(builtin), BUILTIN_PITCH, atol=0.01 * u.mm)

    scale = (SIMTEL_PITCH / BUILTIN_PITCH).to_value(u.one)
    index, distance = match_pixels(geometry, builtin, scale)
    assert len(np.unique(index)) == N_PIXELS
    assert distance.max() < POSITION_TOLERANCE
    # unscaled, the outer pixels are 14.4 mm apart (2.9 % of the 0.5 m radius)
    offset = np.hypot(
        geometry.pix_x - builtin.pix_x[index], geometry.pix_y - builtin.pix_y[index]
    )
    assert 14 * u.mm < offset.max() < 15 * u.mm
    # no mirror image: flipping y does not map the grid onto itself
    _, flipped_distance = match_pixels(geometry, builtin, scale, flip_y=True)
    assert flipped_distance.max() > SIMTEL_PITCH / 2


def test_pixel_ids_reversed_within_rows(simtel_telescope):
    geometry = simtel_telescope.camera.geometry
    builtin = sst1m_telescope().camera.geometry
    np.testing.assert_array_equal(geometry.pix_id, np.arange(N_PIXELS))
    scale = (SIMTEL_PITCH / BUILTIN_PITCH).to_value(u.one)
    index, _ = match_pixels(geometry, builtin, scale)
    np.testing.assert_array_equal(index, reversed_within_rows(builtin))
    # only the centre pixels of the 12 rows with an odd pixel count keep their id
    assert np.count_nonzero(index == np.arange(N_PIXELS)) == 12


def test_neighbours_identical_after_mapping(simtel_telescope):
    geometry = simtel_telescope.camera.geometry
    builtin = sst1m_telescope().camera.geometry
    index = reversed_within_rows(builtin)
    assert np.count_nonzero(geometry.neighbor_matrix) == 2 * 3744
    np.testing.assert_array_equal(
        geometry.neighbor_matrix, builtin.neighbor_matrix[np.ix_(index, index)]
    )


def test_pixel_shape_and_rotations(simtel_telescope):
    geometry = simtel_telescope.camera.geometry
    builtin = sst1m_telescope().camera.geometry
    assert geometry.pix_type == builtin.pix_type
    assert u.isclose(geometry.pix_rotation, builtin.pix_rotation)
    assert u.isclose(geometry.cam_rotation, builtin.cam_rotation)
    # light-sensitive hexagons: 23.2 mm flat-to-flat in the file, 23.3 mm built in
    assert np.ptp(geometry.pix_area) == 0
    flat_to_flat = hexagon_flat_to_flat(geometry.pix_area[0])
    builtin_flat_to_flat = hexagon_flat_to_flat(builtin.pix_area[0])
    assert u.isclose(flat_to_flat, 23.2 * u.mm, atol=0.01 * u.mm)
    assert u.isclose(builtin_flat_to_flat, 23.3 * u.mm, atol=0.01 * u.mm)


# ------------------------------------------------------------------ readout


def test_readout_sampling(simtel_telescope):
    readout = simtel_telescope.camera.readout
    builtin = sst1m_telescope().camera.readout
    assert u.isclose(readout.sampling_rate, builtin.sampling_rate)
    assert readout.n_samples == builtin.n_samples == 50
    assert readout.n_channels == builtin.n_channels == 1
    assert readout.n_pixels == builtin.n_pixels == N_PIXELS


def test_reference_pulse_shape(simtel_telescope, mc_config):
    readout = simtel_telescope.camera.readout
    builtin = sst1m_telescope().camera.readout
    # file: 750 points at 0.4 ns (300 ns); built in: 1520 points at 0.1 ns (152 ns)
    assert u.isclose(readout.reference_pulse_sample_width, 0.4 * u.ns)
    assert readout.reference_pulse_shape.shape == (1, 750)
    assert u.isclose(builtin.reference_pulse_sample_width, 0.1 * u.ns)
    assert builtin.reference_pulse_shape.shape == (1, 1520)

    peak_time, fwhm = pulse_peak_and_fwhm(readout)
    builtin_peak_time, builtin_fwhm = pulse_peak_and_fwhm(builtin)
    assert u.isclose(peak_time, 18.0 * u.ns, atol=0.1 * u.ns)
    assert u.isclose(builtin_peak_time, 27.5 * u.ns, atol=0.1 * u.ns)
    assert u.isclose(fwhm, 11.9 * u.ns, atol=0.1 * u.ns)
    assert u.isclose(builtin_fwhm, 14.9 * u.ns, atol=0.1 * u.ns)

    # the file's pulse has a long tail (no undershoot): 18.5 % of its area lies
    # after the 7-sample window, so charges need a 24 % larger correction
    correction = config_integration_correction(readout, mc_config)
    builtin_correction = config_integration_correction(builtin, mc_config)
    assert correction == pytest.approx(1.261, abs=0.002)
    assert builtin_correction == pytest.approx(1.018, abs=0.002)
    assert readout.reference_pulse_shape.min() == 0
    assert builtin.reference_pulse_shape.min() < -0.01


# ------------------------------------------------------------------ optics


def test_optics(simtel_telescope):
    optics = simtel_telescope.optics
    builtin = sst1m_telescope().optics
    # same type string (``SST_1M_*`` patterns match), yet different descriptions:
    # models keyed by the built-in description have no entry for this telescope
    assert str(simtel_telescope) == str(sst1m_telescope()) == "SST_1M_DigiCam"
    assert simtel_telescope != sst1m_telescope()
    assert optics.name == builtin.name == "1M"
    assert optics.size_type == builtin.size_type == SizeType.SST
    assert optics.reflector_shape == builtin.reflector_shape
    assert optics.reflector_shape == ReflectorShape.DAVIES_COTTON
    assert optics.n_mirrors == builtin.n_mirrors == 1
    assert optics.n_mirror_tiles == builtin.n_mirror_tiles == 18
    assert u.isclose(optics.mirror_area, builtin.mirror_area, rtol=1e-6)
    assert u.isclose(
        optics.equivalent_focal_length, builtin.equivalent_focal_length, rtol=1e-6
    )
    # the file has no effective focal length (built in: 5.69705 m)
    assert np.isnan(optics.effective_focal_length)
    assert np.isfinite(builtin.effective_focal_length)


def test_angular_pixel_size(simtel_telescope):
    geometry = simtel_telescope.camera.geometry
    builtin = sst1m_telescope().camera.geometry
    # camera-frame focal lengths: 5.6 m (equivalent) in the file, 5.69705 m built in
    assert u.isclose(geometry.frame.focal_length, 5.6 * u.m, rtol=1e-6)
    assert u.isclose(builtin.frame.focal_length, 5.69705 * u.m, rtol=1e-6)
    angular_pitch = (pixel_pitch(geometry) / geometry.frame.focal_length) * u.rad
    builtin_angular_pitch = (pixel_pitch(builtin) / builtin.frame.focal_length) * u.rad
    assert u.isclose(angular_pitch, 0.2415 * u.deg, atol=0.0001 * u.deg)
    assert u.isclose(builtin_angular_pitch, 0.2444 * u.deg, atol=0.0001 * u.deg)
