"""Notices at the end of a run: a band whose stack used no star ends the run with one line on the
terminal (also when the run fails), its figure says why, and stack.require_stars makes it an error."""

import yaml
from astropy.io import fits
from PIL import Image
from workflow_runs import run_snakemake, write_small_run

ONE_STAR = [{"name": "e1", "detector": 0, "yaw": 0.0, "size": 300, "stars": [(150.3, 149.6, 9.0)]}]
WHY = "its 1 stamps file holds no star: no catalog star was matched to it"


def _elsewhere(t):
    # a catalog of another part of the sky (swapped ra/dec columns, the example, now stop at the
    # catalog's range check: Dec beyond the pole)
    t["dec"] = t["dec"] - 30.0
    return t


def _notice_lines(proc):
    lines = (proc.stdout + proc.stderr).splitlines()
    return [line for line in lines if line.startswith("brightstamps: notice")]


def test_a_band_that_stacks_no_star_ends_with_one_notice_and_its_figure_says_why(tmp_path):
    config = write_small_run(tmp_path, ONE_STAR, catalog_rows=_elsewhere)
    proc = run_snakemake(tmp_path, configfile=config)
    assert _notice_lines(proc) == [
        "brightstamps: notice [empty_extended_psf] in 1 job (logs/stack_extended_psf/r.log): "
        "band r, region DEFAULT: "
        f"no star was stacked ({WHY}); its extended PSF is NaN"
    ]
    header = fits.getheader(tmp_path / "results" / "extended_psf" / "r.fits")
    assert header["NSTARS1"] == 0 and header["EMPTY1"] == WHY
    # the report's figure says it in words
    figure = tmp_path / "results" / "plots" / "r_extended_psf.png"
    assert Image.open(figure).text["Description"] == f"No star was stacked for band r, region DEFAULT: {WHY}."

    # a later run that does not stack again does not repeat the earlier run's notice
    figure.unlink()
    proc = run_snakemake(tmp_path, configfile=config)
    assert figure.exists() and _notice_lines(proc) == []

    # stack.require_stars: the stack job fails with one line, and writes nothing
    cfg = yaml.safe_load(config.read_text())
    cfg["stack"]["require_stars"] = True
    config.write_text(yaml.safe_dump(cfg))
    proc = run_snakemake(tmp_path, configfile=config, check=False)
    assert proc.returncode != 0
    line = (
        "brightstamps: error in rule stack_extended_psf: band r, region DEFAULT: no star was stacked "
        f"({WHY}); stack.require_stars is true"
    )
    assert line in (proc.stdout + proc.stderr).splitlines()
    assert not (tmp_path / "results" / "extended_psf" / "r.fits").exists()


def test_the_notices_are_shown_when_the_run_fails_too(tmp_path):
    """Band r stacks no star (the magnitude cut leaves its star out) while band g's exposure fails:
    with --keep-going the run fails and still ends with r's notice."""
    exposures = ONE_STAR + [{**ONE_STAR[0], "name": "e2", "detector": 1}]
    config = write_small_run(tmp_path, exposures, config={"stack": {"do_mag_cut": True, "mag_limit": 5.0}})
    table = tmp_path / "exposures.tsv"
    table.write_text(table.read_text().replace("e2.fits\tr\t", "e2.fits\tg\t"))
    with fits.open(tmp_path / "e2.fits", mode="update") as hdul:
        hdul[1].data[:] = float("nan")
    proc = run_snakemake(tmp_path, "--keep-going", configfile=config, check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "e2.fits: the image has no finite pixel" in out
    assert _notice_lines(proc) == [
        "brightstamps: notice [empty_extended_psf] in 1 job (logs/stack_extended_psf/r.log): "
        "band r, region DEFAULT: "
        "no star was stacked (of the 1 star of its 1 stamps file: 1 not brighter than stack.mag_limit (5)); "
        "its extended PSF is NaN"
    ]
