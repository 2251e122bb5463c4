"""Fast parametric SST-1M air-shower and detector model (see ``docs/simulation-model.md``)."""
