"""R0 to R1 calibration of DigiCam waveforms: baseline subtraction and dc to p.e."""

import numpy as np
from ctapipe.core import TelescopeComponent
from ctapipe.core.traits import (
    Bool,
    Float,
    Int,
    List,
    TelescopeParameter,
)
from traitlets import TraitError

from ..instrument import DEFAULT_DC_TO_PE, GOOD_PIXEL_STATUS, OTHER_DC_TO_PE
from ..io.calibration_files import read_pixel_calibration

__all__ = ["SST1MR0Corrections", "detect_baseline_divisor"]

#: DigiCam firmware stores the baseline as 16 x ADC since 2018, as plain ADC before
BASELINE_DIVISORS = (1, 16)


def detect_baseline_divisor(samples, baselines, path="<input>"):
    """
    Find whether the on-board baselines are stored as ADC or as 16 x ADC.

    The baseline is the mean of the samples preceding the trigger, so the
    median baseline divided by the right divisor is close to the median sample.

    Parameters
    ----------
    samples : numpy.ndarray
        Raw samples of one event.
    baselines : numpy.ndarray
        On-board baselines of the same event.
    path : str
        File name, for the error message.

    Returns
    -------
    int
        1 or 16.

    Raises
    ------
    ValueError
        If neither divisor brings the baselines within 20 % of the samples.
    """
    median_sample = float(np.median(samples))
    median_baseline = float(np.median(baselines))
    for divisor in BASELINE_DIVISORS:
        if abs(median_baseline / divisor - median_sample) < 0.2 * abs(median_sample):
            return divisor
    raise ValueError(
        f"{path}: cannot interpret the DigiCam baselines (median {median_baseline:.1f})"
        f" for samples of median {median_sample:.1f} ADC: neither ADC nor 16 x ADC"
    )


def _configured_values(lookup, subarray):
    """
    ``(tel_id, value)`` of the subarray's telescopes for which a TelescopeParameter
    lookup has a value (a telescope without one fails at its first event, if any).
    """
    for tel_id in subarray.tel:
        try:
            yield tel_id, lookup[tel_id]
        except KeyError:
            continue


