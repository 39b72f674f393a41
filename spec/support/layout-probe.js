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

  // Tables wider than their card's content box (they stick out, or into its padding), and cells
  // whose one-word text wraps ("alice-/pass").
  const overflowingTables = [];
  for (const table of document.querySelectorAll('.card table')) {
    if (!shown(table)) continue;
    const card = table.closest('.card');
    const style = getComputedStyle(card);
    const content =
      card.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
    const width = table.getBoundingClientRect().width;
    if (width > content + 0.5 || card.scrollWidth > card.clientWidth) {
      overflowingTables.push(`${name(table).slice(0, 40)}: ${Math.round(width)} px in ${content}`);
    }
  }
  const wrappedCells = [...document.querySelectorAll('.card td code')]
    .filter((el) => shown(el) && el.getClientRects().length > 1)
    .map(name);

  // Fields too narrow for their placeholder: the placeholder's text, put in as the value, must
  // scroll no further than the empty field (the value is put back at once; no event fires). Not
  // clientWidth alone: on a field of fractional width, the empty field's scrollWidth is already
  // 1 px more (clientWidth rounds, scrollWidth rounds up).
  const cutPlaceholders = [];
  for (const input of document.querySelectorAll('.card input[placeholder]')) {
    if (!shown(input)) continue;
    const value = input.value;
    input.value = '';
    const room = Math.max(input.clientWidth, input.scrollWidth);
    input.value = input.placeholder;
    if (input.scrollWidth > room) {
      cutPlaceholders.push(`${name(input)}: ${input.scrollWidth} px in ${room}`);
    }
    input.value = value;
  }

  // The admin's row for a user: its Disconnect button on the same line as the tenants field.
  const kicksOffRow = [];
  for (const kick of document.querySelectorAll('#users button.kick')) {
    const input = kick.closest('li').querySelector('input');
    if (!shown(kick) || !input) continue;
    const [top, inputTop] = [kick, input].map((el) => el.getBoundingClientRect().top);
    if (Math.abs(top - inputTop) > 0.5) {
      kicksOffRow.push(
        `${name(kick.closest('li'))}: Disconnect at ${top}, its field at ${inputTop}`,
      );
    }
  }

  return {
    tables: document.querySelectorAll('.card table').length,
    kicks: document.querySelectorAll('#users button.kick').length,
    overflowingTables,
    wrappedCells,
    cutPlaceholders,
    kicksOffRow,
    headerRows: rows.length,
    headerHeight: header ? Math.round(header.getBoundingClientRect().height) : 0,
    truncated,
    controls,
    overflowing,
    pageWidth: document.documentElement.scrollWidth,
    viewportWidth: innerWidth,
  };
})();
