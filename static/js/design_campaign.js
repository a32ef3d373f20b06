// Campaign charts: best and median score per generation (polled while the
// run is live), the population scatter of two chosen properties with the
// Pareto front highlighted, and the two-run comparison.
(function () {
  function data(id) {
    var el = document.getElementById(id);
    return el ? JSON.parse(el.textContent) : null;
  }
  function plot(el, traces, layout) {
    if (!window.Plotly) return;
    window.Plotly.react(el, traces, layout, {responsive: true, displaylogo: false});
  }
  function historyTraces(history, suffix, dash) {
    var gens = history.map(function (h) { return h.generation; });
    return [
      {x: gens, y: history.map(function (h) { return h.best_score; }), name: "best" + suffix,
       mode: "lines+markers", line: {dash: dash || "solid"}},
      {x: gens, y: history.map(function (h) { return h.median_score; }), name: "median" + suffix,
       mode: "lines+markers", line: {dash: dash || "dot"}},
    ];
  }
  // Plotly 3 reads an axis title only as {text: ...} (a bare string is ignored).
  var historyLayout = {xaxis: {title: {text: "Generation"}}, yaxis: {title: {text: "Objective score"}},
                       margin: {t: 20}};

  function drawHistory() {
    var el = document.getElementById("history-chart");
    var history = data("history-data");
    if (!el || !history) return;
    plot(el, historyTraces(history, ""), historyLayout);
    if (el.dataset.live === "1" && el.dataset.historyUrl) {
      var timer = setInterval(function () {
        fetch(el.dataset.historyUrl, {credentials: "same-origin"}).then(function (r) { return r.json(); })
          .then(function (body) {
            plot(el, historyTraces(body.history, ""), historyLayout);
            if (["succeeded", "failed", "cancelled"].indexOf(body.status) >= 0) clearInterval(timer);
          });
      }, 2000);
    }
  }

  function drawScatter() {
    var el = document.getElementById("population-chart");
    var population = data("population-data");
    var xs = document.getElementById("scatter-x"), ys = document.getElementById("scatter-y");
    if (!el || !population || !xs || !ys) return;
    function draw() {
      var x = xs.value, y = ys.value;
      function label(select) {
        var option = select.options[select.selectedIndex];
        return option ? option.textContent.trim() : select.value;
      }
      function trace(members, name, style) {
        return {x: members.map(function (m) { return m.properties[x]; }),
                y: members.map(function (m) { return m.properties[y]; }),
                text: members.map(function (m) { return m.smiles; }), name: name, mode: "markers",
                type: "scatter", marker: style};
      }
      plot(el, [
        trace(population.filter(function (m) { return !m.front; }), "population", {color: "#9aa5b1", size: 7}),
        trace(population.filter(function (m) { return m.front; }), "Pareto front", {color: "#d9480f", size: 10}),
      ], {xaxis: {title: {text: label(xs)}}, yaxis: {title: {text: label(ys)}}, margin: {t: 20}});
    }
    xs.addEventListener("change", draw);
    ys.addEventListener("change", draw);
    draw();
  }

  function drawCompare() {
    var el = document.getElementById("compare-chart");
    var both = data("compare-data");
    if (!el || !both) return;
    plot(el, historyTraces(both.a, " (A)", "solid").concat(historyTraces(both.b, " (B)", "dash")), historyLayout);
  }

  function init() { drawHistory(); drawScatter(); drawCompare(); }
  if (document.readyState === "complete") init(); else window.addEventListener("load", init);
})();
