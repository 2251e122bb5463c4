"""row_index: the rows of a reference table with the ids of another table."""

import numpy as np
import pytest
from astropy.table import Table

from ctapipe_sst1m.event_index import row_index


def test_row_index_finds_every_row():
    rng = np.random.default_rng(4)
    n = 5000
    reference = Table(
        {
            "obs_id": rng.choice([202403040012, 202403040013, 202403050001], n),
            "event_id": rng.choice(10**9, size=n, replace=False),
            "tel_id": rng.choice([21, 22], n),
        }
    )
    rows = rng.permutation(n)[:3000]
    table = reference[rows]
    np.testing.assert_array_equal(row_index(reference, table), rows)
    np.testing.assert_array_equal(
        row_index(reference, table, ("obs_id", "event_id", "tel_id")), rows
    )

    stranger = Table({"obs_id": [202403040012], "event_id": [10**9 + 1]})
    with pytest.raises(ValueError, match="not in the reference"):
        row_index(reference, stranger)


def test_row_index_without_integer_keys():
    # ids whose distinct values cannot be coded in one int64 key still match
    n = 2**11
    reference = Table(
        {name: np.arange(n) * 7 for name in ("a", "b", "c", "d", "e", "f")}
    )
    table = reference[::-3]
    np.testing.assert_array_equal(
        row_index(reference, table, tuple("abcdef")), np.arange(n)[::-3]
    )
