import pytest

from ctapipe_sst1m.io.target import NoPointingTarget, Target, parse_target


@pytest.mark.parametrize(
    "value, expected",
    [
        ("Crab_W1,83.6331,22.0145", Target("Crab", "W1", 83.6331, 22.0145)),
        ("Crab,W2,83.6331,22.0145", Target("Crab", "W2", 83.6331, 22.0145)),
        ("Crab_W1_83.6331_22.0145", Target("Crab", "W1", 83.6331, 22.0145)),
        ("Mrk421,166.1138,38.2088", Target("Mrk421", "UNDEF", 166.1138, 38.2088)),
        (
            "1ES_1959+650_W3,299.9994,65.1485",
            Target("1ES_1959+650", "W3", 299.9994, 65.1485),
        ),
    ],
)
def test_parse_target(value, expected):
    assert parse_target(value) == expected


@pytest.mark.parametrize(
    "value", ["dark", "DARK", "Transition", "TRANSITION", " transition "]
)
def test_no_pointing_targets(value):
    with pytest.raises(NoPointingTarget):
        parse_target(value)


@pytest.mark.parametrize(
    "value", ["Crab", "Crab,abc,22", "Crab,83.6,95.0", "a,b,c,d,e"]
)
def test_invalid_targets(value):
    with pytest.raises(ValueError):
        parse_target(value)
