"""Extended PSF: stack the stamps of a band, per focal-plane region, tile by tile.

Per output pixel, the stack combines every selected stamp whose pixel is finite and carries none
of the bad mask planes. By default (``stack.weighting: inverse_variance``) each value is weighted
by the inverse of its variance: a star counts where it has signal, so the unsaturated stars make
the core and the saturated ones the wings, and a star whose annulus is noise no longer enters the
wings with the weight of the brightest. Values are clipped against the weighted mean of the
others (:func:`brightstamps.stats.weighted_clipped_mean`), so a feature in one star's stamp is
clipped even where that star carries most of the weight. The model's variance is ``1 / sum(w)``.
``weighting: none`` is LSST's unweighted afw statistic (MEANCLIP: the clipped variance over the
clipped count). A pixel with no usable input is NaN / NO_DATA; the mask is the OR of the
contributing masks. Stamps are read by section, a tile at a time, so memory is bounded by
``memory_mb`` whatever the number of stamps.

Two normalizations: ``psf_fit`` (default; LSST 2026's ExtendedPsfStackTask, extended) fits every
star as an amplitude times the model plus a polynomial background (:mod:`brightstamps.psffit`),
stacks the amplitude-normalized stamps and iterates until the amplitudes and the model's annulus
level change by less than ``psf_fit.tolerance``; the model is then normalized to a flux of 1
within ``stack.flux_radius``. ``annulus`` (LSST legacy MeasureExtendedPsfTask) stacks the stamps
as step 5 normalized them; its model's annulus level is 1.
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
from .profile import dynamic_range, flux_within, model_profile, profile_edges
from .psffit import (
    background_basis,
    background_names,
    exposure_units,
    feature_exclusions,
    fit_model,
    fit_stars,
    fit_table,
    normal_equations,
    pin_backgrounds,
    radial_hats,
    radial_knots,
    tie_knot,
)
from .stampsfile import StampsFile, open_stamps
from .stats import clipped_statistic, weighted_clipped_mean

__all__ = [
    "StackInput",
    "open_sources",
    "select_stars",
    "assign_regions",
    "stack_sources",
    "annulus_snr",
    "stack_stamps",
    "describe_inputs",
    "write_extended_psf",
    "read_extended_psf",
    "band_stars",
]

log = logging.getLogger(__name__)

#: Saturated stars fainter than this fraction of the brightest (1 % of its weight in the wings) do
#: not pin the backgrounds.
_WING_AMPLITUDE_FRACTION = 0.1

#: Gaussian sigma (pixels) of the smoothing that finds a star's own extended features (a galaxy).
_FEATURE_SMOOTHING = 2.0

#: Bytes of working memory per stacked value: float64 values, validity, masks and the sort copy
#: of afw's quantiles ...
_BYTES_PER_VALUE = 48
#: ... and, weighted, float64 weights, the clip's residuals, and the leave-one-out denominators.
_BYTES_PER_WEIGHTED_VALUE = 72


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
        ``(len(rows), terms)`` polynomial backgrounds (:func:`brightstamps.psffit.background_basis`
        terms, in the stored image's units), subtracted from each image before its factor is
        applied; None for none.
    rel_var : numpy.ndarray or None
        Relative variance of each plane's normalization (its amplitude's or annular flux's): a
        weighted stack adds ``model**2 * rel_var`` to the variance of each value; None for 0.
    excluded : list of numpy.ndarray or None
        Per plane, flat pixel indices left out of the stack (light of the star's own that the
        model must not take: :func:`brightstamps.psffit.feature_exclusions`); None for none.
    """

    stamps: StampsFile
    rows: np.ndarray
    factors: np.ndarray
    backgrounds: np.ndarray | None = None
    rel_var: np.ndarray | None = None
    excluded: list | None = None

    def __post_init__(self):
        n = len(self.rows)
        arrays = (self.backgrounds, self.rel_var, self.excluded)
        sizes = [len(self.factors)] + [len(a) for a in arrays if a is not None]
        if any(s != n for s in sizes):
            raise ValueError(f"{self.stamps.path}: {n} rows, but per-row arrays of lengths {sizes}")


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


