"""
NSB-dependent corrections of SST-1M data, from the interleaved pedestal events.

The NsbCalibrator keeps sliding buffers of the interleaved pedestal events of a
run (raw waveform standard deviation in ADC, calibrated charge images in p.e.)
and turns them into the corrections of every event: the SiPM voltage drop,
dead pixels, the camera-window transmittance, a per-telescope intensity scale,
saturated-pixel re-integration and the pedestal statistics that ImageCleanerSST
uses to raise its thresholds.
"""

from collections import Counter, deque
from dataclasses import dataclass

import numpy as np
from ctapipe.calib import CameraCalibrator
from ctapipe.containers import ChunkStatisticsContainer
from ctapipe.core import TelescopeComponent
from ctapipe.core.traits import (
    Bool,
    Dict,
    Float,
    FloatTelescopeParameter,
    Int,
    List,
    Path,
    TelescopeParameter,
)
from scipy.interpolate import splev

from ..instrument import camera_number
from ..io.calibration_files import (
    read_module_pixels,
    read_swapped_modules,
    read_window_transmittance,
)
from ..io.dl1_monitoring import read_pedestal_windows

__all__ = [
    "NsbCalibrator",
    "baseline_shift_adc",
    "voltage_drop_factor",
    "reintegrate_saturated_pixels",
    "nsb_rate_label",
]

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


def nsb_rate_label(nsb_level_pe, bins):
    """
    NSB rate of the highest bin whose lower edge is not above the NSB level.

    Parameters
    ----------
    nsb_level_pe : float
        Mean pedestal charge (p.e.).
    bins : list of [float, float]
        ``[mean charge bin low edge (p.e.), NSB rate (MHz)]``.

    Returns
    -------
    float or None
        NSB rate in MHz, None if no bin applies.
    """
    for low, rate in sorted(bins, key=lambda b: b[0], reverse=True):
        if nsb_level_pe >= low:
            return rate
    return None


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


class _PedestalBuffers:
    """Sliding buffers of one telescope's interleaved pedestal events."""

    def __init__(self, raw_size, image_size):
        self.raw_std = deque(maxlen=raw_size)
        self.images = deque(maxlen=image_size)
        self._sum = None
        self._sum2 = None
        self.mean_raw_std = None
        self._statistics = None

    def add_raw(self, raw_std):
        self.raw_std.append(raw_std)
        self.mean_raw_std = np.mean(self.raw_std, axis=0)

    def add_image(self, image):
        image = image.astype(np.float64)
        if self._sum is None:
            self._sum = np.zeros_like(image)
            self._sum2 = np.zeros_like(image)
        if len(self.images) == self.images.maxlen:
            oldest = self.images[0]
            self._sum -= oldest
            self._sum2 -= oldest**2
        self.images.append(image)
        self._sum += image
        self._sum2 += image**2
        n = len(self.images)
        mean = self._sum / n
        std = np.sqrt(np.maximum(self._sum2 / n - mean**2, 0.0))
        self._statistics = (mean, std, n)

    def statistics(self):
        """Mean and std of the buffered pedestal charges (p.e.) and their number, or None."""
        return self._statistics


class _PedestalWindow:
    """Statistics of the pedestal events of one time window."""

    def __init__(self, start_ns, n_pixels):
        self.start_ns = start_ns
        self.stop_ns = start_ns
        self.n = 0
        self.sum = np.zeros(n_pixels)
        self.sum2 = np.zeros(n_pixels)
        self.images = []
        self.raw_std_sum = np.zeros(n_pixels)

    def add(self, image, raw_std, time_ns):
        self.n += 1
        self.sum += image
        self.sum2 += np.asarray(image, dtype=np.float64) ** 2
        self.images.append(np.asarray(image, dtype=np.float32))
        self.raw_std_sum += raw_std
        self.stop_ns = time_ns

    def row(self):
        mean = self.sum / self.n
        return {
            "start_ns": self.start_ns,
            "stop_ns": self.stop_ns,
            "n_events": self.n,
            "charge_mean": mean,
            "charge_median": np.median(self.images, axis=0),
            "charge_std": np.sqrt(np.maximum(self.sum2 / self.n - mean**2, 0.0)),
            "raw_std_mean": self.raw_std_sum / self.n,
        }


