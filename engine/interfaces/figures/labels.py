"""Text placement without collisions: labels that a reader can read at first glance.

Matplotlib places annotations where it is told and lets them overlap. :func:`place` puts each
label at the first of a few offsets around its point where it overlaps no text already drawn
(other labels, contour labels, the legend) and stays inside the axes; :func:`collisions` is
what the tests check on every shipped figure. Extents are measured on a drawn canvas with
the layout frozen first (a constrained layout would move the axes after placement).
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: Offsets (points) tried in order around a labelled point, with the alignment each needs.
OFFSETS = (
    ((8, 4), "left", "bottom"),
    ((8, -4), "left", "top"),
    ((-8, 4), "right", "bottom"),
    ((-8, -4), "right", "top"),
    ((8, 14), "left", "bottom"),
    ((8, -14), "left", "top"),
    ((-8, 14), "right", "bottom"),
    ((-8, -14), "right", "top"),
    ((0, 10), "center", "bottom"),
    ((0, -10), "center", "top"),
)


#: Distances (multiples of OFFSETS) tried in turn for a required label with no free offset close by.
RINGS = (1.0, 2.0, 3.0)


@dataclass
class Label:
    """One label to place: its text, the data point it names, its style, and whether it may be dropped."""

    text: str
    xy: tuple[float, float]
    style: dict = field(default_factory=dict)
    optional: bool = False  # dropped (not drawn) when no offset is free; else drawn at its best offset


def freeze_layout(fig):
    """Draw once and keep the axes where the layout engine put them; returns the renderer."""
    fig.canvas.draw()
    fig.set_layout_engine("none")
    return fig.canvas.get_renderer()


def drawn_texts(fig) -> list:
    """Every visible, non-empty text inside the axes (annotations, contour labels) and every legend."""
    found = []
    for ax in fig.axes:
        found += [t for t in ax.texts if t.get_visible() and t.get_text().strip()]
        legend = ax.get_legend()
        if legend is not None and legend.get_visible():
            found.append(legend)
    found += [legend for legend in fig.legends if legend.get_visible()]
    return found


def collisions(fig) -> list[tuple[str, str]]:
    """Pairs of texts (by their words) whose drawn extents overlap."""
    if not hasattr(fig.canvas, "get_renderer"):  # a closed figure: draw it on a fresh raster canvas
        from matplotlib.backends.backend_agg import FigureCanvasAgg

        FigureCanvasAgg(fig)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    texts = drawn_texts(fig)
    boxes = [t.get_window_extent(renderer) for t in texts]
    found = []
    for i in range(len(texts)):
        for j in range(i + 1, len(texts)):
            if boxes[i].overlaps(boxes[j]):
                found.append((_words(texts[i]), _words(texts[j])))
    return found


def _words(artist) -> str:
    if hasattr(artist, "get_text"):
        return artist.get_text()
    return "legend: " + ", ".join(t.get_text() for t in artist.get_texts())


def place(ax, labels: list[Label], renderer=None, avoid=()) -> list:
    """Annotate ``ax`` with each label at its first free offset; returns the texts drawn.

    A label is free where its extent overlaps no text drawn so far, none of the data points
    in ``avoid`` (markers, as (x, y) in data coordinates), crosses none of the axes' lines and
    lies inside the axes. A required label with no free offset close by tries the same offsets
    two and three times as far (:data:`RINGS`), then is drawn where it overlaps
    least (a text or marker overlapped counts by its area, a line crossed by a tenth of the
    label's); optional ones are left out.
    """
    from matplotlib.transforms import Bbox

    fig = ax.figure
    renderer = renderer or freeze_layout(fig)
    frame = ax.get_window_extent(renderer)
    taken = [t.get_window_extent(renderer) for t in drawn_texts(fig)]
    radius = 4.0 * fig.dpi / 72.0  # a marker's half-width, in pixels
    for x, y in ax.transData.transform(list(avoid)) if len(avoid) else ():
        taken.append(Bbox([[x - radius, y - radius], [x + radius, y + radius]]))
    segments = line_segments(ax)
    drawn = []
    for label in labels:
        best, best_cost = None, None
        for ring in RINGS[:1] if label.optional else RINGS:
            for (dx, dy), ha, va in OFFSETS:
                text = ax.annotate(label.text, label.xy, textcoords="offset points", xytext=(dx * ring, dy * ring),
                                   ha=ha, va=va, **label.style)  # fmt: skip
                box = text.get_window_extent(renderer)
                cost = sum(_overlap(box, other) for other in taken) + _outside(box, frame)
                cost += 0.1 * box.width * box.height * sum(_crosses(box, *s) for s in segments)
                if best_cost is None or cost < best_cost:
                    if best is not None:
                        best.remove()
                    best, best_cost = text, cost
                else:
                    text.remove()
                if cost == 0:
                    break
            if best_cost == 0:
                break
        if best_cost and label.optional:
            best.remove()
            continue
        taken.append(best.get_window_extent(renderer))
        drawn.append(best)
    return drawn


def contour_labels(ax, lines, keep: list, renderer, fmt, fontsize: float = 9) -> list:
    """Label each contour level once, at the first point along its longest piece (middle first)
    where the label overlaps none of ``keep``, no other level's label and stays inside the axes.

    A level with no free point is left unlabelled (the legend names the levels); the lines are
    broken only under the labels drawn (``clabel`` at the chosen points, inline).
    """
    frame = ax.get_window_extent(renderer)
    kept, chosen = [t.get_window_extent(renderer) for t in keep], []
    for level, path in zip(lines.levels, lines.get_paths()):
        piece = _longest_piece(ax, path)
        if piece is None:
            continue
        for fraction in (0.5, 0.4, 0.6, 0.3, 0.7, 0.2, 0.8):
            xy, angle = _along(piece, fraction)
            trial = ax.text(*ax.transData.inverted().transform(xy), fmt(level), rotation=angle, fontsize=fontsize,
                            ha="center", va="center", rotation_mode="anchor")  # fmt: skip
            box = trial.get_window_extent(renderer)
            trial.remove()
            if not any(box.overlaps(other) for other in kept) and _outside(box, frame) == 0:
                kept.append(box)
                chosen.append(tuple(ax.transData.inverted().transform(xy)))
                break
    if not chosen:
        return []
    return ax.clabel(lines, inline=True, manual=chosen, fmt=fmt, fontsize=fontsize)


def _longest_piece(ax, path):
    """The longest connected piece of a contour path, in display coordinates (None if empty)."""
    import numpy as np

    if len(path.vertices) < 2:
        return None
    starts = [0] + [i for i, code in enumerate(path.codes if path.codes is not None else []) if code == 1 and i > 0]
    pieces = np.split(ax.transData.transform(path.vertices), starts[1:])
    longest = max(pieces, key=lambda p: np.hypot(*np.diff(p, axis=0).T).sum() if len(p) > 1 else 0.0)
    return longest if len(longest) > 1 else None


def _along(piece, fraction):
    """The point ``fraction`` of the way along a display-space polyline, and its angle (degrees, upright)."""
    import numpy as np

    steps = np.hypot(*np.diff(piece, axis=0).T)
    where = np.searchsorted(np.cumsum(steps), fraction * steps.sum())
    where = min(where, len(steps) - 1)
    (x0, y0), (x1, y1) = piece[where], piece[where + 1]
    angle = np.degrees(np.arctan2(y1 - y0, x1 - x0))
    if angle > 90:
        angle -= 180
    if angle < -90:
        angle += 180
    return ((x0 + x1) / 2, (y0 + y1) / 2), angle


def line_segments(ax) -> list[tuple[float, float, float, float]]:
    """Every segment of the axes' visible lines as drawn (step lines with their steps), in
    display coordinates."""
    import numpy as np
    from matplotlib.cbook import STEP_LOOKUP_MAP

    found = []
    for line in ax.lines:
        if not line.get_visible() or line.get_linestyle() in ("None", "", " ", "none"):
            continue
        x, y = (np.asarray(v, dtype=float) for v in line.get_data())
        if x.size < 2:
            continue
        x, y = STEP_LOOKUP_MAP[line.get_drawstyle()](x, y)
        xy = line.get_transform().transform(np.column_stack([x, y]))
        good = np.isfinite(xy).all(axis=1)
        for (x0, y0), (x1, y1), ok0, ok1 in zip(xy[:-1], xy[1:], good[:-1], good[1:]):
            if ok0 and ok1:
                found.append((x0, y0, x1, y1))
    return found


def crossings(fig) -> list[tuple[str, int]]:
    """Each annotation (by its words) and how many line segments of its axes cross it."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    found = []
    for ax in fig.axes:
        segments = line_segments(ax)
        for text in ax.texts:
            if text.get_visible() and text.get_text().strip():
                box = text.get_window_extent(renderer)
                found.append((text.get_text(), sum(_crosses(box, *s) for s in segments)))
    return found


def _crosses(box, x0, y0, x1, y1) -> bool:
    """The segment passes through the box (Liang-Barsky clipping)."""
    low, high = 0.0, 1.0
    dx, dy = x1 - x0, y1 - y0
    for p, q in ((-dx, x0 - box.x0), (dx, box.x1 - x0), (-dy, y0 - box.y0), (dy, box.y1 - y0)):
        if p == 0:
            if q < 0:
                return False
        else:
            t = q / p
            if p < 0:
                low = max(low, t)
            else:
                high = min(high, t)
            if low > high:
                return False
    return True


def _overlap(a, b) -> float:
    width = min(a.x1, b.x1) - max(a.x0, b.x0)
    height = min(a.y1, b.y1) - max(a.y0, b.y0)
    return width * height if width > 0 and height > 0 else 0.0


def _outside(box, frame) -> float:
    inside = _overlap(box, frame)
    return box.width * box.height - inside
