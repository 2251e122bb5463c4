import astropy.units as u
import numpy as np
import pytest
from ctapipe.image.extractor import integration_correction
from ctapipe.instrument import SubarrayDescription

from ctapipe_sst1m.instrument import (
    N_PIXELS,
    digicam_geometry,
    sst1m_subarray,
    sst1m_telescope,
)


@pytest.fixture(scope="module")
def reference_subarray(shared_dir):
    return SubarrayDescription.from_hdf(
        shared_dir / "reference/instrument/sst1m_array.h5"
    )


def test_geometry_equals_reference(reference_subarray):
    ours = digicam_geometry()
    ref = reference_subarray.tel[21].camera.geometry
    assert ours.n_pixels == ref.n_pixels == N_PIXELS
    assert np.abs(ours.pix_x - ref.pix_x).max() < 0.1 * u.mm
    assert np.abs(ours.pix_y - ref.pix_y).max() < 0.1 * u.mm
    assert (ours.neighbor_matrix_sparse != ref.neighbor_matrix_sparse).nnz == 0
    assert ours.pix_type == ref.pix_type
    assert u.isclose(ours.pix_rotation, ref.pix_rotation)


def test_geometry_facts():
    geom = digicam_geometry()
    n_neighbors = np.bincount(geom.neighbor_matrix.sum(axis=1))
    # 1155 pixels with 6 neighbours, 69 with 5, 69 with 3, 3 with 2
    assert n_neighbors[6] == 1155 and n_neighbors[5] == 69
    assert n_neighbors[3] == 69 and n_neighbors[2] == 3
    assert u.isclose(
        geom.guess_pixel_width(geom.pix_x, geom.pix_y), 24.3 * u.mm, rtol=1e-3
    )


def test_positions_equal_reference(reference_subarray):
    ours = sst1m_subarray()
    for tel_id in (21, 22):
        assert np.all(
            np.abs(ours.positions[tel_id] - reference_subarray.positions[tel_id])
            < 1 * u.cm
        )
    offset = (
        ours.reference_location.itrs.cartesian
        - reference_subarray.reference_location.itrs.cartesian
    )
    assert offset.norm() < 1 * u.cm


def test_optics_and_readout():
    tel = sst1m_telescope()
    assert str(tel) == "SST_1M_DigiCam"
    assert tel.optics.equivalent_focal_length == 5.6 * u.m
    assert u.isclose(tel.optics.effective_focal_length, 5.69705 * u.m)
    assert u.isclose(tel.optics.mirror_area, 9.41809 * u.m**2)
    assert tel.optics.n_mirror_tiles == 18
    readout = tel.camera.readout
    assert readout.n_channels == 1 and readout.n_samples == 50
    assert u.isclose(readout.sampling_rate, 250 * u.MHz)
    # ctapipe's integration correction of the tabulated reference pulse is 1.0183
    correction = integration_correction(
        readout.reference_pulse_shape,
        readout.reference_pulse_sample_width.to_value(u.ns),
        4.0,
        7,
        3,
    )
    assert correction[0] == pytest.approx(1.0183, rel=3e-3)


def test_data_and_simulation_telescopes_identical():
    data = sst1m_subarray((21, 22))
    sim = sst1m_subarray((1, 2))
    assert data.tel[21] == sim.tel[1] == sim.tel[2] == data.tel[22]
    assert len(data.telescope_types) == 1
    assert np.all(data.positions[21] == sim.positions[1])


def test_unknown_telescope():
    with pytest.raises(ValueError, match="telescope 5 is not an SST-1M telescope"):
        sst1m_subarray((5,))
