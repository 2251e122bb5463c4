"""DL2 of real data to DL3: event selection with the cuts of the IRFs, observations, live time, IRF choice."""
