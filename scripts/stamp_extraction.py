"""Rule stamp_extraction: sky-subtracted cut-outs, other sources' footprints flagged BAD."""

import _common

from brightstamps import catalog, extract, files, sky, stampsfile


def main(smk):
    e = smk.params.exposure
    exp = _common.read_exposure(e)
    model = sky.read_sky_model(smk.input.sky, shape=exp.shape)
    stars = catalog.read_stars(smk.input.stars)
    stamps = extract.extract_stamps(
        exp, stars, model, stamp_size=smk.params.stamp_size, do_remove_detected=smk.params.do_remove_detected
    )
    stamps.header.update({"EXPOSURE": e["exposure"], "BAND": e["band"], "DETECTOR": e["detector"]})
    stamps.header.update(exp.cards)  # format and variance source (VARSRC; estimated: gain, sky noise)
    read = [exp.files.get(k) for k in ("image", "mask", "variance", "weight")]
    cat = stars.meta["catalog"]  # a file, or a pattern / HATS directory / package: its digest is in the meta
    digests = {cat: stars.meta.get("catalog_sha256", "")}
    stamps.header.update(files.input_cards([*read, model.path, cat], digests=digests))
    stampsfile.write_stamps(smk.output[0], stamps)


_common.run(main, snakemake)  # noqa: F821 - injected by Snakemake
