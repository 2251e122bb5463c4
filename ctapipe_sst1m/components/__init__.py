"""Physics components: calibration, cleaning. No file formats, no command line."""
