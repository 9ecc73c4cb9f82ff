// The results board refreshes itself from its data.json every few seconds.
// Every value is written with textContent: nothing a reader or a submitter sent is parsed as HTML.
(function () {
  "use strict";
  var root = document.getElementById("board");
  if (!root) { return; }
  var src = root.getAttribute("data-src");
  var every = parseInt(root.getAttribute("data-poll-ms"), 10) || 3000;
  var seen = {};
  Array.prototype.forEach.call(document.querySelectorAll("#rows tr[data-id]"), function (tr) {
    seen[tr.getAttribute("data-id")] = true;
  });

  function text(id, value) {
    var el = document.getElementById(id);
    if (el) { el.textContent = value; }
  }

  function cell(tr, value, cls) {
    var td = document.createElement("td");
    td.textContent = value;
    if (cls) { td.className = cls; }
    tr.appendChild(td);
  }

  function renderRows(rows) {
    var body = document.getElementById("rows");
    var next = document.createDocumentFragment();
    if (!rows.length) {
      var empty = document.createElement("tr");
      empty.className = "empty";
      var td = document.createElement("td");
      td.colSpan = 5;
      td.textContent = "今日暂无检测结果";
      empty.appendChild(td);
      next.appendChild(empty);
    }
    rows.forEach(function (r) {
      var tr = document.createElement("tr");
      tr.setAttribute("data-id", r.id);
      if (!seen[r.id]) { tr.className = "fresh"; seen[r.id] = true; }
      cell(tr, r.time);
      cell(tr, r.commodity);
      cell(tr, r.analyte);
      cell(tr, r.result, r.result_class);
      cell(tr, r.stall);
      next.appendChild(tr);
    });
    body.replaceChildren(next);
  }

  function renderFailures(failures) {
    var list = document.getElementById("failures");
    var next = document.createDocumentFragment();
    if (!failures.length) {
      var none = document.createElement("li");
      none.className = "none";
      none.textContent = "今日无不合格产品";
      next.appendChild(none);
    }
    failures.forEach(function (f) {
      var li = document.createElement("li");
      li.className = f.closed ? "closed" : "open";
      var what = document.createElement("div");
      what.className = "what";
      what.textContent = f.time + " · " + f.commodity + " · " + f.analyte + " ";
      var tag = document.createElement("span");
      tag.className = "tag";
      tag.textContent = f.kind;
      what.appendChild(tag);
      var how = document.createElement("div");
      how.className = "how";
      how.textContent = "摊位 " + f.stall + " · " + f.state;
      li.appendChild(what);
      li.appendChild(how);
      next.appendChild(li);
    });
    list.replaceChildren(next);
  }

  function render(d) {
    text("market-name", d.name);
    text("date", d.date);
    text("updated", d.updated);
    text("tests", String(d.tests));
    text("qualified", String(d.qualified));
    text("unqualified", String(d.unqualified));
    text("pass-rate", d.pass_rate);
    renderRows(d.rows);
    renderFailures(d.failures);
    root.setAttribute("data-updated", d.updated);
  }

  function poll() {
    fetch(src, { cache: "no-store", credentials: "omit" })
      .then(function (r) { if (!r.ok) { throw new Error(String(r.status)); } return r.json(); })
      .then(render)
      .catch(function () { text("updated", "连接中断，重试中…"); })
      .then(function () { window.setTimeout(poll, every); });
  }

  window.setTimeout(poll, every);
}());
