// District charts with Apache ECharts (static/echarts.min.js): the daily trend and bars by town.
(function () {
  "use strict";
  var node = document.getElementById("chart-data");
  if (!node || !window.echarts) { return; }
  var data = JSON.parse(node.textContent);
  var charts = [];

  var trendNode = document.getElementById("trend-chart");
  if (trendNode && data.trend) {
    var trend = window.echarts.init(trendNode);
    trend.setOption({
      animation: false,
      tooltip: { trigger: "axis" },
      legend: { data: [data.trend.names.tests, data.trend.names.pass_rate] },
      xAxis: { type: "category", data: data.trend.days },
      yAxis: [{ type: "value" }, { type: "value", min: 0, max: 100, axisLabel: { formatter: "{value}%" } }],
      series: [
        { name: data.trend.names.tests, type: "bar", data: data.trend.tests },
        { name: data.trend.names.pass_rate, type: "line", yAxisIndex: 1, data: data.trend.pass_rate }
      ]
    });
    charts.push(trend);
  }

  var barsNode = document.getElementById("bars-chart");
  if (barsNode && data.bars) {
    var bars = window.echarts.init(barsNode);
    bars.setOption({
      animation: false,
      tooltip: { trigger: "axis" },
      legend: { data: [data.bars.names.pass_rate, data.bars.names.closure_rate] },
      grid: { bottom: 80 },
      xAxis: { type: "category", data: data.bars.groups, axisLabel: { rotate: 30, interval: 0 } },
      yAxis: { type: "value", min: 0, max: 100, axisLabel: { formatter: "{value}%" } },
      series: [
        { name: data.bars.names.pass_rate, type: "bar", data: data.bars.pass_rate },
        { name: data.bars.names.closure_rate, type: "bar", data: data.bars.closure_rate }
      ]
    });
    charts.push(bars);
  }
  window.addEventListener("resize", function () { charts.forEach(function (c) { c.resize(); }); });
  document.documentElement.setAttribute("data-charts", String(charts.length));
})();
