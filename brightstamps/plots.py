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
from matplotlib.patches import Circle, Patch

from .files import atomic_output
from .masks import plane_bits
from .stampsfile import Stamps, read_stamps

__all__ = [
    "azimuthal_profile",
    "profile_edges",
    "plot_stamp_mosaic",
    "plot_extended_psf",
    "plot_profiles",
    "plot_annular_flux",
]

#: Overlay colour of pixels carrying a bad mask plane.
MASKED_COLOUR = "#00e5ff"
#: Overlay colour of pixels without data (NaN or NO_DATA).
NO_DATA_COLOUR = "#9e9e9e"
#: Colour of failed stars (normalization status not ``ok``).
FAILED_COLOUR = "#d62728"

_CMAP = "magma"
_FLOOR = 0.01  # lower end of the log stretch, relative to the annulus level
_SAVE = {"dpi": 100, "metadata": {"Software": None}}


def _figure(rows=1, columns=1, **kwargs):
    """A figure on the Agg canvas and its ``(rows, columns)`` array of axes."""
    fig = Figure(layout="constrained", **kwargs)
    FigureCanvasAgg(fig)
    return fig, fig.subplots(rows, columns, squeeze=False)


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


def azimuthal_profile(image, *, center, edges, good=None):
    """Azimuthally averaged radial profile: the mean of the good pixels in each annulus.

    Parameters
    ----------
    image : numpy.ndarray
        2-D image.
    center : (float, float)
        ``(x, y)`` of the centre, in pixels (0-based, pixel centres at integers).
    edges : array_like
        Increasing radii (pixels); bin ``i`` holds the pixels with ``edges[i] <= r < edges[i+1]``.
    good : numpy.ndarray of bool, optional
        Pixels to use; by default every finite pixel. Non-finite pixels are never used.

    Returns
    -------
    numpy.ndarray
        ``len(edges) - 1`` means; NaN where a bin holds no good pixel.

    Examples
    --------
    >>> azimuthal_profile(np.ones((5, 5)), center=(2, 2), edges=[0, 0.5, 1.2, 10, 20])
    array([ 1.,  1.,  1., nan])
    """
    image = np.asarray(image, dtype=np.float64)
    edges = np.asarray(edges, dtype=np.float64)
    use = np.isfinite(image)
    if good is not None:
        use &= np.asarray(good, dtype=bool)
    y, x = np.indices(image.shape)
    r = np.hypot(x - center[0], y - center[1])[use]
    which = np.searchsorted(edges, r, side="right") - 1
    inside = (which >= 0) & (which < len(edges) - 1)
    nbins = len(edges) - 1
    sums = np.bincount(which[inside], weights=image[use][inside], minlength=nbins)[:nbins]
    counts = np.bincount(which[inside], minlength=nbins)[:nbins]
    out = np.full(nbins, np.nan)
    np.divide(sums, counts, out=out, where=counts > 0)
    return out


def profile_edges(max_radius):
    """Radial bins from r = 1 to *max_radius*: 1 px wide up to 10 px, then logarithmic.

    Parameters
    ----------
    max_radius : float
        Outer radius (pixels), e.g. the distance from the star to the stamp's nearest edge.

    Returns
    -------
    numpy.ndarray
    """
    if max_radius <= 10:
        return np.arange(1.0, np.floor(max_radius) + 1.0)
    return np.unique(np.concatenate([np.arange(1.0, 10.0), np.geomspace(10.0, max_radius, 30)]))


def _centers(edges):
    return np.sqrt(edges[:-1] * edges[1:])


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


def _model_norm(image):
    finite = image[np.isfinite(image)]
    vmax = float(np.max(finite)) if len(finite) else 1.0
    vmin = _FLOOR * _positive_median(finite)
    return LogNorm(vmin=vmin, vmax=max(vmax, 10 * vmin), clip=True)


