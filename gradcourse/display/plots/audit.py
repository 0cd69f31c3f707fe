"""What a reader of a figure stumbles on, found in the figure itself: :func:`figure_problems` lists two
series of one axes told apart by colour alone (or not at all), text that is a code name rather than words,
and text too small to read on a laptop screen. The course's tests run it on every figure a notebook shows.
"""

from __future__ import annotations

import re

from matplotlib.colors import to_hex
from matplotlib.container import Container

__all__ = ["READABLE_POINTS", "SCREEN_INCHES", "code_name", "figure_problems"]

SCREEN_INCHES = 11.0
"""The widest figure, in inches at 100 dpi, that a notebook at 1280 px shows without scaling it down."""

READABLE_POINTS = 10.0
"""The smallest font size, in points as displayed, that a figure's text may have."""

_MATH = re.compile(r"\$[^$]*\$")
_UNDERSCORED = re.compile(r"(?<![\w\\])([A-Za-z][A-Za-z0-9]*)_([A-Za-z0-9_]+)")
_DOTTED = re.compile(r"(?<![\w.])([A-Za-z_][A-Za-z0-9_]*)((?:\.[A-Za-z0-9_]+)+)")
_REPR = re.compile(r"\b[A-Z][A-Za-z0-9]*\([^()]*=|\bobject at 0x[0-9a-f]+")


def code_name(text):
    """The first code name in ``text`` (outside ``$...$`` math), or None: an identifier joined by an
    underscore (``act_mean``, ``sigma_max``; math subscripts such as ``h_l``, ``W_hh``, ``dL/dh_1`` or
    ``σ_max`` are words), a dotted path (``blocks.0.linear2``, ``torch.nn.init``) or an object's repr
    (``Linear(in_features=...)``, ``<... object at 0x...>``)."""
    text = _MATH.sub(" ", str(text))
    for match in _UNDERSCORED.finditer(text):
        before, after = match.groups()
        letters_after = sum(c.isalpha() for c in after)
        if letters_after >= 3 or (len(before) >= 2 and letters_after >= 2):
            return match.group(0)
    for match in _DOTTED.finditer(text):
        parts = [match.group(1), *match.group(2).split(".")[1:]]
        digits = any(part.isdigit() for part in parts)
        if (digits and sum(c.isalpha() for c in parts[0]) >= 2) or (len(parts) >= 3 and len(parts[0]) >= 2
                                                                          and not any(p.isdigit() for p in parts[1:])):
            return match.group(0)
    match = _REPR.search(text)
    return match.group(0) if match else None


def _look(artist):
    """(colour, style) of a legend entry's artist: the style is what tells series apart besides colour
    (line style and dash pattern, marker, hollow or filled marker; hatch for bars and areas)."""
    if isinstance(artist, Container):              # bars, error bars: look at the first drawn part
        artist = next((part for part in artist if part is not None and not isinstance(part, tuple)), None)
        if artist is None:
            return None
    if hasattr(artist, "get_linestyle") and hasattr(artist, "get_marker"):          # a Line2D
        marker = artist.get_marker()
        marker = None if marker in (None, "", " ", "None", "none") else str(marker)
        linestyle = artist.get_linestyle()
        dashes = getattr(artist, "_unscaled_dash_pattern", None) if linestyle not in ("-", "None", " ", "") else None
        hollow = marker is not None and artist.get_markerfacecolor() in ("none", "None")
        return to_hex(artist.get_color()), ("line", linestyle, str(dashes), marker, hollow)
    if not hasattr(artist, "get_hatch"):
        return None
    colour = artist.get_facecolor()
    if len(colour) == 0 or getattr(artist, "get_fill", lambda: True)() is False:
        colour = artist.get_edgecolor()
    colour = colour[0] if len(colour) and hasattr(colour[0], "__len__") else colour
    if len(colour) == 0:
        return None
    paths = [repr(p.vertices.round(3).tolist()) for p in getattr(artist, "get_paths", lambda: [])()[:1]]
    kind = "markers" if type(artist).__name__ == "PathCollection" else "area"
    return to_hex(colour), (kind, artist.get_hatch(), *paths)


