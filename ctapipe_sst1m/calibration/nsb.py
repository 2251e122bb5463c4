"""
NSB-dependent corrections of SST-1M data, from the interleaved pedestal events.

The NsbCalibrator keeps sliding buffers of the interleaved pedestal events of a
run (raw waveform standard deviation in ADC, calibrated charge images in p.e.)
and turns them into the corrections of every event: the SiPM voltage drop
(`ctapipe_sst1m.voltage_drop`), dead pixels, the camera-window
transmittance, a per-telescope intensity scale and swapped modules
(`ctapipe_sst1m.calibration.camera_corrections`), saturated-pixel re-integration
(`ctapipe_sst1m.calibration.saturation`) and the pedestal statistics that
ImageCleanerSST uses to raise its thresholds
(`ctapipe_sst1m.calibration.pedestals`).

The module is long because the NsbCalibrator owns the options of all these corrections
(about twenty traitlets with their help) and their order per event; the physics of each
correction stays in its own module.
"""

from collections import Counter, deque

import numpy as np
from ctapipe.calib import CameraCalibrator
from ctapipe.containers import ChunkStatisticsContainer, EventType
from ctapipe.core import TelescopeComponent
from ctapipe.core.traits import (
    Bool,
    Float,
    Int,
    List,
    Path,
    TelescopeParameter,
)
from traitlets import TraitError, default, validate

from ..io.calibration_files import read_module_pixels, read_swapped_modules
from ..io.dl1_monitoring import EventNsbRecord, read_pedestal_windows
from ..voltage_drop import camera_voltage_drop, clipped_variance_adc2
from .camera_corrections import charge_factor, module_permutation
from .pedestals import (
    PedestalBuffers,
    PedestalWindow,
    PreloadedPedestals,
    nsb_rate_label,
    recleaning_statistics,
)
from .saturation import reintegrate_saturated_pixels, saturation_coefficients