def _why_empty(members, *, detectors, selection, psf_fit=False, first_model=None):
    """Why a region's stack holds no star, in words: no input, no star, or what left the stars out.

    Each star the selection leaves out is counted once, under the first cut it fails. In psf_fit
    mode the selected stars were left out by the fits: *first_model* of them made the first model.
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
    if selected and psf_fit:
        if not first_model:
            counts["without a catalogue magnitude, so no first model"] = selected
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


def _tiles(shape, n_values, memory_mb, bytes_per_value=None):
    """Row-major tiles (at most 100 x 100, as LSST) holding n_values stamps in memory_mb."""
    ny, nx = shape
    per_value = _BYTES_PER_VALUE if bytes_per_value is None else bytes_per_value
    budget = max(1, int(memory_mb * 2**20 / (per_value * max(n_values, 1))))
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


def stack_sources(
    inputs, *, weighting, statistic, num_sigma_clip, num_iter, bad_mask_planes, memory_mb, model=None
):
    """Stack the selected planes of *inputs*, tile by tile: each image less its background, times its factor.

    Parameters
    ----------
    inputs : list of StackInput
        One per stamps file (the first sets the stamp shape and the mask planes; none: one
        NO_DATA pixel).
    weighting : {'inverse_variance', 'none'}
        ``none``: afw's per-pixel *statistic*, every value alike (LSST). ``inverse_variance``: each
        value weighted by the inverse of its variance (its stamp's variance plane, scaled as its
        image, plus ``model**2 * rel_var``), MEANCLIP clipping each value against the weighted
        mean of the others (:func:`brightstamps.stats.weighted_clipped_mean`), MEAN not clipping.
    statistic : {'MEAN', 'MEDIAN', 'MEANCLIP'}
        MEDIAN only with ``weighting: none``.
    num_sigma_clip : float
    num_iter : int
    bad_mask_planes : list of str
        Inputs with any of these planes are left out of a pixel.
    memory_mb : float
        Working memory for the stacked values; sets the tile size.
    model : numpy.ndarray, optional
        The model the normalizations' errors are scaled by (weighted stacks with ``rel_var``).

    Returns
    -------
    dict
        ``image`` (float32), ``mask`` (int32), ``variance`` (float32), ``n`` (int32) maps, the
        ``planes`` of the mask and ``weights``: per input, each plane's mean share of the stack's
        weight over the pixels with data (NaN for an unweighted stack).
    """
    if weighting not in ("inverse_variance", "none"):
        raise InputError(f"stack.weighting: {weighting!r} is not 'inverse_variance' or 'none'")
    weighted = weighting == "inverse_variance"
    if weighted and statistic == "MEDIAN":
        raise InputError(
            "stack.statistic: MEDIAN has no inverse-variance weighted form; use MEANCLIP or MEAN, "
            "or stack.weighting: none"
        )
    shape = inputs[0].stamps.stamp_shape if inputs else (1, 1)
    planes = ensure_planes(inputs[0].stamps.mask_planes if inputs else {}, ["NO_DATA"])
    no_data = np.int32(1 << planes["NO_DATA"])
    n_total = sum(len(s.rows) for s in inputs)
    image = np.full(shape, np.nan, np.float32)
    variance = np.full(shape, np.nan, np.float32)
    mask = np.full(shape, no_data, np.int32)
    count = np.zeros(shape, np.int32)
    shares = [np.full(len(inp.rows), np.nan if not weighted else 0.0) for inp in inputs]
    used = [k for k, s in enumerate(inputs) if len(s.rows)]
    out = {
        "image": image,
        "mask": mask,
        "variance": variance,
        "n": count,
        "planes": planes,
        "weights": shares,
    }
    if not used:
        return out
    model = None if model is None else np.nan_to_num(np.asarray(model, np.float64), nan=0.0)
    backgrounds = {}  # the background terms over the stamp, per number of terms
    scales = {}
    for k in used:
        inp = inputs[k]
        if inp.backgrounds is not None and inp.backgrounds.shape[1] not in backgrounds:
            order = _background_order(inp.backgrounds.shape[1])
            backgrounds[inp.backgrounds.shape[1]] = background_basis(shape, order)
        image_scale, variance_scale = exposure_units(inp.stamps, inp.rows)
        # the variance of each value: the stored variance, in the stored image's units, times factor**2
        scales[k] = variance_scale / image_scale**2 * np.asarray(inp.factors, float) ** 2
    pixels_with_data = 0
    bytes_per_value = _BYTES_PER_WEIGHTED_VALUE if weighted else _BYTES_PER_VALUE
    for ys, xs in _tiles(shape, n_total, memory_mb, bytes_per_value):
        # the tile's values of every input, filled in place (no list to concatenate: half the memory)
        section = np.broadcast_to(np.zeros((), bool), shape)[ys, xs].shape
        values = np.empty((n_total, *section))
        valid = np.empty((n_total, *section), bool)
        masks = np.empty((n_total, *section), np.int32)
        variances = np.empty((n_total, *section)) if weighted else None
        start = 0
        for k in used:
            inp = inputs[k]
            part = slice(start, start + len(inp.rows))
            start += len(inp.rows)
            img, msk, var = inp.stamps.read(inp.rows, ys, xs)
            bad = plane_bits(inp.stamps.mask_planes, bad_mask_planes, field="stack.bad_mask_planes")
            vals = values[part]
            vals[...] = img
            del img
            if inp.backgrounds is not None:
                basis = backgrounds[inp.backgrounds.shape[1]][:, ys, xs]
                vals -= np.einsum("nt,tyx->nyx", inp.backgrounds, basis)
            ok = valid[part]
            np.isfinite(vals, out=ok)
            ok &= (msk & bad) == 0
            vals *= np.asarray(inp.factors, float)[:, None, None]
            if inp.excluded is not None:
                tile = np.zeros(shape, bool)
                for j, pixels in enumerate(inp.excluded):
                    if len(pixels):
                        tile.reshape(-1)[pixels] = True
                        ok[j] &= ~tile[ys, xs]
                        tile.reshape(-1)[pixels] = False
            masks[part] = _remap(msk, inp.stamps.mask_planes, planes)
            if weighted:
                v = variances[part]
                v[...] = var
                v *= scales[k][:, None, None]
                if inp.rel_var is not None and model is not None:
                    v += model[ys, xs][None] ** 2 * np.asarray(inp.rel_var, float)[:, None, None]
        if weighted:
            mean, var, n, weights = weighted_clipped_mean(
                values,
                variances,
                valid=valid,
                num_sigma_clip=num_sigma_clip,
                num_iter=num_iter if statistic == "MEANCLIP" else 0,
                overwrite_input=True,
            )
            del values, variances
            # each value's share of its pixel's weight, summed over the tile's pixels per plane
            per_row = np.einsum("nyx,yx->n", weights, np.where(n > 0, var, 0.0))
            start = 0
            for k in used:
                shares[k] += per_row[start : start + len(inputs[k].rows)]
                start += len(inputs[k].rows)
            pixels_with_data += int(np.count_nonzero(n > 0))
            valid = weights > 0
            del weights
        else:
            mean, var, n = clipped_statistic(
                values, valid=valid, statistic=statistic, num_sigma_clip=num_sigma_clip, num_iter=num_iter
            )
            with np.errstate(invalid="ignore", divide="ignore"):
                var = var / n
        image[ys, xs] = mean
        variance[ys, xs] = var
        contributing = np.bitwise_or.reduce(np.where(valid, masks, 0), axis=0)
        mask[ys, xs] = np.where(n > 0, contributing, no_data)
        count[ys, xs] = n
    if weighted:
        for k in used:
            shares[k] /= max(pixels_with_data, 1)
    return out


def _background_order(nterms):
    """The polynomial order with *nterms* terms."""
    order = 0
    while (order + 1) * (order + 2) // 2 < nterms:
        order += 1
    return order


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


def stack_stamps(
    paths,
    *,
    regions,
    normalization,
    weighting,
    statistic,
    num_sigma_clip,
    num_iter,
    bad_mask_planes,
    min_valid_annulus_fraction,
    mag_limit,
    include_failed,
    psf_fit,
    flux_radius,
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
    normalization : {'psf_fit', 'annulus'}
        Fit every star's amplitude and background against the model, iterating (``psf_fit``), or
        stack the stamps as step 5 normalized them by their annular flux (``annulus``, LSST legacy).
    weighting : {'inverse_variance', 'none'}
        See :func:`stack_sources`.
    statistic, num_sigma_clip, num_iter, bad_mask_planes
        Per-pixel stacking statistic (see :func:`stack_sources`).
    min_valid_annulus_fraction, mag_limit, include_failed
        Star selection (see :func:`select_stars`).
    psf_fit : dict
        ``background_order``, ``iterations`` (at most), ``tolerance``,
        ``max_masked_flux_fraction``, ``min_model_snr`` and ``subtract_background``, for psf_fit
        mode.
    flux_radius : float
        psf_fit mode: the model is normalized to a flux of 1 within this radius (pixels).
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
        Region name -> the :func:`stack_sources` maps plus ``detectors``, ``nstars``,
        ``empty_reason`` (why no star was stacked, in words; empty when some were),
        ``normalization`` ('flux' or 'annulus'), ``annulus_level``, ``iterations``,
        ``converged``, ``profile`` (:func:`brightstamps.profile.model_profile`),
        ``dynamic_range`` and ``dynamic_radius`` (:func:`brightstamps.profile.dynamic_range`).
    stars : astropy.table.Table
        One row per star of the inputs: ``exposure``, ``detector``, ``gaia_id``, ``g_mag``,
        ``annular_flux``, ``region``, ``used``, ``stack_status`` (``used`` or why not),
        ``weight`` and, in psf_fit mode, the fit results (:func:`brightstamps.psffit.fit_table`).
    """
    if normalization not in ("annulus", "psf_fit"):
        raise InputError(f"normalization: {normalization!r} is not 'annulus' or 'psf_fit'")
    sources = open_sources(paths)
    by_region = assign_regions(sources, regions)
    options = {
        "weighting": weighting,
        "statistic": statistic,
        "num_sigma_clip": num_sigma_clip,
        "num_iter": num_iter,
        "bad_mask_planes": bad_mask_planes,
        "memory_mb": memory_mb,
    }
    if weighting == "inverse_variance" and statistic == "MEDIAN":
        stack_sources([], **options)  # the one line that says why
    selection = {
        "min_valid_annulus_fraction": min_valid_annulus_fraction,
        "mag_limit": mag_limit,
        # psf_fit needs no annular flux: stars whose annulus normalization failed are fitted too
        "include_failed": include_failed or normalization == "psf_fit",
    }
    models, star_tables = {}, []
    for region, members in by_region.items():
        candidates = [np.flatnonzero(select_stars(src.stars, **selection)) for src in members]
        fitted, first_model = None, None
        if normalization == "annulus":
            inputs, result = _annulus_stack(
                members, candidates, bad_mask_planes=bad_mask_planes, options=options
            )
            result.update(iterations=0, converged=True, last_change=float("nan"), fitted=None)
        else:
            result, inputs, fitted, first_model = _psf_fit_stack(
                members,
                candidates,
                psf_fit=psf_fit,
                flux_radius=flux_radius,
                bad_mask_planes=bad_mask_planes,
                options=options,
            )
        if regions:
            result["detectors"] = sorted(
                int(d) for d in next(v for k, v in regions.items() if k.upper() == region)
            )
        else:
            result["detectors"] = sorted({int(src.header["DETECTOR"]) for src in members})
        result["nstars"] = int(sum(len(inp.rows) for inp in inputs))
        result["empty_reason"] = ""
        where = f"band {band}, region {region}" if band is not None else f"region {region}"
        if result["nstars"] == 0:
            # an all-NaN model passes every later step: say so where the user looks (the end of the
            # run, the report), not only in the file
            result["empty_reason"] = _why_empty(
                members,
                detectors=result["detectors"],
                first_model=first_model,
                psf_fit=normalization == "psf_fit",
                selection=selection,
            )
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
        elif not result["converged"]:
            notice(
                log,
                "psf_fit_not_converged",
                "%s: the PSF fits had not converged after psf_fit.iterations (%d): amplitudes still "
                "changed by %.2g between the last two iterations (psf_fit.tolerance %g)",
                where,
                result["iterations"],
                result["last_change"],
                psf_fit["tolerance"],
            )
        _describe_model(result, members, normalization=normalization, flux_radius=flux_radius, where=where)
        models[region] = result
        star_tables += [
            _star_rows(inp, region, src_candidates, fit, weights, selection)
            for inp, src_candidates, fit, weights in zip(
                inputs, candidates, fitted or [None] * len(inputs), result["weights"], strict=True
            )
        ]
    return models, _concat_tables(star_tables)


