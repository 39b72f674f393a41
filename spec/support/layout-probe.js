/* global document, getComputedStyle, innerWidth */
// Evaluated in a page of the demo by spec/examples/example-passport-browser.spec.ts (page.evaluate of this
// file's text): measures, with bounding boxes, what a reader sees at the page's width. One
// expression, so that evaluating it returns its value.
(() => {
  const shown = (el) =>
    el.getClientRects().length > 0 && getComputedStyle(el).visibility !== 'hidden';
  const name = (el) =>
    `${el.tagName.toLowerCase()}${el.id ? `#${el.id}` : ''} "${(el.textContent || el.placeholder || '').trim()}"`;

  // The header's rows: the line boxes of its texts and the boxes of its buttons, grouped by
  // vertical overlap. A title that wraps counts one row per line.
  const header = document.querySelector('header');
  const boxes = [];
  for (const el of header ? header.querySelectorAll('h1, p, button') : []) {
    if (!shown(el)) continue;
    if (el.tagName === 'BUTTON') {
      boxes.push(el.getBoundingClientRect());
    } else {
      const range = document.createRange();
      range.selectNodeContents(el);
      boxes.push(...range.getClientRects());
    }
  }
  boxes.sort((a, b) => a.top - b.top);
  const rows = [];
  for (const box of boxes) {
    const middle = (box.top + box.bottom) / 2;
    const row = rows.find((r) => middle >= r.top && middle <= r.bottom);
    if (row) {
      row.top = Math.min(row.top, box.top);
      row.bottom = Math.max(row.bottom, box.bottom);
    } else {
      rows.push({ top: box.top, bottom: box.bottom });
    }
  }
  // Header texts cut short (an ellipsis, or clipped).
  const truncated = [...(header ? header.querySelectorAll('h1, p') : [])]
    .filter((el) => shown(el) && el.scrollWidth > el.clientWidth + 1)
    .map(name);

  // Buttons and fields that stick out of the card they are in.
  const overflowing = [];
  let controls = 0;
  for (const el of document.querySelectorAll('.card button, .card input')) {
    if (!shown(el)) continue;
    controls++;
    const box = el.getBoundingClientRect();
    const card = el.closest('.card').getBoundingClientRect();
    if (box.left < card.left - 0.5 || box.right > card.right + 0.5) {
      overflowing.push(
        `${name(el)}: ${Math.round(box.left)}–${Math.round(box.right)} in a card ` +
          `${Math.round(card.left)}–${Math.round(card.right)}`,
      );
    }
  }

  return {
    headerRows: rows.length,
    headerHeight: header ? Math.round(header.getBoundingClientRect().height) : 0,
    truncated,
    controls,
    overflowing,
    pageWidth: document.documentElement.scrollWidth,
    viewportWidth: innerWidth,
  };
})();
