// Refreshes an import's progress every two seconds while a worker runs it; reloads at the end
// so the report shows.
(function () {
  var box = document.getElementById("import-progress");
  if (!box) { return; }
  function refresh() {
    fetch(box.dataset.url, {credentials: "same-origin"}).then(function (r) { return r.json(); }).then(function (p) {
      document.getElementById("import-bar").value = p.percent;
      document.getElementById("import-status").textContent = p.status;
      document.getElementById("import-done").textContent = p.done;
      document.getElementById("import-total").textContent = p.total;
      document.getElementById("import-error").textContent = p.error || "";
      if (p.status === "queued" || p.status === "running") { setTimeout(refresh, 2000); }
      else { window.location.reload(); }
    }).catch(function () { setTimeout(refresh, 5000); });
  }
  var status = document.getElementById("import-status").textContent;
  if (status === "queued" || status === "running") { setTimeout(refresh, 2000); }
})();