def _center(src):
    return int(src.header["CENTERX"]), int(src.header["CENTERY"])


def _annulus_level(image, n, src):
    """The model's mean over the normalization annulus of its stamps (LSST legacy's level 1)."""
    if src is None or "INNERRAD" not in src.header:
        return float("nan")
    cx, cy = _center(src)
    yy, xx = np.indices(image.shape)
    d2 = (xx - cx) ** 2 + (yy - cy) ** 2
    ring = (d2 > int(src.header["INNERRAD"]) ** 2) & (d2 <= int(src.header["OUTERRAD"]) ** 2)
    ring &= np.isfinite(image) & (n > 0)
    return float(np.mean(image[ring], dtype=np.float64)) if ring.any() else float("nan")


def _flux_scale(image, src, *, flux_radius):
    """The model's flux within *flux_radius* of its centre (NaN where the core has no data)."""
    return flux_within(image, flux_radius, center=_center(src))


def _describe_model(result, members, *, normalization, flux_radius, where):
    """Normalize a region's model as stated, and add its profile, dynamic range and annulus level."""
    src = members[0] if members else None
    image = result["image"].astype(np.float64)
    kind = "annulus"
    if normalization == "psf_fit" and result["nstars"]:
        flux = _flux_scale(image, src, flux_radius=flux_radius)
        if np.isfinite(flux) and flux > 0:
            kind = "flux"
        else:
            # no unsaturated star: the core has no data, so the flux within flux_radius is unknown
            level = _annulus_level(image, result["n"], src)
            flux = level if np.isfinite(level) and level > 0 else 1.0
            notice(
                log,
                "extended_psf_without_core",
                "%s: the model has no data within stack.flux_radius (%g px) of its centre (no "
                "unsaturated star was fitted), so it is normalized to its annulus level instead",
                where,
                flux_radius,
            )
        result["image"] = (image / flux).astype(np.float32)
        result["variance"] = (result["variance"].astype(np.float64) / flux**2).astype(np.float32)
        for table in result.get("fitted") or []:
            table["amplitude"] *= flux
            table["amplitude_err"] *= flux
    result["normalization"] = kind
    center = _center(src) if src is not None else (0, 0)
    shape = result["image"].shape
    rmax = max(min(center[0], center[1], shape[1] - 1 - center[0], shape[0] - 1 - center[1]) + 0.5, 1.0)
    result["profile"] = model_profile(
        result["image"], result["variance"], result["n"], center=center, edges=profile_edges(rmax)
    )
    result["dynamic_range"], result["dynamic_radius"] = dynamic_range(result["profile"])
    result["annulus_level"] = _annulus_level(result["image"].astype(np.float64), result["n"], src)


