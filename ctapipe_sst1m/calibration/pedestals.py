"""
Interleaved pedestal events of SST-1M runs: sliding buffers, time windows, NSB level.

DigiCam records pedestal events (random triggers) interleaved with the showers. Their
raw waveform standard deviation (ADC) measures the voltage drop and the dead pixels,
their calibrated charge (p.e.) the night-sky background that raises the cleaning
thresholds. The NsbCalibrator keeps them in sliding buffers, summarises them per time
window for the monitoring tables, and for re-cleaning reads the windows of a first pass.
For comparisons with the reference pipeline it can also count the pedestals read ahead
at the start of a run twice, as sst1mpipe's buffer does (`PreloadedPedestals`).
"""

from collections import deque

import numpy as np

__all__ = [
    "PedestalBuffers",
    "PedestalWindow",
    "PreloadedPedestals",
    "recleaning_statistics",
    "nsb_rate_label",
]


class PedestalBuffers:
    """
    Sliding buffers of one telescope's interleaved pedestal events.

    Parameters
    ----------
    raw_size : int
        Number of raw waveform standard deviations kept (voltage drop, dead pixels).
    image_size : int
        Number of charge images kept (pedestal statistics of the cleaning).
    """

    def __init__(self, raw_size, image_size):
        self.raw_std = deque(maxlen=raw_size)
        self.images = deque(maxlen=image_size)
        self._sum = None
        self._sum2 = None
        #: mean over the buffer of the raw waveform std per pixel (ADC)
        self.mean_raw_std = None
        self._statistics = None

    def add_raw(self, raw_std):
        """Add the raw waveform std per pixel (ADC) of a pedestal event."""
        self.raw_std.append(raw_std)
        self.mean_raw_std = np.mean(self.raw_std, axis=0)

    def add_image(self, image):
        """Add the charge image (p.e.) of a pedestal event; running sums, no re-summing."""
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


class PreloadedPedestals:
    """
    Pedestals read ahead of the event loop (the warm-up), to be buffered a second time.

    sst1mpipe pre-loads the first pedestals of a file into its buffers and appends every
    pedestal again when its main loop reaches it, so from the first pedestal of the loop
    on, the pre-loaded ones count twice (reference-pipeline-spec section 3.7). This class
    reproduces that buffer for comparisons; it is not the correct statistics.
    """

    def __init__(self):
        #: True until the event loop starts (the first shower event after the warm-up)
        self.loading = True
        self._pedestals = deque()

    def add(self, time_ns, raw_std, image, voltage_drop):
        """
        Keep a pedestal buffered during the loading.

        Parameters
        ----------
        time_ns : int
            Camera time of the pedestal (ns).
        raw_std : numpy.ndarray
            Raw waveform std per pixel (ADC).
        image : numpy.ndarray
            Charge image (p.e.), calibrated with ``voltage_drop``.
        voltage_drop : float or numpy.ndarray
            Voltage-drop factor the image was calibrated with.
        """
        if self.loading:
            self._pedestals.append(
                (time_ns, raw_std, np.array(image, dtype=np.float64), voltage_drop)
            )

    def reached(self, time_ns):
        """
        End the loading and hand out the kept pedestals earlier than an event, once.

        Parameters
        ----------
        time_ns : int
            Camera time of the event the loop has reached (ns).

        Returns
        -------
        list of tuple
            ``(raw_std, image, voltage_drop)`` in time order.
        """
        self.loading = False
        reached = []
        while self._pedestals and self._pedestals[0][0] < time_ns:
            reached.append(self._pedestals.popleft()[1:])
        return reached


class PedestalWindow:
    """
    Statistics of the pedestal events of one time window.

    Parameters
    ----------
    start_ns : int
        Camera time of the first pedestal event of the window (ns).
    n_pixels : int
        Pixels of the camera.
    """

    def __init__(self, start_ns, n_pixels):
        self.start_ns = start_ns
        self.stop_ns = start_ns
        self.n = 0
        self.sum = np.zeros(n_pixels)
        self.sum2 = np.zeros(n_pixels)
        self.images = []
        self.raw_std_sum = np.zeros(n_pixels)

    def add(self, image, raw_std, time_ns):
        """Add a pedestal event: charge image (p.e.), raw waveform std (ADC), time (ns)."""
        self.n += 1
        self.sum += image
        self.sum2 += np.asarray(image, dtype=np.float64) ** 2
        self.images.append(np.asarray(image, dtype=np.float32))
        self.raw_std_sum += raw_std
        self.stop_ns = time_ns

    def row(self):
        """The window as a row of the pedestal monitoring table (a dict)."""
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


def recleaning_statistics(windows, time_ns):
    """
    Pedestal charge statistics of a first pass for an event: those of the last window
    starting at or before the event (the first window for earlier events).

    Parameters
    ----------
    windows : list of dict
        Pedestal windows of one telescope, in time order
        (`ctapipe_sst1m.io.dl1_monitoring.read_pedestal_windows`).
    time_ns : int
        Camera time of the event (ns).

    Returns
    -------
    tuple or None
        ``(mean, std, n_events)`` of the pedestal charge (p.e.), None without windows.
    """
    if not windows:
        return None
    chosen = windows[0]
    for window in windows:
        if window["start_ns"] <= time_ns:
            chosen = window
    return chosen["charge_mean"], chosen["charge_std"], chosen["n_events"]


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
