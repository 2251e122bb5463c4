"""Integer TAI nanoseconds <-> astropy Time, exact to the nanosecond."""

import numpy as np
from astropy.time import Time
from ctapipe.time import time_to_ctao_high_res

__all__ = ["NS_PER_S", "tai_time", "tai_ns"]

NS_PER_S = 1_000_000_000
NS_PER_DAY = 86_400 * NS_PER_S
#: Julian date of 1970-01-01T00:00:00 TAI, the epoch of the integer times
JD_1970 = 2440587.5


def tai_time(time_ns):
    """
    astropy Time (TAI) of integer nanoseconds since 1970-01-01T00:00:00 TAI.

    Parameters
    ----------
    time_ns : int or numpy.ndarray
        Nanoseconds (int64).

    Returns
    -------
    astropy.time.Time
    """
    days, remainder = np.divmod(np.asarray(time_ns, dtype=np.int64), NS_PER_DAY)
    return Time(JD_1970 + days, remainder / NS_PER_DAY, format="jd", scale="tai")


def tai_ns(time):
    """
    Integer TAI nanoseconds since 1970-01-01 TAI of an astropy Time (scalar or array),
    as ctapipe stores times (quarter-ns resolution).
    """
    high_res = time_to_ctao_high_res(time).astype(np.int64)
    return high_res[..., 0] * NS_PER_S + high_res[..., 1] // 4
