"""
The SST-1M instrument, built in code: DigiCam camera, optics, the two-telescope array.

Nothing is read from disk or from the network. The numbers come from the SST-1M
simulation model (the instrument description the collaboration's sim_telarray
productions use), so that the telescope descriptions of real data and of
simulations compare equal and models trained on simulations apply to data.
See ``docs/instrument.md`` for the origin of every number.
"""

from functools import lru_cache

import astropy.units as u
import numpy as np
from astropy.coordinates import EarthLocation
from ctapipe.containers import PixelStatus
from ctapipe.coordinates import CameraFrame
from ctapipe.core.traits import Dict, Float, Int, List
from ctapipe.instrument import (
    CameraDescription,
    CameraGeometry,
    CameraReadout,
    OpticsDescription,
    ReflectorShape,
    SizeType,
    SubarrayDescription,
    TelescopeDescription,
)

__all__ = [
    "N_PIXELS",
    "N_SAMPLES",
    "SAMPLING_RATE",
    "DATA_TEL_IDS",
    "SIMULATION_TEL_IDS",
    "DEFAULT_DC_TO_PE",
    "OTHER_DC_TO_PE",
    "DATA_TEL_ID",
    "GOOD_PIXEL_STATUS",
    "DEFAULT_TELESCOPE_LOCATIONS",
    "TRIGGER_PATCH7",
    "TRIGGER_PATCH19",
    "TRIGGER_MUON",
    "TRIGGER_INTERNAL",
    "SHOWER_TRIGGER_BITS",
    "camera_number",
    "telescope_locations_trait",
    "ARRAY_REFERENCE_LOCATION",
    "digicam_geometry",
    "digicam_readout",
    "reference_pulse_shape",
    "sst1m_optics",
    "sst1m_telescope",
    "sst1m_subarray",
]

N_PIXELS = 1296
N_SAMPLES = 50
SAMPLING_RATE = 250 * u.MHz
PIXEL_PITCH = 24.3 * u.mm
# light-sensitive hexagon of the simulation model: 23.3 mm flat-to-flat
PIXEL_AREA = 4.70157e-4 * u.m**2

#: telescope ids of real data (camera servers cs1, cs2) and of simulations
DATA_TEL_IDS = (21, 22)
SIMULATION_TEL_IDS = (1, 2)
#: pixel_status of a good DigiCam pixel: high gain stored, DVR passthrough
GOOD_PIXEL_STATUS = np.uint8(PixelStatus.HIGH_GAIN_STORED | PixelStatus.DVR_0)
#: the real-data telescope of each simulated one (same camera, same position)
DATA_TEL_ID = dict(zip(SIMULATION_TEL_IDS, DATA_TEL_IDS))
#: dc to p.e. (ADC x samples per photo-electron) per data telescope: the median of the good
#: pixels of the averaged 2023-2024 dark-run calibration of each telescope; the R0 -> R1
#: default without a calibration file, and the gain of the simulation's raw runs
DEFAULT_DC_TO_PE = {21: 23.61, 22: 26.80}
#: dc to p.e. of an SST-1M telescope of another id
OTHER_DC_TO_PE = 25.0

#: geodetic positions (lon deg, lat deg, height m) of the telescopes used for
#: pointing transformations, from the SST-1M data configuration
DEFAULT_TELESCOPE_LOCATIONS = {
    21: [14.782924, 49.911800, 510.0],
    22: [14.782078, 49.913084, 510.0],
}


def telescope_locations_trait():
    """
    The ``telescope_locations`` option of the components that compute pointing.

    Returns
    -------
    traitlets.Dict
        Geodetic position ``[lon_deg, lat_deg, height_m]`` per telescope id, default
        `DEFAULT_TELESCOPE_LOCATIONS`, validated (integer ids, three numbers each).
    """
    return Dict(
        key_trait=Int(),
        value_trait=List(Float(), minlen=3, maxlen=3),
        default_value=DEFAULT_TELESCOPE_LOCATIONS,
        help="Geodetic position [lon_deg, lat_deg, height_m] per telescope, for Alt/Az of the pointing.",
    ).tag(config=True)


