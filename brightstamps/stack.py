"""Extended PSF: stack the normalized stamps of a band, per focal-plane region, tile by tile.

Per output pixel, the statistic (afw's MEANCLIP by default, :func:`brightstamps.stats.
clipped_statistic`, the same function the normalization uses) runs over every selected stamp
whose pixel is finite and carries none of the bad mask planes; the variance is the clipped
variance over the clipped count, the mask the OR of the contributing masks, and a pixel with no
usable input is NaN / NO_DATA. Stamps are read by section, a tile at a time, so memory is bounded
by ``memory_mb`` whatever the number of stamps.

Two normalizations: ``annulus`` stacks the stamps as step 5 normalized them (LSST's legacy
MeasureExtendedPsfTask); ``psf_fit`` (LSST's 2026 ExtendedPsfStackTask) fits each star, by
inverse-variance weighted linear least squares, as an amplitude times the current model plus a
polynomial background, rejects stars whose model flux is mostly masked, stacks the
amplitude-normalized stamps and iterates with the stack as the new model.
"""

import dataclasses
import logging
import os
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.table import Table, vstack

from .errors import InputError
from .files import atomic_output, open_fits, path_card_value, path_from_card
from .masks import ensure_planes, mask_plane_cards, plane_bits, read_mask_planes
from .notices import notice
from .stampsfile import StampsFile, open_stamps
from .stats import clipped_statistic

__all__ = [
    "StackInput",
    "open_sources",
    "select_stars",
    "assign_regions",
    "stack_sources",
    "annulus_snr",
    "fit_psf_amplitudes",
    "stack_stamps",
    "describe_inputs",
    "write_extended_psf",
    "read_extended_psf",
    "band_stars",
]

log = logging.getLogger(__name__)

#: Bytes of working memory per stacked value (float64 values, validity, masks, sort copies).
_BYTES_PER_VALUE = 48


@dataclasses.dataclass(frozen=True, eq=False)
class StackInput:
    """The planes of one stamps file that enter a stack, and how each enters it.

    Attributes
    ----------
    stamps : brightstamps.stampsfile.StampsFile
        The file.
    rows : numpy.ndarray of int
        The planes stacked (rows of its STARS table).
    factors : numpy.ndarray
        The multiplier of each plane's image.
    backgrounds : numpy.ndarray or None
        ``(len(rows), terms)`` polynomial backgrounds (:func:`fit_psf_amplitudes`' terms),
        subtracted from each image before its factor is applied; None for none.
    """

    stamps: StampsFile
    rows: np.ndarray
    factors: np.ndarray
    backgrounds: np.ndarray | None = None

    def __post_init__(self):
        n = len(self.rows)
        if len(self.factors) != n or (self.backgrounds is not None and len(self.backgrounds) != n):
            raise ValueError(
                f"{self.stamps.path}: {n} rows, {len(self.factors)} factors and "
                f"{'no' if self.backgrounds is None else len(self.backgrounds)} backgrounds"
            )


def _unscaled(stamps, rows):
    """The planes *rows* of *stamps*, stacked as they are."""
    return StackInput(stamps, rows, np.ones(len(rows)))


def open_sources(paths):
    """Read the headers and STARS tables of the normalized stamps files of a stack (no pixels).

    Parameters
    ----------
    paths : list of str
        ``bright_star_stamps.fits`` files.

    Returns
    -------
    list of brightstamps.stampsfile.StampsFile

    Raises
    ------
    InputError
        A file that is not a stamps file, is not normalized, or whose stamps differ in size from
        the others'.
    """
    sources = []
    for path in paths:
        stamps = open_stamps(path)
        if not stamps.header.get("NORMED"):
            raise InputError(f"{path}: stamps are not normalized (NORMED is not T)")
        sources.append(stamps)
    shapes = {s.stamp_shape for s in sources}
    if len(shapes) > 1:
        raise InputError(f"stamps of different sizes cannot be stacked: {sorted(shapes)}")
    return sources


