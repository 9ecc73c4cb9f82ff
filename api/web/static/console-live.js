// The 今日 page's live failure list: new failures from the console's SSE stream appear at the top.
// Plain DOM (textContent only: every value from a device stays text); no inline script (CSP).
// The summary and the analyte come worded by the server in the page's language (summary_text, analyte_label:
// the same text as the server-rendered rows); the stored summary and the code only if an event lacks them.
(function () {
  "use strict";
  var table = document.getElementById("live-failures");
  var labelsNode = document.getElementById("live-labels");
  if (!table || !labelsNode || !window.EventSource) { return; }
  var labels = JSON.parse(labelsNode.textContent);
  var body = table.tBodies[0];
  var cue = document.getElementById("live-cue");
  var state = document.getElementById("live-state");
  var clock = new Intl.DateTimeFormat("zh-CN", { timeZone: "Asia/Shanghai", hour: "2-digit", minute: "2-digit",
    second: "2-digit", hour12: false });
  var dueFmt = new Intl.DateTimeFormat("zh-CN", { timeZone: "Asia/Shanghai", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", hour12: false });

  function cell(row, text, className) {
    var td = document.createElement("td");
    if (className) { td.className = className; }
    td.textContent = text == null ? "" : String(text);
    row.appendChild(td);
    return td;
  }

  function summaryOf(ev) {
    return ev.summary_text ? ev.summary_text : ev.summary;
  }

  function rowFor(id) {
    return body.querySelector('tr[data-failure-id="' + String(id).replace(/[^0-9a-fA-F-]/g, "") + '"]');
  }

  function addRow(ev) {
    if (rowFor(ev.failure_id)) { return; }
    var row = document.createElement("tr");
    row.setAttribute("data-failure-id", ev.failure_id);
    row.className = "new";
    cell(row, clock.format(new Date(ev.raised_at)));
    var kind = cell(row, "");
    var badge = document.createElement("span");
    badge.className = "badge " + ((ev.kind === "positive" || ev.kind === "suspicious") ? "bad" : "warn");
    badge.textContent = labels.kind[ev.kind] || ev.kind;
    kind.appendChild(badge);
    var summary = cell(row, "");
    var link = document.createElement("a");
    link.href = "/console/failures/" + encodeURIComponent(ev.failure_id);
    link.textContent = summaryOf(ev);
    summary.appendChild(link);
    cell(row, ev.market_id);
    cell(row, ev.commodity);
    cell(row, ev.analyte_label != null ? ev.analyte_label : ev.analyte);
    cell(row, labels.state[ev.state] || ev.state, "state");
    cell(row, ev.due_at ? dueFmt.format(new Date(ev.due_at)) : "");
    body.insertBefore(row, body.firstChild);
    var empty = document.getElementById("live-empty");
    if (empty) { empty.remove(); }
    cue.textContent = labels.cue + ": " + (labels.kind[ev.kind] || ev.kind) + " · " + summaryOf(ev);
    cue.className = "live-cue shown";
  }

  function changeRow(ev) {
    var row = rowFor(ev.failure_id);
    if (!row) { return; }
    var td = row.querySelector("td.state");
    if (td) { td.textContent = labels.state[ev.to_state] || ev.to_state; }
  }

  var source = new EventSource(table.getAttribute("data-stream"));
  source.addEventListener("open", function () { state.textContent = labels.live; state.setAttribute("data-live", "1"); });
  source.addEventListener("error", function () { state.textContent = labels.lost; state.removeAttribute("data-live"); });
  source.addEventListener("failure_raised", function (e) { addRow(JSON.parse(e.data)); });
  source.addEventListener("failure_changed", function (e) { changeRow(JSON.parse(e.data)); });
})();
