"""
Parity with the reference pipeline's own DL1 output on the real example files.

Same inputs as ../shared/reference/dl1/README.md: the averaged 2023-2024 calibration,
the camera-window factors, the global voltage-drop correction (the reference output was
made with it: its charges are ours divided by the same global factor) and Crab pointing.
"""

import shutil

import astropy.units as u
import numpy as np
import pytest
import tables
from conftest import RESOURCES, run_cli
from ctapipe.image import hillas_parameters
from ctapipe.io import read_table

from ctapipe_sst1m.instrument import digicam_geometry

CASES = {
    "SST1M2_20180822_0001": ("example_SST1M_20180822.fits.fz", 22, "tel2", "2nd"),
    "SST1M1_20171031_0010": ("example_10evts.fits.fz", 21, "tel1", "1st"),
}


@pytest.fixture(scope="module")
def parity_outputs(shared_dir, data_config, tmp_path_factory):
    directory = tmp_path_factory.mktemp("parity")
    outputs = {}
    for name, (raw, tel_id, calibration, window) in CASES.items():
        raw_path = directory / f"{name}.fits.fz"
        shutil.copy(RESOURCES / raw, raw_path)
        output = directory / f"{name}_dl1.h5"
        result = run_cli(
            "sst1m-process",
            "--input",
            raw_path,
            "--output",
            output,
            "--config",
            data_config,
            f"--SST1MEventSource.calibration_path={shared_dir}/reference/calibration/"
            f"averaged_calib_param_v2_2023_2024_{calibration}.h5",
            f"--NsbCalibrator.window_transmittance_path={shared_dir}/reference/instrument/"
            f"corr_factor_{window}_wdw.txt",
            "--NsbCalibrator.apply_global_Vdrop_correction=True",
            # the reference parametrises in the camera frame
            "--ImageProcessor.use_telescope_frame=False",
            "--SST1MEventSource.pointing_ra_deg=83.6333",
            "--SST1MEventSource.pointing_dec_deg=22.0145",
        )
        assert result.returncode == 0, result.stderr
        outputs[name] = (output, tel_id)
    return outputs


def reference_tables(shared_dir, name, tel_id):
    with tables.open_file(shared_dir / f"reference/dl1/{name}_dl1.h5") as h5:
        images = h5.get_node(f"/dl1/event/telescope/images/tel_{tel_id:03d}").read()
        parameters = h5.get_node(
            f"/dl1/event/telescope/parameters/tel_{tel_id:03d}"
        ).read()
    return images, parameters


def ours(path, tel_id, event_ids):
    images = read_table(path, f"/dl1/event/telescope/images/tel_{tel_id:03d}")
    parameters = read_table(path, f"/dl1/event/telescope/parameters/tel_{tel_id:03d}")
    assert images["event_id"].tolist() == list(event_ids)
    return images, parameters


@pytest.mark.parametrize("name", CASES)
def test_charge_images(parity_outputs, shared_dir, name):
    path, tel_id = parity_outputs[name]
    ref_images, _ = reference_tables(shared_dir, name, tel_id)
    images, _ = ours(path, tel_id, ref_images["event_id"])
    for ref, our in zip(ref_images, images):
        charge, ref_charge = np.asarray(our["image"]), ref["image"]
        assert np.median(np.abs(charge - ref_charge)) < 0.5
        assert np.corrcoef(charge, ref_charge)[0, 1] > 0.99
        assert np.median(np.abs(np.asarray(our["peak_time"]) - ref["peak_time"])) < 0.5


@pytest.mark.parametrize("name", CASES)
def test_hillas_with_reference_masks(parity_outputs, shared_dir, name):
    """Our charges parametrised inside the reference's cleaning masks give its Hillas parameters."""
    path, tel_id = parity_outputs[name]
    ref_images, ref_parameters = reference_tables(shared_dir, name, tel_id)
    images, _ = ours(path, tel_id, ref_images["event_id"])
    geometry = digicam_geometry()
    n_compared = 0
    for ref_image, ref, our in zip(ref_images, ref_parameters, images):
        mask = ref_image["image_mask"]
        if mask.sum() < 3:
            continue
        hillas = hillas_parameters(geometry[mask], np.asarray(our["image"])[mask])
        assert hillas.intensity == pytest.approx(
            ref["camera_frame_hillas_intensity"], rel=0.03
        )
        cog = np.hypot(
            hillas.x.to_value(u.m) - ref["camera_frame_hillas_x"],
            hillas.y.to_value(u.m) - ref["camera_frame_hillas_y"],
        )
        assert cog < 0.002
        assert hillas.length.to_value(u.m) == pytest.approx(
            ref["camera_frame_hillas_length"], rel=0.05
        )
        assert hillas.width.to_value(u.m) == pytest.approx(
            ref["camera_frame_hillas_width"], rel=0.05
        )
        dpsi = (
            hillas.psi.to_value(u.deg) - ref["camera_frame_hillas_psi"] + 90
        ) % 180 - 90
        assert abs(dpsi) < 2
        n_compared += 1
    assert n_compared == {"SST1M2_20180822_0001": 3, "SST1M1_20171031_0010": 9}[name]


def test_full_chain_2018(parity_outputs, shared_dir):
    """Our own cleaning on the faint 2018 images: events surviving in both agree."""
    name = "SST1M2_20180822_0001"
    path, tel_id = parity_outputs[name]
    ref_images, ref_parameters = reference_tables(shared_dir, name, tel_id)
    _, parameters = ours(path, tel_id, ref_images["event_id"])
    both = (ref_parameters["morphology_n_pixels"] > 0) & (
        np.asarray(parameters["morphology_n_pixels"]) > 0
    )
    assert np.count_nonzero(both) >= 2
    for ref, our in zip(ref_parameters[both], parameters[both]):
        assert (
            abs(int(our["morphology_n_pixels"]) - int(ref["morphology_n_pixels"])) <= 3
        )
        assert our["camera_frame_hillas_intensity"] == pytest.approx(
            ref["camera_frame_hillas_intensity"], rel=0.03
        )
        cog = np.hypot(
            our["camera_frame_hillas_x"] - ref["camera_frame_hillas_x"],
            our["camera_frame_hillas_y"] - ref["camera_frame_hillas_y"],
        )
        assert cog < 0.002
    # the NSB level (reference meanQ) agrees
    nsb = read_table(path, f"/dl1/event/telescope/nsb/tel_{tel_id:03d}")
    shower_levels = nsb["nsb_level_pe"][nsb["event_type"] == 32]
    assert np.allclose(shower_levels, ref_parameters["meanQ"][0], rtol=0.02)
