"""sst1m-night: the nightly processing of SST-1M data."""
