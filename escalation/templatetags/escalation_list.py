"""`{% escalation_result_list cl %}`: the escalation list's rows, built here rather than by Django's result_list.

Django's `items_for_result` looks each cell's field, attribute and display rules up anew: for 50 rows of 8
cells it was about half of the list page's CPU (issue 18: history pages within 100 ms on a slow machine).
Every column of this list is a method of the admin that returns text or safe HTML, so a row is built
directly, as the same markup (a test compares the two). A list this does not cover (a popup, an editable
list, a column that is not such a method) keeps Django's rendering.
"""

from collections.abc import Iterator
from html import escape

from django import template
from django.contrib.admin.templatetags.admin_list import result_headers, result_list
from django.contrib.admin.templatetags.admin_urls import add_preserved_filters
from django.contrib.admin.views.main import ChangeList
from django.db.models import Model
from django.utils.safestring import SafeString

register = template.Library()


@register.inclusion_tag("admin/change_list_results.html")
def escalation_result_list(cl: ChangeList) -> dict:
    if not _covered(cl):
        return result_list(cl)
    headers = list(result_headers(cl))
    return {
        "cl": cl,
        "result_hidden_fields": [],
        "result_headers": headers,
        "num_sorted_fields": sum(1 for header in headers if header["sortable"] and header["sorted"]),
        "results": [list(row_cells(cl, row)) for row in cl.result_list],
    }


def _covered(cl: ChangeList) -> bool:
    columns = [name for name in cl.list_display if name != "action_checkbox"]
    return (not cl.is_popup and not cl.list_editable and bool(columns) and list(cl.list_display_links) == columns[:1]
            and all(isinstance(name, str) and callable(getattr(cl.model_admin, name, None)) for name in columns))


def row_cells(cl: ChangeList, row: Model) -> Iterator[SafeString]:
    """One row's cells, as Django's `items_for_result` writes them for these columns.

    Escaped with the standard library's `html.escape`, which Django's `escape` calls too, without the lazy
    string checks of `format_html` per cell (a fifth of the rows' cost)."""
    admin = cl.model_admin
    for name in cl.list_display:
        if name == "action_checkbox":
            yield SafeString(f'<td class="action-checkbox">{admin.action_checkbox(row)}</td>')
            continue
        value = getattr(admin, name)(row)
        if isinstance(value, str) and not value.strip():
            value = admin.get_empty_value_display()
        shown = value if isinstance(value, SafeString) else escape(str(value))
        if name in cl.list_display_links:
            url = add_preserved_filters({"preserved_filters": cl.preserved_filters, "opts": cl.opts},
                                        cl.url_for_result(row))
            yield SafeString(f'<th class="field-{name}"><a href="{escape(url)}">{shown}</a></th>')
        else:
            yield SafeString(f'<td class="field-{name}">{shown}</td>')
