"""
ctapipe_sst1m: the SST-1M analysis chain as a ctapipe plugin.

Importing the package registers every SST-1M component with ctapipe, so that
they can be selected by name (``ImageProcessor.image_cleaner_type: ImageCleanerSST``)
in any ctapipe tool. ctapipe imports it through the ``ctapipe_io`` entry point.
"""

from .calibration.nsb import NsbCalibrator
from .calibration.r0_r1 import SST1MR0Corrections
from .event_source import SST1MEventSource
from .image.cleaning import ImageCleanerSST
from .reco.energy_regressor import SST1MEnergyRegressor
from .simulation.corrections import SST1MSimulationCorrections
from .simulation.source import SST1MSimulationSource
from .stereo.coincidence import CoincidenceMatcher
from .stereo.combiner import SST1MStereoCombiner
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