def _annulus_stack(members, candidates, *, bad_mask_planes, options):
    """Annulus mode: the stamps as step 5 normalized them, weighted with their annular flux's error.

    A weighted stack needs the error of each stamp's normalization: ``model**2 / snr**2`` with the
    annulus's signal-to-noise, scaled by a first (weighted) stack.
    """
    inputs = [_unscaled(src, rows) for src, rows in zip(members, candidates, strict=True)]
    result = stack_sources(inputs, **options)
    if options["weighting"] == "none" or not any(len(r) for r in candidates):
        return inputs, result
    rel_var = []
    for src, rows in zip(members, candidates, strict=True):
        snr = annulus_snr(src, rows, bad_mask_planes=bad_mask_planes)
        rel_var.append(np.where(np.isfinite(snr) & (snr > 0), 1.0 / snr**2, 0.0))
    inputs = [
        StackInput(src, rows, np.ones(len(rows)), rel_var=rv)
        for src, rows, rv in zip(members, candidates, rel_var, strict=True)
    ]
    return inputs, stack_sources(inputs, **options, model=result["image"])


def _catalogue_flux(src, rows, reference_mag):
    """Relative catalogue fluxes ``10**(-0.4 (g - reference))`` of *rows* (NaN where g is unknown)."""
    mag = np.asarray(src.stars["g_mag"], float)[rows]
    return 10.0 ** (-0.4 * (mag - reference_mag))


