// Draws every element with class "plotly-chart" from the JSON figure whose
// element id is in its data-figure attribute (written by Django's json_script),
// or from one entry of a JSON list of figures (data-figure-index, -key).
(function () {
  function draw(root) {
    root.querySelectorAll(".plotly-chart").forEach(function (el) {
      if (el.dataset.drawn) return;
      var source = document.getElementById(el.dataset.figure);
      if (!source || !window.Plotly) return;
      var fig = JSON.parse(source.textContent);
      // A list of figures: pick one by index and key (data-figure-index/-key).
      if (el.dataset.figureKey) fig = fig[Number(el.dataset.figureIndex)][el.dataset.figureKey];
      window.Plotly.newPlot(el, fig.data, fig.layout, {responsive: true, displaylogo: false});
      el.dataset.drawn = "1";
    });
  }
  document.addEventListener("DOMContentLoaded", function () { draw(document); });
  document.addEventListener("htmx:afterSettle", function (e) { draw(e.target); });
  if (document.readyState !== "loading") draw(document);
})();
