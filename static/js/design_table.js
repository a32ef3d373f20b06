// Result tables of the design pages: click a header to sort (numbers by
// value, using data-sort where a cell shows a list), type to filter rows.
(function () {
  function cellValue(row, i) {
    var cell = row.cells[i];
    if (!cell) return "";
    var raw = cell.dataset.sort !== undefined ? cell.dataset.sort : cell.textContent.trim();
    var num = parseFloat(raw);
    return isNaN(num) || !/^[-+]?[\d.]/.test(raw) ? raw.toLowerCase() : num;
  }
  function makeSortable(table) {
    if (table.dataset.sortReady) return;
    table.dataset.sortReady = "1";
    table.querySelectorAll("thead th").forEach(function (th, i) {
      th.style.cursor = "pointer";
      th.addEventListener("click", function () {
        var body = table.tBodies[0];
        var asc = th.dataset.dir !== "asc";
        th.dataset.dir = asc ? "asc" : "desc";
        var rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (a, b) {
          var x = cellValue(a, i), y = cellValue(b, i);
          if (typeof x !== typeof y) return typeof x === "number" ? -1 : 1;
          return (x < y ? -1 : x > y ? 1 : 0) * (asc ? 1 : -1);
        });
        rows.forEach(function (r) { body.appendChild(r); });
      });
    });
  }
  function applyFilters(tableId) {
    var table = document.getElementById(tableId);
    if (!table) return;
    var text = (document.querySelector('#table-filter[data-table="' + tableId + '"]') || {}).value || "";
    var ro5 = document.querySelector('#filter-ro5[data-table="' + tableId + '"]');
    text = text.toLowerCase();
    Array.prototype.forEach.call(table.tBodies[0].rows, function (row) {
      var show = (!text || row.textContent.toLowerCase().indexOf(text) >= 0) &&
                 (!ro5 || !ro5.checked || row.dataset.ro5 === "1");
      row.hidden = !show;
    });
  }
  function init() {
    document.querySelectorAll("table.sortable").forEach(makeSortable);
    document.querySelectorAll("#table-filter, #filter-ro5").forEach(function (el) {
      el.addEventListener("input", function () { applyFilters(el.dataset.table); });
      el.addEventListener("change", function () { applyFilters(el.dataset.table); });
    });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init); else init();
})();
