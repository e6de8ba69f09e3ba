"""Figures and tables of the report: stamp mosaics, extended PSFs, radial profiles, annular fluxes.

Every plot function draws a figure of its own on matplotlib's Agg canvas (no pyplot, so no global
state and nothing left open), writes one PNG to the path it is given (atomically, as every
product of the package) and releases the figure. The PNGs carry no software
version or date, so a rerun gives the same bytes.

Images are shown with a logarithmic stretch: normalized stamps are about 1 in the annulus and up
to 1e5 at the core. Pixels at or below the floor of the stretch are drawn in the colour map's
lowest colour; masked pixels are overlaid in colour (see :data:`MASKED_COLOUR` and
:data:`NO_DATA_COLOUR`). Axes are in pixels relative to the star's central pixel.
"""

import dataclasses
import re
import textwrap

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import ListedColormap, LogNorm
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Circle, Patch, Rectangle
from matplotlib.ticker import NullFormatter

from . import profile
from .errors import InputError
from .files import atomic_output
from .masks import plane_bits
from .stampsfile import Stamps, read_stamps

__all__ = [
    "plot_stamp_mosaic",
    "plot_extended_psf",
    "plot_psf_profile",
    "plot_profiles",
    "plot_annular_flux",
    "plot_star_fits",
    "dynamic_range_text",
]

#: Overlay colour of pixels carrying a bad mask plane.
MASKED_COLOUR = "#00e5ff"
#: Overlay colour of pixels without data (NaN or NO_DATA).
NO_DATA_COLOUR = "#9e9e9e"
#: Colour of failed stars (normalization status not ``ok``).
FAILED_COLOUR = "#d62728"
#: Colour of the simulator's true PSF over a model.
TRUTH_COLOUR = "#ff7f0e"
#: Side (pixels) of the extended PSF figure's panel of the core.
CORE_BOX = 41
#: Where a profile's central bin (the central pixel, r = 0) is drawn on a log radius axis.
CENTRAL_BIN_RADIUS = 0.25

_CMAP = "magma"
_FLOOR = 0.01  # lower end of the log stretch, relative to the annulus level
_SAVE = {"dpi": 100, "metadata": {"Software": None}}


def _figure(rows=1, columns=1, grid=None, sharex=False, **kwargs):
    """A figure on the Agg canvas and its ``(rows, columns)`` array of axes.

    *grid*: matplotlib's ``gridspec_kw`` (e.g. ``width_ratios``); *sharex* as matplotlib's
    ``subplots``; *kwargs* go to the Figure.
    """
    fig = Figure(layout="constrained", **kwargs)
    FigureCanvasAgg(fig)
    return fig, fig.subplots(rows, columns, squeeze=False, gridspec_kw=grid, sharex=sharex)


def _save(fig, path, description=None):
    """Save *fig* as PNG to *path* atomically (no version or date in the file) and release it.

    *description*, when given, is also written as the PNG's ``Description`` text (the figure's
    message for readers that cannot see it).
    """
    save = _SAVE
    if description is not None:
        save = {**_SAVE, "metadata": {**_SAVE["metadata"], "Description": description}}
    try:
        with atomic_output(path) as tmp:
            fig.savefig(tmp, format="png", **save)
    finally:
        fig.clear()


