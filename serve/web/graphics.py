"""Pictures drawn on the server as SVG text: the route map and the dashboard's charts.

No JavaScript, no tiles, no fonts from outside: the map's land outline is
Natural Earth's 1:110m land (public domain; TopoJSON from the ``world-atlas``
npm package 2.0.2, ISC) converted once to an SVG path in an equirectangular
projection (x = longitude + 180, y = 90 - latitude) and shipped as
``static/land-110m.path``. Every text is escaped.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from importlib import resources

PALETTE = ("#1f5f99", "#c2410c", "#15803d", "#7c3aed", "#b91c1c", "#0e7490", "#a16207", "#4b5563")
SOURCE_COLOURS = {"WATCHLIST": "#b91c1c", "RULE": "#c2410c", "MODEL": "#1f5f99", "INTEGRITY": "#0e7490", "RANDOM": "#15803d", "OFFICER": "#7c3aed"}


@functools.cache
def land_path() -> str:
    """The land outline as an SVG path ``d`` in the 360 x 180 equirectangular frame."""
    return resources.files("serve.web").joinpath("static", "land-110m.path").read_text().strip()


@dataclass(frozen=True)
class MapStop:
    """A port on a route: UN/LOCODE, label, coordinates and its role (``origin``, ``hub``, ``destination``)."""

    locode: str
    label: str
    latitude: float
    longitude: float
    role: str


def _xy(stop: MapStop) -> tuple[float, float]:
    return stop.longitude + 180.0, 90.0 - stop.latitude


def route_map_svg(stops: Sequence[MapStop], *, title: str) -> str:
    """An SVG map of ``stops`` joined in order, framed around them (at least 60 by 35 degrees)."""
    if not stops:
        return ""
    points = [_xy(s) for s in stops]
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    span = max(max(xs) - min(xs), 10.0)
    width, height = max(span * 1.45 + 16, 60.0), max(max(ys) - min(ys) + 16, 35.0)  # room on the right for the labels
    width, height = max(width, height * 1.7), max(height, width / 1.7)
    x0 = min(max(min(xs) - (width - span * 1.45) / 2, 0.0), 360.0 - width) if width < 360 else 0.0
    y0 = min(max((min(ys) + max(ys) - height) / 2, 0.0), 180.0 - height) if height < 180 else 0.0
    scale = width / 100.0
    line = " ".join(f"{x:.2f},{y:.2f}" for x, y in points)
    marks = []
    for i, (stop, (x, y)) in enumerate(zip(stops, points, strict=True)):
        colour = {"origin": "#15803d", "hub": "#c2410c", "destination": "#b91c1c"}.get(stop.role, "#1f5f99")
        marks.append(
            f'<circle cx="{x:.2f}" cy="{y:.2f}" r="{1.1 * scale:.2f}" fill="{colour}" stroke="#fff" stroke-width="{0.3 * scale:.2f}"/>'
            f'<text x="{x + 1.6 * scale:.2f}" y="{y - 1.2 * scale:.2f}" font-size="{2.6 * scale:.2f}" '
            f'paint-order="stroke" stroke="#fff" stroke-width="{0.6 * scale:.2f}" fill="#111">{i + 1}. {escape(stop.label)}</text>'
        )
    return (
        f'<svg class="map" role="img" aria-label="{escape(title)}" viewBox="{x0:.1f} {y0:.1f} {width:.1f} {height:.1f}" '
        f'xmlns="http://www.w3.org/2000/svg" preserveAspectRatio="xMidYMid meet"><title>{escape(title)}</title>'
        f'<rect x="0" y="0" width="360" height="180" fill="#dbeafe"/>'
        f'<path d="{land_path()}" fill="#f1efe7" stroke="#9ca3af" stroke-width="{0.15 * scale:.2f}"/>'
        f'<polyline points="{line}" fill="none" stroke="#1f2937" stroke-width="{0.5 * scale:.2f}" stroke-dasharray="{1.5 * scale:.2f} {0.8 * scale:.2f}"/>'
        + "".join(marks) + "</svg>"
    )


@dataclass(frozen=True)
class Series:
    """A named line of ``(x label, value or None)`` points."""

    name: str
    points: tuple[tuple[str, float | None], ...]
    colour: str | None = None


def line_chart_svg(series: Sequence[Series], *, title: str, y_label: str, percent: bool = True) -> str:
    """Lines over shared x labels (e.g. weeks); values 0..1 drawn as percentages when ``percent``."""
    labels = sorted({x for s in series for x, _ in s.points})
    if not labels:
        return ""
    values = [v for s in series for _, v in s.points if v is not None]
    top = max(values, default=1.0) or 1.0
    top = min(1.0, top * 1.15) if percent else top * 1.15
    w, h, left, bottom, right = 640, 260, 56, 40, 150
    pw, ph = w - left - right, h - 20 - bottom
    step = pw / max(len(labels) - 1, 1)
    x_of = {x: left + i * step for i, x in enumerate(labels)}

    def y_of(v: float) -> float:
        return 20 + ph * (1 - v / top)

    grid = []
    for k in range(5):
        v = top * k / 4
        text = f"{100 * v:.0f}%" if percent else f"{v:.0f}"
        grid.append(f'<line x1="{left}" x2="{left + pw}" y1="{y_of(v):.1f}" y2="{y_of(v):.1f}" stroke="#e5e7eb"/>'
                    f'<text x="{left - 6}" y="{y_of(v) + 4:.1f}" text-anchor="end" font-size="12">{text}</text>')
    every = max(1, len(labels) // 8)
    ticks = "".join(
        f'<text x="{x_of[x]:.1f}" y="{h - bottom + 18}" text-anchor="middle" font-size="11">{escape(x)}</text>'
        for i, x in enumerate(labels) if i % every == 0
    )
    lines, legend = [], []
    for i, s in enumerate(series):
        colour = s.colour or PALETTE[i % len(PALETTE)]
        pts = [(x_of[x], y_of(v)) for x, v in s.points if v is not None]
        if len(pts) > 1:
            lines.append(f'<polyline points="{" ".join(f"{a:.1f},{b:.1f}" for a, b in pts)}" fill="none" stroke="{colour}" stroke-width="2.5"/>')
        lines.extend(f'<circle cx="{a:.1f}" cy="{b:.1f}" r="3" fill="{colour}"/>' for a, b in pts)
        legend.append(f'<rect x="{left + pw + 14}" y="{24 + 20 * i}" width="14" height="4" fill="{colour}"/>'
                      f'<text x="{left + pw + 34}" y="{30 + 20 * i}" font-size="12">{escape(s.name)}</text>')
    return (
        f'<svg class="chart" role="img" aria-label="{escape(title)}" viewBox="0 0 {w} {h}" xmlns="http://www.w3.org/2000/svg">'
        f'<title>{escape(title)}</title>{"".join(grid)}{ticks}{"".join(lines)}{"".join(legend)}'
        f'<text x="14" y="{20 + ph / 2:.0f}" font-size="12" transform="rotate(-90 14 {20 + ph / 2:.0f})" text-anchor="middle">{escape(y_label)}</text></svg>'
    )


def bar_chart_svg(bars: Sequence[tuple[str, float]], *, title: str, unit: str = "", colours: dict[str, str] | None = None) -> str:
    """Horizontal bars, one per ``(label, value)``, value written at the bar's end."""
    if not bars:
        return ""
    top = max(v for _, v in bars) or 1.0
    w, row, left = 640, 30, 170
    h = 16 + row * len(bars)
    out = []
    for i, (label, v) in enumerate(bars):
        y = 8 + i * row
        length = (w - left - 90) * v / top
        colour = (colours or {}).get(label, PALETTE[i % len(PALETTE)])
        shown = f"{v:,.0f}{unit}" if unit != "%" else f"{v:.1f}%"
        out.append(f'<text x="{left - 8}" y="{y + 18}" text-anchor="end" font-size="13">{escape(label)}</text>'
                   f'<rect x="{left}" y="{y + 4}" width="{max(length, 1):.1f}" height="20" fill="{colour}"/>'
                   f'<text x="{left + length + 6:.1f}" y="{y + 19}" font-size="13">{escape(shown)}</text>')
    return (f'<svg class="chart" role="img" aria-label="{escape(title)}" viewBox="0 0 {w} {h}" xmlns="http://www.w3.org/2000/svg">'
            f'<title>{escape(title)}</title>{"".join(out)}</svg>')