def _psf_fit_stack(members, candidates, *, psf_fit, flux_radius, bad_mask_planes, options):
    """psf_fit mode: a first model from catalogue fluxes, then fits and stacks in turn until converged.

    The first model divides each stamp by its star's catalogue flux: every star has one, whatever
    its saturation or its annulus's signal, so the first stack has a core (from the unsaturated
    stars) and wings (from the saturated ones). Its errors (the catalogue's band and colour terms,
    each exposure's zero point) only set the first model's local scale, which the amplitude fits
    and their joint radial rescaling (:mod:`brightstamps.psffit`) remove. Stars without a catalogue
    magnitude are fitted from the first iteration on.

    Returns
    -------
    result : dict
        The last stack (:func:`stack_sources`), plus ``iterations``, ``converged``,
        ``last_change`` and ``fitted`` (the last fits, whose amplitudes :func:`_describe_model`
        scales once it normalizes the model).
    inputs : list of StackInput
        What made it.
    fitted : list of astropy.table.Table or None
        The last fits, one row per candidate (:func:`brightstamps.psffit.fit_table`); None if no
        first model could be made.
    first_model : int
        The number of stars in the first model.
    """
    src0 = members[0] if members else None
    mags = np.concatenate(
        [np.asarray(s.stars["g_mag"], float)[r] for s, r in zip(members, candidates, strict=True)]
    )
    finite_mags = mags[np.isfinite(mags)]
    reference = float(np.median(finite_mags)) if len(finite_mags) else 0.0
    inputs = []
    for src, rows in zip(members, candidates, strict=True):
        f_cat = _catalogue_flux(src, rows, reference)
        keep = np.isfinite(f_cat)
        image_scale, _ = exposure_units(src, rows)
        inputs.append(StackInput(src, rows[keep], image_scale[keep] / f_cat[keep]))
    first_model = sum(len(inp.rows) for inp in inputs)
    result = stack_sources(inputs, **{**options, "statistic": "MEAN"})
    if not first_model or not np.isfinite(result["image"]).any():
        empty = [_unscaled(src, rows[:0]) for src, rows in zip(members, candidates, strict=True)]
        done = {"iterations": 0, "converged": True, "last_change": float("nan"), "fitted": None}
        return stack_sources(empty, **options) | done, empty, None, first_model
    shape, center = src0.stamp_shape, _center(src0)
    order = int(psf_fit["background_order"])
    names = background_names(order)
    basis = background_basis(shape, order)
    knots = radial_knots(shape, center)
    yy, xx = np.indices(shape)
    hats = radial_hats(np.hypot(xx - center[0], yy - center[1]), knots)
    model, variance = _normalized(result, src0, flux_radius)
    excluded = [[np.zeros(0, np.int64)] * len(rows) for rows in candidates]
    weighted = options["weighting"] == "inverse_variance"
    previous = None
    fitted = None
    for iteration in range(1, int(psf_fit["iterations"]) + 1):
        fm = fit_model(model, variance, min_model_snr=psf_fit["min_model_snr"], center=center)
        columns = np.concatenate([fm[None] * hats, basis])
        total = np.abs(columns).sum(axis=(1, 2))
        # the fits see every unmasked pixel: a feature the stack leaves out (below) is light the
        # star's background and amplitude must still account for, and excluding it from the fit
        # too would let the two decisions chase each other from one iteration to the next
        eqs = [
            normal_equations(src, rows, columns, bad_mask_planes=bad_mask_planes)
            for src, rows in zip(members, candidates, strict=True)
        ]
        gram, rhs, data2, npix, used = (np.concatenate([e[j] for e in eqs]) for j in range(5))
        nk = len(knots)
        masked0 = 1.0 - used[:, :nk].sum(axis=1) / total[:nk].sum()
        prelim = (masked0 <= psf_fit["max_masked_flux_fraction"]) & (npix > 1 + len(names))
        # the core-to-wing tie, only when weighted: an unweighted stack has no consistent scale
        # to solve for (LSST)
        fit = fit_stars(
            gram,
            rhs,
            data2,
            npix,
            used,
            total,
            nk=nk,
            ok=prelim,
            saturated=(masked0 >= 0.5) if weighted else None,
            start=tie_knot(fm, center, knots),
        )
        # the rescaled model keeps the fit model's flux: amplitudes stay in the model's units
        tie = np.tensordot(fit["scale"], hats, axes=1)
        rescaled = fm * tie
        nu = flux_within(rescaled, flux_radius, center=center) / flux_within(fm, flux_radius, center=center)
        if not (np.isfinite(nu) and nu > 0):
            nu = 1.0
        rescaled /= nu
        fit["amplitude"] *= nu
        fit["amplitude_var"] *= nu**2
        status, ok = _fit_status(fit, psf_fit)
        amplitude = fit["amplitude"]
        background = fit["background"]
        if psf_fit["subtract_background"] and background.shape[1]:
            # the stars that make the wings say what of their backgrounds scales with them: the
            # faint stars' backgrounds (undetected neighbours' light) are another population, and
            # so are those of saturated stars too faint to weigh in the wings (their weight goes as
            # the amplitude squared): on the demo, G 11 stars in bright stars' halos gave the line
            # a slope of -1.3e-9 with backgrounds that do not scale with anything
            wings = ok & (masked0 >= 0.5)
            if wings.any():
                wings &= amplitude >= _WING_AMPLITUDE_FRACTION * np.nanmax(amplitude[wings])
            background, _ = pin_backgrounds(
                amplitude, background, fit["background_var"], wings if wings.sum() >= 3 else ok
            )
            fit["background"] = background
        with np.errstate(invalid="ignore", divide="ignore"):
            rel_var = fit["amplitude_var"] / amplitude**2
        if weighted and options["statistic"] == "MEANCLIP" and iteration > 1:
            # the first model (catalogue fluxes) is not yet the stars' common shape: judge each
            # star's own features against the fitted model only
            raw = model * tie / nu
            excluded, start = [], 0
            for src, rows in zip(members, candidates, strict=True):
                part = slice(start, start + len(rows))
                start += len(rows)
                excluded.append(
                    feature_exclusions(
                        src,
                        rows,
                        amplitude=amplitude[part],
                        background=fit["background"][part],
                        basis=basis,
                        model=raw,
                        model_variance=variance,
                        bad_mask_planes=bad_mask_planes,
                        num_sigma=options["num_sigma_clip"],
                        smoothing=_FEATURE_SMOOTHING,
                    )
                )
        inputs, fitted, start = [], [], 0
        for src, rows in zip(members, candidates, strict=True):
            part = slice(start, start + len(rows))
            start += len(rows)
            keep = ok[part]
            image_scale, _ = exposure_units(src, rows)
            inputs.append(
                StackInput(
                    src,
                    rows[keep],
                    image_scale[keep] / amplitude[part][keep],
                    background[part][keep] / image_scale[keep, None]
                    if psf_fit["subtract_background"]
                    else None,
                    rel_var[part][keep],
                    [excluded[len(inputs)][j] for j in np.flatnonzero(keep)],
                )
            )
            per_star = {k: v[part] for k, v in fit.items() if k != "scale"}
            fitted.append(fit_table(per_star, names, keep, status[part]))
        result = stack_sources(inputs, **options, model=rescaled)
        model, variance, scale = _normalized(result, src0, flux_radius, with_scale=True)
        current = amplitude * scale  # the amplitudes in the new model's units
        level = _annulus_level(model, result["n"], src0)
        change = np.inf
        if previous is not None:
            both = ok & previous[1]
            with np.errstate(invalid="ignore", divide="ignore"):
                ratios = current[both] / previous[0][both]
            level_change = abs(level / previous[2] - 1)
            change = float(np.nanmax(np.abs(ratios - 1), initial=0.0)) if both.any() else np.inf
            change = max(change, level_change if np.isfinite(level_change) else np.inf)
        previous = (current, ok, level)
        result.update(iterations=iteration, last_change=change, converged=change < psf_fit["tolerance"])
        if result["converged"]:
            break
    # the stack is returned as stacked: _describe_model normalizes it and scales the amplitudes
    result["fitted"] = fitted
    return result, inputs, fitted, first_model