__all__ = ["NsbCalibrator"]


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

    intensity_correction = TelescopeParameter(
        trait=Float(min=0.0),
        default_value=1.0,
        help="Global scale of the charges per telescope (multiplies the DL1 image).",
    ).tag(config=True)

    dynamic_dead_pixel_interpolation = Bool(
        default_value=True,
        help="Interpolate pixels whose pedestal waveform std is below dead_pixel_std_threshold_adc.",
    ).tag(config=True)

    dead_pixel_std_threshold_adc = Float(
        default_value=2.5,
        min=0.0,
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
        help=(
            "JSON list of periods when two modules of a telescope were swapped (needs"
            " pixel_mapping_path)."
        ),
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
        min=1,
        help="Number of pedestal events in the raw-std (voltage drop) buffer.",
    ).tag(config=True)

    image_buffer_size = Int(
        default_value=1000,
        min=1,
        help="Number of pedestal charge images in the statistics buffer.",
    ).tag(config=True)

    warm_up_pedestals = Int(
        default_value=10,
        min=0,
        help=(
            "Pedestal events read ahead at the start of a run before the first events are"
            " calibrated (the first events use them; nothing is read twice)."
        ),
    ).tag(config=True)

    max_warm_up_events = Int(
        default_value=300,
        min=0,
        help="At most this many events are held back while waiting for the warm-up pedestals.",
    ).tag(config=True)

    count_warm_up_pedestals_twice = Bool(
        default_value=False,
        help=(
            "Reproduce the reference pipeline's pedestal buffer, for comparisons only: the"
            " warm-up pedestals enter the buffers a second time when the event loop reaches"
            " them, recalibrated with the voltage drop of that moment (sst1mpipe pre-loads"
            " them and appends them again). False: each pedestal counts once (correct)."
        ),
    ).tag(config=True)

    min_number_pedestals = Int(
        default_value=100,
        min=0,
        help="Minimum number of pedestal events of a time window used for re-cleaning.",
    ).tag(config=True)

    pedestal_time_window_s = Float(
        default_value=10.0,
        min=0.0,
        help="Length of the time windows of the pedestal charge maps (s).",
    ).tag(config=True)

    mean_charge_to_nsb_rate = TelescopeParameter(
        trait=List(List(Float(), minlen=2, maxlen=2)),
        help=(
            "Per telescope: [[mean pedestal charge bin low edge (p.e.), NSB rate (MHz)],"
            " ...]; an empty list: no NSB rate. Default: the reference bins of"
            " telescopes 21 and 22, none for other telescopes."
        ),
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
        min=1,
        help="Number of bins of the pedestal pixel-charge histogram.",
    ).tag(config=True)

    charge_histogram_range_pe = List(
        Float(),
        default_value=[-10.0, 40.0],
        minlen=2,
        maxlen=2,
        help="Range (p.e.) of the pedestal pixel-charge histogram: [low, high], low < high.",
    ).tag(config=True)

    saturation_threshold_adc = Float(
        default_value=3000.0,
        min=0.0,
        help="Baseline-subtracted maximum (ADC) above which a pixel saturates.",
    ).tag(config=True)

    saturation_width_level_adc = Float(
        default_value=2500.0,
        min=0.0,
        help="Level (ADC) above which samples count for the saturation width.",
    ).tag(config=True)

    saturation_min_width_samples = Int(
        default_value=5,
        min=0,
        help="A saturated pixel has more samples than this above the width level.",
    ).tag(config=True)

    saturation_integration_level = Float(
        default_value=0.2,
        min=0.0,
        max=1.0,
        help="Fraction of the maximum that delimits the re-integrated pulse.",
    ).tag(config=True)

    @default("mean_charge_to_nsb_rate")
    def _default_nsb_rate_bins(self):
        # a dynamic default: ctapipe validates a static default of a TelescopeParameter
        # without an owner, which fails for nested lists
        return [
            ("type", "*", []),
            ("id", 21, [[0, 80], [2.3526, 150], [2.8863, 270]]),
            ("id", 22, [[0, 80], [2.5288, 150], [3.2747, 270]]),
        ]

    @validate("charge_histogram_range_pe")
    def _check_histogram_range(self, proposal):
        low, high = proposal["value"]
        if not low < high:
            raise TraitError(
                f"charge_histogram_range_pe needs low < high, got {proposal['value']}"
            )
        return proposal["value"]

    def __init__(self, subarray, config=None, parent=None, **kwargs):
        super().__init__(subarray=subarray, config=config, parent=parent, **kwargs)
        self.calibrator = CameraCalibrator(subarray=subarray, parent=self)
        self.buffers = {}
        self.counts = {tel_id: Counter() for tel_id in subarray.tel}
        self._base_factor = {}
        self._voltage_drop = {}
        self._dead = {}
        #: raw waveform std of pedestals whose image is not buffered yet (the warm-up
        #: adds all raw waveforms first, then the images in the same order)
        self._pending_raw_std = {tel_id: deque() for tel_id in subarray.tel}
        self._preloaded = {tel_id: PreloadedPedestals() for tel_id in subarray.tel}
        self._clipped_drop_reported = set()
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
        #: an EventNsbRecord per telescope event
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
        self._read_window_transmittance()

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
        n_pixels = self.subarray.tel[tel_id].camera.geometry.n_pixels
        permutation, swapped = module_permutation(
            self._swaps, self._module_pixels, tel_id, time, n_pixels
        )
        for module_1, module_2 in swapped:
            self.log.info(
                "tel %d: modules %d and %d swapped back", tel_id, module_1, module_2
            )
        return permutation

    def _charge_factor(self, tel_id):
        """intensity_correction / window transmittance per pixel (computed once)."""
        if tel_id not in self._base_factor:
            path = self.window_transmittance_path.tel[tel_id]
            if path is None:
                self.log.info(
                    "tel %d: no camera-window transmittance correction", tel_id
                )
            self._base_factor[tel_id] = charge_factor(
                self.intensity_correction.tel[tel_id],
                path,
                self.subarray.tel[tel_id].camera.geometry.n_pixels,
            )
        return self._base_factor[tel_id]

    def _read_window_transmittance(self):
        """
        Charge factors of the telescopes with a window transmittance file.

        Read when the component is set up, so that a bad file stops a tool before
        it opens any output.
        """
        for tel_id in self.subarray.tel:
            try:
                path = self.window_transmittance_path.tel[tel_id]
            except KeyError:  # no value: fails at the telescope's first event, if any
                continue
            if path is not None:
                try:
                    self._charge_factor(tel_id)
                except ValueError as err:
                    raise TraitError(
                        "NsbCalibrator.window_transmittance_path of telescope"
                        f" {tel_id}: {err}"
                    ) from None

    def _buffers(self, tel_id):
        if tel_id not in self.buffers:
            self.buffers[tel_id] = PedestalBuffers(
                self.raw_buffer_size, self.image_buffer_size
            )
        return self.buffers[tel_id]

    @property
    def voltage_drop_mode(self):
        """'pixelwise', 'global' or 'none' (`ctapipe_sst1m.voltage_drop`)."""
        if self.apply_pixelwise_Vdrop_correction:
            return "pixelwise"
        return "global" if self.apply_global_Vdrop_correction else "none"

    # ----------------------------------------------------------- per event
    def voltage_drop(self, tel_id):
        """Current voltage-drop factor (scalar or per pixel; 1 without correction or pedestals)."""
        return self._voltage_drop.get(tel_id, 1.0)

    def add_pedestal_waveform(self, tel_id, raw_waveform):
        """Add the raw waveform (n_pixels, n_samples, ADC) of a pedestal event."""
        raw_std = raw_waveform.std(axis=1, dtype=np.float64)
        self._pending_raw_std[tel_id].append(raw_std)
        self._add_raw_std(tel_id, raw_std)

    def _add_raw_std(self, tel_id, raw_std):
        """Buffer a pedestal's raw waveform std; update voltage drop and dead pixels."""
        buffers = self._buffers(tel_id)
        buffers.add_raw(raw_std)
        mean_std = buffers.mean_raw_std
        drop = camera_voltage_drop(mean_std, tel_id, self.voltage_drop_mode)
        if drop is not None:
            self._voltage_drop[tel_id] = drop
        clipped = clipped_variance_adc2(mean_std, tel_id, self.voltage_drop_mode)
        if clipped is not None and tel_id not in self._clipped_drop_reported:
            self._clipped_drop_reported.add(tel_id)
            self.log.warning(
                "tel %d: pedestal variance %.1f ADC^2 is beyond the range of the"
                " voltage-drop model; the factor is clipped to %.3f (charges x %.1f)",
                tel_id,
                clipped,
                np.min(drop),
                1 / np.min(drop),
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
        raw_std = self._pending_raw_std[tel_id].popleft()
        self._add_to_window(tel_id, image, raw_std, time_ns)
        if self.count_warm_up_pedestals_twice:
            self._preloaded[tel_id].add(
                time_ns, raw_std, image, self.voltage_drop(tel_id)
            )

    def _count_preloaded_again(self, event, tel_id):
        """
        count_warm_up_pedestals_twice: the warm-up pedestals before this event enter the
        buffers again, and the event's R1 takes the voltage drop updated by them.
        """
        preloaded = self._preloaded[tel_id]
        if preloaded.loading and event.trigger.event_type == EventType.SKY_PEDESTAL:
            return  # a warm-up pedestal calibrated ahead of the loop
        used = self.voltage_drop(tel_id)
        for raw_std, image, drop in preloaded.reached(
            event.sst1m[tel_id].camera_clock_ns
        ):
            # recalibrated with the voltage drop of this moment, as sst1mpipe's loop does
            self._buffers(tel_id).add_image(image * drop / self.voltage_drop(tel_id))
            self._add_raw_std(tel_id, raw_std)
        drop = self.voltage_drop(tel_id)
        if not np.array_equal(drop, used):
            ratio = np.asarray(np.divide(used, drop), dtype=np.float32)
            event.r1.tel[tel_id].waveform *= ratio[..., np.newaxis]
            event.sst1m[tel_id].voltage_drop = float(np.mean(drop))

    def _add_to_window(self, tel_id, image, raw_std, time_ns):
        window_ns = int(self.pedestal_time_window_s * 1e9)
        window = self._open_window.get(tel_id)
        if window is not None and time_ns - window.start_ns >= window_ns:
            self.pedestal_windows[tel_id].append(window.row())
            window = None
        if window is None:
            window = self._open_window[tel_id] = PedestalWindow(time_ns, image.size)
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
        if self.count_warm_up_pedestals_twice:
            self._count_preloaded_again(event, tel_id)
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
            EventNsbRecord(
                obs_id=event.index.obs_id,
                event_id=event.index.event_id,
                tel_id=tel_id,
                event_type=event.trigger.event_type.value,
                nsb_level_pe=sst1m.nsb_level_pe,
                voltage_drop=sst1m.voltage_drop,
            )
        )

    def _cleaning_statistics(self, tel_id, time_ns):
        """Pedestal charge statistics for the cleaning: re-cleaning windows or the live buffer."""
        if self._recleaning_windows is None:
            return self._buffers(tel_id).statistics()
        return recleaning_statistics(self._recleaning_windows.get(tel_id), time_ns)

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
        factor, time_shift, n_pixels = saturation_coefficients(
            saturated, extracted, factor
        )
        self.counts[tel_id]["events with saturated pixels"] += 1
        self.counts[tel_id]["saturated pixels"] += n_pixels
        return factor, time_shift

    def nsb_rate(self, tel_id):
        """NSB rate (MHz) of the current pedestal level from mean_charge_to_nsb_rate, or None."""
        statistics = self._buffers(tel_id).statistics()
        try:
            bins = self.mean_charge_to_nsb_rate.tel[tel_id]
        except KeyError:  # a configuration without a "*" entry
            return None
        if statistics is None or not bins:
            return None
        return nsb_rate_label(float(np.mean(statistics[0])), bins)
