"""
gammapy's checks of a DL3 data store, complete and without crashing.

``gammapy.data.DataStore.check()`` (gammapy 2.1) stops with ``AttributeError: 'Time'
object has no attribute 'unit'`` on every data store: its event-list column check asks
the ``TIME`` column for a unit, but gammapy 2.1 reads ``TIME`` as an astropy ``Time``.
`check_data_store` runs every check of ``DataStore.check()`` but that one, and checks
the columns and their units itself. gammapy's time check also fails on a list of one
event (the minimum of no interval): for such a list the event is checked to lie in the
observation here.
"""

import astropy.units as u
from gammapy.data import DataStore
from gammapy.data.data_store import DataStoreChecker
from gammapy.data.event_list import EventListChecker
from gammapy.data.observations import ObservationChecker

__all__ = ["check_data_store"]

#: EventListChecker.CHECKS without "columns" (see the module docstring)
_EVENT_CHECKS = [name for name in EventListChecker.CHECKS if name != "columns"]
_OBSERVATION_CHECKS = [name for name in ObservationChecker.CHECKS if name != "events"]
_STORE_CHECKS = [name for name in DataStoreChecker.CHECKS if name != "observations"]


def _event_columns(events, obs_id):
    table = events.table
    if len(table) == 0:
        yield {"level": "error", "obs_id": obs_id, "msg": "Events table has zero rows"}
    for name, unit in EventListChecker.columns_required:
        if name not in table.colnames:
            yield {"level": "error", "obs_id": obs_id, "msg": f"Missing column {name}"}
        elif name == "TIME":
            continue  # a Time column in gammapy 2.1: its scale is checked by "times"
        elif u.Unit(unit) != (table[name].unit or u.dimensionless_unscaled):
            yield {
                "level": "error",
                "obs_id": obs_id,
                "msg": f"Invalid unit for column {name}: {table[name].unit}",
            }


def _single_event_time(observation):
    """gammapy's "times" check for an event list of at most one event."""
    times = observation.events.time
    if len(times) and not (observation.tstart <= times[0] <= observation.tstop):
        yield {
            "level": "error",
            "obs_id": observation.obs_id,
            "msg": "Event time outside the observation",
        }


def check_data_store(path):
    """
    Run gammapy's checks on the data store in a directory.

    Parameters
    ----------
    path : path-like
        Directory with ``hdu-index.fits.gz`` and ``obs-index.fits.gz``.

    Returns
    -------
    list of dict
        gammapy's check records (``level``, ``msg``, ``obs_id`` …) at levels
        ``warning`` and ``error``; empty when there is no problem.
    """
    data_store = DataStore.from_dir(path)
    records = list(DataStoreChecker(data_store).run(checks=_STORE_CHECKS))
    for obs_id in data_store.obs_table["OBS_ID"]:
        observation = data_store.obs(obs_id)
        records += ObservationChecker(observation).run(checks=_OBSERVATION_CHECKS)
        events = observation.events
        checks = _EVENT_CHECKS
        if len(events.table) < 2:
            checks = [name for name in checks if name != "times"]
            records += _single_event_time(observation)
        records += EventListChecker(events).run(checks=checks)
        records += _event_columns(events, obs_id)
    return [r for r in records if r.get("level") in ("warning", "error")]
