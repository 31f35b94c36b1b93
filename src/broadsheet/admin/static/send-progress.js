// Refreshes a newsletter send's progress every two seconds while it is sending.
(function () {
  var box = document.getElementById("send-progress");
  function refresh() {
    fetch(box.dataset.url, {credentials: "same-origin"}).then(function (r) { return r.json(); }).then(function (p) {
      document.getElementById("send-bar").value = p.percent;
      ["status", "recipients", "sent", "failed", "skipped", "remaining"].forEach(function (k) {
        document.getElementById("send-" + k).textContent = p[k];
      });
      document.getElementById("send-reason").textContent = p.stop_reason || "";
      if (p.status === "sending") { setTimeout(refresh, 2000); }
    }).catch(function () { setTimeout(refresh, 5000); });
  }
  setTimeout(refresh, 2000);
})();