class NsbCalibrator(TelescopeComponent):
    """
    Pedestal monitoring and NSB corrections of SST-1M raw data.

    Owned by the SST1MEventSource, which calls it for every event in time order
    (pedestal events included, before ctapipe drops them):

    * interleaved pedestal events feed two sliding buffers: the per-pixel
      standard deviation of the raw waveform (ADC) and the calibrated charge
      image (p.e., extracted like the showers, with the top-level
      ``CameraCalibrator`` configuration);
    * every event gets the voltage-drop factor (R1 is divided by it), the
      dynamic dead pixels (outliers), ``coefficients.factor`` =
      intensity correction / window transmittance, saturated pixels re-integrated
      (through ``coefficients.factor`` and ``coefficients.time_shift``), and the
      pedestal statistics in ``pixel_statistics.pedestal_image`` that
      ImageCleanerSST uses.
    """

    apply_pixelwise_Vdrop_correction = Bool(
        default_value=False,
        help="Voltage-drop correction per pixel from each pixel's pedestal variance.",
    ).tag(config=True)

    apply_global_Vdrop_correction = Bool(
        default_value=False,
        help=(
            "Voltage-drop correction of the whole camera from the median over pixels of"
            " the pedestal variance. Ignored when the pixel-wise correction is on."
        ),
    ).tag(config=True)

    intensity_correction = FloatTelescopeParameter(
        default_value=1.0,
        help="Global scale of the charges per telescope (multiplies the DL1 image).",
    ).tag(config=True)

    dynamic_dead_pixel_interpolation = Bool(
        default_value=True,
        help="Interpolate pixels whose pedestal waveform std is below dead_pixel_std_threshold_adc.",
    ).tag(config=True)

    dead_pixel_std_threshold_adc = Float(
        default_value=2.5,
        help="Pedestal waveform std (ADC) below which a pixel is dead.",
    ).tag(config=True)

    window_transmittance_path = TelescopeParameter(
        trait=Path(exists=True, directory_ok=False, allow_none=True),
        default_value=[("type", "*", None)],
        help=(
            "Camera-window transmittance factors per pixel ('pixel_id correction_factor'"
            " table) per telescope; charges are divided by them. None: no correction."
        ),
    ).tag(config=True)

    swapped_modules_path = Path(
        default_value=None,
        allow_none=True,
        exists=True,
        directory_ok=False,
        help="JSON list of periods when two modules were swapped (needs pixel_mapping_path).",
    ).tag(config=True)

    pixel_mapping_path = Path(
        default_value=None,
        allow_none=True,
        exists=True,
        directory_ok=False,
        help="DigiCam pixel mapping table (module of each pixel), for swapped modules.",
    ).tag(config=True)

    raw_buffer_size = Int(
        default_value=100,
        help="Number of pedestal events in the raw-std (voltage drop) buffer.",
    ).tag(config=True)

    image_buffer_size = Int(
        default_value=1000,
        help="Number of pedestal charge images in the statistics buffer.",
    ).tag(config=True)

    warm_up_pedestals = Int(
        default_value=10,
        help=(
            "Pedestal events read ahead at the start of a run before the first events are"
            " calibrated (the first events use them; nothing is read twice)."
        ),
    ).tag(config=True)

    max_warm_up_events = Int(
        default_value=300,
        help="At most this many events are held back while waiting for the warm-up pedestals.",
    ).tag(config=True)

    min_number_pedestals = Int(
        default_value=100,
        help="Minimum number of pedestal events of a time window used for re-cleaning.",
    ).tag(config=True)

    pedestal_time_window_s = Float(
        default_value=10.0,
        help="Length of the time windows of the pedestal charge maps (s).",
    ).tag(config=True)

    mean_charge_to_nsb_rate = Dict(
        key_trait=Int(),
        value_trait=List(List(Float(), minlen=2, maxlen=2)),
        default_value={
            21: [[0, 80], [2.3526, 150], [2.8863, 270]],
            22: [[0, 80], [2.5288, 150], [3.2747, 270]],
        },
        help="Per telescope: [mean pedestal charge bin low edge (p.e.), NSB rate (MHz)].",
    ).tag(config=True)

    recleaning_statistics_path = Path(
        default_value=None,
        allow_none=True,
        exists=True,
        directory_ok=False,
        help=(
            "Re-cleaning: DL1 file of a first sst1m-process pass; the pedestal statistics of"
            " its time windows (with more than min_number_pedestals pedestals) replace the"
            " sliding buffer for the cleaning thresholds."
        ),
    ).tag(config=True)

    charge_histogram_bins = Int(
        default_value=1000,
        help="Number of bins of the pedestal pixel-charge histogram.",
    ).tag(config=True)

    charge_histogram_range_pe = List(
        Float(),
        default_value=[-10.0, 40.0],
        minlen=2,
        maxlen=2,
        help="Range (p.e.) of the pedestal pixel-charge histogram.",
    ).tag(config=True)

    saturation_threshold_adc = Float(
        default_value=3000.0,
        help="Baseline-subtracted maximum (ADC) above which a pixel saturates.",
    ).tag(config=True)

    saturation_width_level_adc = Float(
        default_value=2500.0,
        help="Level (ADC) above which samples count for the saturation width.",
    ).tag(config=True)

    saturation_min_width_samples = Int(
        default_value=5,
        help="A saturated pixel has more samples than this above the width level.",
    ).tag(config=True)

    saturation_integration_level = Float(
        default_value=0.2,
        help="Fraction of the maximum that delimits the re-integrated pulse.",
    ).tag(config=True)

    def __init__(self, subarray, config=None, parent=None, **kwargs):
        super().__init__(subarray=subarray, config=config, parent=parent, **kwargs)
        self.calibrator = CameraCalibrator(subarray=subarray, parent=self)
        self.buffers = {}
        self.counts = {tel_id: Counter() for tel_id in subarray.tel}
        self._window = {}
        self._base_factor = {}
        self._voltage_drop = {}
        self._dead = {}
        self._swaps = []
        self._module_pixels = None
        #: closed pedestal time windows per telescope (dicts of window statistics)
        self.pedestal_windows = {tel_id: [] for tel_id in subarray.tel}
        self._open_window = {}
        #: pedestal pixel-charge histogram per telescope
        self.charge_histogram_edges = np.linspace(
            *self.charge_histogram_range_pe, self.charge_histogram_bins + 1
        )
        self.charge_histograms = {
            tel_id: np.zeros(self.charge_histogram_bins, dtype=np.int64)
            for tel_id in subarray.tel
        }
        #: per event: (obs_id, event_id, tel_id, event type, NSB level, voltage drop)
        self.event_records = []
        self._recleaning_windows = None
        if self.recleaning_statistics_path is not None:
            self._recleaning_windows = read_pedestal_windows(
                self.recleaning_statistics_path, subarray.tel, self.min_number_pedestals
            )
        if self.swapped_modules_path is not None:
            if self.pixel_mapping_path is None:
                raise ValueError(
                    "NsbCalibrator.swapped_modules_path needs NsbCalibrator.pixel_mapping_path"
                )
            self._swaps = read_swapped_modules(self.swapped_modules_path)
            self._module_pixels = read_module_pixels(self.pixel_mapping_path)

    # ------------------------------------------------------------ per run
    def module_permutation(self, tel_id, time):
        """
        Pixel permutation undoing swapped module cables at a time, or None.

        Parameters
        ----------
        tel_id : int
            Telescope id.
        time : astropy.time.Time
            Time of the run (first event).

        Returns
        -------
        numpy.ndarray or None
            ``corrected = labelled[permutation]``.
        """
        permutation = None
        for swap_tel, start, stop, module_1, module_2 in self._swaps:
            if swap_tel != tel_id or not start <= time < stop:
                continue
            if permutation is None:
                n_pixels = self.subarray.tel[tel_id].camera.geometry.n_pixels
                permutation = np.arange(n_pixels)
            pixels_1 = self._module_pixels[module_1]
            pixels_2 = self._module_pixels[module_2]
            permutation[pixels_1], permutation[pixels_2] = (
                pixels_2.copy(),
                pixels_1.copy(),
            )
            self.log.info(
                "tel %d: modules %d and %d swapped back", tel_id, module_1, module_2
            )
        return permutation

    def _charge_factor(self, tel_id):
        """intensity_correction / window transmittance per pixel (computed once)."""
        if tel_id not in self._base_factor:
            path = self.window_transmittance_path.tel[tel_id]
            n_pixels = self.subarray.tel[tel_id].camera.geometry.n_pixels
            if path is None:
                self.log.info(
                    "tel %d: no camera-window transmittance correction", tel_id
                )
                window = np.ones(n_pixels)
            else:
                window = read_window_transmittance(path, n_pixels)
            self._base_factor[tel_id] = self.intensity_correction.tel[tel_id] / window
        return self._base_factor[tel_id]

    def _buffers(self, tel_id):
        if tel_id not in self.buffers:
            self.buffers[tel_id] = _PedestalBuffers(
                self.raw_buffer_size, self.image_buffer_size
            )
        return self.buffers[tel_id]

    @property
    def voltage_drop_mode(self):
        """'pixelwise', 'global' or 'none'."""
        if self.apply_pixelwise_Vdrop_correction:
            return "pixelwise"
        return "global" if self.apply_global_Vdrop_correction else "none"

    # ----------------------------------------------------------- per event
    def voltage_drop(self, tel_id):
        """Current voltage-drop factor (scalar or per pixel; 1 without correction or pedestals)."""
        return self._voltage_drop.get(tel_id, 1.0)

    def add_pedestal_waveform(self, tel_id, raw_waveform):
        """Add the raw waveform (n_pixels, n_samples, ADC) of a pedestal event."""
        buffers = self._buffers(tel_id)
        buffers.add_raw(raw_waveform.std(axis=1, dtype=np.float64))
        mean_std = buffers.mean_raw_std
        if self.apply_pixelwise_Vdrop_correction:
            self._voltage_drop[tel_id] = voltage_drop_factor(mean_std**2, tel_id)
        elif self.apply_global_Vdrop_correction:
            self._voltage_drop[tel_id] = float(
                voltage_drop_factor(np.median(mean_std) ** 2, tel_id)
            )
        if self.dynamic_dead_pixel_interpolation:
            self._dead[tel_id] = mean_std < self.dead_pixel_std_threshold_adc

    def add_pedestal_image(self, event, tel_id, time_ns):
        """Calibrate a pedestal event (already filled by fill_monitoring) and buffer its image."""
        self.calibrator(event)
        image = event.dl1.tel[tel_id].image
        buffers = self._buffers(tel_id)
        buffers.add_image(image)
        self.counts[tel_id]["pedestal events"] += 1
        self.charge_histograms[tel_id] += np.histogram(
            image, self.charge_histogram_edges
        )[0]
        self._add_to_window(tel_id, image, buffers.raw_std[-1], time_ns)

    def _add_to_window(self, tel_id, image, raw_std, time_ns):
        window_ns = int(self.pedestal_time_window_s * 1e9)
        window = self._open_window.get(tel_id)
        if window is not None and time_ns - window.start_ns >= window_ns:
            self.pedestal_windows[tel_id].append(window.row())
            window = None
        if window is None:
            window = self._open_window[tel_id] = _PedestalWindow(time_ns, image.size)
        window.add(image, raw_std, time_ns)

    def finish(self):
        """Close the open pedestal time windows (call once after the last event)."""
        for tel_id, window in self._open_window.items():
            self.pedestal_windows[tel_id].append(window.row())
        self._open_window = {}

    def fill_monitoring(self, event, tel_id, raw_waveform, baseline_adc):
        """
        Fill the monitoring container of one telescope event.

        Parameters
        ----------
        event : ctapipe.containers.ArrayEventContainer
            Event with R1 and the outlier mask of the R0 to R1 step.
        tel_id : int
            Telescope id.
        raw_waveform : numpy.ndarray
            Raw waveforms (n_pixels, n_samples), ADC.
        baseline_adc : numpy.ndarray
            Baseline per pixel, ADC.
        """
        camera = event.monitoring.tel[tel_id].camera
        factor = self._charge_factor(tel_id)
        outliers = camera.coefficients.outlier_mask[0]
        dead = self._dead.get(tel_id)
        if dead is not None and dead.any():
            self.counts[tel_id]["events with dead pixels"] += 1
            outliers = outliers | dead

        time_shift = None
        saturated = reintegrate_saturated_pixels(
            raw_waveform,
            baseline_adc,
            event.r1.tel[tel_id].waveform[0],
            self.saturation_threshold_adc,
            self.saturation_width_level_adc,
            self.saturation_min_width_samples,
            self.saturation_integration_level,
        )
        if saturated.pixels.size:
            factor, time_shift = self._saturation_coefficients(
                event, tel_id, saturated, factor
            )

        n_interpolated = int(np.count_nonzero(outliers))
        if n_interpolated:
            self.counts[tel_id]["events with interpolated pixels"] += 1
            self.counts[tel_id]["interpolated pixels"] += n_interpolated
        camera.coefficients.factor = factor[np.newaxis]
        camera.coefficients.outlier_mask = outliers[np.newaxis]
        camera.coefficients.time_shift = time_shift

        statistics = self._cleaning_statistics(
            tel_id, event.sst1m[tel_id].camera_clock_ns
        )
        if statistics is None:
            # an invalid chunk (n_events -1): the cleaner falls back to static thresholds
            camera.pixel_statistics.pedestal_image = ChunkStatisticsContainer()
            self.counts[tel_id]["events without pedestal statistics"] += 1
            self._record(event, tel_id)
            return
        mean, std, n_events = statistics
        camera.pixel_statistics.pedestal_image = ChunkStatisticsContainer(
            mean=mean[np.newaxis], std=std[np.newaxis], n_events=n_events, is_valid=True
        )
        event.sst1m[tel_id].nsb_level_pe = float(np.mean(mean))
        self._record(event, tel_id)

    def _record(self, event, tel_id):
        sst1m = event.sst1m[tel_id]
        self.event_records.append(
            (
                event.index.obs_id,
                event.index.event_id,
                tel_id,
                event.trigger.event_type.value,
                sst1m.nsb_level_pe,
                sst1m.voltage_drop,
            )
        )

    def _cleaning_statistics(self, tel_id, time_ns):
        """Pedestal charge statistics for the cleaning: re-cleaning windows or the live buffer."""
        if self._recleaning_windows is None:
            return self._buffers(tel_id).statistics()
        windows = self._recleaning_windows.get(tel_id)
        if not windows:
            return None
        chosen = windows[0]
        for window in windows:
            if window["start_ns"] <= time_ns:
                chosen = window
        return chosen["charge_mean"], chosen["charge_std"], chosen["n_events"]

    def _saturation_coefficients(self, event, tel_id, saturated, factor):
        """Factor and time shift making the extracted charge and time those of the whole pulse."""
        calibrator = self.calibrator
        extractor = calibrator.image_extractors[
            calibrator.image_extractor_type.tel[tel_id]
        ]
        r1 = event.r1.tel[tel_id]
        extracted = extractor(
            r1.waveform,
            tel_id=tel_id,
            selected_gain_channel=r1.selected_gain_channel,
            broken_pixels=event.monitoring.tel[tel_id].camera.coefficients.outlier_mask,
        )
        pixels = saturated.pixels
        usable = extracted.image[pixels] > 0
        pixels = pixels[usable]
        factor = factor.copy()
        factor[pixels] *= saturated.charge_pe[usable] / extracted.image[pixels]
        time_shift = np.zeros((1, factor.size))
        time_shift[0, pixels] = (
            extracted.peak_time[pixels] - saturated.peak_time_ns[usable]
        )
        self.counts[tel_id]["events with saturated pixels"] += 1
        self.counts[tel_id]["saturated pixels"] += pixels.size
        return factor, time_shift

    def nsb_rate(self, tel_id):
        """NSB rate (MHz) of the current pedestal level from mean_charge_to_nsb_rate, or None."""
        statistics = self._buffers(tel_id).statistics()
        if statistics is None or tel_id not in self.mean_charge_to_nsb_rate:
            return None
        return nsb_rate_label(
            float(np.mean(statistics[0])), self.mean_charge_to_nsb_rate[tel_id]
        )
