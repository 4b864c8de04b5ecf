// A tiny element builder: h("td", {class: "num"}, "12") -> <td class="num">12</td>.
// Text is always set as text, never parsed as HTML. Also the pieces every page uses:
// words of the ledger's vocabulary, ids and tables.

import { t, word } from "./i18n.js";

export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") {
      element.addEventListener(name.slice(2), value);
    } else if (name === "dataset") {
      Object.assign(element.dataset, value);
    } else {
      element.setAttribute(name, value === true ? "" : String(value));
    }
  }
  append(element, children);
  return element;
}

function append(element, children) {
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    if (Array.isArray(child)) append(element, child);
    else element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function replace(element, ...children) {
  element.replaceChildren();
  append(element, children);
  return element;
}

export function flash(element) {
  element.classList.remove("flash");
  void element.offsetWidth; // restart the animation
  element.classList.add("flash");
}

// A word of the ledger's vocabulary (a status, a role, an action, a result...) in the
// reader's language. A word the tables lack shows as it is and is marked
// `data-untranslated`, which the browser tests look for.
export function term(kind, value, { badge = false } = {}) {
  const text = word(kind, value);
  return h(
    "span",
    {
      class: badge ? `badge ${value}` : "term",
      dataset: { term: `${kind}.${value}` },
      "data-untranslated": text === null,
    },
    text ?? String(value),
  );
}

// An id or address: shortened to `keep` characters each side, the whole value in its
// title; `full` shows all of it, wrapping where it must.
export function ident(value, { keep = 10, full = false } = {}) {
  if (!value) return t("common.none");
  const shown = full || value.length <= keep * 2 + 4 ? value : `${value.slice(0, keep)}…${value.slice(-4)}`;
  return h("span", { class: full ? "mono ident full" : "mono ident", title: value }, shown);
}

// A table of data. `columns`: [{label, num}], `rows`: [{cells: [...], attributes}].
// A `stack` table in a narrow card (a CSS container query) shows each row as a block of
// "label value" lines, so no column is lost on a phone; the explicit roles keep it a
// table for screen readers whatever its display, and the visible labels are hidden from
// them (the column headers are read instead).
export function table({ id, columns, rows, stack = true }) {
  return h(
    "table",
    { id, role: "table", class: stack ? "data stack" : "data" },
    h(
      "thead",
      { role: "rowgroup" },
      h("tr", { role: "row" }, columns.map((c) => h("th", { role: "columnheader", scope: "col", class: c.num ? "num" : null }, c.label))),
    ),
    h(
      "tbody",
      { role: "rowgroup" },
      rows.map((row) =>
        h(
          "tr",
          { role: "row", ...(row.attributes || {}) },
          row.cells.map((cell, i) =>
            h(
              "td",
              { role: "cell", class: columns[i].num ? "num" : null },
              stack ? h("span", { class: "cell-label", "aria-hidden": "true" }, columns[i].label) : null,
              h("span", { class: "cell-value" }, cell),
            ),
          ),
        ),
      ),
    ),
  );
}
