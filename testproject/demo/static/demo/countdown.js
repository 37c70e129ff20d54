// Live countdowns for the demo's session strip (#idle-countdown,
// #absolute-countdown). Each counts down from the seconds the server rendered
// in data-seconds: counting from the page's load, not from the deadline's
// date, keeps it right when the browser's clock is off.
//
// scs_django's expiry warning ({% scs_expiry_warning %}) does the rest: it
// warns before the idle end and goes to the login page once the session
// ended. When its box hides again ("Stay signed in" moved the idle deadline)
// or the tab comes back into view (another tab may have been active), the
// countdowns ask its status URL, which does not count as activity, for the
// seconds left.
(function () {
  "use strict";

  var clocks = [];

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

  function tick() {
    var now = Date.now();
    clocks.forEach(function (clock) {
      var left = Math.max(0, Math.ceil((clock.endsAt - now) / 1000));
      clock.element.textContent = left > 0 ? format(left) : "ended";
      clock.element.classList.toggle("soon", left > 0 && left <= 60);
      clock.element.classList.toggle("ended", left === 0);
    });
  }

  function set(clock, seconds) {
    if (seconds !== null && seconds !== undefined) {
      clock.endsAt = Date.now() + Number(seconds) * 1000;
    }
  }

  function resync(statusUrl) {
    fetch(statusUrl, {
      credentials: "same-origin",
      cache: "no-store",
      headers: { Accept: "application/json" },
    })
      .then(function (response) {
        return response.ok ? response.json() : null;
      })
      .then(function (status) {
        if (!status || !status.authenticated) {
          return; // the expiry warning takes the visitor to the login page
        }
        clocks.forEach(function (clock) {
          set(clock, status[clock.key]);
        });
        tick();
      })
      .catch(function () {});
  }

  function watch(box) {
    var statusUrl = box.dataset.statusUrl;
    var wasHidden = box.hidden;
    new MutationObserver(function () {
      if (box.hidden && !wasHidden) {
        resync(statusUrl);
      }
      wasHidden = box.hidden;
    }).observe(box, { attributes: true, attributeFilter: ["hidden"] });
    document.addEventListener("visibilitychange", function () {
      if (document.visibilityState === "visible") {
        resync(statusUrl);
      }
    });
  }

  function start() {
    var keys = { "idle-countdown": "idle_seconds", "absolute-countdown": "absolute_seconds" };
    Object.keys(keys).forEach(function (id) {
      var element = document.getElementById(id);
      if (element) {
        var clock = { element: element, key: keys[id], endsAt: 0 };
        set(clock, element.dataset.seconds);
        clocks.push(clock);
      }
    });
    if (!clocks.length) {
      return;
    }
    tick();
    window.setInterval(tick, 1000);
    var box = document.getElementById("scs-expiry-warning");
    if (box && window.fetch && window.MutationObserver) {
      watch(box);
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
