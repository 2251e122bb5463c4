"""
ctapipe_sst1m: the SST-1M analysis chain as a ctapipe plugin.

Importing the package registers every SST-1M component with ctapipe, so that
they can be selected by name (``ImageProcessor.image_cleaner_type: ImageCleanerSST``)
in any ctapipe tool. ctapipe imports it through the ``ctapipe_io`` entry point.
"""

from .components.cleaning import ImageCleanerSST
from .components.coincidence import CoincidenceMatcher
from .components.energy_regressor import SST1MEnergyRegressor
from .components.nsb import NsbCalibrator
from .components.r0_r1 import SST1MR0Corrections
from .components.simulation_corrections import SST1MSimulationCorrections
from .components.stereo_combiner import SST1MStereoCombiner
from .io.event_source import SST1MEventSource
from .io.simulation_source import SST1MSimulationSource
from .version import __version__

__all__ = [
    "SST1MEventSource",
    "SST1MSimulationSource",
    "SST1MR0Corrections",
    "SST1MSimulationCorrections",
    "NsbCalibrator",
    "ImageCleanerSST",
    "CoincidenceMatcher",
    "SST1MStereoCombiner",
    "SST1MEnergyRegressor",
    "__version__",
]
