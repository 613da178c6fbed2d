/** The report's inline style and script (no external files: the report is one file). */

export const REPORT_CSS = `
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.5em; margin: 0 0 .6em; word-break: break-all; }
h2 { font-size: 1.15em; margin: 1.4em 0 .5em; }
#totals { display: flex; gap: 1em; flex-wrap: wrap; }
.total { border: 1px solid #ccd; border-radius: 6px; padding: .5em 1em; min-width: 7em; }
.total .v { font-size: 1.6em; font-weight: 600; }
.total .n { color: #667; }
#charts { display: flex; gap: 2em; flex-wrap: wrap; }
figure { margin: 1em 0; }
figcaption { font-weight: 600; margin-bottom: .3em; }
svg.chart text { font: 12px system-ui, sans-serif; fill: #333; }
.controls { display: flex; gap: .8em; align-items: center; margin: .5em 0; }
#filter { width: 28em; padding: .3em; }
table { border-collapse: collapse; width: 100%; table-layout: fixed; }
th, td { border-bottom: 1px solid #e3e3ea; padding: .25em .4em; text-align: left; vertical-align: top; overflow-wrap: anywhere; }
th { background: #f3f3f8; cursor: pointer; user-select: none; position: sticky; top: 0; }
th[aria-sort=ascending]::after { content: ' ▲'; }
th[aria-sort=descending]::after { content: ' ▼'; }
th:nth-child(1) { width: 7em; } th:nth-child(4) { width: 6em; } th:nth-child(5) { width: 17em; }
td.num { text-align: right; white-space: nowrap; }
.sha, .purl, .url, code { font-family: ui-monospace, monospace; font-size: 12px; }
.tag { background: #fde8c8; border-radius: 3px; padding: 0 .3em; font-size: 11px; }
tr.index td { color: #775; }
.step { margin: .3em 0; }
.step .meta { color: #667; }
.missing li { color: #a11; }
`;

/** Sorting (click a header; again to reverse) and filtering (text + ecosystem). */
export const REPORT_JS = `
(function () {
  'use strict';
  var table = document.getElementById('asset-table');
  var body = table.tBodies[0];
  var rows = Array.prototype.slice.call(body.rows);
  var filter = document.getElementById('filter');
  var eco = document.getElementById('ecosystem');
  var shown = document.getElementById('shown');
  function cellValue(row, col, numeric) {
    var c = row.cells[col];
    return numeric ? Number(c.getAttribute('data-sort')) : c.textContent;
  }
  function apply() {
    var q = filter.value.trim().toLowerCase();
    var e = eco.value;
    var n = 0;
    rows.forEach(function (r) {
      var ok = (!e || r.getAttribute('data-ecosystem') === e) && (!q || r.textContent.toLowerCase().indexOf(q) >= 0);
      r.hidden = !ok;
      if (ok) n++;
    });
    shown.textContent = n + ' of ' + rows.length + ' shown';
  }
  Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th) {
    th.addEventListener('click', function () {
      var col = Number(th.getAttribute('data-col'));
      var numeric = th.getAttribute('data-type') === 'num';
      var dir = th.getAttribute('aria-sort') === 'ascending' ? -1 : 1;
      Array.prototype.forEach.call(table.tHead.rows[0].cells, function (o) { o.removeAttribute('aria-sort'); });
      th.setAttribute('aria-sort', dir === 1 ? 'ascending' : 'descending');
      rows.sort(function (a, b) {
        var x = cellValue(a, col, numeric), y = cellValue(b, col, numeric);
        return (x < y ? -1 : x > y ? 1 : 0) * dir;
      });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
  filter.addEventListener('input', apply);
  eco.addEventListener('change', apply);
  apply();
})();
`;
