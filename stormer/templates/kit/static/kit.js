/* The storm kit's behaviour. A classic deferred script (a module script does not load from
   file://), loaded by every page; each part acts only if its elements are on the page.
   Everything the page says without it (the storm time, the posts, the links) is already in
   the HTML: this adds the visitor's own clock, the countdown, the copy buttons, the Mastodon
   links and the varied first sample. Nothing here contacts any server. */
(function () {
  "use strict";

  var body = document.body;
  var at = Date.parse(body.getAttribute("data-storm-at"));
  var slug = body.getAttribute("data-storm-slug") || "";
  var lang = (document.documentElement.lang || "en").replace("_", "-");
  var MASTODON_KEY = "stormer-kit:mastodon-origin";
  var LONGEST_TIMEOUT = 2147483647; // setTimeout's largest delay (about 24.8 days)

  function byId(id) {
    return document.getElementById(id);
  }

  function stored(key) {
    try {
      return window.localStorage.getItem(key);
    } catch (e) {
      return null; // storage refused (a private window, a browser setting): ask again
    }
  }

  function store(key, value) {
    try {
      window.localStorage.setItem(key, value);
    } catch (e) {
      /* kept for this page only */
    }
  }

  /* --- the visitor's Mastodon server --------------------------------------------------- */

  // A server name as people write it: "mastodon.social", "https://mastodon.social/",
  // "@me@mastodon.social". Returns its https origin, or null if it is no server name.
  // Plain http only for loopback (a local server, or stormer's simulator in tests).
  function instanceOrigin(input) {
    var text = String(input || "").trim();
    var scheme = "https:";
    var given = /^(https?):\/\//i.exec(text);
    if (given) {
      scheme = given[1].toLowerCase() + ":";
      text = text.slice(given[0].length);
    }
    text = text.replace(/\/+$/, "");
    var handle = text.lastIndexOf("@");
    if (handle !== -1) {
      text = text.slice(handle + 1);
    }
    if (!text || /[\/?#\\\s%]/.test(text)) {
      return null;
    }
    var url;
    try {
      url = new URL(scheme + "//" + text);
    } catch (e) {
      return null;
    }
    var host = url.hostname;
    if (host === "localhost" || host === "127.0.0.1") {
      return url.origin;
    }
    if (scheme !== "https:" || host.length > 253) {
      return null;
    }
    var labels = host.split(".");
    if (labels.length < 2 || /^[0-9]+$/.test(labels[labels.length - 1])) {
      return null; // one label, or an IP address: not a server's name
    }
    for (var i = 0; i < labels.length; i++) {
      if (!/^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/.test(labels[i])) {
        return null;
      }
    }
    return url.origin;
  }

  var mastodon = instanceOrigin(stored(MASTODON_KEY));

  // The page's policy lets connect-src reach any https origin (see kit/policy.py); this
  // second policy, enforced with the first, narrows it to the server the visitor chose.
  // Added before anything else runs; choosing another server reloads the page.
  (function narrowConnections() {
    var meta = document.createElement("meta");
    meta.httpEquiv = "Content-Security-Policy";
    meta.content = "connect-src 'self'" + (mastodon ? " " + mastodon : "");
    meta.setAttribute("data-narrowed", mastodon || "");
    document.head.appendChild(meta);
  })();

  /* --- the index: to the visitor's language --------------------------------------------- */

  function sendToLanguage() {
    var list = byId("languages");
    if (body.getAttribute("data-page") !== "index" || !list || location.hash === "#languages") {
      return;
    }
    var links = list.querySelectorAll("a[data-lang]");
    var wanted = navigator.languages && navigator.languages.length
      ? navigator.languages
      : [navigator.language || ""];
    var tag = function (code) {
      return String(code).toLowerCase().replace("_", "-");
    };
    for (var pass = 0; pass < 2; pass++) {
      for (var i = 0; i < wanted.length; i++) {
        var want = tag(wanted[i]);
        for (var j = 0; j < links.length; j++) {
          var have = tag(links[j].getAttribute("data-lang"));
          if (pass === 0 ? have === want : have.split("-")[0] === want.split("-")[0]) {
            location.replace(links[j].getAttribute("href"));
            return;
          }
        }
      }
    }
  }

  /* --- the storm on the visitor's clock --------------------------------------------------- */

  function localParts(date) {
    var parts = {};
    new Intl.DateTimeFormat("en-US", {
      year: "numeric", month: "2-digit", day: "2-digit",
      hour: "2-digit", minute: "2-digit", hourCycle: "h23", weekday: "long"
    }).formatToParts(date).forEach(function (p) {
      parts[p.type] = p.value;
    });
    return parts;
  }

  function showLocalTime() {
    var holder = byId("local");
    if (!holder || isNaN(at)) {
      return;
    }
    var date = new Date(at);
    var zone = Intl.DateTimeFormat().resolvedOptions().timeZone || "";
    var p = localParts(date);
    var iso = p.year + "-" + p.month + "-" + p.day + "T" + p.hour + ":" + p.minute;
    var time = new Intl.DateTimeFormat(lang, { hour: "numeric", minute: "2-digit" }).format(date);
    var day = new Intl.DateTimeFormat(lang, { weekday: "long", day: "numeric", month: "long" })
      .format(date);
    var zoneName = "";
    new Intl.DateTimeFormat(lang, { timeZoneName: "long" }).formatToParts(date)
      .forEach(function (part) {
        if (part.type === "timeZoneName") {
          zoneName = part.value;
        }
      });
    var timeEl = byId("local-time");
    timeEl.textContent = time;
    timeEl.setAttribute("data-local-iso", iso);
    timeEl.setAttribute("data-weekday", p.weekday);
    timeEl.setAttribute("data-zone", zone);
    byId("local-day").textContent = day;
    byId("local-zone").textContent = "(" + zoneName + (zone ? ", " + zone : "") + ")";
    holder.hidden = false;
    var embargo = byId("embargo-time");
    if (embargo) {
      embargo.textContent = day + ", " + time;
      embargo.setAttribute("data-local-iso", iso);
    }
  }

  // Calls `then` once the storm instant has come, never before (a long wait is chained:
  // setTimeout cannot wait more than about 24 days).
  function atStorm(then) {
    var left = at - Date.now();
    if (left <= 0) {
      then();
      return;
    }
    window.setTimeout(function () {
      atStorm(then);
    }, Math.min(left, LONGEST_TIMEOUT));
  }

  function two(n) {
    return (n < 10 ? "0" : "") + n;
  }

  function countDown() {
    var el = byId("countdown");
    if (!el || isNaN(at)) {
      return;
    }
    el.hidden = false;
    var tick = function () {
      var left = at - Date.now();
      if (left <= 0) {
        el.textContent = el.getAttribute("data-now");
        el.setAttribute("data-state", "now");
        return;
      }
      // Rounded up: the last second before T shows 00:00:01, never 00:00:00.
      var s = Math.ceil(left / 1000);
      var days = Math.floor(s / 86400);
      var clock = two(Math.floor((s % 86400) / 3600)) + ":" + two(Math.floor((s % 3600) / 60)) +
        ":" + two(s % 60);
      el.textContent = el.getAttribute("data-label") + " " +
        (days ? days + " " + el.getAttribute("data-days") + " " : "") + clock;
      el.setAttribute("data-state", "before");
      // The next whole second before T, or T itself.
      window.setTimeout(tick, left % 1000 || 1000);
    };
    tick();
  }

  function offerNotification() {
    var button = byId("notify-button");
    var status = byId("notify-status");
    if (!button || isNaN(at) || at <= Date.now()) {
      return;
    }
    if (!("Notification" in window)) {
      status.textContent = button.getAttribute("data-unsupported");
      return;
    }
    button.hidden = false;
    button.addEventListener("click", function () {
      // Only now, because the visitor asked: never a permission prompt on page load.
      Promise.resolve(Notification.requestPermission()).then(function (permission) {
        if (permission !== "granted") {
          status.textContent = button.getAttribute("data-denied");
          return;
        }
        button.disabled = true;
        status.textContent = button.getAttribute("data-on");
        status.setAttribute("data-armed", "true");
        atStorm(function () {
          new Notification(button.getAttribute("data-title"), {
            body: button.getAttribute("data-body"), lang: lang
          });
          status.setAttribute("data-notified", "true");
        });
      });
    });
  }

  /* --- posts: the varied first sample, copy buttons, Mastodon links ------------------------ */

  function randomIndex(n) {
    var buffer = new Uint32Array(1);
    window.crypto.getRandomValues(buffer);
    return buffer[0] % n;
  }

  // Each browser starts the list with its own sample, kept, so that hundreds of visitors do
  // not all take the first one (X forbids coordinated identical posts).
  function varyFirstSample() {
    var list = byId("posts");
    if (!list) {
      return;
    }
    var posts = Array.prototype.slice.call(list.querySelectorAll("article.post"));
    if (!posts.length) {
      return;
    }
    var files = posts.map(function (p) {
      return p.getAttribute("data-post-file");
    });
    var key = "stormer-kit:" + slug + ":" + list.getAttribute("data-lang") + ":first";
    var chosen = files.indexOf(stored(key));
    if (chosen === -1) {
      chosen = randomIndex(posts.length);
      store(key, files[chosen]);
    }
    for (var i = 0; i < posts.length; i++) {
      list.appendChild(posts[(chosen + i) % posts.length]); // the same order, from `chosen`
    }
    posts[chosen].setAttribute("data-first", "true");
  }

  function say(text) {
    var status = byId("copy-status");
    if (status) {
      status.textContent = "";
      status.textContent = text;
    }
  }

  function copyByHand(source) {
    var selection = window.getSelection();
    selection.selectAllChildren(source);
    var done = false;
    try {
      done = document.execCommand("copy");
    } catch (e) {
      done = false;
    }
    return done;
  }

  function wireCopyButtons() {
    var status = byId("copy-status");
    var buttons = document.querySelectorAll("button[data-copy-target]");
    Array.prototype.forEach.call(buttons, function (button) {
      button.addEventListener("click", function () {
        var source = byId(button.getAttribute("data-copy-target"));
        var text = source.textContent;
        var copied = function () {
          button.setAttribute("data-copied", "true");
          say(status.getAttribute("data-copied"));
        };
        var failed = function () {
          if (copyByHand(source)) {
            copied();
          } else {
            say(status.getAttribute("data-failed"));
          }
        };
        if (navigator.clipboard && navigator.clipboard.writeText) {
          navigator.clipboard.writeText(text).then(copied, failed);
        } else {
          failed();
        }
      });
    });
  }

  // Mastodon's share page, a web route rather than an API method: GET /share
  // (https://github.com/mastodon/mastodon/blob/main/app/controllers/shares_controller.rb)
  // opens the signed-in visitor's composer filled with ?text=…
  function mastodonLinks() {
    var links = document.querySelectorAll("a.post-link[data-platform='mastodon']");
    Array.prototype.forEach.call(links, function (link) {
      if (!mastodon) {
        link.hidden = true;
        return;
      }
      var text = byId(link.getAttribute("data-text-from")).textContent;
      link.href = mastodon + "/share?text=" + encodeURIComponent(text);
      link.hidden = false;
    });
  }

  function askMastodonServer() {
    var section = byId("mastodon");
    var form = byId("mastodon-form");
    if (!section || !form) {
      return;
    }
    var input = byId("mastodon-instance");
    var error = byId("mastodon-error");
    var chosen = byId("mastodon-chosen");
    section.hidden = false;
    var showChosen = function () {
      form.hidden = !!mastodon;
      chosen.hidden = !mastodon;
      byId("mastodon-current").textContent = mastodon ? mastodon.replace(/^https:\/\//, "") : "";
    };
    showChosen();
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var origin = instanceOrigin(input.value);
      if (!origin) {
        error.hidden = false;
        input.setAttribute("aria-invalid", "true");
        input.focus();
        return;
      }
      error.hidden = true;
      input.removeAttribute("aria-invalid");
      store(MASTODON_KEY, origin);
      if (stored(MASTODON_KEY) !== origin) {
        // Storage refused: use it on this page only (the narrowed policy still names none).
        mastodon = origin;
        showChosen();
        mastodonLinks();
        return;
      }
      // The narrowed policy of this page names the previous choice: a new page names this one.
      location.hash = "mastodon";
      location.reload();
    });
    byId("mastodon-change").addEventListener("click", function () {
      form.hidden = false;
      chosen.hidden = true;
      input.value = mastodon ? mastodon.replace(/^https:\/\//, "") : "";
      input.focus();
    });
  }

  // What another script of the kit may use (mastodon_schedule.js, issue 13 item 2).
  window.stormerKit = Object.freeze({
    at: at,
    slug: slug,
    lang: lang,
    mastodonOrigin: function () {
      return mastodon;
    },
    instanceOrigin: instanceOrigin,
    postText: function (number) {
      var el = byId("post-" + number + "-text");
      return el ? el.textContent : null;
    },
    atStorm: atStorm
  });

  sendToLanguage();
  showLocalTime();
  countDown();
  offerNotification();
  varyFirstSample();
  wireCopyButtons();
  askMastodonServer();
  mastodonLinks();
})();