#: camera event_type bits (DigiCam trigger-type field)
TRIGGER_PATCH7 = 0x1
TRIGGER_PATCH19 = 0x2
TRIGGER_MUON = 0x4
TRIGGER_INTERNAL = 0x8
SHOWER_TRIGGER_BITS = TRIGGER_PATCH7 | TRIGGER_PATCH19 | TRIGGER_MUON


def camera_number(tel_id):
    """
    Camera (1 or 2) of a telescope id: data (21, 22) or simulation (1, 2).

    Raises
    ------
    ValueError
        For any other telescope id.
    """
    if tel_id in DATA_TEL_IDS:
        return tel_id - 20
    if tel_id in SIMULATION_TEL_IDS:
        return tel_id
    raise ValueError(f"telescope {tel_id} is not an SST-1M telescope (1, 2, 21, 22)")


#: Array centre at Ondrejov (ITRS metres of the simulation layout)
ARRAY_REFERENCE_LOCATION = EarthLocation.from_geocentric(
    3979426.5787, 1050109.7686, 4856914.3539, unit=u.m
)

#: Ground-frame positions (x north, y west, z up) of the two telescopes
#: relative to ARRAY_REFERENCE_LOCATION, as in the simulation layout.
TELESCOPE_GROUND_POSITIONS = {
    1: (-71.38, -30.43, -1.43) * u.m,
    2: (71.38, 30.43, 1.42) * u.m,
}

# DigiCam pixel grid: 48 rows of hexagons, rows 21.04 mm apart (pitch * sqrt(3)/2),
# pixels 24.3 mm apart within a row. For each row: first and last x position
# in units of half a pitch (12.15 mm). Rows 12..35 alternate between the two
# full-width patterns; the ends of the camera are trimmed to its hexagonal shape.
_ROW_OFFSET_MM = -498.0513
_HALF_PITCH_MM = 12.15


def _row_limits(row):
    if row < 12:
        return 1 - 3 * row, 1 + 3 * row
    if row < 36:
        return (-35, 35) if row % 2 == 0 else (-36, 34)
    mirrored = 47 - row
    return -3 * mirrored, 2 + 3 * mirrored


@lru_cache
def _digicam_pixel_positions_mm():
    """Pixel positions in the DigiCam mapping frame, in software-id order (mm)."""
    row_pitch_mm = PIXEL_PITCH.to_value(u.mm) * np.sqrt(3) / 2
    x, y = [], []
    for row in range(48):
        first, last = _row_limits(row)
        half_steps = np.arange(first, last + 1, 2)
        x.append(half_steps * _HALF_PITCH_MM)
        y.append(np.full(len(half_steps), _ROW_OFFSET_MM + row * row_pitch_mm))
    return np.concatenate(x), np.concatenate(y)


def digicam_geometry(focal_length=5.69705 * u.m):
    """
    DigiCam camera geometry, pixel index = DigiCam software pixel id.

    Software ids run row by row (rows in increasing mapping-frame y, pixels in
    increasing x). The camera frame is that of the simulations:
    ``x = -y_mapping``, ``y = -x_mapping``.

    Parameters
    ----------
    focal_length : astropy.units.Quantity
        Focal length of the `~ctapipe.coordinates.CameraFrame`.

    Returns
    -------
    ctapipe.instrument.CameraGeometry
    """
    x_mm, y_mm = _digicam_pixel_positions_mm()
    return CameraGeometry(
        name="DigiCam",
        pix_id=np.arange(N_PIXELS),
        pix_x=u.Quantity(-y_mm, u.mm).to(u.m),
        pix_y=u.Quantity(-x_mm, u.mm).to(u.m),
        pix_area=np.full(N_PIXELS, PIXEL_AREA.to_value(u.m**2)) * u.m**2,
        pix_type="hexagon",
        pix_rotation=30 * u.deg,
        cam_rotation=0 * u.deg,
        frame=CameraFrame(focal_length=focal_length),
    )