def _normalized(result, src, flux_radius, *, with_scale=False):
    """The stack divided by its flux within *flux_radius* (by its annulus level without a core)."""
    image = result["image"].astype(np.float64)
    scale = _flux_scale(image, src, flux_radius=flux_radius)
    if not (np.isfinite(scale) and scale > 0):
        scale = _annulus_level(image, result["n"], src)
    if not (np.isfinite(scale) and scale > 0):
        scale = 1.0
    variance = result["variance"].astype(np.float64) / scale**2
    if with_scale:
        return image / scale, variance, scale
    return image / scale, variance


def _fit_status(fit, psf_fit):
    """Which fits are used, and why the others are not, in words."""
    limit = psf_fit["max_masked_flux_fraction"]
    n = len(fit["amplitude"])
    status = np.full(n, "used", dtype=object)
    ok = np.ones(n, bool)
    checks = [
        (fit["dof"] <= 0, "fit rejected: too few unmasked pixels"),
        (~(fit["masked_flux_fraction"] <= limit), None),
        (~(np.isfinite(fit["amplitude"]) & (fit["amplitude"] > 0)), "fit rejected: amplitude not positive"),
    ]
    for bad, why in checks:
        for i in np.flatnonzero(bad & ok):
            status[i] = why or (
                f"fit rejected: masked flux fraction {fit['masked_flux_fraction'][i]:.3f} > "
                f"psf_fit.max_masked_flux_fraction ({limit:g})"
            )
        ok &= ~bad
    return status.astype(str), ok


