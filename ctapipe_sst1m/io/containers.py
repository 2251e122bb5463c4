"""Containers for SST-1M specific event data that the ctapipe data model lacks."""

from functools import partial

import numpy as np
from ctapipe.containers import ArrayEventContainer
from ctapipe.core import Container, Field, Map

__all__ = ["SST1MCameraContainer", "SST1MArrayEventContainer"]


class SST1MCameraContainer(Container):
    """Raw DigiCam event information of one telescope."""

    default_prefix = "sst1m"

    camera_event_number = Field(-1, "camera event counter (eventNumber)", type=np.int64)
    array_event_number = Field(
        -1, "SWAT array event number (arrayEvtNum), -1 when absent", type=np.int64
    )
    camera_event_type = Field(
        0, "camera trigger-type bit field (event_type)", type=np.int64
    )
    camera_clock_ns = Field(
        -1,
        "camera clock, integer ns since 1970-01-01 on camera_clock_scale",
        type=np.int64,
    )
    white_rabbit_time_ns = Field(
        -1,
        "White Rabbit trigger time, integer TAI ns since 1970-01-01, -1 when absent",
        type=np.int64,
    )
    baseline_adc = Field(None, "DigiCam on-board baseline per pixel (ADC)", ndim=1)
    nsb_level_pe = Field(
        np.nan,
        "NSB level: mean pedestal charge over the camera (p.e.), NaN without pedestals",
    )
    voltage_drop = Field(
        1.0, "voltage-drop factor R1 was divided by (global mean if per pixel)"
    )


class SST1MArrayEventContainer(ArrayEventContainer):
    """ArrayEventContainer with the raw DigiCam information per telescope."""

    sst1m = Field(
        default_factory=partial(Map, SST1MCameraContainer),
        description="raw DigiCam information by telescope id",
    )
