// The findings table: rendered from the embedded JSON a page at a time, with
// search, filters and sorting. Vanilla JS, no network. Text only ever enters
// the page through textContent, never as HTML.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("findings-data").textContent);
  var STATUS = ["fail", "unknown", "waived"];
  var SEVERITY_ORDER = { critical: 0, high: 1, medium: 2, low: 3, info: 4 };
  var PAGE = 100;
  var rows = data.rows.map(function (r, i) {
    var rule = data.rules[r[0]], account = data.accounts[r[1]];
    return {
      i: i, rule: rule.id, severity: rule.severity, status: STATUS[r[3]],
      account: account[0], accountName: account[1], region: data.regions[r[2]],
      resource: r[4], name: r[5], reason: data.reasons[r[6]],
      waiver: r[7] >= 0 ? data.waivers[r[7]] : "",
      // Identifiers arrive as shell words (quoted where they hold more
      // than an id's characters), so the command stays one inert command.
      cmd: r[3] === 0 && rule.cmd ? rule.cmd.split("{account_id}").join(account[2])
        .split("{region}").join(data.region_words[r[2]])
        .split("{resource_id}").join(r.length > 8 ? r[8] : r[4]) : ""
    };
  });
  rows.forEach(function (r) {
    r.text = [r.rule, r.status, r.account, r.accountName, r.region, r.resource, r.name, r.reason, r.waiver].join(" ").toLowerCase();
  });
  var $ = function (id) { return document.getElementById(id); };
  var filters = { severity: $("f-severity"), status: $("f-status"), account: $("f-account"), region: $("f-region"), rule: $("f-rule") };
  var body = document.querySelector("#findings-table tbody");
  var matches = rows, page = 0, sortKey = null, sortDir = 1;

  function cell(tr, text, cls) {
    var td = document.createElement("td");
    td.textContent = text;
    if (cls) { td.className = cls; }
    tr.appendChild(td);
    return td;
  }
  function draw() {
    var pages = Math.max(1, Math.ceil(matches.length / PAGE));
    if (page >= pages) { page = pages - 1; }
    drawRows(matches.slice(page * PAGE, page * PAGE + PAGE));
    $("shown").textContent = String(matches.length);
    $("total").textContent = String(rows.length);
    $("page").textContent = String(page + 1);
    $("pages").textContent = String(pages);
  }
  function drawRows(list) {
    body.textContent = "";
    list.forEach(function (r) {
      var tr = document.createElement("tr");
      tr.className = "finding";
      tr.setAttribute("data-status", r.status);
      var sev = document.createElement("span");
      sev.className = "sev sev-" + r.severity;
      sev.textContent = r.severity;
      cell(tr, "").appendChild(sev);
      cell(tr, r.rule, "mono");
      cell(tr, r.status, "st-" + r.status);
      var acct = cell(tr, r.account, "mono");
      var nm = document.createElement("div");
      nm.className = "muted";
      nm.textContent = r.accountName;
      acct.appendChild(nm);
      cell(tr, r.region);
      cell(tr, r.resource, "mono");
      cell(tr, r.name);
      var why = cell(tr, r.reason);
      if (r.waiver) {
        var w = document.createElement("div");
        w.className = "st-waived";
        w.textContent = "waived: " + r.waiver;
        why.appendChild(w);
      }
      cell(tr, r.cmd, "mono");
      body.appendChild(tr);
    });
  }
  // Printed (or saved as PDF), the table holds every finding that matches
  // the filters, not the page on screen, up to PRINT_MAX; the note above it
  // says exactly what was printed and where the rest is.
  var PRINT_MAX = 5000;
  function beforePrint() {
    drawRows(matches.slice(0, PRINT_MAX));
    var filtered = matches.length !== rows.length;
    var note = matches.length > PRINT_MAX
      ? "Printed: the first " + PRINT_MAX + " of the " + matches.length + " findings that match" +
        (filtered ? " the filters (of " + rows.length + " in all)" : "") +
        "; every finding is in findings.csv and findings.json beside this report."
      : "Printed: all " + matches.length + " findings" +
        (filtered ? " that match the filters (of " + rows.length + " in all; the rest are in findings.csv and findings.json)." : ".");
    $("print-note").textContent = note;
  }
  window.addEventListener("beforeprint", beforePrint);
  window.addEventListener("afterprint", draw);
  function apply() {
    var q = $("q").value.trim().toLowerCase();
    var want = {};
    Object.keys(filters).forEach(function (k) { want[k] = filters[k].value; });
    matches = rows.filter(function (r) {
      if (q && r.text.indexOf(q) === -1) { return false; }
      for (var k in want) { if (want[k] && r[k] !== want[k]) { return false; } }
      return true;
    });
    if (sortKey) {
      matches = matches.slice().sort(function (a, b) {
        var x = sortKey === "severity" ? SEVERITY_ORDER[a.severity] : a[sortKey];
        var y = sortKey === "severity" ? SEVERITY_ORDER[b.severity] : b[sortKey];
        return (x < y ? -1 : x > y ? 1 : a.i - b.i) * sortDir;
      });
    }
    page = 0;
    draw();
  }
  $("q").addEventListener("input", apply);
  Object.keys(filters).forEach(function (k) { filters[k].addEventListener("change", apply); });
  $("prev").addEventListener("click", function () { if (page > 0) { page -= 1; draw(); } });
  $("next").addEventListener("click", function () { page += 1; draw(); });
  document.querySelectorAll("#findings-table th[data-key]").forEach(function (th) {
    th.addEventListener("click", function () {
      var key = th.getAttribute("data-key");
      sortDir = sortKey === key ? -sortDir : 1;
      sortKey = key;
      apply();
    });
  });
  document.querySelectorAll("[data-show-rule]").forEach(function (a) {
    a.addEventListener("click", function () { filters.rule.value = a.getAttribute("data-show-rule"); apply(); });
  });
  // Server-rendered tables (accounts, rules, coverage) sort on header click.
  document.querySelectorAll("th[data-sort]").forEach(function (th) {
    th.addEventListener("click", function () {
      var tbody = th.closest("table").tBodies[0];
      var idx = Array.prototype.indexOf.call(th.parentNode.children, th);
      var numeric = th.classList.contains("num");
      var dir = th.getAttribute("data-dir") === "asc" ? -1 : 1;
      th.setAttribute("data-dir", dir === 1 ? "asc" : "desc");
      Array.prototype.slice.call(tbody.rows).sort(function (a, b) {
        var x = a.cells[idx].textContent, y = b.cells[idx].textContent;
        return numeric ? dir * (parseFloat(x) - parseFloat(y)) : dir * x.localeCompare(y);
      }).forEach(function (r) { tbody.appendChild(r); });
    });
  });
  // A link to a rule or a pipeline opens its folded section.
  function openTarget() {
    var target = location.hash ? document.getElementById(decodeURIComponent(location.hash.slice(1))) : null;
    if (target && target.tagName === "DETAILS") { target.open = true; }
  }
  window.addEventListener("hashchange", openTarget);
  openTarget();
  apply();
})();
