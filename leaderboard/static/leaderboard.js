// The main table: sort by a column, filter by family / size / training data / checkpoint, search
// by name, and rank by the sorted column; show ceiled scores. Plain JavaScript, no dependency, works
// from file://. The view (sort, direction, filters, search, ceiled) is kept in the address after #,
// so it can be shared. Text from the page is only ever read and written with textContent, never as HTML.
(function () {
  "use strict";
  var table = document.getElementById("leaderboard");
  if (!table) { return; }
  var body = table.tBodies[0];
  var headerRow = table.tHead.rows[table.tHead.rows.length - 1];
  var headers = Array.prototype.slice.call(headerRow.cells);
  var search = document.getElementById("search");
  var filters = Array.prototype.slice.call(document.querySelectorAll("select[data-filter]"));
  var count = document.getElementById("count");
  var ceiled = document.getElementById("ceiled");
  var restoring = true;
  var sortIndex = -1;
  var sortDirection = "descending";

  headers.forEach(function (header, index) {
    if (header.getAttribute("aria-sort")) {
      sortIndex = index;
      sortDirection = header.getAttribute("aria-sort");
    }
  });

  function value(row, index) {
    var raw = row.cells[index].getAttribute("data-value");
    if (raw === null || raw === "") { return null; }
    if (headers[index].getAttribute("data-sort") === "number") {
      var number = Number(raw);
      return isNaN(number) ? null : number;
    }
    return raw.toLowerCase();
  }

  function compare(a, b) {
    if (a === null && b === null) { return 0; }
    if (a === null) { return 1; }  // missing values sort last in both directions
    if (b === null) { return -1; }
    var order = typeof a === "number" ? a - b : a.localeCompare(b);
    return sortDirection === "ascending" ? order : -order;
  }

  function rerank() {
    var rank = 0;
    var shown = 0;
    Array.prototype.forEach.call(body.rows, function (row) {
      if (row.hidden) { row.cells[0].textContent = ""; return; }
      shown += 1;
      var missing = sortIndex >= 0 && value(row, sortIndex) === null;
      row.cells[0].textContent = missing ? "—" : String(++rank);
    });
    if (count) { count.textContent = shown + " of " + body.rows.length + " rows"; }
  }

  function sortBy(index, direction) {
    sortIndex = index;
    sortDirection = direction;
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) { return compare(value(a, index), value(b, index)); });
    rows.forEach(function (row) { body.appendChild(row); });
    headers.forEach(function (header) { header.removeAttribute("aria-sort"); });
    headers[index].setAttribute("aria-sort", direction);
    rerank();
    remember();
  }

  function remember() {
    if (restoring) { return; }
    var params = new URLSearchParams();
    if (sortIndex >= 0) { params.set("sort", String(sortIndex)); params.set("dir", sortDirection); }
    filters.forEach(function (select) {
      if (select.value) { params.set(select.getAttribute("data-filter"), select.value); }
    });
    if (search && search.value) { params.set("q", search.value); }
    if (ceiled && ceiled.checked) { params.set("ceiled", "1"); }
    try { history.replaceState(null, "", "#" + params.toString()); } catch (e) { window.location.hash = params.toString(); }
  }

  function showCeiled(on) {
    Array.prototype.forEach.call(body.querySelectorAll("td.score[data-ceiled]"), function (cell) {
      if (!cell.hasAttribute("data-raw")) { cell.setAttribute("data-raw", cell.getAttribute("data-value")); }
      var shown = on ? cell.getAttribute("data-ceiled") : cell.getAttribute("data-raw");
      cell.setAttribute("data-value", shown);
      var number = cell.querySelector(".value");
      if (number) { number.textContent = Number(shown).toFixed(4) + (on ? " (ceiled)" : ""); }
      Array.prototype.forEach.call(cell.querySelectorAll(".err"), function (err) { err.hidden = on; });
    });
    if (sortIndex >= 0) { sortBy(sortIndex, sortDirection); } else { remember(); }
  }

  function applyFilters() {
    var query = search ? search.value.trim().toLowerCase() : "";
    Array.prototype.forEach.call(body.rows, function (row) {
      var show = filters.every(function (select) {
        return !select.value || row.getAttribute("data-" + select.getAttribute("data-filter")) === select.value;
      });
      if (show && query) { show = row.getAttribute("data-model").toLowerCase().indexOf(query) !== -1; }
      row.hidden = !show;
    });
    rerank();
    remember();
  }

  headers.forEach(function (header, index) {
    var button = header.querySelector("button.sort");
    if (!button) { return; }
    button.addEventListener("click", function () {
      var current = header.getAttribute("aria-sort");
      var numeric = header.getAttribute("data-sort") === "number";
      var next = current ? (current === "descending" ? "ascending" : "descending")
                         : (numeric ? "descending" : "ascending");
      sortBy(index, next);
    });
  });
  filters.forEach(function (select) { select.addEventListener("change", applyFilters); });
  if (search) { search.addEventListener("input", applyFilters); }
  if (ceiled) { ceiled.addEventListener("change", function () { showCeiled(ceiled.checked); }); }

  // restore a shared view: #sort=5&dir=ascending&family=dinov3&q=small&ceiled=1
  var wanted = new URLSearchParams(window.location.hash.slice(1));
  filters.forEach(function (select) {
    var value = wanted.get(select.getAttribute("data-filter"));
    if (value !== null && Array.prototype.some.call(select.options, function (o) { return o.value === value; })) {
      select.value = value;
    }
  });
  if (search && wanted.get("q") !== null) { search.value = wanted.get("q"); }
  if (ceiled && wanted.get("ceiled") === "1") { ceiled.checked = true; showCeiled(true); }
  var index = Number(wanted.get("sort"));
  if (wanted.get("sort") !== null && index >= 0 && index < headers.length && headers[index].querySelector("button.sort")) {
    sortBy(index, wanted.get("dir") === "ascending" ? "ascending" : "descending");
  }
  applyFilters();
  restoring = false;
}());
