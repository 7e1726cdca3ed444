"""Charts drawn on the server as inline SVG: no script, no external asset, and styled by
the stylesheet (the CSP allows no inline styles), so they follow the colour scheme."""

from markupsafe import Markup, escape

_WIDTH = 240
_HEIGHT = 40


def bars(values: list[int], label: str) -> Markup:
    """A bar per value, scaled to the largest; `label` is what a screen reader hears
    (and the tooltip)."""
    top = max(values, default=0) or 1
    step = _WIDTH / max(len(values), 1)
    rects = "".join(
        f'<rect x="{i * step:.1f}" y="{_HEIGHT - h:.1f}" width="{max(step - 1, 1):.1f}"'
        f' height="{h:.1f}"/>'
        for i, value in enumerate(values)
        if (h := value / top * _HEIGHT) > 0
    )
    text = escape(label)
    return Markup(
        f'<svg class="chart" viewBox="0 0 {_WIDTH} {_HEIGHT}" role="img" aria-label="{text}">'
        f'<title>{text}</title><line x1="0" y1="{_HEIGHT}" x2="{_WIDTH}" y2="{_HEIGHT}"/>'
        f"{rects}</svg>"
    )
