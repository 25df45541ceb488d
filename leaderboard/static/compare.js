// The compare page: two models' per-region values of one benchmark as a scatter (inline SVG) and a table.
// Values come from data/regions.js (window.BRAINBENCH_REGIONS). The choice lives in the address
// (?a=MODEL@CHECKPOINT&b=…&bench=… or the same after #), so a comparison can be shared.
// Text from the data is only ever written with textContent, never as HTML.
(function () {
  "use strict";
  var data = window.BRAINBENCH_REGIONS || {};
  var bench = document.getElementById("compare-bench");
  var first = document.getElementById("compare-a");
  var second = document.getElementById("compare-b");
  var svg = document.getElementById("scatter");
  if (!bench || !svg) { return; }
  var NS = "http://www.w3.org/2000/svg";
  var W = 520, H = 460, M = {left: 60, right: 20, top: 20, bottom: 50};

  function state() {
    var out = {};
    [window.location.search.slice(1), window.location.hash.slice(1)].forEach(function (part) {
      new URLSearchParams(part).forEach(function (value, key) { out[key] = value; });
    });
    return out;
  }

  function fill(select, names, wanted) {
    while (select.firstChild) { select.removeChild(select.firstChild); }
    names.forEach(function (name) {
      var option = document.createElement("option");
      option.value = name;
      option.textContent = name;
      select.appendChild(option);
    });
    if (wanted && names.indexOf(wanted) !== -1) { select.value = wanted; }
  }

  function node(name, attributes, text) {
    var element = document.createElementNS(NS, name);
    Object.keys(attributes).forEach(function (key) { element.setAttribute(key, attributes[key]); });
    if (text !== undefined) { element.textContent = text; }
    svg.appendChild(element);
    return element;
  }

  function draw() {
    var entry = data[bench.value];
    var a = entry.values[first.value] || {}, b = entry.values[second.value] || {};
    var regions = Object.keys(a).filter(function (r) {
      return typeof a[r] === "number" && typeof b[r] === "number";
    });
    while (svg.firstChild) { svg.removeChild(svg.firstChild); }
    var values = regions.map(function (r) { return a[r]; }).concat(regions.map(function (r) { return b[r]; }));
    var low = Math.min.apply(null, values.concat([0])), high = Math.max.apply(null, values.concat([0.01]));
    var pad = (high - low) * 0.05;
    low -= pad; high += pad;
    function x(v) { return M.left + (v - low) / (high - low) * (W - M.left - M.right); }
    function y(v) { return H - M.bottom - (v - low) / (high - low) * (H - M.top - M.bottom); }
    node("rect", {x: M.left, y: M.top, width: W - M.left - M.right, height: H - M.top - M.bottom,
                  fill: "none", stroke: "#cbd5e0"});
    node("line", {x1: x(low), y1: y(low), x2: x(high), y2: y(high), stroke: "#a0aec0", "stroke-dasharray": "4 3"});
    [low + pad, (low + high) / 2, high - pad].forEach(function (v) {
      node("text", {x: x(v), y: H - M.bottom + 16, "text-anchor": "middle", "font-size": 11}, v.toFixed(2));
      node("text", {x: M.left - 6, y: y(v) + 4, "text-anchor": "end", "font-size": 11}, v.toFixed(2));
    });
    node("text", {x: (W + M.left) / 2, y: H - 10, "text-anchor": "middle", "font-size": 12},
         first.value + " · " + entry.quantity);
    node("text", {x: 14, y: (H - M.bottom) / 2, "text-anchor": "middle", "font-size": 12,
                  transform: "rotate(-90 14 " + (H - M.bottom) / 2 + ")"}, second.value + " · " + entry.quantity);
    regions.forEach(function (r) {
      var point = node("circle", {cx: x(a[r]), cy: y(b[r]), r: 5, fill: "#2b6cb0", "fill-opacity": 0.8,
                                  "class": "region", "data-region": r});
      var title = document.createElementNS(NS, "title");
      title.textContent = r + ": " + a[r].toFixed(3) + " vs " + b[r].toFixed(3);
      point.appendChild(title);
    });
    document.getElementById("compare-caption").textContent = regions.length + " regions of " + entry.title +
      " scored for both; dashed: equal values.";
    document.getElementById("head-a").textContent = first.value;
    document.getElementById("head-b").textContent = second.value;
    var body = document.querySelector("#compare-table tbody");
    while (body.firstChild) { body.removeChild(body.firstChild); }
    regions.sort(function (p, q) { return (b[q] - a[q]) - (b[p] - a[p]); }).forEach(function (r) {
      var row = document.createElement("tr");
      [r, a[r].toFixed(4), b[r].toFixed(4), (b[r] - a[r]).toFixed(4)].forEach(function (text) {
        var cell = document.createElement("td");
        cell.textContent = text;
        row.appendChild(cell);
      });
      body.appendChild(row);
    });
    var params = new URLSearchParams({bench: bench.value, a: first.value, b: second.value});
    try { history.replaceState(null, "", "#" + params.toString()); } catch (e) { /* some file:// setups refuse */ }
  }

  function choose(wanted) {
    var names = Object.keys(data[bench.value].values);
    fill(first, names, wanted.a);
    fill(second, names, wanted.b || names.filter(function (n) { return n !== first.value; })[0]);
    draw();
  }

  var wanted = state();
  if (wanted.bench && data[wanted.bench]) { bench.value = wanted.bench; }
  else if (wanted.a) {  // the first benchmark that has the model asked for
    Object.keys(data).some(function (slug) {
      if (data[slug].values[wanted.a]) { bench.value = slug; return true; }
      return false;
    });
  }
  choose(wanted);
  bench.addEventListener("change", function () { choose({a: first.value, b: second.value}); });
  first.addEventListener("change", draw);
  second.addEventListener("change", draw);
}());
