"""
Saturated pixels of SST-1M events: their charge and time from the whole pulse.

DigiCam's 12-bit ADCs clip bright pulses; the charge of the shower integration window
then underestimates the signal. A saturated pixel's charge is re-integrated over its
whole pulse, and the result handed to ctapipe's calibration as a per-pixel factor and
time shift of the extracted charge and peak time.
"""

from dataclasses import dataclass

import numpy as np

__all__ = [
    "SaturatedPixels",
    "reintegrate_saturated_pixels",
    "saturation_coefficients",
]


@dataclass
class SaturatedPixels:
    """Saturated pixels of one event and their re-integrated charge and time."""

    pixels: np.ndarray
    charge_pe: np.ndarray
    peak_time_ns: np.ndarray


def reintegrate_saturated_pixels(
    raw_adc,
    baseline_adc,
    r1_waveform,
    saturation_threshold_adc=3000.0,
    width_level_adc=2500.0,
    min_width_samples=5,
    integration_level=0.2,
    sample_width_ns=4.0,
):
    """
    Charge of saturated pixels by integrating their whole pulse.

    A pixel is saturated if its baseline-subtracted maximum exceeds
    ``saturation_threshold_adc`` and more than ``min_width_samples`` samples are
    above ``width_level_adc``. Its charge is the sum of its R1 samples from the
    first sample at or above ``integration_level`` times the maximum to the first
    sample after the maximum below that level (inclusive; the last sample if none),
    its peak time ``sample_width_ns * (first sample above width level + width / 2)``.

    Parameters
    ----------
    raw_adc : numpy.ndarray
        Raw waveforms (n_pixels, n_samples), ADC.
    baseline_adc : numpy.ndarray
        Baseline per pixel, ADC.
    r1_waveform : numpy.ndarray
        R1 waveforms (n_pixels, n_samples), p.e.

    Returns
    -------
    SaturatedPixels
    """
    empty = SaturatedPixels(np.empty(0, dtype=np.int64), np.empty(0), np.empty(0))
    # fast path: no sample anywhere reaches the threshold above the lowest baseline
    if raw_adc.max() <= saturation_threshold_adc + baseline_adc.min():
        return empty
    peak = raw_adc.max(axis=1) - baseline_adc
    candidates = np.flatnonzero(peak > saturation_threshold_adc)
    if candidates.size == 0:
        return empty
    signal_all = raw_adc[candidates] - baseline_adc[candidates, np.newaxis]
    above_width_level = signal_all > width_level_adc
    width = np.count_nonzero(above_width_level, axis=1)
    wide = width > min_width_samples
    pixels = candidates[wide]
    if pixels.size == 0:
        return empty
    above_width_level, width = above_width_level[wide], width[wide]
    peak = peak[pixels]
    signal = signal_all[wide]
    level = integration_level * peak[:, np.newaxis]
    samples = np.arange(signal.shape[1])
    start = np.argmax(signal >= level, axis=1)
    after_peak = samples > np.argmax(signal, axis=1)[:, np.newaxis]
    below_after_peak = (signal < level) & after_peak
    stop = np.where(
        below_after_peak.any(axis=1),
        np.argmax(below_after_peak, axis=1),
        signal.shape[1] - 1,
    )
    window = (samples >= start[:, np.newaxis]) & (samples <= stop[:, np.newaxis])
    charge = np.sum(r1_waveform[pixels] * window, axis=1)
    first_above = np.argmax(above_width_level, axis=1)
    peak_time = sample_width_ns * (first_above + width / 2)
    return SaturatedPixels(pixels, charge, peak_time)


def saturation_coefficients(saturated, extracted, factor):
    """
    Factor and time shift making the extracted charge and time those of the whole pulse.

    Parameters
    ----------
    saturated : SaturatedPixels
        The re-integrated saturated pixels of an event.
    extracted : ctapipe.containers.DL1CameraContainer
        Charge and peak time of the image extractor for the event.
    factor : numpy.ndarray
        Charge factor per pixel without the saturation (not modified).

    Returns
    -------
    factor : numpy.ndarray
        Charge factor per pixel, saturated pixels with a positive extracted charge scaled
        to their re-integrated charge.
    time_shift : numpy.ndarray
        (1, n_pixels) shift of the peak time (ns), extracted minus re-integrated.
    n_pixels : int
        Number of saturated pixels corrected.
    """
    pixels = saturated.pixels
    usable = extracted.image[pixels] > 0
    pixels = pixels[usable]
    factor = factor.copy()
    factor[pixels] *= saturated.charge_pe[usable] / extracted.image[pixels]
    time_shift = np.zeros((1, factor.size))
    time_shift[0, pixels] = extracted.peak_time[pixels] - saturated.peak_time_ns[usable]
    return factor, time_shift, pixels.size