# Parametric DigiCam single-p.e. pulse (times in ns): an asymmetric Gaussian
# plus a small undershoot and a late overshoot. Parameters are a least-squares
# fit to the SST-1M reference pulse of the simulation model, constrained so that
# ctapipe's integration correction agrees with the tabulated pulse (1.018 for a
# 7-sample window shifted by 3, 1.117 for 5/2).
_PULSE_PEAK_NS = 27.5
_PULSE_RISE_SIGMA_NS = 5.2
_PULSE_FALL_SIGMA_NS = 7.5
_PULSE_UNDERSHOOT = (0.025, 47.1, 5.6)  # amplitude, centre ns, sigma ns
_PULSE_OVERSHOOT = (0.006, 65.3, 5.85)
_PULSE_STEP_NS = 0.1
_PULSE_LENGTH_NS = 152.0


def reference_pulse_shape(time_ns):
    """
    DigiCam reference pulse (peak normalised to 1) at the given times.

    Parameters
    ----------
    time_ns : array-like
        Times in ns, the pulse peaks at 27.5 ns.

    Returns
    -------
    numpy.ndarray
    """
    t = np.asanyarray(time_ns, dtype=float)
    sigma = np.where(t < _PULSE_PEAK_NS, _PULSE_RISE_SIGMA_NS, _PULSE_FALL_SIGMA_NS)
    pulse = np.exp(-0.5 * ((t - _PULSE_PEAK_NS) / sigma) ** 2)
    for sign, (amplitude, centre, width) in (
        (-1, _PULSE_UNDERSHOOT),
        (+1, _PULSE_OVERSHOOT),
    ):
        pulse += sign * amplitude * np.exp(-0.5 * ((t - centre) / width) ** 2)
    return pulse


def digicam_readout():
    """DigiCam readout: one gain, 50 samples at 250 MHz, reference pulse at 0.1 ns."""
    n_points = int(round(_PULSE_LENGTH_NS / _PULSE_STEP_NS))
    time = np.arange(n_points) * _PULSE_STEP_NS
    return CameraReadout(
        name="DigiCam",
        sampling_rate=SAMPLING_RATE.to(u.GHz),
        reference_pulse_shape=reference_pulse_shape(time)[np.newaxis],
        reference_pulse_sample_width=_PULSE_STEP_NS * u.ns,
        n_channels=1,
        n_pixels=N_PIXELS,
        n_samples=N_SAMPLES,
    )


def sst1m_optics():
    """SST-1M Davies-Cotton optics (named ``1M`` as in the simulations)."""
    return OpticsDescription(
        name="1M",
        size_type=SizeType.SST,
        reflector_shape=ReflectorShape.DAVIES_COTTON,
        equivalent_focal_length=5.6 * u.m,
        effective_focal_length=5.69705 * u.m,
        mirror_area=9.41809 * u.m**2,
        n_mirrors=1,
        n_mirror_tiles=18,
    )


@lru_cache
def sst1m_telescope():
    """The SST-1M telescope description, identical for data and simulations."""
    optics = sst1m_optics()
    camera = CameraDescription(
        name="DigiCam",
        geometry=digicam_geometry(optics.effective_focal_length),
        readout=digicam_readout(),
    )
    return TelescopeDescription(name="SST-1M", optics=optics, camera=camera)


def sst1m_subarray(tel_ids=DATA_TEL_IDS):
    """
    The SST-1M array at Ondrejov.

    Parameters
    ----------
    tel_ids : tuple of int
        Telescope ids to include: (21, 22) for real data, (1, 2) for simulations,
        or a subset. Telescopes 21 and 1 share a position, as do 22 and 2.

    Returns
    -------
    ctapipe.instrument.SubarrayDescription
    """
    telescope = sst1m_telescope()
    positions = {}
    for tel_id in tel_ids:
        number = camera_number(tel_id)
        positions[tel_id] = TELESCOPE_GROUND_POSITIONS[number]
    return SubarrayDescription(
        name="SST1M_miniarray",
        tel_positions=positions,
        tel_descriptions={tel_id: telescope for tel_id in tel_ids},
        reference_location=ARRAY_REFERENCE_LOCATION,
    )
