"""Everything that touches a file format: raw DigiCam data, instrument, calibration files."""
