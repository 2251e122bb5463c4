"""Matching rows of event tables by their ids (obs_id, event_id[, tel_id]), vectorised."""

import numpy as np

__all__ = ["event_keys", "row_index"]

EVENT_ID_COLUMNS = ("obs_id", "event_id")


def event_keys(table, columns=EVENT_ID_COLUMNS):
    """Record array of the id columns of a table (compares and sorts lexicographically)."""
    return np.rec.fromarrays(
        [np.asarray(table[name], dtype=np.int64) for name in columns], names=",".join(columns)
    )


def row_index(reference, table, columns=EVENT_ID_COLUMNS):
    """
    Row of ``reference`` with the ids of each row of ``table``.

    Parameters
    ----------
    reference, table : astropy.table.Table
        tables with the id ``columns``; every id of ``table`` must be in ``reference``
    columns : tuple of str

    Returns
    -------
    numpy.ndarray of int
    """
    reference_keys = event_keys(reference, columns)
    order = np.argsort(reference_keys, kind="stable")
    table_keys = event_keys(table, columns)
    position = np.clip(np.searchsorted(reference_keys[order], table_keys), 0, len(order) - 1)
    rows = order[position]
    if not np.all(reference_keys[rows] == table_keys):
        raise ValueError(f"rows whose {', '.join(columns)} are not in the reference table")
    return rows