def _star_rows(inp, region, candidates, fit, weights, selection):
    """The STARS rows of one input.

    Identity, region, whether stacked (*inp*'s rows) and why not, its weight share and the PSF
    fit of the *candidates* (or None).
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
    status = np.full(n, "used", dtype=object)
    left = np.zeros(n, bool)
    for why, cut in _selection_cuts(src.stars, **selection).items():
        status[cut & ~left] = f"not selected: {why}"
        left |= cut
    weight = np.full(n, np.nan)
    weight[inp.rows] = weights
    t["weight"] = weight
    if fit is not None:
        for name in fit.colnames:
            if name == "stack_status":
                status[candidates] = np.asarray(fit[name], dtype=object)
                continue
            col = (
                np.zeros(n, bool)
                if fit[name].dtype.kind == "b"
                else np.full(n, -1 if name == "dof" else np.nan)
            )
            col = col.astype(fit[name].dtype)
            col[candidates] = fit[name]
            t[name] = col
    else:
        # psf_fit without a first model: no selected star had a catalogue magnitude
        status[candidates[~np.isin(candidates, inp.rows)]] = "not stacked: no first model"
    t["stack_status"] = status.astype(str)
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
    """Write the extended PSF of one band: per region IMAGE, MASK, VARIANCE, N and PROFILE.

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
        if "normalization" in m:
            h[f"NORM{i}"] = (m["normalization"], "flux: flux in FLUXRAD = 1; annulus: level 1")
            h[f"ANNLEV{i}"] = (_card_float(m["annulus_level"]), "model's mean in the stamps' annulus")
            h[f"DYNRNG{i}"] = (_card_float(m["dynamic_range"]), "decades from the peak to S/N = 1")
            h[f"DYNRAD{i}"] = (_card_float(m["dynamic_radius"]), "[px] radius where S/N falls to 1")
            h[f"NITER{i}"] = (int(m["iterations"]), "fit-and-stack iterations")
            h[f"CONVRG{i}"] = (bool(m["converged"]), "changes below psf_fit.tolerance")
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
        if "profile" in m:
            hdu = fits.BinTableHDU(m["profile"], name="PROFILE", ver=i)
            hdu.header["REGION"] = name
            hdus.append(hdu)
    hdus.append(fits.BinTableHDU(stars, name="STARS"))
    hdus.append(fits.BinTableHDU(inputs, name="INPUTS"))
    with atomic_output(path) as tmp:
        fits.HDUList(hdus).writeto(tmp)