def _series_problems(ax, where):
    handles, labels = ax.get_legend_handles_labels()
    looks = {}
    for handle, label in zip(handles, labels):
        look = _look(handle)
        if look is not None:
            looks.setdefault(label, look)
    problems, by_style = [], {}
    for label, (colour, style) in looks.items():
        by_style.setdefault(style, {}).setdefault(colour, []).append(label)
    for colours in by_style.values():
        for same in colours.values():
            if len(same) > 1:
                problems.append(f"{where}: series {', '.join(map(repr, same))} look the same (same colour and style)")
        if len(colours) > 1:
            named = [labels[0] for labels in colours.values()]
            problems.append(f"{where}: series {', '.join(map(repr, named))} differ by colour alone "
                            "(give each its own marker or line style)")
    return problems


def _texts(fig):
    """(where, Text) of every visible text of the figure that a reader reads."""
    found = [("figure title", getattr(fig, "_suptitle", None)), ("figure x label", getattr(fig, "_supxlabel", None)),
             ("figure y label", getattr(fig, "_supylabel", None))]
    found += [("figure text", text) for text in fig.texts]
    for legend in fig.legends:
        found += [("figure legend", text) for text in legend.get_texts()]
    for number, ax in enumerate(fig.axes, 1):
        if not ax.get_visible():
            continue
        where = f"axes {number}"
        found += [(f"{where} title", ax.title), (f"{where} left title", ax._left_title),
                  (f"{where} right title", ax._right_title), (f"{where} x label", ax.xaxis.label),
                  (f"{where} y label", ax.yaxis.label)]
        for axis, name in ((ax.xaxis, "x"), (ax.yaxis, "y")):
            found += [(f"{where} {name} tick label", t) for t in axis.get_ticklabels(which="both")]
        legend = ax.get_legend()
        if legend is not None:
            found += [(f"{where} legend", text) for text in legend.get_texts()]
        found += [(f"{where} text", text) for text in ax.texts]
    return [(where, text) for where, text in found
            if text is not None and text.get_visible() and text.get_text().strip()]


def figure_problems(fig):
    """What makes ``fig`` hard to read, as a list of sentences (empty when nothing does):

    * two series of one axes (its legend entries: lines, markers, bars, areas) with the same line style,
      marker and hatch but different colours (told apart by colour alone), or with the same colour too;
    * a title, axis label, tick label, legend entry, colorbar label or annotation that is a code name
      (see :func:`code_name`);
    * text smaller than :data:`READABLE_POINTS` as displayed: its size times ``SCREEN_INCHES / width``
      when the figure, cropped as a notebook shows it, is wider than :data:`SCREEN_INCHES`.

    The figure is laid out (not rasterised) first, so tick labels are those a reader sees.
    """
    fig.draw_without_rendering()
    renderer = fig.canvas.get_renderer() if hasattr(fig.canvas, "get_renderer") else fig._get_renderer()
    width = fig.get_tightbbox(renderer).width        # inches, as bbox_inches="tight" crops it
    shrink = min(1.0, SCREEN_INCHES / width) if width > 0 else 1.0
    problems = []
    for number, ax in enumerate(fig.axes, 1):
        if ax.get_visible():
            problems += _series_problems(ax, f"axes {number}")
    small = []
    for where, text in _texts(fig):
        content = text.get_text().strip()
        name = code_name(content)
        if name:
            problems.append(f"{where} {content!r} shows the code name {name!r}; write it in words")
        if text.get_fontsize() * shrink < READABLE_POINTS - 0.05:
            small.append((text.get_fontsize() * shrink, where, content))
    if small:
        smallest = min(small)
        problems.append(f"{len(small)} texts are below {READABLE_POINTS:g} pt as displayed (the figure is {width:.1f} in "
                        f"wide, shown at {shrink:.0%}), the smallest {smallest[0]:.1f} pt: {smallest[1]} {smallest[2]!r}")
    return problems
