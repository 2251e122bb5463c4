"""
Candidate pairs of two telescopes' events and their one-to-one assignment.

All functions work on sorted int64 arrays (times in ns or event ids) with
``searchsorted`` sweeps; the greedy assignment, the only loop, is compiled with numba.
"""

import numpy as np
from numba import njit

__all__ = ["assign_closest", "candidate_pairs", "count_classes", "equal_id_pairs"]


def candidate_pairs(keys_1, keys_2, low, high):
    """
    All pairs ``(i, j)`` with ``low <= keys_2[j] - keys_1[i] <= high``.

    Parameters
    ----------
    keys_1, keys_2 : numpy.ndarray
        Sorted int64 arrays (times in ns, or event ids).
    low, high : int
        Inclusive bounds of the difference.

    Returns
    -------
    index_1, index_2 : numpy.ndarray
        int64 positions in ``keys_1`` and ``keys_2``, ordered by ``index_1``
        then ``index_2``.
    """
    first = np.searchsorted(keys_2, keys_1 + low, side="left")
    n_per_key = np.searchsorted(keys_2, keys_1 + high, side="right") - first
    index_1 = np.repeat(np.arange(len(keys_1), dtype=np.int64), n_per_key)
    # position of the pair in the output minus its rank within its key_1 block
    block_start = np.cumsum(n_per_key) - n_per_key
    index_2 = np.arange(len(index_1), dtype=np.int64)
    index_2 += (first - block_start)[index_1]
    return index_1, index_2


def equal_id_pairs(ids_1, ids_2):
    """
    All pairs of events with the same positive (valid) SWAT event id.

    Parameters
    ----------
    ids_1, ids_2 : numpy.ndarray
        int64 event ids, any order; ids <= 0 mean "no SWAT id" and never pair.

    Returns
    -------
    index_1, index_2 : numpy.ndarray
        int64 positions in ``ids_1`` and ``ids_2``.
    """
    valid_1 = np.flatnonzero(ids_1 > 0)
    valid_2 = np.flatnonzero(ids_2 > 0)
    by_id_1 = valid_1[np.argsort(ids_1[valid_1], kind="stable")]
    by_id_2 = valid_2[np.argsort(ids_2[valid_2], kind="stable")]
    index_1, index_2 = candidate_pairs(ids_1[by_id_1], ids_2[by_id_2], 0, 0)
    return by_id_1[index_1], by_id_2[index_2]


@njit(cache=True)
def _take_greedily(index_1, index_2, order, used_1, used_2, keep):
    """Keep the pairs in ``order`` whose two events are still free."""
    for k in order:
        if not used_1[index_1[k]] and not used_2[index_2[k]]:
            used_1[index_1[k]] = True
            used_2[index_2[k]] = True
            keep[k] = True


def assign_closest(index_1, index_2, distance, n_1, n_2):
    """
    Greedy one-to-one assignment of candidate pairs, closest pairs first.

    Pairs are taken by increasing ``distance`` (ties by ``index_1``, then
    ``index_2``); a pair is skipped if one of its events is already used.

    Parameters
    ----------
    index_1, index_2 : numpy.ndarray
        int64 event indices of the candidate pairs.
    distance : numpy.ndarray
        Non-negative distance of each candidate pair (e.g. ``|Δt|``).
    n_1, n_2 : int
        Number of events of each telescope.

    Returns
    -------
    numpy.ndarray
        bool, True for the candidate pairs kept.
    """
    order = np.lexsort((index_2, index_1, distance))
    keep = np.zeros(len(order), dtype=bool)
    used_1 = np.zeros(n_1, dtype=bool)
    used_2 = np.zeros(n_2, dtype=bool)
    _take_greedily(index_1, index_2, order, used_1, used_2, keep)
    return keep


def count_classes(candidate_index, keep, n_events):
    """
    The disjoint classes of one telescope's events from its candidate pairs.

    Parameters
    ----------
    candidate_index : numpy.ndarray
        int64 event index of this telescope in every candidate pair.
    keep : numpy.ndarray
        bool, the candidate pairs kept (`assign_closest`).
    n_events : int
        Events of the telescope.

    Returns
    -------
    dict
        ``matched`` (paired, its only candidate), ``ambiguous`` (paired, the closest
        of several), ``rejected`` (candidates, all taken), ``unmatched`` (none).
    """
    paired = np.zeros(n_events, dtype=bool)
    paired[candidate_index[keep]] = True
    n_candidates = np.bincount(candidate_index, minlength=n_events)
    has_candidates = n_candidates > 0
    several = n_candidates > 1
    return {
        "matched": int(np.count_nonzero(paired & ~several)),
        "ambiguous": int(np.count_nonzero(paired & several)),
        "rejected": int(np.count_nonzero(~paired & has_candidates)),
        "unmatched": int(np.count_nonzero(~has_candidates)),
    }
