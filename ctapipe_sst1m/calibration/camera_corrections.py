"""
Per-pixel corrections of an SST-1M camera that hold for a whole run.

* the charge factor: a per-telescope intensity scale divided by the transmittance of
  the camera window in front of each pixel;
* swapped modules: periods when the cables of two modules were exchanged, undone by a
  permutation of the pixels.
"""

import numpy as np

from ..io.calibration_files import read_window_transmittance

__all__ = ["charge_factor", "module_permutation"]


def charge_factor(intensity_correction, window_transmittance_path, n_pixels):
    """
    Factor per pixel applied to the extracted charges: intensity / window transmittance.

    Parameters
    ----------
    intensity_correction : float
        Global scale of the telescope's charges.
    window_transmittance_path : str, pathlib.Path or None
        Camera-window transmittance table (``pixel_id correction_factor``); None: no
        window correction.
    n_pixels : int
        Pixels of the camera.

    Returns
    -------
    numpy.ndarray
        Factor per pixel.
    """
    if window_transmittance_path is None:
        window = np.ones(n_pixels)
    else:
        window = read_window_transmittance(window_transmittance_path, n_pixels)
    return intensity_correction / window


def module_permutation(swaps, module_pixels, tel_id, time, n_pixels):
    """
    Pixel permutation undoing the module cables swapped at a time.

    Parameters
    ----------
    swaps : list of tuple
        ``(tel_id, start, stop, module_1, module_2)`` periods
        (`ctapipe_sst1m.io.calibration_files.read_swapped_modules`).
    module_pixels : dict
        Pixels of each module (`ctapipe_sst1m.io.calibration_files.read_module_pixels`).
    tel_id : int
        Telescope id.
    time : astropy.time.Time
        Time of the run (first event).
    n_pixels : int
        Pixels of the camera.

    Returns
    -------
    permutation : numpy.ndarray or None
        ``corrected = labelled[permutation]``; None when no module is swapped.
    swapped : list of (int, int)
        The pairs of modules swapped back, in the order of ``swaps``.
    """
    permutation = None
    swapped = []
    for swap_tel, start, stop, module_1, module_2 in swaps:
        if swap_tel != tel_id or not start <= time < stop:
            continue
        if permutation is None:
            permutation = np.arange(n_pixels)
        pixels_1 = module_pixels[module_1]
        pixels_2 = module_pixels[module_2]
        permutation[pixels_1], permutation[pixels_2] = (
            pixels_2.copy(),
            pixels_1.copy(),
        )
        swapped.append((module_1, module_2))
    return permutation, swapped
