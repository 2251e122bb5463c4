"""Output of a performance evaluation: the summary table, ECSV files and ``performance.h5``."""

from astropy.table import QTable
from ctapipe.io import write_table

__all__ = ["OPTIONAL_TAG_TABLES", "TAG_TABLES", "summary_table", "write_performance"]


#: output tables of a tag: attributes of TagPerformance, ECSV file stems and HDF5 node names
TAG_TABLES = (
    "energy_resolution",
    "angular_resolution",
    "roc",
    "auc_per_energy",
    "gammaness_cuts_efficiency",
)
#: output tables only some tags have (None otherwise): the effective area of point gammas
OPTIONAL_TAG_TABLES = ("effective_area",)


def summary_table(results, meta):
    """
    One row per tag of the summaries of `evaluate_tag`.

    Parameters
    ----------
    results : dict[str, TagPerformance]
        Per tag.
    meta : dict
        Table metadata (inputs, cuts, spectra).

    Returns
    -------
    astropy.table.QTable
    """
    rows = [{"tag": tag, **result.summary} for tag, result in results.items()]
    table = QTable(rows=rows)
    table.meta.update(meta)
    return table


def write_performance(directory, results, summary):
    """
    Write the tables of every tag as ECSV files and into ``performance.h5``.

    The optional tables (`OPTIONAL_TAG_TABLES`) are written for the tags that have them.

    Parameters
    ----------
    directory : Path
        Existing, empty output directory.
    results : dict[str, TagPerformance]
        Per tag.
    summary : astropy.table.QTable
        From `summary_table`.

    Returns
    -------
    list of Path
        The files written.
    """
    h5_path = directory / "performance.h5"
    written = []
    for tag, result in results.items():
        for name in TAG_TABLES + OPTIONAL_TAG_TABLES:
            table = getattr(result, name)
            if table is None:
                continue
            path = directory / f"{name}_{tag}.ecsv"
            table.write(path, format="ascii.ecsv")
            written.append(path)
            write_table(table, h5_path, f"/{tag}/{name}")
    summary.write(directory / "summary.ecsv", format="ascii.ecsv")
    write_table(summary, h5_path, "/summary")
    return [*written, directory / "summary.ecsv", h5_path]
