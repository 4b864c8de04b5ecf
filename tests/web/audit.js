// The layout audit the browser tests run in the page (one synchronous pass, so a page that
// redraws on a ledger event cannot change under it). It answers {problems, tables, text}:
//
// - the page does not scroll sideways;
// - inside every card, every visible element lies within the card's box and none is wider
//   than the card, unless it is inside an intended scroll container ([data-scroll]), which
//   must itself lie within the card; and no element's content spills out of its own box;
// - in every table, every row has one cell per column; every cell is visible and inside its
//   card; every column's header is visible in the card, or -- a table shown as a list of
//   rows -- every cell shows its column's label;
// - `text`: what the page says, without what people wrote or ids (contract sources, names,
//   devices, receipts, hashes: textarea, pre, code, .mono, [data-user]), for the test's
//   scan of untranslated words; `untranslated`: words the interface's tables lack.
() => {
  const TOLERANCE = 1; // px: sub-pixel rounding
  const problems = [];
  const describe = (el) => {
    const classes = typeof el.className === "string" && el.className.trim() ? `.${el.className.trim().split(/\s+/).join(".")}` : "";
    const text = (el.textContent || "").trim().replace(/\s+/g, " ").slice(0, 40);
    return `<${el.tagName.toLowerCase()}${el.id ? `#${el.id}` : ""}${classes}> "${text}"`;
  };
  const shown = (el) => {
    const box = el.getBoundingClientRect();
    const style = getComputedStyle(el);
    return box.width > 0 && box.height > 0 && style.visibility !== "hidden" && style.display !== "none";
  };
  // The header row of a table shown as a list is kept for screen readers only (clipped).
  const forScreenReaders = (el) => {
    const head = el.closest("thead");
    return head !== null && head.getBoundingClientRect().height <= TOLERANCE;
  };
  const outside = (inner, outer) =>
    inner.left < outer.left - TOLERANCE || inner.right > outer.right + TOLERANCE;
  const span = (box) => `${Math.round(box.left)}–${Math.round(box.right)}`;

  const page = document.documentElement;
  if (page.scrollWidth > window.innerWidth + TOLERANCE) {
    problems.push(`the page scrolls sideways: ${page.scrollWidth} px in a window of ${window.innerWidth}`);
  }
  const cards = [...document.querySelectorAll("main .card")];
  if (!cards.length) problems.push("the page has no cards");
  for (const card of cards) {
    const box = card.getBoundingClientRect();
    const name = describe(card.querySelector("h2") || card);
    for (const el of card.querySelectorAll("*")) {
      const scroller = el.parentElement.closest("[data-scroll]");
      if (scroller !== null && card.contains(scroller)) continue;
      if (!shown(el) || forScreenReaders(el)) continue;
      const own = el.getBoundingClientRect();
      if (outside(own, box)) {
        problems.push(`${name}: ${describe(el)} spans ${span(own)}, outside its card (${span(box)})`);
      }
      if (el.hasAttribute("data-scroll") || el.scrollWidth === undefined) continue;
      if (el.scrollWidth > card.clientWidth + TOLERANCE) {
        problems.push(`${name}: ${describe(el)} is ${el.scrollWidth} px wide in a card of ${card.clientWidth}`);
      } else if (el.clientWidth > 0 && el.scrollWidth > el.clientWidth + TOLERANCE) {
        problems.push(`${name}: the content of ${describe(el)} spills out of it (${el.scrollWidth} > ${el.clientWidth} px)`);
      }
    }
  }

  const tables = [];
  for (const table of document.querySelectorAll("main table")) {
    const card = table.closest(".card");
    if (card === null) {
      problems.push(`${describe(table)} is in no card`);
      continue;
    }
    const box = card.getBoundingClientRect();
    const heads = [...table.querySelectorAll("thead th")];
    const labels = heads.map((th) => th.textContent.trim());
    const stacked = forScreenReaders(heads[0] || table);
    const where = `table ${table.id || describe(table)}`;
    if (!stacked) {
      heads.forEach((th, i) => {
        if (!shown(th) || outside(th.getBoundingClientRect(), box)) problems.push(`${where}: the header "${labels[i]}" is not visible in its card`);
      });
    }
    const rows = [...table.querySelectorAll("tbody tr")];
    rows.forEach((row, r) => {
      const cells = [...row.children];
      if (cells.length !== heads.length) problems.push(`${where}: row ${r + 1} has ${cells.length} cells for ${heads.length} columns`);
      cells.forEach((cell, i) => {
        const column = labels[i] ?? `#${i + 1}`;
        if (!shown(cell) || outside(cell.getBoundingClientRect(), box)) {
          problems.push(`${where}: row ${r + 1}, column "${column}" is not visible in its card`);
        }
        if (stacked) {
          const label = cell.querySelector(".cell-label");
          if (label === null || !shown(label) || label.textContent.trim() !== column) {
            problems.push(`${where}: row ${r + 1} does not label its "${column}"`);
          }
        }
      });
    });
    tables.push({ id: table.id, stacked, columns: labels, rows: rows.length });
  }

  const copy = document.body.cloneNode(true);
  for (const el of copy.querySelectorAll("textarea, pre, code, script, noscript, .mono, [data-user]")) el.remove();
  // Text by text node, spaced, so that neighbouring cells do not run into one word.
  const walker = document.createTreeWalker(copy, NodeFilter.SHOW_TEXT);
  const pieces = [];
  while (walker.nextNode()) pieces.push(walker.currentNode.nodeValue);
  const text = pieces.join(" ").replace(/\s+/g, " ");
  const untranslated = [...document.querySelectorAll("[data-untranslated]")].map((el) => el.dataset.term);
  return { problems, tables, text, untranslated };
};
