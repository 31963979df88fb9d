"""Reading a figure off a measured table (charlm.interpolate): the rule auto's quality table and
the Shakespeare 5-gram table share."""

import pytest

from charlm.interpolate import log_linear

TABLE = [(1_000, 3.0), (10_000, 2.0), (100_000, 1.5)]


@pytest.mark.parametrize("size, expected", [
    (1_000, 3.0), (10_000, 2.0), (100_000, 1.5),    # the measured points themselves
    (3_162.2776601683795, 2.5),                     # halfway in the logarithm, not in the size
    (100, 4.0), (1_000_000, 1.0),                   # beyond: along the nearest measured segment
])
def test_straight_lines_in_the_log_of_the_size(size, expected):
    assert log_linear(TABLE, size) == pytest.approx(expected)


def test_one_point_is_a_constant():
    assert log_linear([(5_000, 1.7)], 123) == 1.7