def plot_extended_psf(models, path, *, band):
    """The extended PSF of a band: one panel per focal-plane region, log stretch, colour bar.

    Parameters
    ----------
    models : dict
        Region name -> ``image`` (star on the central pixel), ``nstars``, ``detectors``
        (``brightstamps.stack.read_extended_psf``).
    path : str
        PNG to write.
    band : str

    Notes
    -----
    A region that stacked no star (``nstars`` 0) is drawn as words, not as an all-grey image: "no
    star was stacked" and why (``empty_reason``); the same words go into the PNG's Description.
    """
    if not models:
        _empty_figure(path, f"Extended PSF, band {band}", "no region model")
        return
    names = list(models)
    fig, axes = _figure(1, len(names), figsize=(5.8 * len(names), 5.2))
    empty = []
    for ax, name in zip(axes.flat, names, strict=True):
        m = models[name]
        dets = ", ".join(str(d) for d in m.get("detectors", []))
        if m.get("nstars") == 0:
            message = f"No star was stacked for band {band}, region {name}"
            # one line per cause: "...: of the 9 stars of ...:", "2 <cut>;", "7 <cut>."
            parts = [message + (":" if m.get("empty_reason") else "")]
            parts += re.split(r"(?<=[:;]) ", f"{m['empty_reason']}.") if m.get("empty_reason") else []
            empty.append(" ".join(parts))
            ax.set_axis_off()
            ax.set_title(f"region {name}: 0 stars\ndetectors {dets}", fontsize=10)
            text = "\n".join(textwrap.fill(t, 44, subsequent_indent="  ") for t in parts)
            ax.text(
                0.5,
                0.5,
                text,
                ha="center",
                va="center",
                fontsize=11,
                color=FAILED_COLOUR,
                transform=ax.transAxes,
            )
            continue
        image = np.asarray(m["image"], dtype=np.float64)
        center = ((image.shape[1] - 1) // 2, (image.shape[0] - 1) // 2)
        norm = _model_norm(image)
        cmap = matplotlib.colormaps[_CMAP].with_extremes(bad=NO_DATA_COLOUR)
        shown = np.where(np.isfinite(image), np.maximum(image, norm.vmin), np.nan)
        im = ax.imshow(
            shown,
            origin="lower",
            cmap=cmap,
            norm=norm,
            extent=_extent(image.shape, center),
            interpolation="nearest",
        )
        ax.set_title(f"region {name}: {m.get('nstars', '?')} stars\ndetectors {dets}", fontsize=10)
        ax.set_xlabel("x offset (pixels)")
        ax.set_ylabel("y offset (pixels)")
        cbar = fig.colorbar(im, ax=ax, shrink=0.85)
        cbar.set_label("normalized flux (log scale)")
    fig.suptitle(f"Extended PSF, band {band}" + (" (grey: no data)" if len(empty) < len(names) else ""))
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

    Parameters
    ----------
    models : dict
        Region name -> ``image`` (and ``n``, ``nstars``) from ``read_extended_psf``.
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
        image = np.asarray(m["image"], dtype=np.float64)
        center = ((image.shape[1] - 1) // 2, (image.shape[0] - 1) // 2)
        rmax = max(
            min(center[0], center[1], image.shape[1] - 1 - center[0], image.shape[0] - 1 - center[1]) + 0.5,
            2.0,
        )
        edges = profile_edges(rmax)
        rc = _centers(edges)
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
                prof = (
                    azimuthal_profile(
                        stamps.image[i], center=c, edges=edges, good=(stamps.mask[i] & bad) == 0
                    )
                    * factor
                )
                ax.plot(rc, np.where(prof > 0, prof, np.nan), color="0.55", lw=0.6, alpha=0.7)
                nstars += 1
        good = np.asarray(m["n"]) > 0 if "n" in m else None
        prof = azimuthal_profile(image, center=center, edges=edges, good=good)
        ax.plot(rc, np.where(prof > 0, prof, np.nan), color="black", lw=2.2)
        if not any(np.any(np.isfinite(y) & (y > 0)) for y in (line.get_ydata() for line in ax.get_lines())):
            ax.set_ylim(0.01, 100)  # nothing to draw: a log axis needs explicit limits
            ax.text(0.5, 0.5, "no star in the stack", transform=ax.transAxes, ha="center", fontsize=12)
        ax.axvspan(inner_radius, outer_radius, color="tab:blue", alpha=0.2)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlim(1, rmax)
        ax.set_xlabel("radius (pixels)")
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
