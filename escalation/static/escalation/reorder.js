/*
 * Drag handles and up/down buttons for admin inlines whose fieldset has the class "reorderable"
 * (escalation/admin/people.py). The order that is saved is the rows' `position` inputs: every move
 * renumbers them 1..n in row order. Blank extra rows keep their default position, so Django still
 * ignores them. Without JavaScript the positions stay plain editable numbers.
 */
"use strict";
{
    const escapeRegExp = (text) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

    function formRows(tbody) {
        return Array.from(tbody.children).filter(
            (tr) => tr.classList.contains("form-row") && !tr.classList.contains("empty-form")
        );
    }

    function fieldOf(row, name) {
        return row.querySelector(`[name$="-${name}"]`);
    }

    // Django saves an extra row only if it differs from the blank form, so compare with the blank template.
    function inUse(row, template) {
        const pk = fieldOf(row, "id");
        if ((pk && pk.value) || !template) {
            return true;
        }
        return Array.from(row.querySelectorAll("input, select, textarea")).some((el) => {
            const name = el.name.replace(/^.*-/, "");
            if (el.type === "hidden" || name === "position" || name === "DELETE") {
                return false;
            }
            const blank = fieldOf(template, name);
            if (!blank) {
                return false;
            }
            return el.type === "checkbox" ? el.checked !== blank.checked : el.value !== blank.value;
        });
    }

    function renumber(tbody) {
        const template = tbody.querySelector("tr.empty-form");
        let position = 0;
        for (const row of formRows(tbody)) {
            const input = fieldOf(row, "position");
            if (!input) {
                continue;
            }
            if (inUse(row, template)) {
                position += 1;
                input.value = String(position);
            } else {
                input.value = template ? fieldOf(template, "position").value : input.value;
            }
        }
    }

    // A row's non-field errors sit in the table row just above it and must move with it.
    function withErrors(row) {
        const previous = row.previousElementSibling;
        return previous && previous.classList.contains("row-form-errors") ? [previous, row] : [row];
    }

    function moveBefore(row, target) {
        const anchor = withErrors(target)[0];
        for (const element of withErrors(row)) {
            anchor.parentNode.insertBefore(element, anchor);
        }
    }

    function moveAfter(row, target) {
        const rows = formRows(target.parentNode);
        const next = rows[rows.indexOf(target) + 1];
        if (next) {
            moveBefore(row, next);
        } else {
            const anchor = target.nextSibling;
            for (const element of withErrors(row)) {
                target.parentNode.insertBefore(element, anchor);
            }
        }
    }

    // Django treats the first INITIAL_FORMS indexes as the saved rows, and its own "remove" link renames
    // rows by their place on the page: after a move, put the saved rows back at the low indexes.
    function reindex(tbody, prefix) {
        const rows = formRows(tbody);
        const saved = rows.filter((row) => fieldOf(row, "id") && fieldOf(row, "id").value);
        const ordered = saved.concat(rows.filter((row) => !saved.includes(row)));
        const pattern = new RegExp(`${escapeRegExp(prefix)}-\\d+`);
        ordered.forEach((row, index) => {
            const replacement = `${prefix}-${index}`;
            for (const element of [row, ...row.querySelectorAll("*")]) {
                for (const attribute of ["id", "name", "for"]) {
                    const value = element.getAttribute(attribute);
                    if (value) {
                        element.setAttribute(attribute, value.replace(pattern, replacement));
                    }
                }
            }
        });
    }

    function sortByPosition(tbody) {
        const template = tbody.querySelector("tr.empty-form");
        const rows = formRows(tbody);
        if (!rows.length) {
            return;
        }
        const used = rows.filter((row) => inUse(row, template));
        const number = (row) => Number.parseInt((fieldOf(row, "position") || {}).value, 10) || 0;
        const sorted = used
            .map((row, index) => ({row, index}))
            .sort((a, b) => number(a.row) - number(b.row) || a.index - b.index)
            .map((item) => item.row)
            .concat(rows.filter((row) => !used.includes(row)));
        const end = rows[rows.length - 1].nextSibling;
        for (const row of sorted) {
            for (const element of withErrors(row)) {
                tbody.insertBefore(element, end);
            }
        }
    }

    function addControls(row) {
        const cell = row.querySelector("td.field-position");
        if (!cell || cell.querySelector(".reorder-controls")) {
            return;
        }
        const input = fieldOf(row, "position");
        if (input) {
            input.readOnly = true;
            input.classList.add("reorder-position");
        }
        const controls = document.createElement("span");
        controls.className = "reorder-controls";
        controls.innerHTML =
            '<span class="reorder-handle" draggable="true" title="Drag to move">&#9776;</span>' +
            '<button type="button" class="reorder-up" title="Move up" aria-label="Move up">&#9650;</button>' +
            '<button type="button" class="reorder-down" title="Move down" aria-label="Move down">&#9660;</button>';
        cell.prepend(controls);
    }

    function setUp(fieldset) {
        const group = fieldset.closest(".js-inline-admin-formset");
        const prefix = JSON.parse(group.dataset.inlineFormset).options.prefix;
        const tbody = fieldset.querySelector("tbody");
        if (!tbody) {
            return;
        }
        sortByPosition(tbody);
        tbody.querySelectorAll("tr.form-row").forEach(addControls);
        let dragged = null;

        tbody.addEventListener("click", (event) => {
            const button = event.target.closest(".reorder-up, .reorder-down");
            if (!button) {
                return;
            }
            const row = button.closest("tr");
            const rows = formRows(tbody);
            const index = rows.indexOf(row);
            if (button.classList.contains("reorder-up") && index > 0) {
                moveBefore(row, rows[index - 1]);
            } else if (button.classList.contains("reorder-down") && index >= 0 && index < rows.length - 1) {
                moveAfter(row, rows[index + 1]);
            }
            renumber(tbody);
            button.focus();
        });
        tbody.addEventListener("dragstart", (event) => {
            if (!event.target.closest || !event.target.closest(".reorder-handle")) {
                return;
            }
            dragged = event.target.closest("tr");
            dragged.classList.add("reorder-dragging");
            event.dataTransfer.effectAllowed = "move";
            event.dataTransfer.setData("text/plain", "");  // Firefox starts no drag without data
            event.dataTransfer.setDragImage(dragged, 0, 0);
        });
        tbody.addEventListener("dragover", (event) => {
            const over = dragged && event.target.closest && event.target.closest("tr.form-row");
            if (!over || over === dragged || over.classList.contains("empty-form") || over.parentNode !== tbody) {
                return;
            }
            event.preventDefault();
            const box = over.getBoundingClientRect();
            if (event.clientY < box.top + box.height / 2) {
                moveBefore(dragged, over);
            } else {
                moveAfter(dragged, over);
            }
        });
        tbody.addEventListener("drop", (event) => {
            if (dragged) {
                event.preventDefault();
            }
        });
        tbody.addEventListener("dragend", () => {
            if (dragged) {
                dragged.classList.remove("reorder-dragging");
                dragged = null;
                renumber(tbody);
            }
        });
        tbody.addEventListener("input", () => renumber(tbody));
        tbody.addEventListener("change", () => renumber(tbody));
        document.addEventListener("formset:removed", (event) => {
            if (event.detail && event.detail.formsetName === prefix) {
                renumber(tbody);
            }
        });
        fieldset.closest("form").addEventListener("submit", () => {
            renumber(tbody);
            reindex(tbody, prefix);
        });
    }

    window.addEventListener("load", () => {
        document.querySelectorAll(".js-inline-admin-formset fieldset.reorderable").forEach(setUp);
    });
}
