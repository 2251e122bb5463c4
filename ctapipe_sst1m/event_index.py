"""Matching rows of event tables by their ids (obs_id, event_id[, tel_id]), vectorised."""

import math

import numpy as np

__all__ = ["event_keys", "row_index"]

EVENT_ID_COLUMNS = ("obs_id", "event_id")


def event_keys(table, columns=EVENT_ID_COLUMNS):
    """Record array of the id columns of a table (compares and sorts lexicographically)."""
    return np.rec.fromarrays(
        [np.asarray(table[name], dtype=np.int64) for name in columns],
        names=",".join(columns),
    )


def _integer_keys(reference, table, columns):
    """
    One int64 key per row of both tables, ordered like the ids (None on overflow).

    Each id column is replaced by the rank of its value among the distinct values of
    both tables, and the ranks are combined in a mixed radix (sorting int64 is much
    faster than sorting records).
    """
    ranks, radices = [], []
    for name in columns:
        ids = np.concatenate(
            [
                np.asarray(reference[name], dtype=np.int64),
                np.asarray(table[name], dtype=np.int64),
            ]
        )
        distinct, rank = np.unique(ids, return_inverse=True)
        ranks.append(rank.ravel())
        radices.append(len(distinct))
    if math.prod(radices) >= 2**63:
        return None
    key = np.zeros(len(reference) + len(table), dtype=np.int64)
    for rank, radix in zip(ranks, radices):
        key = key * radix + rank
    return key[: len(reference)], key[len(reference) :]


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
    keys = _integer_keys(reference, table, columns)
    if keys is None:
        reference_keys, table_keys = (
            event_keys(reference, columns),
            event_keys(table, columns),
        )
    else:
        reference_keys, table_keys = keys
    order = np.argsort(reference_keys, kind="stable")
    position = np.clip(
        np.searchsorted(reference_keys[order], table_keys), 0, len(order) - 1
    )
    rows = order[position]
    if not np.all(reference_keys[rows] == table_keys):
        raise ValueError(
            f"rows whose {', '.join(columns)} are not in the reference table"
        )
    return rows