class SST1MR0Corrections(TelescopeComponent):
    """
    Turn DigiCam R0 waveforms into R1 waveforms in photo-electrons per sample.

    ``r1 = (adc - baseline) / dc_to_pe`` per pixel, where the baseline is
    DigiCam's per-event on-board baseline and ``dc_to_pe`` the integral of a
    single photo-electron pulse in ADC samples, from a dark-run calibration file
    or a per-telescope default. Pixels with a bad calibration, pixels listed in
    ``bad_pixels`` and pixels the camera flags as absent are reported in
    ``pixel_status`` and in the outlier mask, so that ctapipe's invalid-pixel
    handler interpolates their charge.
    """

    default_dc_to_pe = TelescopeParameter(
        trait=Float(min=0.0),
        default_value=[("type", "*", OTHER_DC_TO_PE)]
        + [("id", tel_id, value) for tel_id, value in DEFAULT_DC_TO_PE.items()],
        help=(
            "dc to p.e. (ADC x samples per photo-electron) used for every pixel when"
            " no calibration file is given: the median of the good pixels of the"
            " averaged 2023-2024 dark-run calibration of each telescope."
        ),
    ).tag(config=True)

    interpolate_bad_calibrated_pixels = Bool(
        default_value=True,
        help=(
            "Mark pixels with a bad dark-run calibration (calib_flag != 1) as"
            " outliers so that their charge is interpolated from the neighbours."
            " They get the mean dc to p.e. of the good pixels in any case."
        ),
    ).tag(config=True)

    bad_pixels = TelescopeParameter(
        trait=List(Int(min=0)),
        default_value=[("type", "*", [])],
        help="Software ids of pixels always treated as broken (interpolated), per telescope.",
    ).tag(config=True)

    def __init__(self, subarray, calibration_path=None, **kwargs):
        """
        Parameters
        ----------
        subarray : ctapipe.instrument.SubarrayDescription
            The SST-1M array.
        calibration_path : ctapipe.core.telescope_component.TelescopeParameterLookup or None
            Dark-run calibration file per telescope (None: the default dc to p.e.).
        """
        super().__init__(subarray=subarray, **kwargs)
        self.calibration_path = calibration_path
        self._inverse_gain = {}
        self._static_outliers = {}
        self.calibration_files = {}
        self._calibrations = self._read_calibrations()
        self._check_bad_pixels()

    def _read_calibrations(self):
        """
        The dark-run calibration of every file of the subarray's telescopes, by path.

        Read when the component is set up, so that a bad file stops a tool before
        it opens any output.
        """
        calibrations = {}
        if self.calibration_path is None:
            return calibrations
        for tel_id, path in _configured_values(self.calibration_path, self.subarray):
            if path is None or path in calibrations:
                continue
            n_pixels = self.subarray.tel[tel_id].camera.geometry.n_pixels
            try:
                calibrations[path] = read_pixel_calibration(path, n_pixels=n_pixels)
            except ValueError as err:
                raise TraitError(
                    f"SST1MEventSource.calibration_path of telescope {tel_id}: {err}"
                ) from None
        return calibrations

    def _check_bad_pixels(self):
        for tel_id, pixels in _configured_values(self.bad_pixels.tel, self.subarray):
            n_pixels = self.subarray.tel[tel_id].camera.geometry.n_pixels
            outside = [p for p in pixels if p >= n_pixels]
            if outside:
                raise TraitError(
                    f"SST1MR0Corrections.bad_pixels of telescope {tel_id}: pixel ids"
                    f" {outside} do not exist (the camera has {n_pixels} pixels)"
                )

    def _prepare(self, tel_id):
        n_pixels = self.subarray.tel[tel_id].camera.geometry.n_pixels
        path = None
        if self.calibration_path is not None:
            path = self.calibration_path[tel_id]
        outliers = np.zeros(n_pixels, dtype=bool)
        if path is None:
            dc_to_pe = np.full(n_pixels, self.default_dc_to_pe.tel[tel_id])
            self.log.info(
                "tel %d: no calibration file, using dc_to_pe=%.2f for every pixel",
                tel_id,
                dc_to_pe[0],
            )
        else:
            calibration = self._calibrations[path]
            dc_to_pe = calibration.dc_to_pe
            if self.interpolate_bad_calibrated_pixels:
                outliers |= ~calibration.good
            self.calibration_files[tel_id] = str(path)
            self.log.info(
                "tel %d: calibration %s, %d badly calibrated pixels",
                tel_id,
                path,
                np.count_nonzero(~calibration.good),
            )
        outliers[np.asarray(self.bad_pixels.tel[tel_id], dtype=int)] = True
        self._inverse_gain[tel_id] = (1.0 / dc_to_pe).astype(np.float32)
        self._static_outliers[tel_id] = outliers

    def __call__(self, tel_id, waveform, baseline_adc, pixel_present, voltage_drop=1.0):
        """
        Calibrate one event of one telescope.

        Parameters
        ----------
        tel_id : int
            Telescope id.
        waveform : numpy.ndarray
            Raw samples (n_pixels, n_samples) in ADC, software pixel order.
        baseline_adc : numpy.ndarray
            Baseline per pixel in ADC, software pixel order.
        pixel_present : numpy.ndarray
            False for pixels the camera flags as not read out.
        voltage_drop : float or numpy.ndarray
            Relative intensity left after the NSB voltage drop (R1 is divided by it).

        Returns
        -------
        r1_waveform : numpy.ndarray
            float32 (1, n_pixels, n_samples) in photo-electrons per sample.
        pixel_status : numpy.ndarray
            uint8 (n_pixels,), gain bits cleared for broken pixels.
        outliers : numpy.ndarray
            bool (n_pixels,), pixels to interpolate.
        """
        if tel_id not in self._inverse_gain:
            self._prepare(tel_id)
        inverse_gain = self._inverse_gain[tel_id]
        r1 = waveform.astype(np.float32)
        r1 -= baseline_adc.astype(np.float32)[:, np.newaxis]
        scale = inverse_gain / np.asarray(voltage_drop, dtype=np.float32)
        r1 *= scale[:, np.newaxis]
        outliers = self._static_outliers[tel_id] | ~pixel_present
        pixel_status = np.where(outliers, np.uint8(0), GOOD_PIXEL_STATUS)
        return r1[np.newaxis], pixel_status, outliers
