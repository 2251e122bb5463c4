# A ctapipe Python configuration file that only registers the ctapipe_sst1m components.
# ctapipe's training tools load no plugins; pass this file first so that the SST-1M
# classes can be selected by name, e.g.
#   ctapipe-train-disp-reconstructor -c plugins.py -c train_disp.yaml ...
import ctapipe_sst1m  # noqa: F401
