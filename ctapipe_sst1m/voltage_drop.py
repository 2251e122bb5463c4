"""
SiPM voltage drop of the SST-1M cameras under night-sky background.

The NSB current through the bias resistors lowers the SiPM voltage, and with it the gain
and the photo-detection efficiency. Both follow the baseline shift, itself a function of
the variance of the raw pedestal waveforms (arXiv:1910.00348). The correction divides R1
by the relative intensity left, one factor per camera (from the median pixel variance) or
one per pixel.
"""

import numpy as np
from scipy.interpolate import splev

from .instrument import camera_number

__all__ = [
    "VOLTAGE_DROP_MODES",
    "baseline_shift_adc",
    "voltage_drop_factor",
    "camera_voltage_drop",
    "clipped_variance_adc2",
]

#: the voltage-drop corrections: none, one factor per camera, one per pixel
VOLTAGE_DROP_MODES = ("none", "global", "pixelwise")

# Baseline shift (ADC) versus the variance of raw pedestal waveforms (ADC^2): B-splines
# (knots, coefficients, degree) per camera, measured by the SST-1M collaboration.
_BASELINE_SHIFT_SPLINES = {
    1: (
        [
            0,
            0,
            0,
            46.96969697,
            60.90909091,
            67.57575758,
            74.24242424,
            74.24242424,
            74.24242424,
        ],
        [
            -0.4367913,
            9.08788226,
            39.66927065,
            54.18389959,
            69.24518367,
            104.29418015,
            0,
            0,
            0,
        ],
        2,
    ),
    2: (
        [
            0,
            0,
            93.74735497,
            126.46232902,
            181.54405469,
            256.80398702,
            266.62290877,
            292.98812266,
            294.71402901,
            295.67072519,
            298.04051867,
            339.91032956,
            339.91032956,
        ],
        [
            -1.74764142,
            48.41280122,
            68.36843193,
            104.62272377,
            168.14318275,
            179.34289593,
            212.07400565,
            214.10474285,
            215.17017626,
            217.7828114,
            268.19128994,
            0,
            0,
        ],
        1,
    ),
}

# Relative drop of gain and of photo-detection efficiency per ADC of baseline shift
# (arXiv:1910.00348); their sum is the drop of the measured intensity.
_GAIN_DROP_PER_ADC = {1: -0.00487, 2: -0.00118}
_PDE_DROP_PER_ADC = {1: -0.00317, 2: -0.000663}


def _camera_number(tel_id):
    """Camera 1 or 2 of a data (21, 22) or simulation (1, 2) telescope id."""
    number = camera_number(tel_id)
    if number not in _BASELINE_SHIFT_SPLINES:
        raise KeyError(f"No voltage-drop model for telescope {tel_id}")
    return number


def baseline_shift_adc(variance_adc2, tel_id):
    """
    Baseline shift caused by the night-sky background, from the pedestal variance.

    The variance is clipped to the range where the spline is defined (the
    reference pipeline extrapolates the telescope-21 spline beyond 74 ADC^2,
    where it dives to negative values).

    Parameters
    ----------
    variance_adc2 : float or numpy.ndarray
        Variance of raw pedestal waveforms (ADC^2).
    tel_id : int
        Telescope id (21, 22, or 1, 2).

    Returns
    -------
    float or numpy.ndarray
        Baseline shift in ADC.
    """
    knots, coefficients, degree = _BASELINE_SHIFT_SPLINES[_camera_number(tel_id)]
    variance = np.clip(variance_adc2, knots[degree], knots[-degree - 1])
    return splev(variance, (knots, coefficients, degree))


def voltage_drop_factor(variance_adc2, tel_id):
    """
    Relative intensity left after the SiPM voltage drop: ``1 + BLS (slope_gain + slope_PDE)``.

    Parameters
    ----------
    variance_adc2 : float or numpy.ndarray
        Variance of raw pedestal waveforms (ADC^2).
    tel_id : int
        Telescope id.

    Returns
    -------
    float or numpy.ndarray
        Factor by which measured charges are too small (R1 is divided by it).
    """
    number = _camera_number(tel_id)
    slope = _GAIN_DROP_PER_ADC[number] + _PDE_DROP_PER_ADC[number]
    return 1.0 + baseline_shift_adc(variance_adc2, tel_id) * slope


def camera_voltage_drop(mean_raw_std_adc, tel_id, mode):
    """
    Voltage-drop factor of a camera from the mean raw pedestal standard deviation per pixel.

    Parameters
    ----------
    mean_raw_std_adc : numpy.ndarray
        Standard deviation of the raw pedestal waveform per pixel (ADC), averaged over
        the pedestal events of the buffer.
    tel_id : int
        Telescope id.
    mode : str
        One of `VOLTAGE_DROP_MODES`: ``"pixelwise"`` (a factor per pixel from each
        pixel's variance), ``"global"`` (one factor from the median over pixels of the
        std, squared) or ``"none"``.

    Returns
    -------
    numpy.ndarray, float or None
        Factor per pixel, one factor, or None without correction.
    """
    if mode == "pixelwise":
        return voltage_drop_factor(mean_raw_std_adc**2, tel_id)
    if mode == "global":
        return float(voltage_drop_factor(np.median(mean_raw_std_adc) ** 2, tel_id))
    if mode == "none":
        return None
    raise ValueError(f"voltage-drop mode {mode!r} is not one of {VOLTAGE_DROP_MODES}")


def clipped_variance_adc2(mean_raw_std_adc, tel_id, mode):
    """
    The pedestal variance the correction uses if it is beyond the camera's spline.

    Beyond the last knot the variance is clipped (`baseline_shift_adc`), so the factor is
    that of the edge of the measured range, not a measured one.

    Parameters
    ----------
    mean_raw_std_adc : numpy.ndarray
        Standard deviation of the raw pedestal waveform per pixel (ADC), averaged over
        the pedestal events of the buffer.
    tel_id : int
        Telescope id.
    mode : str
        One of `VOLTAGE_DROP_MODES`.

    Returns
    -------
    float or None
        The variance (ADC^2) of the median pixel (``"global"``) or of the highest pixel
        (``"pixelwise"``) when it is above the range of the spline, else None.
    """
    if mode == "none":
        return None
    std = np.median(mean_raw_std_adc) if mode == "global" else np.max(mean_raw_std_adc)
    knots, _, degree = _BASELINE_SHIFT_SPLINES[_camera_number(tel_id)]
    variance = float(std) ** 2
    return variance if variance > knots[-degree - 1] else None