def select_stars(stars, *, min_valid_annulus_fraction, mag_limit, include_failed):
    """Which stars enter the stack.

    Parameters
    ----------
    stars : astropy.table.Table
        A STARS table.
    min_valid_annulus_fraction : float
        Stars with a smaller ``valid_annulus_fraction`` are left out (LSST: strict ``<``).
    mag_limit : float or None
        Keep only stars with ``g_mag`` strictly brighter (LSST ``do_mag_cut``), or None.
    include_failed : bool
        Let stars whose normalization failed (``annular_flux`` NaN) in, as LSST does. Off by
        default in the workflow: a deliberate deviation.

    Returns
    -------
    numpy.ndarray of bool
    """
    return ~np.any(
        list(
            _selection_cuts(
                stars,
                min_valid_annulus_fraction=min_valid_annulus_fraction,
                mag_limit=mag_limit,
                include_failed=include_failed,
            ).values()
        ),
        axis=0,
    )


def _selection_cuts(stars, *, min_valid_annulus_fraction, mag_limit, include_failed):
    """The stars each cut of :func:`select_stars` leaves out, by why (in words), in the order applied."""
    cuts = {
        f"valid_annulus_fraction < stack.min_valid_annulus_fraction ({min_valid_annulus_fraction:g})": np.asarray(
            stars["valid_annulus_fraction"], float
        )
        < min_valid_annulus_fraction
    }
    if mag_limit is not None:
        brighter = np.asarray(stars["g_mag"], float) < mag_limit
        cuts[f"not brighter than stack.mag_limit ({mag_limit:g})"] = ~brighter
    if not include_failed:
        cuts["normalization failed (stack.include_failed_stars is false)"] = ~np.isfinite(
            np.asarray(stars["annular_flux"], float)
        )
    return cuts


def _plural(n, word):
    return f"{n} {word}{'' if n == 1 else 's'}"


def _why_empty(members, *, detectors, selection, psf_fit=None, first_model=None):
    """Why a region's stack holds no star, in words: no input, no star, or what left the stars out.

    Each star the selection leaves out is counted once, under the first cut it fails. In psf_fit
    mode (*psf_fit* given) the selected stars were left out by the fits: *first_model* of them made
    the first model.
    """
    if not members:
        return f"no stamps file of the band is from the region's detectors ({', '.join(map(str, detectors))})"
    n_stars = sum(len(src.stars) for src in members)
    files = _plural(len(members), "stamps file")
    if n_stars == 0:
        hold = f"its {files} {'holds' if len(members) == 1 else 'hold'} no star"
        discarded = sum(int(src.header.get("NDISCARD", 0)) for src in members)
        if discarded:
            return f"{hold}: discard_nan_flux_stars dropped the {discarded} whose normalization failed"
        return f"{hold}: no catalog star was matched to {'it' if len(members) == 1 else 'them'}"
    counts = {}
    for src in members:
        left = np.zeros(len(src.stars), bool)
        for why, cut in _selection_cuts(src.stars, **selection).items():
            counts[why] = counts.get(why, 0) + int(np.count_nonzero(cut & ~left))
            left |= cut
    selected = n_stars - sum(counts.values())
    if selected and psf_fit is not None:
        if not first_model:
            counts[
                f"annulus S/N below psf_fit.min_annulus_snr ({psf_fit['min_annulus_snr']:g}), so no first "
                "model"
            ] = selected
        else:
            counts[
                "fit rejected (masked flux fraction above psf_fit.max_masked_flux_fraction, too few "
                "pixels, or amplitude not positive)"
            ] = selected
    parts = [f"{n} {why}" for why, n in counts.items() if n]
    return f"of the {_plural(n_stars, 'star')} of its {files}: " + "; ".join(parts)


def assign_regions(sources, regions):
    """Map each source to its focal-plane region by detector (first region that lists it).

    Parameters
    ----------
    sources : list of brightstamps.stampsfile.StampsFile
    regions : dict of str to list of int
        Region name -> detector ids; empty gives one ``DEFAULT`` region of everything.

    Returns
    -------
    dict of str to list of brightstamps.stampsfile.StampsFile
        In the order of *regions*; detectors in no region are logged once and left out.
    """
    if not regions:
        return {"DEFAULT": list(sources)}
    out = {name.upper(): [] for name in regions}
    lookup = {}
    for name, dets in regions.items():
        for d in dets:
            lookup.setdefault(int(d), name.upper())
    orphans = set()
    for src in sources:
        det = int(src.header["DETECTOR"])
        if det in lookup:
            out[lookup[det]].append(src)
        else:
            orphans.add(det)
    if orphans:
        log.warning("detectors in no region, left out of the extended PSF: %s", sorted(orphans))
    return out


