"""Rule sky_correction: choose or fit the exposure's sky model and write it compactly."""

import _common

from brightstamps import sky


def main(smk):
    e = smk.params.exposure
    exp = _common.read_exposure(e)
    model = sky.make_sky_model(
        exp,
        sky_model_path=smk.input.get("sky_model"),
        do_apply_sky_corr=smk.params.do_apply_sky_corr,
        fit=dict(smk.params.fit),
    )
    sky.write_sky_model(smk.output[0], model)


_common.run(main, snakemake)  # noqa: F821 - injected by Snakemake
