"""afw's MEANCLIP corner cases (write-up section 3.4.3) beyond the reference numbers of section 11."""

import numpy as np
import pytest

from brightstamps.stats import clipped_statistic

# median 5, IQR 8: a 0.5-sigma clip about the median (half-width 2.97) keeps only the 5
ONE_SURVIVOR = np.array([0.0, 1.0, 5.0, 9.0, 10.0])


def test_meanclip_one_survivor_makes_the_next_iteration_nan():
    """afw updates the half-width when there are two good values in all, so the survivor's NaN
    variance gives a NaN half-width, and NaN; a last iteration that leaves one value returns it."""
    value, _, n = clipped_statistic(ONE_SURVIVOR, statistic="MEANCLIP", num_sigma_clip=0.5, num_iter=1)
    assert (value, n) == (5.0, 1)
    for num_iter in (2, 3):
        value, variance, n = clipped_statistic(
            ONE_SURVIVOR, statistic="MEANCLIP", num_sigma_clip=0.5, num_iter=num_iter
        )
        assert np.isnan(value) and np.isnan(variance) and n == 0


def test_meanclip_one_survivor_per_pixel_of_a_stack():
    """The stack (per-pixel) path: only the pixel whose clip leaves one value is NaN."""
    ordinary = np.array([4.0, 5.0, 5.0, 6.0, 5.0])  # median 5, IQR 0: the three 5s survive
    stack = np.stack([ONE_SURVIVOR, ordinary], axis=1)[:, None, :]  # (5, 1, 2)
    value, _, n = clipped_statistic(stack, statistic="MEANCLIP", num_sigma_clip=0.5, num_iter=3)
    assert np.isnan(value[0, 0]) and n[0, 0] == 0
    assert value[0, 1] == 5.0 and n[0, 1] == 3


@pytest.mark.parametrize("num_iter", [1, 3])
def test_meanclip_of_a_single_good_value_is_that_value(num_iter):
    """With one good value in all, afw keeps the IQR half-width (0): the value itself."""
    valid = np.array([False, False, True, False, False])
    value, _, n = clipped_statistic(
        ONE_SURVIVOR, valid=valid, statistic="MEANCLIP", num_sigma_clip=0.5, num_iter=num_iter
    )
    assert (value, n) == (5.0, 1)
