// Filtering and sorting for the findings tables. Vanilla JS, no network.
(function () {
  "use strict";
  var rows = Array.prototype.slice.call(document.querySelectorAll("tr.finding"));
  var controls = ["q", "f-severity", "f-status", "f-account", "f-region", "f-rule"].map(function (id) {
    return document.getElementById(id);
  });
  var counter = document.getElementById("shown");
  function apply() {
    var q = controls[0].value.trim().toLowerCase();
    var want = {
      severity: controls[1].value, status: controls[2].value, account: controls[3].value,
      region: controls[4].value, rule: controls[5].value
    };
    var shown = 0;
    rows.forEach(function (tr) {
      var ok = (!q || tr.textContent.toLowerCase().indexOf(q) !== -1);
      for (var k in want) {
        if (ok && want[k] && tr.getAttribute("data-" + k) !== want[k]) { ok = false; }
      }
      tr.classList.toggle("hidden", !ok);
      if (ok) { shown += 1; }
    });
    document.querySelectorAll("details.rule").forEach(function (d) {
      var any = d.querySelector("tr.finding:not(.hidden)");
      d.classList.toggle("hidden", !any && d.querySelector("tr.finding") !== null && shown !== rows.length);
    });
    if (counter) { counter.textContent = String(shown); }
  }
  controls.forEach(function (c) { if (c) { c.addEventListener("input", apply); } });
  document.querySelectorAll("th[data-sort]").forEach(function (th) {
    th.addEventListener("click", function () {
      var table = th.closest("table");
      var body = table.tBodies[0];
      var idx = Array.prototype.indexOf.call(th.parentNode.children, th);
      var numeric = th.classList.contains("num");
      var dir = th.getAttribute("data-dir") === "asc" ? -1 : 1;
      th.setAttribute("data-dir", dir === 1 ? "asc" : "desc");
      var list = Array.prototype.slice.call(body.rows);
      list.sort(function (a, b) {
        var x = a.cells[idx].textContent, y = b.cells[idx].textContent;
        if (numeric) { return dir * (parseFloat(x) - parseFloat(y)); }
        return dir * x.localeCompare(y);
      });
      list.forEach(function (r) { body.appendChild(r); });
    });
  });
  apply();
})();
