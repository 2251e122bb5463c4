"""Parsing of the ``TARGET`` header keyword written by the SST-1M operators."""

import re
from dataclasses import dataclass

__all__ = ["Target", "NoPointingTarget", "parse_target"]

#: TARGET values of runs taken without a sky target
NO_POINTING_TARGETS = {"dark", "transition"}

_WOBBLE = re.compile(r"W\d+")


class NoPointingTarget(ValueError):
    """The TARGET keyword names a dark or transition run: there is no sky pointing."""


@dataclass(frozen=True)
class Target:
    """Observed source and pointing from the TARGET keyword."""

    #: target name without the wobble label, e.g. ``"Crab"``
    name: str
    #: wobble label (``W1``, ``W2``, ...) or ``"UNDEF"``
    wobble: str
    #: pointing right ascension (ICRS) in degrees
    ra_deg: float
    #: pointing declination (ICRS) in degrees
    dec_deg: float


def parse_target(value):
    """
    Parse a TARGET keyword such as ``"Crab_W1,83.6331,22.0145"``.

    Accepted forms (fields separated by ``,``, or by ``_`` when the string
    has no more than one ``,``)::

        name,RA,DEC          name may carry the wobble: Crab_W1,83.63,22.01
        name,wobble,RA,DEC   Crab,W1,83.63,22.01
        name_wobble_RA_DEC   Crab_W1_83.63_22.01

    RA and Dec are ICRS degrees. The wobble label is the first ``W<digits>``
    token, ``"UNDEF"`` when there is none. Unlike the reference pipeline, a
    name containing ``_`` is allowed together with ``,`` separators.

    Parameters
    ----------
    value : str
        The keyword value.

    Returns
    -------
    Target

    Raises
    ------
    NoPointingTarget
        For dark and transition runs (``dark``, ``DARK``, ``Transition``...).
    ValueError
        If the value cannot be parsed.
    """
    text = value.strip()
    if text.lower() in NO_POINTING_TARGETS:
        raise NoPointingTarget(
            f"TARGET={value!r} is a {text.lower()} run without sky pointing"
        )

    separator = "," if text.count(",") > 1 else "_"
    fields = [field.strip() for field in text.split(separator)]
    if len(fields) not in (3, 4):
        raise ValueError(
            f"Cannot parse TARGET={value!r}: expected 'name[,wobble],RA,DEC'"
        )
    try:
        ra_deg, dec_deg = float(fields[-2]), float(fields[-1])
    except ValueError:
        raise ValueError(
            f"Cannot parse TARGET={value!r}: RA and Dec must be numbers"
        ) from None
    if not (0 <= ra_deg <= 360 and -90 <= dec_deg <= 90):
        raise ValueError(f"TARGET={value!r}: RA/Dec ({ra_deg}, {dec_deg}) out of range")

    name_fields = fields[:-2]
    match = _WOBBLE.search(text)
    wobble = match.group(0) if match else "UNDEF"
    name = "_".join(name_fields)
    name = re.sub(r"[_,]?" + wobble + r"$", "", name) if match else name
    return Target(name=name.strip("_"), wobble=wobble, ra_deg=ra_deg, dec_deg=dec_deg)
