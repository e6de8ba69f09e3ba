"""Defaults live in the config schema only: the science functions take the config's options as
required keywords, and the tools that run without a config read the schema's defaults."""

import inspect

import pytest

from brightstamps import catalog, catalog_config, exposure, exposures_table, plots, simulate, warp
from brightstamps.configref import SCHEMA, schema_defaults
from brightstamps.masks import LSST_BAD_MASK_PLANES

# function -> its parameters that the config (or the exposures table) sets: no default of their own
REQUIRED = [
    (simulate.simulate_demo, ["seed", "detector_size", "n_bright", "n_faint", "n_field"]),  # demo.*
    (simulate.true_psf_stamp, ["shape"]),  # the demo's output stamp: stamp_size x model_stamp_buffer
    (exposure.read_exposure, ["fmt"]),  # the table's format column
    (exposure.read_exposure_header, ["fmt"]),
    (exposures_table.header_detector, ["fmt"]),
    (plots.plot_stamp_mosaic, ["bad_mask_planes"]),
    (plots.plot_profiles, ["bad_mask_planes"]),
    (catalog.read_catalog, ["mag_system", "vega_to_ab"]),  # catalog.*
    (catalog.vega_to_ab_like, ["offset"]),
    (catalog_config.effective_mag_system, ["mag_system"]),
    (warp.boresight_of, ["ra_key", "dec_key", "ra_unit"]),  # boresight.*
    (warp.warp_stamps, ["orientation", "boresight"]),
    (warp.distortion_free_maps, ["half_size"]),  # the output stamp's size
]


@pytest.mark.parametrize(("function", "names"), REQUIRED, ids=[f.__qualname__ for f, _ in REQUIRED])
def test_the_configs_options_are_required_keywords(function, names):
    parameters = inspect.signature(function).parameters
    with_default = [n for n in names if parameters[n].default is not inspect.Parameter.empty]
    assert with_default == [], f"{function.__module__}.{function.__qualname__}: defaults {with_default}"


def test_the_copies_of_the_schemas_defaults_are_gone():
    assert not hasattr(exposure, "FITS_FORMAT_DEFAULTS")
    assert not hasattr(plots, "DEFAULT_BAD_MASK_PLANES")
    assert not hasattr(catalog, "VEGA_TO_AB_G")


def test_schema_defaults_are_what_snakemake_fills_in():
    from snakemake.utils import validate  # the workflow's own validation (the package never imports it)

    config = {}
    validate(config, schema=str(SCHEMA))
    assert schema_defaults() == config
    # LSST's badMaskPlanes (the reference the tests compare with) is the default of both lists
    assert config["bad_mask_planes"] == config["stack"]["bad_mask_planes"] == list(LSST_BAD_MASK_PLANES)


def test_the_simulator_command_line_takes_the_demo_defaults_of_the_schema(tmp_path, monkeypatch):
    """It had its own seed (20260101, the schema 20261125): `python -m brightstamps.simulate` and the
    rule simulate_demo wrote different demo data."""
    called = {}

    def fake_demo(outdir, **kw):
        called.update(kw)
        return {"paths": []}

    monkeypatch.setattr(simulate, "simulate_demo", fake_demo)
    assert simulate.main([str(tmp_path)]) == 0
    demo = schema_defaults()["demo"]
    assert called == {
        "seed": demo["seed"],
        "detector_size": demo["detector_size"],
        "n_bright": demo["n_bright"],
        "n_faint": demo["n_faint"],
        "n_field": demo["n_field"],
        "band": "r",
    }
    assert demo["seed"] == 20261125