def _tiles(shape, n_values, memory_mb):
    """Row-major tiles (at most 100 x 100, as LSST) holding n_values stamps in memory_mb."""
    ny, nx = shape
    budget = max(1, int(memory_mb * 2**20 / (_BYTES_PER_VALUE * max(n_values, 1))))
    side = int(max(1, min(100, np.sqrt(budget))))
    for y0 in range(0, ny, side):
        for x0 in range(0, nx, side):
            yield slice(y0, min(y0 + side, ny)), slice(x0, min(x0 + side, nx))


def _remap(mask, src_planes, dst_planes):
    """Mask bits from one plane dictionary to another (same names)."""
    if src_planes == dst_planes:
        return mask
    out = np.zeros_like(mask)
    for name, bit in src_planes.items():
        if name in dst_planes:
            out |= ((mask >> bit) & 1) << dst_planes[name]
    return out


def stack_sources(inputs, *, statistic, num_sigma_clip, num_iter, bad_mask_planes, memory_mb):
    """Stack the selected planes of *inputs*, tile by tile: each image less its background, times its factor.

    Parameters
    ----------
    inputs : list of StackInput
        One per stamps file (the first sets the stamp shape and the mask planes; none: one
        NO_DATA pixel).
    statistic : {'MEAN', 'MEDIAN', 'MEANCLIP'}
    num_sigma_clip : float
    num_iter : int
    bad_mask_planes : list of str
        Inputs with any of these planes are left out of a pixel.
    memory_mb : float
        Working memory for the stacked values; sets the tile size.

    Returns
    -------
    dict
        ``image`` (float32), ``mask`` (int32), ``variance`` (float32), ``n`` (int32) maps and the
        ``planes`` of the mask.
    """
    shape = inputs[0].stamps.stamp_shape if inputs else (1, 1)
    planes = ensure_planes(inputs[0].stamps.mask_planes if inputs else {}, ["NO_DATA"])
    no_data = np.int32(1 << planes["NO_DATA"])
    n_total = sum(len(s.rows) for s in inputs)
    image = np.full(shape, np.nan, np.float32)
    variance = np.full(shape, np.nan, np.float32)
    mask = np.full(shape, no_data, np.int32)
    count = np.zeros(shape, np.int32)
    used = [s for s in inputs if len(s.rows)]
    if not used:
        return {"image": image, "mask": mask, "variance": variance, "n": count, "planes": planes}
    for ys, xs in _tiles(shape, n_total, memory_mb):
        values, valid, masks = [], [], []
        for inp in used:
            img, msk, _ = inp.stamps.read(inp.rows, ys, xs)
            bad = plane_bits(inp.stamps.mask_planes, bad_mask_planes, field="stack.bad_mask_planes")
            img = img.astype(np.float64)
            if inp.backgrounds is not None:
                basis = np.stack([b[ys, xs] for b in _background_basis(shape, inp.backgrounds.shape[1])])
                img = img - np.einsum("nt,tyx->nyx", inp.backgrounds, basis)
            values.append(img * inp.factors[:, None, None])
            valid.append(np.isfinite(img) & ((msk & bad) == 0))
            masks.append(_remap(msk, inp.stamps.mask_planes, planes))
        values, valid, masks = np.concatenate(values), np.concatenate(valid), np.concatenate(masks)
        mean, var, n = clipped_statistic(
            values, valid=valid, statistic=statistic, num_sigma_clip=num_sigma_clip, num_iter=num_iter
        )
        with np.errstate(invalid="ignore", divide="ignore"):
            image[ys, xs] = mean
            variance[ys, xs] = var / n
        contributing = np.bitwise_or.reduce(np.where(valid, masks, 0), axis=0)
        mask[ys, xs] = np.where(n > 0, contributing, no_data)
        count[ys, xs] = n
    return {"image": image, "mask": mask, "variance": variance, "n": count, "planes": planes}


def _background_names(order):
    return [f"bkg_x{total - py}y{py}" for total in range(order + 1) for py in range(total + 1)]


