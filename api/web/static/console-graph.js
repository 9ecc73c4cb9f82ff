// A certificate chain as an ECharts graph: nodes at fixed positions (upstream left, downstream right).
(function () {
  "use strict";
  var node = document.getElementById("graph-data");
  var target = document.getElementById("chain-graph");
  if (!node || !target || !window.echarts) { return; }
  var data = JSON.parse(node.textContent);
  var chart = window.echarts.init(target);
  chart.setOption({
    animation: false,
    tooltip: { formatter: function (p) { return p.dataType === "edge" ? p.data.label : p.data.label.replace(/\n/g, "<br>"); } },
    legend: { data: [data.names.focus, data.names.up, data.names.down] },
    series: [{
      type: "graph", layout: "none", roam: true, symbolSize: 18, edgeSymbol: ["none", "arrow"],
      categories: [{ name: data.names.focus }, { name: data.names.up }, { name: data.names.down }],
      label: { show: true, position: "bottom", formatter: function (p) { return p.data.label; }, fontSize: 11 },
      edgeLabel: { show: true, formatter: function (p) { return p.data.label; }, fontSize: 10 },
      lineStyle: { width: 1.5, curveness: 0.1 },
      data: data.nodes, links: data.links
    }]
  });
  window.addEventListener("resize", function () { chart.resize(); });
  document.documentElement.setAttribute("data-graph", String(data.nodes.length));
})();
