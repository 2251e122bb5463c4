"""
DigiCam readout of the simulation's raw runs: the ADC samples the data chain calibrates back.

The simulation's R1 waveforms are in photo-electrons. A raw run is decoded by the data
configuration (``sst1m.yaml``), which divides by the telescope's dc to p.e.
(`~ctapipe_sst1m.instrument.DEFAULT_DC_TO_PE`) and by the SiPM voltage-drop factor it
estimates from the interleaved pedestals (`~ctapipe_sst1m.voltage_drop`: from the
median over pixels of the standard deviation of the raw samples of an event, averaged
over events). `DigiCamReadout` writes the samples of a camera with exactly that gain and
the voltage drop that estimate gives at the simulated NSB, so that the data chain
recovers the simulated photo-electrons (``docs/simulation-model.md``).
"""

import numpy as np
from scipy.optimize import brentq

from ..instrument import DATA_TEL_ID, DEFAULT_DC_TO_PE
from ..voltage_drop import voltage_drop_factor

__all__ = ["DigiCamReadout", "nsb_voltage_drop"]

#: pedestal events from which the voltage drop of a camera is computed, and the seed of
#: their own random stream (the simulation's stream is not used)
_PEDESTAL_EVENTS = 100
_PEDESTAL_SEED = 1296
#: variance of the rounding of the samples to integer ADC counts (ADC²)
_ROUNDING_VARIANCE_ADC2 = 1.0 / 12.0


def nsb_voltage_drop(pedestal_r1, tel_id, dc_to_pe, tolerance=1e-9):
    """
    Relative intensity left by the SiPM voltage drop at a camera's NSB.

    The factor f is a function of the raw pedestal samples, which themselves scale
    with the gain the drop leaves: ``adc = round(baseline + r1 · dc_to_pe · f)``,
    ``f = voltage_drop_factor(σ²)`` with σ the median over pixels of the per-event
    standard deviation of the samples, averaged over events (what
    `~ctapipe_sst1m.calibration.nsb.NsbCalibrator` computes): a fixed point, found as
    the root of f − drop(f) by Brent's method.

    Parameters
    ----------
    pedestal_r1 : numpy.ndarray
        R1 pedestal waveforms (p.e.), (n_events, n_pixels, n_samples).
    tel_id : int
        Simulated (1, 2) or data (21, 22) telescope id.
    dc_to_pe : float
        ADC x samples per photo-electron.
    tolerance : float
        Convergence of the factor.

    Returns
    -------
    float
        The factor f (< 1: charges are too small by f before the correction).
    """
    # variance of the samples of each event and pixel; the rounding to integer ADC
    # adds 1/12 ADC² (added rather than rounded: the equation stays smooth)
    sample_variance = pedestal_r1.var(axis=2, dtype=np.float64)

    def drop(factor):
        std_adc = np.sqrt(
            sample_variance * (dc_to_pe * factor) ** 2 + _ROUNDING_VARIANCE_ADC2
        )
        return float(voltage_drop_factor(np.median(std_adc.mean(axis=0)) ** 2, tel_id))

    # f - drop(f) increases with f (more gain, more variance, more drop): one root,
    # bracketed (the factor is at most slightly above 1 where the spline dips below 0)
    return brentq(lambda factor: factor - drop(factor), 0.05, 1.5, xtol=tolerance)


class DigiCamReadout:
    """
    ADC samples of simulated R1 waveforms, as the data configuration will decode them.

    Parameters
    ----------
    camera : ctapipe_sst1m.simulation.camera.CameraSimulator
        The simulated cameras (their NSB rates, gains and noise).
    dc_to_pe : dict or None
        ADC x samples per photo-electron per simulated telescope id; None: the
        data configuration's default of the corresponding data telescope
        (`~ctapipe_sst1m.instrument.DEFAULT_DC_TO_PE`).
    voltage_drop : bool
        Lower the gain by the SiPM voltage drop at the camera's NSB (what the data
        configuration's ``apply_global_Vdrop_correction`` undoes).
    baseline_adc : float
        DigiCam's baseline (ADC).
    """

    def __init__(self, camera, dc_to_pe=None, voltage_drop=True, baseline_adc=330.0):
        self.camera = camera
        self.baseline_adc = float(baseline_adc)
        tel_ids = sorted(camera.gain)
        if dc_to_pe is None:
            dc_to_pe = {
                tel_id: DEFAULT_DC_TO_PE[DATA_TEL_ID[tel_id]] for tel_id in tel_ids
            }
        self.dc_to_pe = {tel_id: float(dc_to_pe[tel_id]) for tel_id in tel_ids}
        self.voltage_drop = dict.fromkeys(tel_ids, 1.0)
        if voltage_drop:
            for tel_id in tel_ids:
                self.voltage_drop[tel_id] = nsb_voltage_drop(
                    self._pedestals(tel_id),
                    tel_id,
                    self.dc_to_pe[tel_id],
                )

    def _pedestals(self, tel_id):
        """Pedestal R1 waveforms of the camera, from their own random stream."""
        simulation_rng = self.camera.rng
        self.camera.rng = np.random.default_rng(_PEDESTAL_SEED)
        try:
            return np.concatenate(
                [
                    self.camera.r1_waveform(tel_id, None, None)
                    for _ in range(_PEDESTAL_EVENTS)
                ]
            )
        finally:
            self.camera.rng = simulation_rng

    def adc(self, tel_id, r1):
        """Raw samples (int16, n_pixels x n_samples) of an R1 waveform of telescope ``tel_id``."""
        gain = self.dc_to_pe[tel_id] * self.voltage_drop[tel_id]
        return self.camera.adc_waveform(tel_id, r1, gain, self.baseline_adc)

    def pedestal_adc(self, tel_id):
        """Raw samples of an event without Cherenkov light (NSB and noise only)."""
        return self.adc(tel_id, self.camera.r1_waveform(tel_id, None, None)[0])
