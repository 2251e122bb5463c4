import numpy as np
import pytest

from ctapipe_sst1m.io.calibration_files import read_pixel_calibration


@pytest.mark.parametrize(
    "name, median_dc_to_pe, bad",
    [
        ("averaged_calib_param_v2_2023_2024_tel1.h5", 23.61, [162, 320, 332, 489, 958]),
        ("averaged_calib_param_v2_2023_2024_tel2.h5", 26.80, None),
        ("20230917_0528_0529_Tel1_fitted_parameters.h5", None, None),
    ],
)
def test_read_calibration(shared_dir, name, median_dc_to_pe, bad):
    calibration = read_pixel_calibration(shared_dir / "reference/calibration" / name)
    assert calibration.dc_to_pe.shape == (1296,)
    assert np.all(np.isfinite(calibration.dc_to_pe)) and np.all(
        calibration.dc_to_pe > 0
    )
    good_mean = calibration.dc_to_pe[calibration.good].mean()
    assert np.allclose(calibration.dc_to_pe[~calibration.good], good_mean)
    if median_dc_to_pe is not None:
        assert np.median(calibration.dc_to_pe[calibration.good]) == pytest.approx(
            median_dc_to_pe, abs=0.01
        )
    if bad is not None:
        assert np.flatnonzero(~calibration.good).tolist() == bad
    if name.startswith("averaged") and "tel2" in name:
        assert np.count_nonzero(~calibration.good) == 21


def test_not_a_calibration_file(shared_dir, tmp_path):
    with pytest.raises(ValueError, match="sst1m_array.h5: no calibration table"):
        read_pixel_calibration(shared_dir / "reference/instrument/sst1m_array.h5")
    text = tmp_path / "calib.h5"
    text.write_text("not hdf5")
    with pytest.raises(ValueError, match="calib.h5: not a readable HDF5"):
        read_pixel_calibration(text)
