/*
 * scs_django expiry warning: no dependencies, no build step.
 *
 * Reads its configuration from the data attributes of #scs-expiry-warning
 * (rendered by {% scs_expiry_warning %}): the session_status and stay URLs,
 * the login URL, the lead time in seconds and the seconds left when the page
 * was rendered. It asks session_status (which does not count as activity)
 * only when the warning is due, so an open tab never keeps a session alive.
 *
 * - data-warn-before seconds before the idle end, it shows the box, with a
 *   "Stay signed in" button (a POST that counts as activity);
 * - before the absolute end it shows the box without the button (nothing
 *   can move that deadline);
 * - once the session has ended, it goes to the login page.
 *
 * Another tab's activity moves the idle end: the status is asked again before
 * anything is shown or done, and when the tab becomes visible again.
 */
(function () {
  "use strict";

  var box = document.getElementById("scs-expiry-warning");
  if (!box || !window.fetch) {
    return;
  }
  var data = box.dataset;
  var message = document.getElementById("scs-expiry-message");
  var countdown = document.getElementById("scs-expiry-countdown");
  var stay = document.getElementById("scs-stay-signed-in");
  var lead = Number(data.warnBefore) || 60;
  var timer = null;
  var ticker = null;
  var endsAt = null; // Date.now() value at which the session ends
  var shownFor = null; // "idle" or "absolute" while the box is shown

  function seconds(value) {
    return value === "" || value === null || value === undefined
      ? null
      : Number(value);
  }

  function later(delay, action) {
    clearTimeout(timer);
    // Browsers fire timers early or late by a little, and cap long delays.
    timer = setTimeout(action, Math.min(Math.max(delay, 0), 2147483000));
  }

  function signIn() {
    window.location.assign(data.loginUrl);
  }

  function hide() {
    clearInterval(ticker);
    ticker = null;
    shownFor = null;
    box.hidden = true;
    message.textContent = "";
  }

  function left() {
    return Math.max(0, Math.ceil((endsAt - Date.now()) / 1000));
  }

  function render() {
    var total = left();
    var minutes = Math.floor(total / 60);
    var rest = total % 60;
    countdown.textContent =
      minutes + ":" + (rest < 10 ? "0" : "") + rest;
  }

  function show(kind) {
    if (shownFor !== kind) {
      shownFor = kind;
      box.hidden = false;
      stay.hidden = kind !== "idle";
      // Set once, so that the alert is read out once, not every second.
      message.textContent = kind === "idle" ? data.textIdle : data.textAbsolute;
    }
    render();
    if (ticker === null) {
      ticker = setInterval(render, 1000);
    }
  }

  // Plan from the seconds left: the box now or a check when it is due.
  function plan(status) {
    if (!status.authenticated) {
      signIn();
      return;
    }
    var idle = seconds(status.idle_seconds);
    var absolute = seconds(status.absolute_seconds);
    var ends = [idle, absolute].filter(function (value) {
      return value !== null;
    });
    if (!ends.length) {
      hide();
      return;
    }
    var rest = Math.min.apply(null, ends);
    var kind = idle !== null && rest === idle ? "idle" : "absolute";
    endsAt = Date.now() + rest * 1000;
    if (rest > lead) {
      hide();
      later((rest - lead) * 1000, check);
    } else {
      show(kind);
      // Just after the end: ask whether it really ended (another tab may
      // have kept the session alive meanwhile).
      later(rest * 1000 + 1000, check);
    }
  }

  function ask(url, options) {
    options.credentials = "same-origin";
    options.cache = "no-store";
    options.headers = options.headers || {};
    options.headers.Accept = "application/json";
    return fetch(url, options).then(function (response) {
      if (response.status === 401) {
        return { authenticated: false };
      }
      if (!response.ok) {
        throw new Error("HTTP " + response.status);
      }
      return response.json();
    });
  }

  function check() {
    ask(data.statusUrl, { method: "GET" }).then(plan, function () {
      // The site is unreachable (offline, restarting): try again shortly,
      // without deciding that the session ended.
      later(15000, check);
    });
  }

  stay.addEventListener("click", function () {
    stay.disabled = true;
    ask(data.stayUrl, {
      method: "POST",
      headers: { "X-CSRFToken": data.csrfToken },
    })
      .then(plan, function () {
        message.textContent = data.textFailed;
      })
      .then(function () {
        stay.disabled = false;
      });
  });

  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible") {
      check();
    }
  });
  window.addEventListener("pageshow", function (event) {
    // A page restored from the back-forward cache holds old seconds.
    if (event.persisted) {
      check();
    }
  });

  plan({
    authenticated: true,
    idle_seconds: seconds(data.idleSeconds),
    absolute_seconds: seconds(data.absoluteSeconds),
  });
})();