def _star_center(header, shape):
    """The star's central pixel ``(x, y)``: CENTERX/CENTERY, else the middle of the stamp."""
    return (
        float(header.get("CENTERX", (shape[1] - 1) // 2)),
        float(header.get("CENTERY", (shape[0] - 1) // 2)),
    )


def _extent(shape, center):
    """Imshow extent with pixel offsets from the star."""
    cx, cy = center
    return (-cx - 0.5, shape[1] - cx - 0.5, -cy - 0.5, shape[0] - cy - 0.5)


def _positive_median(values):
    values = values[np.isfinite(values) & (values > 0)]
    return float(np.median(values)) if len(values) else 1.0


def _bad_bits(planes, names):
    return plane_bits(planes, [n for n in names if n in planes], field="bad_mask_planes") if planes else 0


def _empty_figure(path, title, message):
    fig, axes = _figure(figsize=(6, 3))
    ax = axes[0, 0]
    ax.set_axis_off()
    ax.set_title(title)
    ax.text(0.5, 0.5, message, ha="center", va="center", fontsize=14, transform=ax.transAxes)
    _save(fig, path)


def _fmt_mag(g):
    g = float(g)
    return f"G = {g:.2f}" if np.isfinite(g) else "G unknown"


def plot_stamp_mosaic(stamps, path, *, bad_mask_planes, columns=4, max_panels=48):
    """One panel per stamp of an exposure (the brightest *max_panels*), log stretch, masks and annulus drawn.

    Normalized stamps are shown as they are (the annulus level is 1); a stamp whose normalization
    failed is un-normalized, so it is shown divided by the median of its annulus (or of its
    positive pixels), and its panel is framed and titled in red with its ``norm_status``.

    Parameters
    ----------
    stamps : brightstamps.stampsfile.Stamps
        The stamps of one exposure (``read_stamps``).
    path : str
        PNG to write.
    bad_mask_planes : list of str
        Mask planes overlaid as masked (the config's ``bad_mask_planes``); NaN and NO_DATA pixels
        are overlaid in a colour of their own.
    columns : int
        Panels per row.
    max_panels : int
        At most this many panels, the brightest stars (a figure of hundreds of panels is
        unreadable, and laying it out takes matplotlib minutes); the title says so.
    """
    header = stamps.header
    exposure = header.get("EXPOSURE", "")
    title = (
        f"Bright-star stamps of exposure {exposure} (band {header.get('BAND', '?')}, "
        f"detector {header.get('DETECTOR', '?')})"
    )
    stamps, title = _brightest(stamps, max_panels, title)
    n = len(stamps)
    if n == 0:
        _empty_figure(path, title, "no bright star on this exposure")
        return
    names = list(bad_mask_planes)
    planes = stamps.mask_planes
    bad = _bad_bits(planes, [p for p in names if p != "NO_DATA"])
    nodata = _bad_bits(planes, ["NO_DATA"])
    shape = stamps.stamp_shape
    center = _star_center(header, shape)
    radii = (header.get("INNERRAD"), header.get("OUTERRAD"))
    annulus = _annulus(shape, center, *radii)
    status = (
        np.asarray(stamps.stars["norm_status"]).astype(str)
        if "norm_status" in stamps.stars.colnames
        else np.full(n, "ok")
    )
    shown = _shown_images(stamps, annulus, status)
    # one stretch for every panel: from the floor to the brightest pixel shown
    finite_max = [np.max(s[np.isfinite(s)]) for s in shown if np.isfinite(s).any()]
    norm = LogNorm(vmin=_FLOOR, vmax=max(max(finite_max, default=1.0), 10 * _FLOOR), clip=True)

    columns = max(1, min(int(columns), n))
    rows = -(-n // columns)
    fig, axes = _figure(rows, columns, figsize=(3.2 * columns + 1.2, 3.5 * rows + 0.9))
    extent = _extent(shape, center)
    im = None
    for i, ax in enumerate(axes.flat):
        if i >= n:
            ax.set_axis_off()
            continue
        mask = stamps.mask[i]
        missing = ((mask & nodata) != 0) | ~np.isfinite(stamps.image[i])
        masked = ((mask & bad) != 0) & ~missing
        im = _stamp_panel(
            ax,
            shown[i],
            masked,
            missing,
            norm=norm,
            extent=extent,
            radii=radii if annulus is not None else None,
        )
        _stamp_label(ax, stamps.stars[i], status[i])
        if i % columns == 0:
            ax.set_ylabel("y offset (pixels)", fontsize=8)
        if i >= n - columns:
            ax.set_xlabel("x offset (pixels)", fontsize=8)
    _mosaic_keys(fig, axes, im, radii if annulus is not None else None)
    fig.suptitle(title)
    _save(fig, path)


def _brightest(stamps, max_panels, title):
    """The brightest *max_panels* stamps (by ``g_mag``, in their order) and *title* saying so.

    *stamps* and *title* are given back as they are when there are no more.
    """
    n = len(stamps)
    if n <= max_panels:
        return stamps, title
    keep = np.sort(np.argsort(np.asarray(stamps.stars["g_mag"], float), kind="stable")[:max_panels])
    stamps = dataclasses.replace(
        stamps,
        image=stamps.image[keep],
        mask=stamps.mask[keep],
        variance=stamps.variance[keep],
        stars=stamps.stars[keep],
    )
    return stamps, title + f"\nthe {max_panels} brightest of {n} stars"


def _annulus(shape, center, r_in, r_out):
    """The pixels of the normalization annulus ``r_in < r <= r_out`` about *center*.

    None when the radii are not known.
    """
    if r_in is None or r_out is None:
        return None
    y, x = np.indices(shape)
    r = np.hypot(x - center[0], y - center[1])
    return (r > r_in) & (r <= r_out)


def _shown_images(stamps, annulus, status):
    """Each stamp as drawn (float64).

    As it is when normalized, else divided by the median of its annulus (or of its positive pixels).
    """
    normed = bool(stamps.header.get("NORMED", False))
    shown = []
    for i in range(len(stamps)):
        img = stamps.image[i].astype(np.float64)
        if not (normed and status[i] == "ok"):
            ref = img[annulus] if annulus is not None else img
            level = _positive_median(ref)
            if level == 1.0 and annulus is not None:
                level = _positive_median(img)
            img = img / level
        shown.append(img)
    return shown


def _stamp_panel(ax, shown, masked, missing, *, norm, extent, radii):
    """Draw one stamp; return the image's artist (for the colour bar).

    The image on the log stretch, the masked and missing pixels in their colours and the annulus
    (*radii*, or None).
    """
    im = ax.imshow(
        np.where(np.isfinite(shown), np.maximum(shown, _FLOOR), _FLOOR),
        origin="lower",
        cmap=_CMAP,
        norm=norm,
        extent=extent,
        interpolation="nearest",
    )
    for sel, colour, alpha in ((masked, MASKED_COLOUR, 0.6), (missing, NO_DATA_COLOUR, 1.0)):
        if sel.any():
            ax.imshow(
                np.ma.masked_where(~sel, np.ones(sel.shape)),
                origin="lower",
                alpha=alpha,
                cmap=ListedColormap([colour]),
                vmin=0,
                vmax=1,
                extent=extent,
                interpolation="nearest",
            )
    if radii is not None:
        for rad in radii:
            ax.add_patch(Circle((0, 0), rad, fill=False, color="white", lw=0.8, ls="--"))
    return im


def _stamp_label(ax, star, status):
    """Title a panel with the star's id and G; a failed star's panel is framed and titled in red."""
    label = f"{star['gaia_id']}\n{_fmt_mag(star['g_mag'])}"
    ok = status == "ok"
    if not ok:
        label += f"\nFAILED: {status} (shown / annulus median)"
        for spine in ax.spines.values():
            spine.set_color(FAILED_COLOUR)
            spine.set_linewidth(3)
    ax.set_title(label, fontsize=9, color="black" if ok else FAILED_COLOUR)
    ax.tick_params(labelsize=7)


def _mosaic_keys(fig, axes, im, radii):
    """The mosaic's colour bar (of artist *im*) and its legend of overlays and annulus (*radii*, or None)."""
    cbar = fig.colorbar(im, ax=axes, shrink=0.8, pad=0.02)
    cbar.set_label("normalized flux (annulus level = 1), log scale")
    handles = [
        Patch(color=MASKED_COLOUR, alpha=0.6, label="bad mask plane"),
        Patch(color=NO_DATA_COLOUR, label="no data (NaN / NO_DATA)"),
        Line2D(
            [],
            [],
            color="black",
            ls="--",
            lw=0.8,
            label=f"annulus {radii[0]}-{radii[1]} px" if radii is not None else "annulus",
        ),
    ]
    fig.legend(handles=handles, loc="outside lower center", ncols=3, fontsize=9)


def _plain_log_ticks(ax, which):
    """Label a log axis with plain numbers (0.5, 2, 100; not 5 x 10^-1) within its limits.

    At 1, 2, 5 x 10^k over less than two decades (a short range has too few powers of ten to
    read), else at 10^k; minor ticks unlabelled. Call after the limits are set.
    """
    lo, hi = ax.get_xlim() if which == "x" else ax.get_ylim()
    steps = (1, 2, 5) if hi / lo < 100 else (1,)
    ticks = [m * 10.0**k for k in range(-6, 9) for m in steps if lo <= m * 10.0**k <= hi]
    axis = ax.xaxis if which == "x" else ax.yaxis
    axis.set_ticks(ticks, [f"{t:g}" for t in ticks])
    axis.set_minor_formatter(NullFormatter())


def _region_header(header, m):
    """The file's cards as they apply to one region: its own normalization (``NORM{i}``) when stated."""
    header = dict(header or {})
    if m.get("normalization"):
        header["PSFNORM"] = m["normalization"]
    return header


def _norm_words(header):
    """How the file says its model is normalized, for labels (``PSFNORM``, ``FLUXRAD``)."""
    header = header or {}
    psfnorm = header.get("PSFNORM")
    if psfnorm == "flux":
        return f"flux within r = {float(header.get('FLUXRAD', float('nan'))):g} px = 1"
    if psfnorm == "annulus":
        return "annulus level = 1"
    return "normalized flux"


def _model_profile(m):
    """The PROFILE table of a region's model; computed as the stack does for a file without one."""
    if m.get("profile") is not None:
        return m["profile"]
    image = np.asarray(m["image"], dtype=np.float64)
    center = _model_center(image.shape)
    rmax = (
        max(min(center[0], center[1], image.shape[1] - 1 - center[0], image.shape[0] - 1 - center[1]), 1)
        + 0.5
    )
    n = np.asarray(m["n"]) if "n" in m else np.isfinite(image).astype(np.int32)
    variance = np.asarray(m["variance"], np.float64) if "variance" in m else np.zeros(image.shape)
    return profile.model_profile(image, variance, n, center=center, edges=profile.profile_edges(rmax))


def _model_center(shape):
    """The star's pixel of a model: the central pixel."""
    return ((shape[1] - 1) // 2, (shape[0] - 1) // 2)


def _plot_radius(table):
    """Where each bin of a PROFILE table is drawn on a log radius axis.

    The mean radius of its pixels; the central bin (r = 0, the central pixel alone) cannot be on
    a log axis and is drawn at :data:`CENTRAL_BIN_RADIUS`; an empty bin at its middle.
    """
    r_in = np.asarray(table["r_in"], float)
    r_out = np.asarray(table["r_out"], float)
    x = np.asarray(table["radius"], float).copy()
    x = np.where(np.isfinite(x), x, 0.5 * (r_in + r_out))
    return np.where(r_in <= 0, CENTRAL_BIN_RADIUS, x)


def _dynamic(m, table):
    """A model's dynamic range: ``(decades, radius, text)``.

    The file's numbers (``dynamic_range``, ``dynamic_radius``), else
    :func:`brightstamps.profile.dynamic_range` of its profile, and :func:`dynamic_range_text`.
    """
    if "dynamic_range" in m and "dynamic_radius" in m:
        decades, radius = float(m["dynamic_range"]), float(m["dynamic_radius"])
    else:
        decades, radius = profile.dynamic_range(table)
    return decades, radius, dynamic_range_text(decades, radius, noise_reached=profile.noise_reached(table))


def dynamic_range_text(decades, radius, *, noise_reached=True):
    """The figures' words for a dynamic range, e.g. ``3.2 decades from the peak to S/N = 1 at 95.0 px``.

    Parameters
    ----------
    decades, radius : float
        :func:`brightstamps.profile.dynamic_range`.
    noise_reached : bool
        :func:`brightstamps.profile.noise_reached`: False says that the signal-to-noise stays
        above 1 out to the last bin (the range is a lower limit, set by the stamp's size).

    Returns
    -------
    str
    """
    if not (np.isfinite(decades) and np.isfinite(radius)):
        return "dynamic range unknown: no bin with a positive value and S/N >= 1"
    if not noise_reached:
        return f">= {decades:.1f} decades from the peak to the last bin at {radius:.1f} px (S/N > 1 there)"
    return f"{decades:.1f} decades from the peak to S/N = 1 at {radius:.1f} px"


def _empty_words(band, name, m):
    """What a region that stacked no star says: the sentence, then its parts for line breaks."""
    message = f"No star was stacked for band {band}, region {name}"
    # one line per cause: "...: of the 9 stars of ...:", "2 <cut>;", "7 <cut>."
    parts = [message + (":" if m.get("empty_reason") else "")]
    parts += re.split(r"(?<=[:;]) ", f"{m['empty_reason']}.") if m.get("empty_reason") else []
    return " ".join(parts), "\n".join(textwrap.fill(t, 44, subsequent_indent="  ") for t in parts)


def _words_panel(ax, text, colour=FAILED_COLOUR):
    ax.set_axis_off()
    ax.text(0.5, 0.5, text, ha="center", va="center", fontsize=11, color=colour, transform=ax.transAxes)


def _model_norm(image, table):
    """Log stretch of a model: from its peak down to its wings' noise level.

    The lower end is the profile's error at the dynamic-range radius
    (:func:`brightstamps.profile.wing_noise`), where the azimuthal mean meets its noise; without
    one, :data:`_FLOOR` times the median of the positive pixels (the stretch of annulus-normalized
    stamps).
    """
    finite = image[np.isfinite(image)]
    vmax = float(np.max(finite)) if len(finite) else 1.0
    vmin = profile.wing_noise(table) if table is not None else float("nan")
    if not (np.isfinite(vmin) and 0 < vmin < vmax / 10):
        vmin = _FLOOR * _positive_median(finite)
    return LogNorm(vmin=vmin, vmax=max(vmax, 10 * vmin), clip=True)


def plot_extended_psf(models, path, *, band, header=None):
    """The extended PSF of a band: per focal-plane region the whole model and its core, log stretch.

    Each region is a row of two panels on one stretch, from the model's peak (its central pixel)
    down to the noise of its wings (the profile's error at the dynamic-range radius): the whole
    stamp, with the S/N = 1 radius as a dashed circle, and the central :data:`CORE_BOX` pixels.

    Parameters
    ----------
    models : dict
        Region name -> ``image`` (star on the central pixel), ``nstars``, ``detectors`` and
        ``profile`` (``brightstamps.stack.read_extended_psf``; without ``profile`` it is computed
        from ``variance`` and ``n``).
    path : str
        PNG to write.
    band : str
    header : dict, optional
        The file's primary cards: ``PSFNORM`` and ``FLUXRAD`` name the normalization in the labels.

    Notes
    -----
    A region that stacked no star (``nstars`` 0) is drawn as words, not as an all-grey image: "no
    star was stacked" and why (``empty_reason``); the same words go into the PNG's Description.
    """
    if not models:
        _empty_figure(path, f"Extended PSF, band {band}", "no region model")
        return
    names = list(models)
    fig, axes = _figure(len(names), 2, grid={"width_ratios": [1.45, 1]}, figsize=(12.5, 5.4 * len(names)))
    empty = []
    cmap = matplotlib.colormaps[_CMAP].with_extremes(bad=NO_DATA_COLOUR)
    for row, ((ax, zoom), name) in enumerate(zip(axes, names, strict=True)):
        m = models[name]
        words = _norm_words(_region_header(header, m))
        dets = ", ".join(str(d) for d in m.get("detectors", []))
        if m.get("nstars") == 0:
            sentence, text = _empty_words(band, name, m)
            empty.append(sentence)
            # the words across the row, in place of the two panels
            grid = ax.get_gridspec()
            ax.remove()
            zoom.remove()
            ax = fig.add_subplot(grid[row, :])
            _words_panel(ax, text)
            ax.set_title(f"region {name}: 0 stars\ndetectors {dets}", fontsize=10)
            continue
        image = np.asarray(m["image"], dtype=np.float64)
        center = _model_center(image.shape)
        table = _model_profile(m)
        norm = _model_norm(image, table)
        shown = np.where(np.isfinite(image), np.maximum(image, norm.vmin), np.nan)
        kwargs = {"origin": "lower", "cmap": cmap, "norm": norm, "interpolation": "nearest"}
        im = ax.imshow(shown, extent=_extent(image.shape, center), **kwargs)
        half = CORE_BOX // 2
        cx, cy = center
        core = shown[max(cy - half, 0) : cy + half + 1, max(cx - half, 0) : cx + half + 1]
        zoom.imshow(core, extent=_extent(core.shape, (min(cx, half), min(cy, half))), **kwargs)
        ax.add_patch(
            Rectangle((-half - 0.5, -half - 0.5), CORE_BOX, CORE_BOX, fill=False, color="white", lw=0.8)
        )
        _, radius, words_dr = _dynamic(m, table)
        if np.isfinite(radius):
            ax.add_patch(Circle((0, 0), radius, fill=False, color="white", lw=0.8, ls="--"))
        ax.set_title(f"region {name}: {m.get('nstars', '?')} stars\ndetectors {dets}", fontsize=10)
        zoom.set_title(f"the core: central {CORE_BOX} x {CORE_BOX} px", fontsize=10)
        ax.set_xlabel(
            f"x offset (pixels)\n{words_dr}\ndashed circle: that radius; box: the core panel", fontsize=9
        )
        zoom.set_xlabel("x offset (pixels)")
        for a in (ax, zoom):
            a.set_ylabel("y offset (pixels)")
        cbar = fig.colorbar(im, ax=[ax, zoom], shrink=0.85)
        cbar.set_label(f"model ({words}), log scale")
    suptitle = f"Extended PSF, band {band}"
    if len(empty) < len(names):
        suptitle += " (grey: no data; darkest: below the wings' noise)"
    fig.suptitle(suptitle)
    _save(fig, path, description=" ".join(empty) or None)


def _truth_profile(truth, m, table, header, annulus_radii):
    """The true PSF's profile on the model's bins and pixels, normalized as the file says.

    Returns ``(values, None)``, or ``(None, why not)`` when the file does not say how (no
    ``PSFNORM``) or the truth cannot be normalized so.
    """
    image = np.asarray(m["image"], dtype=np.float64)
    center = _model_center(image.shape)
    header = header or {}
    if "PSFNORM" not in header:
        return None, "true PSF not drawn: the file does not state its normalization (PSFNORM)"
    try:
        grid = profile.on_grid(truth[0], truth[1], image.shape, center)
        scaled = profile.normalized_like(
            grid,
            psfnorm=header["PSFNORM"],
            center=center,
            fluxrad=header.get("FLUXRAD"),
            annulus_level=m.get("annulus_level", 1.0),
            annulus_radii=annulus_radii,
        )
    except InputError as err:
        return None, f"true PSF not drawn: {err}"
    variance = m["variance"] if "variance" in m else np.zeros(image.shape)
    n = m["n"] if "n" in m else np.isfinite(image)
    return profile.reference_profile(scaled, table, image=image, variance=variance, n=n, center=center), None


def _profile_limits(value, error):
    """(bottom, top) of a profile's log axis: its positive values and upper limits, and its peak."""
    pos = value[np.isfinite(value) & (value > 0)]
    if not len(pos):
        return 0.01, 100.0
    upper = (value + error)[np.isfinite(value) & (value <= 0) & np.isfinite(error) & (value + error > 0)]
    return 0.3 * float(np.min(np.concatenate([pos, upper]))), 3.0 * float(np.max(pos))


def _profile_panel(ax, table, *, words_dr, radius, truth_values, header, annulus_radii):
    """Draw a PROFILE table: value with its error band, upper limits, S/N = 1 radius, the truth."""
    x = _plot_radius(table)
    value = np.asarray(table["value"], float)
    error = np.asarray(table["error"], float)
    bottom, top = _profile_limits(value, error)
    pos = np.isfinite(value) & (value > 0)
    band = np.isfinite(value) & np.isfinite(error)
    ax.fill_between(
        x,
        np.where(band, np.maximum(value - error, bottom), np.nan),
        np.where(band, np.maximum(value + error, bottom), np.nan),
        color="0.6",
        alpha=0.5,
        lw=0,
        label="model +/- error",
    )
    ax.plot(x, np.where(pos, value, np.nan), "o-", color="black", ms=3, lw=1.5, label="extended PSF (model)")
    # a bin whose mean is <= 0 has no place on a log axis: its 1-sigma upper limit (value + error)
    limit = np.isfinite(value) & ~pos & np.isfinite(error) & (value + error > 0)
    if limit.any():
        ax.plot(
            x[limit],
            (value + error)[limit],
            "v",
            mfc="none",
            mec="black",
            ms=6,
            label=f"mean <= 0: upper limit value + error ({int(limit.sum())} bins)",
        )
    if truth_values is not None:
        ax.plot(
            x,
            np.where(truth_values > 0, truth_values, np.nan),
            "--",
            color=TRUTH_COLOUR,
            lw=1.8,
            label="true PSF (simulator), same bins and pixels",
        )
    if np.isfinite(radius):
        at = (
            f"S/N = 1 at {radius:.1f} px"
            if profile.noise_reached(table)
            else f"last bin, S/N > 1 ({radius:.1f} px)"
        )
        ax.axvline(radius, color="tab:blue", ls=":", lw=1.5, label=at)
    if annulus_radii is not None:
        ax.axvspan(
            *annulus_radii,
            color="tab:blue",
            alpha=0.12,
            label=f"annulus {annulus_radii[0]}-{annulus_radii[1]} px",
        )
    header = header or {}
    if header.get("PSFNORM") == "flux" and np.isfinite(float(header.get("FLUXRAD", np.nan))):
        ax.axvline(
            float(header["FLUXRAD"]), color="tab:green", ls="-.", lw=1, label="flux normalization radius"
        )
    ax.text(
        0.97,
        0.97,
        words_dr,
        transform=ax.transAxes,
        ha="right",
        va="top",
        fontsize=11,
        bbox={"facecolor": "white", "edgecolor": "0.7"},
    )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(0.8 * CENTRAL_BIN_RADIUS, float(np.max(table["r_out"])))
    _plain_log_ticks(ax, "x")
    ax.set_ylim(bottom, top)
    ax.set_ylabel(f"azimuthal mean ({_norm_words(header)})")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(loc="lower left", fontsize=8)


def _residual_panel(ax, table, truth_values, radius):
    """(model - truth) / error per bin, with its rms out to the S/N = 1 radius."""
    x = _plot_radius(table)
    value = np.asarray(table["value"], float)
    error = np.asarray(table["error"], float)
    ok = np.isfinite(value) & np.isfinite(truth_values) & np.isfinite(error) & (error > 0)
    res = np.full(len(value), np.nan)
    res[ok] = (value[ok] - truth_values[ok]) / error[ok]
    lim = float(np.clip(1.15 * np.nanmax(np.abs(res)), 3, 10)) if ok.any() else 3.0
    inside = ok & (np.abs(res) <= lim)
    ax.axhspan(-1, 1, color="0.85")
    ax.axhline(0, color=TRUTH_COLOUR, lw=1)
    ax.plot(x[inside], res[inside], "o", color="black", ms=3)
    out = ok & ~inside
    if out.any():  # off the axis: drawn at its edge
        ax.plot(x[out], np.clip(res[out], -lim, lim), "^", color=FAILED_COLOUR, ms=6, clip_on=False)
    if np.isfinite(radius):
        ax.axvline(radius, color="tab:blue", ls=":", lw=1.5)
    agree = profile.compare_profiles(table, truth_values, radius)
    ax.text(
        0.97,
        0.93,
        f"out to S/N = 1 ({agree['nbins']} bins): rms {agree['rms']:.2f}, "
        f"median |model / truth - 1| = {100 * agree['median_fraction']:.2f} %"
        + ("\nred: beyond the axis" if out.any() else ""),
        transform=ax.transAxes,
        ha="right",
        va="top",
        fontsize=8,
        bbox={"facecolor": "white", "edgecolor": "0.7"},
    )
    ax.set_ylim(-lim, lim)  # (its x axis is the profile's: log, shared)
    ax.set_ylabel("(model - truth)\n/ error")
    ax.grid(True, which="major", alpha=0.3)


def plot_psf_profile(models, path, *, band, header=None, truth=None, annulus_radii=None):
    """The radial profile of each region's extended PSF with its error, dynamic range and the truth.

    Per region, on log-log axes, the PROFILE table's ``value`` with a band ``value +/- error``;
    a bin whose mean is <= 0 is drawn as an upper limit at ``value + error`` (left out when that
    is <= 0 too). The central bin (the central pixel, r = 0) is drawn at r =
    :data:`CENTRAL_BIN_RADIUS`. The radius where the signal-to-noise falls to 1 is marked and the
    dynamic range written. With *truth*, the true PSF, normalized as the file says its model is
    (``PSFNORM``), is drawn over the same bins and pixels, and a lower panel shows
    ``(model - truth) / error``.

    Parameters
    ----------
    models : dict
        Region name -> ``profile`` (or ``image``, ``variance``, ``n`` to compute it),
        ``nstars``, ``dynamic_range``, ``dynamic_radius`` (else computed from the profile),
        ``annulus_level`` (for ``PSFNORM = 'annulus'``; 1, the legacy definition, when absent)
        (``brightstamps.stack.read_extended_psf``).
    path : str
        PNG to write.
    band : str
    header : dict, optional
        The file's primary cards (``PSFNORM``, ``FLUXRAD``).
    truth : (numpy.ndarray, (int, int)), optional
        The true PSF and its star's pixel (:func:`brightstamps.simulate.read_true_psf`).
    annulus_radii : (float, float), optional
        The normalization annulus (the config's ``annular_flux_radii``): shaded, and what
        ``PSFNORM = 'annulus'`` refers to.
    """
    if not models:
        _empty_figure(path, f"Radial profile of the extended PSF, band {band}", "no region model")
        return
    names = list(models)
    rows = 2 if truth is not None else 1
    fig, axes = _figure(
        rows,
        len(names),
        grid={"height_ratios": [3, 1]} if rows == 2 else None,
        sharex="col",  # the residuals under their bins
        figsize=(7.5 * len(names), 6.8 if rows == 2 else 5.2),
    )
    empty = []
    for col, name in enumerate(names):
        m = models[name]
        ax = axes[0, col]
        if m.get("nstars") == 0:
            sentence, text = _empty_words(band, name, m)
            empty.append(sentence)
            _words_panel(ax, text)
            ax.set_title(f"region {name}: 0 stars", fontsize=10)
            if rows == 2:
                axes[1, col].set_axis_off()
            continue
        table = _model_profile(m)
        _, radius, words_dr = _dynamic(m, table)
        truth_values, why_not = (None, None)
        region_header = _region_header(header, m)
        if truth is not None:
            truth_values, why_not = _truth_profile(truth, m, table, region_header, annulus_radii)
        _profile_panel(
            ax,
            table,
            words_dr=words_dr,
            radius=radius,
            truth_values=truth_values,
            header=region_header,
            annulus_radii=annulus_radii,
        )
        ax.set_title(f"region {name}: {m.get('nstars', '?')} stars", fontsize=10)
        bottom = ax
        if truth_values is not None:
            _residual_panel(axes[1, col], table, truth_values, radius)
            bottom = axes[1, col]
        elif rows == 2:  # the truth could not be drawn: why, and the radius labels stay on the profile
            _words_panel(axes[1, col], textwrap.fill(why_not, 60), colour="black")
            ax.tick_params(labelbottom=True)
        bottom.set_xlabel(f"radius (pixels; the central pixel drawn at {CENTRAL_BIN_RADIUS} px)")
    fig.suptitle(f"Radial profile of the extended PSF, band {band}")
    _save(fig, path, description=" ".join(empty) or None)


def _each_stamps(stamps_list):
    """Yield Stamps from a list of Stamps or of paths, one memory-mapped file at a time.

    Pixels are read as they are used, however many exposures and stars there are.
    """
    for item in stamps_list:
        yield item if isinstance(item, Stamps) else read_stamps(item, memmap=True)


def plot_profiles(
    models, stamps_list, path, *, band, inner_radius, outer_radius, bad_mask_planes, psf_stars=None
):
    """Radial profiles: the extended PSF of each region over the stars that made it.

    The bins are the model's PROFILE bins (:func:`brightstamps.profile.profile_edges`); each star's
    profile is :func:`brightstamps.profile.azimuthal_profile` over its good pixels. The central bin
    (r = 0) is drawn at r = :data:`CENTRAL_BIN_RADIUS` on the log radius axis.

    Parameters
    ----------
    models : dict
        Region name -> ``profile`` (or ``image``, ``variance``, ``n`` to compute it), ``nstars``
        from ``read_extended_psf``.
    stamps_list : list of brightstamps.stampsfile.Stamps or of str
        The band's normalized stamps files (paths are read one at a time).
    path : str
        PNG to write.
    band : str
    inner_radius, outer_radius : float
        The normalization annulus (pixels), shaded.
    bad_mask_planes : list of str
        The config's ``bad_mask_planes``: a star's pixels with any of them are left out of its
        profile.
    psf_stars : astropy.table.Table, optional
        STARS of the extended PSF file: only stars with ``used`` are drawn, in their region. In
        psf_fit mode (an ``amplitude`` column) each star is scaled as the stack scaled it
        (annular flux / amplitude). Without it every star with ``norm_status`` ok is drawn in
        every region.
    """
    if not models:
        _empty_figure(path, f"Radial profiles, band {band}", "no region model")
        return
    lookup = {}
    if psf_stars is not None:
        for r in psf_stars:
            lookup[(str(r["exposure"]), int(r["gaia_id"]))] = r
    fit_mode = psf_stars is not None and "amplitude" in psf_stars.colnames
    names = list(models)
    fig, axes = _figure(1, len(names), figsize=(6.5 * len(names), 5.0))
    for ax, name in zip(axes.flat, names, strict=True):
        m = models[name]
        table = _model_profile(m)
        edges = profile.table_edges(table)
        x = _plot_radius(table)
        nstars = 0
        for stamps in _each_stamps(stamps_list):
            exposure = str(stamps.header.get("EXPOSURE", ""))
            bad = _bad_bits(stamps.mask_planes, bad_mask_planes)
            c = _star_center(stamps.header, stamps.stamp_shape)
            for i, s in enumerate(stamps.stars):
                factor = 1.0
                if psf_stars is not None:
                    row = lookup.get((exposure, int(s["gaia_id"])))
                    if row is None or not bool(row["used"]) or str(row["region"]) != name:
                        continue
                    if fit_mode:
                        flux = float(s["annular_flux"])
                        factor = (flux if np.isfinite(flux) else 1.0) / float(row["amplitude"])
                elif str(s["norm_status"]) != "ok":
                    continue
                star = factor * profile.azimuthal_profile(
                    stamps.image[i], center=c, edges=edges, good=(stamps.mask[i] & bad) == 0
                )
                ax.plot(x, np.where(star > 0, star, np.nan), color="0.55", lw=0.6, alpha=0.7)
                nstars += 1
        value = np.asarray(table["value"], float)
        ax.plot(x, np.where(value > 0, value, np.nan), color="black", lw=2.2)
        if not any(np.any(np.isfinite(y) & (y > 0)) for y in (line.get_ydata() for line in ax.get_lines())):
            ax.set_ylim(0.01, 100)  # nothing to draw: a log axis needs explicit limits
            ax.text(0.5, 0.5, "no star in the stack", transform=ax.transAxes, ha="center", fontsize=12)
        ax.axvspan(inner_radius, outer_radius, color="tab:blue", alpha=0.2)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlim(0.8 * CENTRAL_BIN_RADIUS, float(np.max(table["r_out"])))
        _plain_log_ticks(ax, "x")
        ax.set_xlabel(f"radius (pixels; the central pixel drawn at {CENTRAL_BIN_RADIUS} px)")
        ax.set_ylabel("azimuthal mean of normalized flux")
        ax.grid(True, which="major", alpha=0.3)
        ax.set_title(f"region {name}", fontsize=10)
        handles = [
            Line2D([], [], color="black", lw=2.2, label=f"extended PSF ({m.get('nstars', '?')} stars)"),
            Line2D([], [], color="0.55", lw=0.8, label=f"stars used in the stack ({nstars})"),
            Patch(color="tab:blue", alpha=0.2, label=f"annulus {inner_radius:g}-{outer_radius:g} px"),
        ]
        ax.legend(handles=handles, loc="lower left", fontsize=9)
    fig.suptitle(f"Radial profiles of the extended PSF, band {band}")
    _save(fig, path)


def _flux_panel(ax, g, value, used, failed, labels, *, what):
    """log10(value) vs G with a slope -0.4 line through the median offset; failed at the bottom."""
    ok = ~failed & np.isfinite(g) & np.isfinite(value) & (value > 0)
    y = np.full(len(g), np.nan)
    y[ok] = np.log10(value[ok])
    if ok.any():
        offset = float(np.median(y[ok] + 0.4 * g[ok]))
        gg = np.array([np.min(g[np.isfinite(g)]) - 0.3, np.max(g[np.isfinite(g)]) + 0.3])
        ax.plot(
            gg,
            offset - 0.4 * gg,
            color="tab:blue",
            lw=1,
            ls="--",
            label=f"slope -0.4 through the median (offset {offset:.2f})",
        )
        if (ok & used).any():
            ax.plot(g[ok & used], y[ok & used], "o", color="black", ms=6, label="used in stack")
        if (ok & ~used).any():
            ax.plot(
                g[ok & ~used], y[ok & ~used], "o", mfc="none", mec="black", ms=6, label="not used in stack"
            )
        lo, hi = np.min(y[ok]), np.max(y[ok])
        pad = max(0.15 * (hi - lo), 0.3)
        ax.set_ylim(lo - pad, hi + pad)
    bottom = ax.get_ylim()[0]
    show = (failed | ~ok) & np.isfinite(g)
    if show.any():
        statuses = sorted(set(labels[show]))
        ax.plot(
            g[show],
            np.full(show.sum(), bottom),
            "v",
            color=FAILED_COLOUR,
            ms=9,
            clip_on=False,
            label=f"failed ({', '.join(statuses)}), at the bottom",
        )
    no_mag = int((~np.isfinite(g)).sum())
    if no_mag:
        ax.text(
            0.98,
            0.02,
            f"{no_mag} star(s) without G not shown",
            transform=ax.transAxes,
            ha="right",
            va="bottom",
            fontsize=8,
        )
    ax.set_xlabel("G (mag)")
    ax.set_ylabel(f"log10({what})")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="best")


def plot_annular_flux(stars, path, *, band):
    """log10(annular flux) against G, with a slope -0.4 line through the median offset.

    Stars whose normalization failed (``norm_status`` not ``ok``, or no finite positive annular
    flux) are drawn as red triangles at the bottom. With psf_fit results (an ``amplitude``
    column), a second panel shows the fitted amplitude against G the same way, stars with
    ``fit_ok`` false counting as failed.

    Parameters
    ----------
    stars : astropy.table.Table
        :func:`brightstamps.stack.band_stars` of the band: ``g_mag``, ``annular_flux``, ``norm_status``,
        ``used_in_stack`` and optionally ``amplitude``, ``fit_ok``.
    path : str
        PNG to write.
    band : str
    """
    if len(stars) == 0:
        _empty_figure(path, f"Annular flux, band {band}", "no bright star in this band")
        return
    g = np.asarray(stars["g_mag"], dtype=np.float64)
    flux = np.asarray(stars["annular_flux"], dtype=np.float64)
    status = np.asarray(stars["norm_status"]).astype(str)
    used = np.asarray(stars["used_in_stack"], dtype=bool)
    fit = "amplitude" in stars.colnames
    fig, axes = _figure(1, 2 if fit else 1, figsize=(13 if fit else 7, 5))
    _flux_panel(axes[0, 0], g, flux, used, status != "ok", status, what="annular flux")
    axes[0, 0].set_title("annular flux (exposure units)", fontsize=10)
    if fit:
        amp = np.asarray(stars["amplitude"], dtype=np.float64)
        fit_ok = np.asarray(stars["fit_ok"], dtype=bool) if "fit_ok" in stars.colnames else np.isfinite(amp)
        labels = np.where(fit_ok, "ok", "fit rejected or not fitted")
        _flux_panel(axes[0, 1], g, amp, used, ~fit_ok, labels, what="PSF-fit amplitude")
        axes[0, 1].set_title("PSF-fit amplitude (exposure units)", fontsize=10)
    fig.suptitle(f"Brightness of the stars of band {band}")
    _save(fig, path)


def _status_counts(statuses):
    """``"reason (n), ..."`` of stack statuses, grouped by their words before any ':' (numbers differ)."""
    reasons = [str(s).split(":")[0].strip() for s in statuses]
    counts = {}
    for r in reasons:
        counts[r] = counts.get(r, 0) + 1
    return ", ".join(f"{r} ({n})" for r, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def plot_star_fits(stars, path, *, band, header=None):
    """The reduced chi-square of every star's PSF fit against its magnitude.

    psf_fit mode fits each star as an amplitude times the model plus a background: a reduced
    chi-square near 1 means the model describes the star to its noise. Stars used in the stack
    and stars left out are drawn differently, stars whose masked pixels hold more than half of
    the model's flux (``masked_flux_fraction`` > 0.5: a saturated core) are ringed, and the line
    is at 1. Stars that were not fitted, or have no G, are counted in words. Without fit columns
    (annulus mode) the figure says that the stars were not fitted.

    Parameters
    ----------
    stars : astropy.table.Table
        STARS of the extended PSF file: ``g_mag``, ``used`` and, in psf_fit mode,
        ``reduced_chi2``, ``masked_flux_fraction``, ``stack_status`` (why a star was left out).
    path : str
        PNG to write.
    band : str
    header : dict, optional
        The file's primary cards: ``NORMMODE`` names the normalization.
    """
    title = f"PSF fits of the stars of band {band}"
    mode = str((header or {}).get("NORMMODE", "annulus"))
    if "reduced_chi2" not in stars.colnames:
        message = f"The stars were not fitted (normalization: {mode})"
        fig, axes = _figure(figsize=(8, 3.5))
        ax = axes[0, 0]
        ax.set_title(title)
        _words_panel(ax, message + ":\nthe model is the stack of the annulus-normalized stamps", "black")
        _save(fig, path, description=message)
        return
    if len(stars) == 0:
        _empty_figure(path, title, "no star in this band")
        return
    g = np.asarray(stars["g_mag"], dtype=np.float64)
    chi2 = np.asarray(stars["reduced_chi2"], dtype=np.float64)
    used = np.asarray(stars["used"], dtype=bool)
    masked = (
        np.asarray(stars["masked_flux_fraction"], dtype=np.float64)
        if "masked_flux_fraction" in stars.colnames
        else np.full(len(stars), np.nan)
    )
    status = (
        np.asarray(stars["stack_status"]).astype(str)
        if "stack_status" in stars.colnames
        else np.where(used, "used", "not used")
    )
    fitted = np.isfinite(chi2) & (chi2 > 0)
    shown = fitted & np.isfinite(g)
    saturated = shown & (masked > 0.5)
    fig, axes = _figure(figsize=(8.5, 5.8))
    ax = axes[0, 0]
    ax.axhline(1.0, color="tab:blue", ls="--", lw=1, label="reduced chi-square = 1")
    if (shown & used).any():
        ax.plot(
            g[shown & used],
            chi2[shown & used],
            "o",
            color="black",
            ms=6,
            label=f"used in the stack ({int((shown & used).sum())})",
        )
    if (shown & ~used).any():
        ax.plot(
            g[shown & ~used],
            chi2[shown & ~used],
            "x",
            color=FAILED_COLOUR,
            ms=8,
            mew=2,
            label=f"fitted, left out: {_status_counts(status[shown & ~used])}",
        )
    if saturated.any():
        ax.plot(
            g[saturated],
            chi2[saturated],
            "o",
            mfc="none",
            mec="tab:orange",
            ms=14,
            mew=1.5,
            label=f"masked flux fraction > 0.5, saturated core ({int(saturated.sum())})",
        )
    notes = []
    if (~fitted).any():
        notes.append(f"{int((~fitted).sum())} star(s) not fitted: {_status_counts(status[~fitted])}")
    if (fitted & ~np.isfinite(g)).any():
        notes.append(f"{int((fitted & ~np.isfinite(g)).sum())} fitted star(s) without G not shown")
    if notes:
        ax.text(
            0.02,
            0.02,
            "\n".join(textwrap.fill(n, 70) for n in notes),
            transform=ax.transAxes,
            fontsize=8,
            va="bottom",
            bbox={"facecolor": "white", "edgecolor": "0.7"},
        )
    ax.set_yscale("log")
    if shown.any():
        lo, hi = min(np.min(chi2[shown]), 1.0), max(np.max(chi2[shown]), 1.0)
        ax.set_ylim(lo / 2, hi * 2)
    else:
        ax.set_ylim(0.1, 10)
    _plain_log_ticks(ax, "y")
    ax.set_xlabel("G (mag)")
    ax.set_ylabel("reduced chi-square of the star's fit")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8, loc="upper right")
    ax.set_title(f"amplitude x model + background, per star (normalization: {mode})", fontsize=10)
    fig.suptitle(title)
    _save(fig, path)
