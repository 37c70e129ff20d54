// Live countdowns for the demo's session strip: each element with
// data-seconds counts down from the seconds the server rendered. Counting
// from the page's load, not from the deadline's date, keeps it right when the
// browser's clock is off.
(function () {
  "use strict";

  function format(seconds) {
    var h = Math.floor(seconds / 3600);
    var m = Math.floor((seconds % 3600) / 60);
    var s = seconds % 60;
    if (h > 0) {
      return h + " h " + m + " min";
    }
    if (m > 0) {
      return m + " min " + (s < 10 ? "0" : "") + s + " s";
    }
    return s + " s";
  }

  function start() {
    var loaded = Date.now();
    var clocks = Array.prototype.slice.call(
      document.querySelectorAll("[data-seconds]")
    );
    function tick() {
      var elapsed = Math.floor((Date.now() - loaded) / 1000);
      clocks.forEach(function (clock) {
        var left = Math.max(0, parseInt(clock.dataset.seconds, 10) - elapsed);
        clock.textContent = left > 0 ? format(left) : "ended";
        clock.classList.toggle("soon", left > 0 && left <= 60);
        clock.classList.toggle("ended", left === 0);
      });
    }
    if (clocks.length) {
      tick();
      window.setInterval(tick, 1000);
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
