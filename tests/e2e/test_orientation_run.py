"""Radial orientation through the workflow: the angle per star and the mode reach the final product."""

import numpy as np
from numpy.testing import assert_allclose
from workflow_runs import run_snakemake, write_small_run

from brightstamps import simulate
from brightstamps.stampsfile import read_stamps


def test_radial_orientation_records_each_stars_polar_angle_about_the_boresight(tmp_path):
    exposures = [
        {"name": "r0", "detector": 0, "yaw": 0.0, "size": 300, "stars": [(140.2, 160.7, 11.0)]},
        {"name": "r2", "detector": 2, "yaw": 180.0, "size": 300, "stars": [(150.6, 140.3, 11.0)]},
    ]
    configfile = write_small_run(tmp_path, exposures, config={"orientation": "radial"})
    run_snakemake(tmp_path, configfile=configfile)
    for e in exposures:
        stamps = read_stamps(tmp_path / "results" / e["name"] / "bright_star_stamps.fits")
        assert stamps.header["ORIENT"] == "radial" and stamps.header["NB90ROT"] == 0
        # known answer: the simulated camera's distortion is radial about the axis pixel p0 and the
        # distortion-free frame has the detector's axes, so the angle is that of (star - p0)
        p0 = simulate.detector_origin(detector=e["detector"], yaw_deg=e["yaw"], size=e["size"])
        x, y, _ = e["stars"][0]
        assert_allclose(
            stamps.stars["orient_angle"][0], np.degrees(np.arctan2(y - p0[1], x - p0[0])), atol=0.05
        )
