"""The schedule picture's bars and its table of shifts, rendered here rather than by loops in the template:
a busy fortnight has hundreds of bars, and the template engine's lookups, filters and escaping calls for each
made the schedule page cost twice what the rest of the admin's change form does (bench/schedules.py). Every
value is escaped (`html.escape`, which is what Django's `escape` calls) before it is marked safe."""

from html import escape

from django import template
from django.utils.safestring import SafeString, mark_safe

from escalation.schedules.picture import Bar

register = template.Library()


def _position(bar: Bar) -> str:
    return f'style="left: {bar.left:.3f}%; width: {bar.width:.3f}%"'


def _times(bar: Bar) -> str:
    return f"{escape(bar.start_text)} – {escape(bar.end_text)}"


@register.simple_tag
def picture_lane_bars(bars: list[Bar]) -> SafeString:
    """A layer's lane or the overrides' lane."""
    return mark_safe("".join(
        f'<span class="bar bar-{escape(bar.kind)}" {_position(bar)} title="{escape(bar.label)}: {_times(bar)}">'
        f"{escape(bar.label)}</span>" for bar in bars))


@register.simple_tag
def picture_final_bars(bars: list[Bar], cover_url: str) -> SafeString:
    """The result lane: each shift a link to cover it (the first of the two clicks), each gap flagged."""
    return mark_safe("".join(
        f'<a class="bar bar-{escape(bar.kind)}" {_position(bar)} title="Cover {escape(bar.label)}: {_times(bar)}" '
        f'href="{escape(cover_url)}?{escape(bar.cover_query)}">{escape(bar.label)}</a>' if bar.covers else
        f'<span class="bar bar-gap" {_position(bar)} title="Nobody on call: {_times(bar)}">gap</span>'
        for bar in bars))


@register.simple_tag
def picture_shift_rows(bars: list[Bar], cover_url: str) -> SafeString:
    """The result as a table: a row per shift or gap, with its link to cover (or fill) it."""
    return mark_safe("".join(
        f'<tr class="{"" if bar.covers else "gap"}"><td><time data-utc="{bar.start.isoformat()}">'
        f'{escape(bar.start_text)}</time></td><td><time data-utc="{bar.end.isoformat()}">{escape(bar.end_text)}'
        f'</time></td><td>{escape(bar.label)}</td><td><a href="{escape(cover_url)}?{escape(bar.cover_query)}">'
        f'{"Cover…" if bar.covers else "Fill…"}</a></td></tr>' for bar in bars))