def _background_basis(shape, nterms):
    """The polynomial background terms over a stamp, x and y scaled to [-1, 1] about the centre."""
    ny, nx = shape
    yy, xx = np.mgrid[0:ny, 0:nx]
    x = (xx - nx // 2) / (nx / 2)
    y = (yy - ny // 2) / (ny / 2)
    terms = []
    total = 0
    while len(terms) < nterms:
        terms += [x ** (total - py) * y**py for py in range(total + 1)]
        total += 1
    return terms[:nterms]


def _design(model, order):
    """Columns of the linear fit: the model, then the background polynomial up to *order*."""
    names = ["amplitude", *_background_names(order)]
    return [model, *_background_basis(model.shape, len(names) - 1)], names


def annulus_snr(src, rows, *, bad_mask_planes):
    """Signal-to-noise of the annular flux of the stars *rows* of stamps file *src*.

    *src* is a :class:`~brightstamps.stampsfile.StampsFile`; the noise comes from the variance
    planes (NaN if the normalization failed).
    """
    flux = np.asarray(src.stars["annular_flux"], float)[rows]
    if not len(rows):
        return flux
    img, msk, var = src.read(rows)
    ny, nx = src.stamp_shape
    yy, xx = np.mgrid[0:ny, 0:nx]
    d2 = (xx - int(src.header["CENTERX"])) ** 2 + (yy - int(src.header["CENTERY"])) ** 2
    ann = (d2 > int(src.header["INNERRAD"]) ** 2) & (d2 <= int(src.header["OUTERRAD"]) ** 2)
    bad = plane_bits(src.mask_planes, bad_mask_planes, field="stack.bad_mask_planes")
    snr = np.full(len(rows), np.nan)
    for k in range(len(rows)):
        good = ann & np.isfinite(img[k]) & ((msk[k] & bad) == 0) & np.isfinite(var[k])
        if not np.isfinite(flux[k]) or good.sum() < 2:
            continue
        v = var[k][good].astype(np.float64)
        if not src.header.get("VARNORM", False):
            v = v / flux[k] ** 2
        snr[k] = 1.0 / np.sqrt(v.mean() / good.sum())  # normalized annulus level is 1
    return snr


def fit_psf_amplitudes(
    sources,
    rows,
    model,
    *,
    model_variance,
    min_model_snr,
    background_order,
    bad_mask_planes,
    max_masked_flux_fraction,
):
    """Fit each selected star as ``amplitude * model + polynomial background``.

    Inverse-variance weighted linear least squares over the star's usable pixels (finite, no
    bad plane; neighbours are BAD after step 3). The star's data are put back in exposure units
    (un-normalized) first.

    Parameters
    ----------
    sources : list of brightstamps.stampsfile.StampsFile
    rows : list of numpy.ndarray of int
        The stars to fit in each source (rows of its STARS table).
    model : numpy.ndarray
        Current PSF model (NaN where unknown; those pixels are left out).
    model_variance : numpy.ndarray
        Its variance: pixels where the model's signal-to-noise is below *min_model_snr* are
        left out, so the noisy outskirts of the stack do not steer the amplitudes.
    min_model_snr : float
    background_order : int
        Order of the 2-D polynomial background (2: pedestal, gradients, curvature).
    bad_mask_planes : list of str
    max_masked_flux_fraction : float
        Stars whose masked pixels hold more of the model's flux are rejected.

    Returns
    -------
    list of astropy.table.Table
        Per source, one row per star of *rows*: ``amplitude`` (exposure units per model unit),
        the background terms, ``reduced_chi2``, ``dof``, ``masked_flux_fraction``, ``fit_ok``.
    """
    with np.errstate(invalid="ignore"):
        finite_model = np.isfinite(model) & (model > min_model_snr * np.sqrt(model_variance))
    model0 = np.where(finite_model, model, 0.0)
    cols, names = _design(model0, background_order)
    total_flux = np.abs(model0).sum()
    out = []
    for src, stars in zip(sources, rows, strict=True):
        results = {name: [] for name in [*names, "reduced_chi2", "dof", "masked_flux_fraction", "fit_ok"]}
        img, msk, var = src.read(stars)
        bad = plane_bits(src.mask_planes, bad_mask_planes, field="psf_fit.bad_mask_planes")
        for k, row in enumerate(stars):
            flux = float(src.stars["annular_flux"][row])
            scale = flux if np.isfinite(flux) else 1.0
            data = img[k].astype(np.float64) * scale
            vscale = scale**2 if src.header.get("VARNORM", False) else 1.0
            variance = var[k].astype(np.float64) * vscale
            good = (
                finite_model
                & np.isfinite(data)
                & ((msk[k] & bad) == 0)
                & (variance > 0)
                & np.isfinite(variance)
            )
            masked_frac = 1.0 - np.abs(model0[good]).sum() / total_flux if total_flux else 1.0
            dof = int(good.sum()) - len(cols)
            ok = masked_frac <= max_masked_flux_fraction and dof > 0
            coef = np.full(len(cols), np.nan)
            chi2 = np.nan
            if ok:
                w = 1.0 / np.sqrt(variance[good])
                a = np.column_stack([c[good] * w for c in cols])
                coef, *_ = np.linalg.lstsq(a, data[good] * w, rcond=None)
                chi2 = float(np.sum((a @ coef - data[good] * w) ** 2) / dof)
                ok = bool(coef[0] > 0)
            for name, value in zip(names, coef, strict=True):
                results[name].append(float(value))
            results["reduced_chi2"].append(chi2)
            results["dof"].append(dof)
            results["masked_flux_fraction"].append(float(masked_frac))
            results["fit_ok"].append(bool(ok))
        out.append(Table(results, dtype=[float] * len(names) + [float, int, float, bool]))
    return out


def stack_stamps(
    paths,
    *,
    regions,
    normalization,
    statistic,
    num_sigma_clip,
    num_iter,
    bad_mask_planes,
    min_valid_annulus_fraction,
    mag_limit,
    include_failed,
    psf_fit,
    memory_mb,
    band=None,
    require_stars=False,
):
    """Step 6: the extended PSF of one band, one model per focal-plane region.

    Parameters
    ----------
    paths : list of str
        The band's ``bright_star_stamps.fits`` files.
    regions : dict of str to list of int
        Region name -> detector ids; empty for one ``DEFAULT`` model.
    normalization : {'annulus', 'psf_fit'}
        Stack the annulus-normalized stamps, or fit amplitudes against the model iteratively.
    statistic, num_sigma_clip, num_iter, bad_mask_planes
        Per-pixel stacking statistic (see :func:`stack_sources`).
    min_valid_annulus_fraction, mag_limit, include_failed
        Star selection (see :func:`select_stars`).
    psf_fit : dict
        ``background_order``, ``iterations``, ``max_masked_flux_fraction`` and
        ``min_annulus_snr`` (stars that make the first model), ``min_model_snr`` (model
        pixels used in the fits) and ``subtract_background``, for psf_fit mode.
    memory_mb : float
        Working memory of the per-pixel statistic.
    band : str, optional
        The band, named in the notice of a region that stacks no star.
    require_stars : bool
        A region that stacks no star is an error (:class:`~brightstamps.errors.InputError`)
        instead of an all-NaN model and an ``empty_extended_psf`` notice.

    Returns
    -------
    models : dict
        Region name -> the :func:`stack_sources` maps plus ``detectors``, ``nstars`` and
        ``empty_reason`` (why no star was stacked, in words; empty when some were).
    stars : astropy.table.Table
        One row per star of the inputs: ``exposure``, ``detector``, ``gaia_id``, ``g_mag``,
        ``annular_flux``, ``region``, ``used`` and, in psf_fit mode, the fit results.
    """
    if normalization not in ("annulus", "psf_fit"):
        raise InputError(f"normalization: {normalization!r} is not 'annulus' or 'psf_fit'")
    sources = open_sources(paths)
    by_region = assign_regions(sources, regions)
    options = {
        "statistic": statistic,
        "num_sigma_clip": num_sigma_clip,
        "num_iter": num_iter,
        "bad_mask_planes": bad_mask_planes,
        "memory_mb": memory_mb,
    }
    models, star_tables = {}, []
    for region, members in by_region.items():
        # psf_fit needs no annular flux: stars whose annulus normalization failed are fitted too
        candidates = [
            np.flatnonzero(
                select_stars(
                    src.stars,
                    min_valid_annulus_fraction=min_valid_annulus_fraction,
                    mag_limit=mag_limit,
                    include_failed=include_failed or normalization == "psf_fit",
                )
            )
            for src in members
        ]
        fitted, first_model = None, None
        if normalization == "annulus":
            inputs = [_unscaled(src, rows) for src, rows in zip(members, candidates, strict=True)]
            result = stack_sources(inputs, **options)
        else:
            result, inputs, fitted, first_model = _psf_fit_stack(
                members, candidates, psf_fit=psf_fit, bad_mask_planes=bad_mask_planes, options=options
            )
        if regions:
            result["detectors"] = sorted(
                int(d) for d in next(v for k, v in regions.items() if k.upper() == region)
            )
        else:
            result["detectors"] = sorted({int(src.header["DETECTOR"]) for src in members})
        result["nstars"] = int(sum(len(inp.rows) for inp in inputs))
        result["empty_reason"] = ""
        if result["nstars"] == 0:
            # an all-NaN model passes every later step: say so where the user looks (the end of the
            # run, the report), not only in the file
            result["empty_reason"] = _why_empty(
                members,
                detectors=result["detectors"],
                first_model=first_model,
                psf_fit=psf_fit if normalization == "psf_fit" else None,
                selection={
                    "min_valid_annulus_fraction": min_valid_annulus_fraction,
                    "mag_limit": mag_limit,
                    "include_failed": include_failed or normalization == "psf_fit",
                },
            )
            where = f"band {band}, region {region}" if band is not None else f"region {region}"
            if require_stars:
                raise InputError(
                    f"{where}: no star was stacked ({result['empty_reason']}); stack.require_stars is true"
                )
            notice(
                log,
                "empty_extended_psf",
                "%s: no star was stacked (%s); its extended PSF is NaN",
                where,
                result["empty_reason"],
            )
        models[region] = result
        fit_tables = fitted or [None] * len(inputs)
        star_tables += [
            _star_rows(inp, region, rows, fit)
            for inp, rows, fit in zip(inputs, candidates, fit_tables, strict=True)
        ]
    return models, _concat_tables(star_tables)


def _psf_fit_stack(members, candidates, *, psf_fit, bad_mask_planes, options):
    """psf_fit mode: a first model from the annulus-normalized stack, then fits and stacks in turn.

    Parameters
    ----------
    members : list of brightstamps.stampsfile.StampsFile
        A region's stamps files.
    candidates : list of numpy.ndarray of int
        The selected stars of each.
    psf_fit : dict
        The psf_fit options (see :func:`stack_stamps`).
    bad_mask_planes : list of str
    options : dict
        Keywords of :func:`stack_sources`.

    Returns
    -------
    result : dict
        The last stack (:func:`stack_sources`).
    inputs : list of StackInput
        What made it.
    fitted : list of astropy.table.Table or None
        The last fits, one row per candidate (:func:`fit_psf_amplitudes`); None with no iteration.
    first_model : int
        The number of stars in the first model.
    """
    # first model: the annulus-normalized stack of the candidates whose annular flux is
    # measured well; noisy ones would set a wrong core-to-wing ratio that the
    # iterations cannot undo (the cores are only seen in unsaturated, faint stars)
    inputs = []
    for src, rows in zip(members, candidates, strict=True):
        snr = annulus_snr(src, rows, bad_mask_planes=bad_mask_planes)
        inputs.append(_unscaled(src, rows[snr >= psf_fit["min_annulus_snr"]]))
    result = stack_sources(inputs, **options)
    first_model = sum(len(inp.rows) for inp in inputs)
    fitted = None
    bkg_names = _background_names(psf_fit["background_order"])
    for _ in range(int(psf_fit["iterations"])):
        fitted = fit_psf_amplitudes(
            members,
            candidates,
            result["image"].astype(np.float64),
            model_variance=result["variance"].astype(np.float64),
            min_model_snr=psf_fit["min_model_snr"],
            background_order=psf_fit["background_order"],
            bad_mask_planes=bad_mask_planes,
            max_masked_flux_fraction=psf_fit["max_masked_flux_fraction"],
        )
        inputs = []
        for src, rows, fit in zip(members, candidates, fitted, strict=True):
            ok = np.asarray(fit["fit_ok"], bool)
            flux = np.asarray(src.stars["annular_flux"], float)[rows]
            scale = np.where(np.isfinite(flux), flux, 1.0)  # back to exposure units
            # stack data / amplitude, or (data - background) / amplitude as LSST's
            # ExtendedPsfStackTask does (see subtract_background in the schema)
            bkg = np.column_stack([np.asarray(fit[n], float)[ok] for n in bkg_names])
            inputs.append(
                StackInput(
                    src,
                    rows[ok],
                    scale[ok] / np.asarray(fit["amplitude"], float)[ok],
                    bkg / scale[ok, None] if psf_fit["subtract_background"] else None,
                )
            )
        result = stack_sources(inputs, **options)  # the stack is the next model
    return result, inputs, fitted, first_model


def _star_rows(inp, region, candidates, fit):
    """The STARS rows of one input.

    Identity, region, whether stacked (*inp*'s rows), and the PSF fit of the *candidates* (or None).
    """
    src = inp.stamps
    n = len(src.stars)
    t = Table()
    t["exposure"] = np.full(n, str(src.header.get("EXPOSURE", Path(src.path).parent.name)))
    t["detector"] = np.full(n, int(src.header["DETECTOR"]), dtype=np.int64)
    t["gaia_id"] = np.asarray(src.stars["gaia_id"], dtype=np.int64)
    t["g_mag"] = np.asarray(src.stars["g_mag"], float)
    t["annular_flux"] = np.asarray(src.stars["annular_flux"], float)
    t["region"] = np.full(n, region)
    used = np.zeros(n, bool)
    used[inp.rows] = True
    t["used"] = used
    if fit is not None:
        for name in fit.colnames:
            col = (
                np.zeros(n, bool)
                if fit[name].dtype.kind == "b"
                else np.full(n, -1 if name == "dof" else np.nan)
            )
            col = col.astype(fit[name].dtype)
            col[candidates] = fit[name]
            t[name] = col
    return t


def _concat_tables(tables):
    tables = [t for t in tables if len(t.colnames)]
    return vstack(tables) if tables else Table()


def describe_inputs(paths):
    """The INPUTS table of an extended PSF file: each stamps file with its identity and config hash.

    ``file`` holds the path as :func:`brightstamps.files.path_card_value` writes it (FITS strings
    are ASCII); :func:`read_extended_psf` gives it back as the path.
    """
    rows = {"file": [], "exposure": [], "detector": [], "nstamps": [], "confhash": []}
    for path in paths:
        stamps = open_stamps(path)
        h = stamps.header
        rows["file"].append(path_card_value(path))
        rows["exposure"].append(str(h.get("EXPOSURE", "")))
        rows["detector"].append(int(h.get("DETECTOR", -1)))
        rows["nstamps"].append(len(stamps))
        rows["confhash"].append(str(h.get("CONFHASH", "")))
    return Table(rows, dtype=[str, str, np.int64, np.int64, str])


def write_extended_psf(path, models, stars, *, band, inputs, header):
    """Write the extended PSF of one band: per region IMAGE, MASK, VARIANCE and N.

    Parameters
    ----------
    path : str
        Destination, written atomically.
    models : dict
        From :func:`stack_stamps`.
    stars : astropy.table.Table
        From :func:`stack_stamps`.
    band : str
    inputs : astropy.table.Table
        One row per input file: ``file``, ``exposure``, ``detector``, ``confhash``.
    header : dict
        Further HDU 0 cards (statistic, normalization, ...).
    """
    primary = fits.PrimaryHDU()
    h = primary.header
    h["BAND"] = band
    h["NREGION"] = (len(models), "number of region models")
    for key, value in header.items():
        h[key] = value
    for i, (name, m) in enumerate(models.items(), start=1):
        h[f"REGION{i}"] = name
        # the region's name when the comment fits (47 characters), else its card: never truncated
        comment = f"stars stacked in {name}"
        h[f"NSTARS{i}"] = (m["nstars"], comment if len(comment) <= 47 else f"stars stacked in REGION{i}")
        h[f"DETS{i}"] = ",".join(str(d) for d in m["detectors"])
        if m.get("empty_reason"):  # only in empty regions: other files keep their cards
            h[f"EMPTY{i}"] = m["empty_reason"]
    hdus = [primary]
    for i, (name, m) in enumerate(models.items(), start=1):
        for ext, data in (
            ("IMAGE", m["image"]),
            ("MASK", m["mask"]),
            ("VARIANCE", m["variance"]),
            ("N", m["n"]),
        ):
            hdu = fits.ImageHDU(data, name=ext, ver=i)
            hdu.header["REGION"] = name
            if ext == "MASK":
                for key, bit in mask_plane_cards(m["planes"]):
                    hdu.header[key] = bit
            hdus.append(hdu)
    hdus.append(fits.BinTableHDU(stars, name="STARS"))
    hdus.append(fits.BinTableHDU(inputs, name="INPUTS"))
    with atomic_output(path) as tmp:
        fits.HDUList(hdus).writeto(tmp)


def read_extended_psf(path):
    """Read an extended PSF file.

    Returns
    -------
    models : dict
        Region name -> ``image``, ``mask``, ``variance``, ``n`` (numpy arrays), ``planes``,
        ``detectors`` (list of int), ``nstars``, ``empty_reason`` (why no star was stacked, or
        an empty string).
    stars : astropy.table.Table
    inputs : astropy.table.Table
    header : dict
        HDU 0 cards.
    """
    with open_fits(path, what="extended PSF file") as hdul:
        h = hdul[0].header
        models = {}
        for i in range(1, int(h["NREGION"]) + 1):
            name = h[f"REGION{i}"]
            dets = str(h.get(f"DETS{i}", ""))
            models[name] = {
                "image": np.asarray(hdul["IMAGE", i].data),
                "mask": np.asarray(hdul["MASK", i].data),
                "variance": np.asarray(hdul["VARIANCE", i].data),
                "n": np.asarray(hdul["N", i].data),
                "planes": read_mask_planes(hdul["MASK", i].header, source=f"{path} (MASK {i})"),
                "detectors": [int(d) for d in dets.split(",") if d],
                "nstars": int(h[f"NSTARS{i}"]),
                "empty_reason": str(h.get(f"EMPTY{i}", "")),
            }
        stars = Table(hdul["STARS"].data)
        inputs = Table(hdul["INPUTS"].data)
        header = dict(h.items())
    for t in (stars, inputs):
        for col in t.colnames:
            if t[col].dtype.kind in "SU":
                t[col] = t[col].astype(str)
    if "file" in inputs.colnames:
        inputs["file"] = np.array([path_from_card(f) for f in inputs["file"]], dtype=str)
    return models, stars, inputs, header


def band_stars(stamps_list, psf_stars):
    """Every star of a band with its outcome: normalization and whether it entered the stack.

    Parameters
    ----------
    stamps_list : list of str, or of brightstamps.stampsfile.StampsFile or Stamps
        The band's stamps files (paths are read one at a time, STARS only).
    psf_stars : astropy.table.Table
        The STARS table of the band's extended PSF file (``exposure``, ``gaia_id``, ``region``,
        ``used`` and, in psf_fit mode, ``amplitude``, ``reduced_chi2``, ``fit_ok``).

    Returns
    -------
    astropy.table.Table
        ``exposure``, ``detector``, ``gaia_id``, ``g_mag``, ``annular_flux``,
        ``valid_annulus_fraction``, ``norm_status``, ``region``, ``used_in_stack`` and, when the
        PSF file has them, ``amplitude``, ``reduced_chi2``, ``fit_ok``. A star missing from the
        PSF file has an empty region and is not used.
    """
    fit_cols = [c for c in ("amplitude", "reduced_chi2", "fit_ok") if c in psf_stars.colnames]
    lookup = {}
    for r in psf_stars:
        lookup[(str(r["exposure"]), int(r["gaia_id"]))] = r
    cols = {
        k: []
        for k in (
            "exposure",
            "detector",
            "gaia_id",
            "g_mag",
            "annular_flux",
            "valid_annulus_fraction",
            "norm_status",
            "region",
            "used_in_stack",
            *fit_cols,
        )
    }
    for item in stamps_list:
        stamps = open_stamps(item) if isinstance(item, (str, os.PathLike)) else item
        exposure = str(stamps.header.get("EXPOSURE", ""))
        for s in stamps.stars:
            cols["exposure"].append(exposure)
            cols["detector"].append(int(stamps.header.get("DETECTOR", -1)))
            cols["gaia_id"].append(int(s["gaia_id"]))
            for c in ("g_mag", "annular_flux", "valid_annulus_fraction"):
                cols[c].append(float(s[c]))
            cols["norm_status"].append(str(s["norm_status"]))
            match = lookup.get((exposure, int(s["gaia_id"])))
            cols["region"].append("" if match is None else str(match["region"]))
            cols["used_in_stack"].append(False if match is None else bool(match["used"]))
            for c in fit_cols:
                default = False if c == "fit_ok" else np.nan
                cols[c].append(default if match is None else match[c])
    dtypes = [str, np.int64, np.int64, float, float, float, str, str, bool] + [
        bool if c == "fit_ok" else float for c in fit_cols
    ]
    return Table([np.array(v, dtype=d) for v, d in zip(cols.values(), dtypes, strict=True)], names=list(cols))
