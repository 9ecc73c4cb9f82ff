// The objection-window countdown on a failure page (data-deadline: an RFC 3339 instant).
(function () {
  "use strict";
  var node = document.getElementById("objection-countdown");
  if (!node) { return; }
  var deadline = Date.parse(node.getAttribute("data-deadline"));
  var prefix = document.documentElement.lang === "en" ? "time left " : "剩余 ";
  function tick() {
    var left = Math.floor((deadline - Date.now()) / 1000);
    if (left <= 0) { node.textContent = node.getAttribute("data-expired"); return; }
    var h = Math.floor(left / 3600), m = Math.floor((left % 3600) / 60), s = left % 60;
    node.textContent = prefix + h + ":" + (m < 10 ? "0" : "") + m + ":" + (s < 10 ? "0" : "") + s;
    window.setTimeout(tick, 1000);
  }
  tick();
})();
