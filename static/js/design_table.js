// Result tables of the design pages: click a header to sort (numbers by
// value, using data-sort where a cell shows a list), type to filter rows.
// A table with data-page-size shows that many rows at a time, with a pager.
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
        paginate(table, 0);
      });
    });
  }
  function paginate(table, page) {
    var size = parseInt(table.dataset.pageSize, 10);
    if (!size) return;
    var rows = Array.prototype.filter.call(table.tBodies[0].rows, function (r) { return !r.dataset.filtered; });
    var pages = Math.max(1, Math.ceil(rows.length / size));
    page = Math.min(Math.max(0, page), pages - 1);
    table.dataset.page = page;
    Array.prototype.forEach.call(table.tBodies[0].rows, function (r) { r.hidden = true; });
    rows.slice(page * size, (page + 1) * size).forEach(function (r) { r.hidden = false; });
    var pager = document.getElementById(table.id + "-pager");
    if (!pager) {
      pager = document.createElement("p");
      pager.id = table.id + "-pager";
      pager.className = "pager";
      table.parentNode.insertBefore(pager, table.nextSibling);
    }
    pager.textContent = "";
    if (pages < 2) return;
    [["‹ previous", page - 1], ["next ›", page + 1]].forEach(function (item) {
      var button = document.createElement("button");
      button.type = "button";
      button.textContent = item[0];
      button.disabled = item[1] < 0 || item[1] >= pages;
      button.addEventListener("click", function () { paginate(table, item[1]); });
      pager.appendChild(button);
    });
    pager.appendChild(document.createTextNode(" page " + (page + 1) + " of " + pages + " (" + rows.length + " rows)"));
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
      if (show) delete row.dataset.filtered; else row.dataset.filtered = "1";
    });
    paginate(table, 0);
  }
  function init() {
    document.querySelectorAll("table.sortable").forEach(makeSortable);
    document.querySelectorAll("table[data-page-size]").forEach(function (t) { paginate(t, 0); });
    document.querySelectorAll("#table-filter, #filter-ro5").forEach(function (el) {
      el.addEventListener("input", function () { applyFilters(el.dataset.table); });
      el.addEventListener("change", function () { applyFilters(el.dataset.table); });
    });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init); else init();
})();