def _card_float(value):
    """A float for a header card: FITS has no NaN, so an unknown value is written as a string."""
    return float(value) if np.isfinite(value) else "NaN"


def _float_card(value):
    return float("nan") if isinstance(value, str) else float(value)


def read_extended_psf(path):
    """Read an extended PSF file.

    Returns
    -------
    models : dict
        Region name -> ``image``, ``mask``, ``variance``, ``n`` (numpy arrays), ``planes``,
        ``detectors`` (list of int), ``nstars``, ``empty_reason`` (why no star was stacked, or
        an empty string), and ``normalization``, ``annulus_level``, ``dynamic_range``,
        ``dynamic_radius``, ``iterations``, ``converged``, ``profile`` (see
        :func:`stack_stamps`).
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
            if f"NORM{i}" in h:
                models[name].update(
                    normalization=str(h[f"NORM{i}"]),
                    annulus_level=_float_card(h[f"ANNLEV{i}"]),
                    dynamic_range=_float_card(h[f"DYNRNG{i}"]),
                    dynamic_radius=_float_card(h[f"DYNRAD{i}"]),
                    iterations=int(h[f"NITER{i}"]),
                    converged=bool(h[f"CONVRG{i}"]),
                    profile=Table(hdul["PROFILE", i].data),
                )
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
