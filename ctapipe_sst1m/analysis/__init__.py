"""
High-level analysis of DL3 data with gammapy: θ², 1D spectrum and sky maps.

The steps of ``sst1m-analysis`` (`ctapipe_sst1m.tools.analysis`) as small functions:

* `~ctapipe_sst1m.analysis.observations`: opening a gammapy DataStore, selecting its
  observations, the IRF kind (point-like or full-enclosure), the target and the wobble
  offsets;
* `~ctapipe_sst1m.analysis.regions`: where the ON and OFF regions of a wobble
  observation stop overlapping, and the error raised when they do;
* `~ctapipe_sst1m.analysis.theta2`: the θ² table and the Li & Ma significance within a
  θ² cut (`gammapy.makers.utils.ThetaSquaredTable`);
* `~ctapipe_sst1m.analysis.spectrum`: the reflected-regions 1D spectrum, its fit and
  flux points;
* `~ctapipe_sst1m.analysis.skymap`: ring-background excess and significance maps;
* `~ctapipe_sst1m.analysis.plots` and `~ctapipe_sst1m.analysis.output`: the PNG plots and
  the result files.
"""
