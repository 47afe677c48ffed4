/* Scheduling a sample post on the visitor's own Mastodon (issue 13, item 2), straight from
   the browser: the page is static and there is no server of ours, so the visitor's browser
   talks only to the visitor's own server, which kit.js's second policy (connect-src) names.

   The steps, each from Mastodon's documentation:
   - register an app: POST /api/v1/apps (https://docs.joinmastodon.org/methods/apps/#create);
   - authorize with PKCE S256 (https://docs.joinmastodon.org/methods/oauth/#authorize): a
     top-level navigation to the server's consent page (form-action 'none' does not cover
     it), back to this very page with ?code&state; from a page opened from disk there is no
     address to come back to, so the out-of-band redirect shows the code to paste here;
   - the token: POST /oauth/token (https://docs.joinmastodon.org/methods/oauth/#token);
   - the image with its alt text: POST /api/v2/media with `description`, and while the answer
     has no url yet, GET /api/v1/media/:id (https://docs.joinmastodon.org/methods/media/#v2);
   - POST /api/v1/statuses with scheduled_at (https://docs.joinmastodon.org/methods/statuses/#create),
     which "must be at least 5 minutes in the future"; closer than that the page offers to
     post at T itself while it stays open; after T, to post now;
   - cancel: DELETE /api/v1/scheduled_statuses/:id
     (https://docs.joinmastodon.org/methods/scheduled_statuses/#cancel).

   Scopes: write:statuses write:media only. Listing scheduled statuses would need
   read:statuses, which lets a page read every post of the account; instead the page keeps
   the ids of what it scheduled (localStorage, not secret: an id is useless without the
   token) and shows and cancels those — all a visitor needs here, with the least access.

   The token lives in sessionStorage: it stays in this tab (it survives the trip to the
   server's consent page and back, which is the same tab) and is forgotten when the tab is
   closed, so a key that can post on the visitor's account does not linger in the browser.
   It never appears in a URL: the code that comes back in the address bar is removed from it
   with history.replaceState before anything else, and exchanged by fetch. The app's
   client id and secret are kept in localStorage per server (a page anyone can copy cannot
   hide an app secret; keeping it avoids registering a new app at each visit).

   All text goes in with textContent: nothing from a server or a post is ever markup. */
(function () {
  "use strict";

  var kit = window.stormerKit;
  var box = document.getElementById("schedule");
  if (!kit || !box) {
    return;
  }
  var origin = kit.mastodonOrigin();
  var SCOPES = "write:statuses write:media";
  var OOB = "urn:ietf:wg:oauth:2.0:oob";
  var MIN_AHEAD_MS = 5 * 60 * 1000; // Mastodon's minimum for scheduled_at
  // Margin for the visitor's clock being behind the server's and for the upload's time.
  var MARGIN_MS = 30 * 1000;
  var PENDING_KEY = "stormer-kit:mastodon-pending";
  var tokenKey = "stormer-kit:mastodon-token:" + origin;
  var appKey = "stormer-kit:mastodon-app:" + origin + " " + redirectUri();
  var listKey = "stormer-kit:" + kit.slug + ":mastodon-scheduled:" + origin;

  function byId(id) {
    return document.getElementById(id);
  }

  function words(name) {
    return box.getAttribute("data-say-" + name) || "";
  }

  function storage(kind) {
    try {
      return window[kind];
    } catch (e) {
      return null;
    }
  }

  function read(kind, key) {
    var s = storage(kind);
    try {
      return s ? JSON.parse(s.getItem(key) || "null") : null;
    } catch (e) {
      return null;
    }
  }

  function write(kind, key, value) {
    var s = storage(kind);
    if (!s) {
      return false;
    }
    try {
      if (value === null) {
        s.removeItem(key);
      } else {
        s.setItem(key, JSON.stringify(value));
      }
      return true;
    } catch (e) {
      return false;
    }
  }

  // This page's own address, where the server sends the visitor back; none from disk.
  function redirectUri() {
    return /^https?:$/.test(location.protocol) ? location.origin + location.pathname : OOB;
  }

  function randomText(bytes) {
    var buffer = new Uint8Array(bytes);
    window.crypto.getRandomValues(buffer);
    return base64url(buffer);
  }

  function base64url(bytes) {
    var text = "";
    for (var i = 0; i < bytes.length; i++) {
      text += String.fromCharCode(bytes[i]);
    }
    return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  /* --- talking to the server: every failure becomes words ------------------------------- */

  function Failure(message, status) {
    this.message = message;
    this.status = status;
  }

  function call(method, path, options) {
    options = options || {};
    var headers = {};
    var token = read("sessionStorage", tokenKey);
    if (options.auth !== false && token) {
      headers.Authorization = "Bearer " + token;
    }
    var body = options.form || options.params;
    if (options.json) {
      headers["Content-Type"] = "application/json";
      body = JSON.stringify(options.json);
    }
    if (options.key) {
      headers["Idempotency-Key"] = options.key; // a repeated request makes no second post
    }
    return fetch(origin + path, {
      method: method, headers: headers, body: body, credentials: "omit",
      cache: "no-store", referrerPolicy: "no-referrer"
    }).then(function (answer) {
      return answer.text().then(function (text) {
        var data = null;
        try {
          data = text ? JSON.parse(text) : null;
        } catch (e) {
          data = null;
        }
        if (answer.ok) {
          return { status: answer.status, data: data };
        }
        throw refusal(answer.status, data, path);
      });
    }, function () {
      // A TypeError: no answer at all, or one the browser refused (no CORS).
      throw new Failure(words("unreachable"), 0);
    });
  }

  function refusal(status, data, path) {
    if (status === 401 && path !== "/oauth/token" && path !== "/api/v1/apps") {
      write("sessionStorage", tokenKey, null);
      showConnection();
      return new Failure(words("expired"), status);
    }
    if (status === 429) {
      return new Failure(words("busy"), status);
    }
    if (status >= 500) {
      return new Failure(words("server") + " (HTTP " + status + ")", status);
    }
    var said = data && (data.error_description || data.error);
    return new Failure(words("refused") + " " + (said ? String(said) : "HTTP " + status), status);
  }

  function explain(error) {
    return error instanceof Failure ? error.message : words("server");
  }

  function showError(text) {
    var el = byId("schedule-error");
    el.textContent = text;
    el.hidden = !text;
  }

  /* --- connecting: app, consent with PKCE, token ------------------------------------------ */

  function app() {
    var known = read("localStorage", appKey);
    if (known && known.client_id && known.client_secret) {
      return Promise.resolve(known);
    }
    var name = ("Storm kit: " + (byId("storm-name").textContent || "").trim()).slice(0, 60);
    return call("POST", "/api/v1/apps", {
      auth: false,
      json: { client_name: name, redirect_uris: redirectUri(), scopes: SCOPES }
    }).then(function (answer) {
      var made = { client_id: answer.data.client_id, client_secret: answer.data.client_secret };
      write("localStorage", appKey, made);
      return made;
    });
  }

  function connect() {
    showError("");
    if (!window.crypto || !window.crypto.subtle) {
      showError(words("insecure")); // WebCrypto exists only on https (or loopback) pages
      return;
    }
    var verifier = randomText(32);
    var state = randomText(16);
    var redirect = redirectUri();
    app().then(function (registered) {
      return window.crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier))
        .then(function (digest) {
          var pending = {
            origin: origin, redirect: redirect, state: state, verifier: verifier,
            client_id: registered.client_id, client_secret: registered.client_secret
          };
          if (!write("sessionStorage", PENDING_KEY, pending)) {
            throw new Failure(words("storage"), 0);
          }
          var query = new URLSearchParams({
            client_id: registered.client_id, redirect_uri: redirect, response_type: "code",
            scope: SCOPES, state: state, code_challenge: base64url(new Uint8Array(digest)),
            code_challenge_method: "S256"
          });
          var url = origin + "/oauth/authorize?" + query.toString();
          if (redirect === OOB) {
            // No address to come back to: the server shows a code in a new tab; this tab
            // (its sessionStorage holds the verifier) waits for it to be pasted.
            window.open(url, "_blank", "noopener");
            byId("schedule-code-form").hidden = false;
            byId("schedule-code").focus();
          } else {
            location.assign(url);
          }
        });
    }).catch(function (error) {
      showError(explain(error));
    });
  }

  function exchange(pending, code) {
    var fields = new URLSearchParams({
      grant_type: "authorization_code", code: code, client_id: pending.client_id,
      client_secret: pending.client_secret, redirect_uri: pending.redirect,
      code_verifier: pending.verifier
    });
    showStatus(words("working"));
    return call("POST", "/oauth/token", { auth: false, params: fields }).then(function (answer) {
      write("sessionStorage", PENDING_KEY, null);
      if (!answer.data || !answer.data.access_token) {
        throw new Failure(words("refused") + " /oauth/token", 0);
      }
      write("sessionStorage", tokenKey, answer.data.access_token);
      showStatus(words("connected"));
      showConnection();
      byId("schedule-heading").focus();
    }, function (error) {
      write("sessionStorage", PENDING_KEY, null);
      if (error.status === 401) {
        write("localStorage", appKey, null); // the server forgot the app: register anew
      }
      throw error;
    }).catch(function (error) {
      showStatus("");
      showError(explain(error));
    });
  }

  // Back from the consent page: ?code=…&state=… or ?error=…. Removed from the address bar
  // before anything else, so that no code stays in the history or in a shared link.
  function comingBack() {
    var query = new URLSearchParams(location.search);
    if (!query.has("code") && !query.has("error")) {
      return;
    }
    history.replaceState(null, "", location.pathname + "#mastodon");
    var pending = read("sessionStorage", PENDING_KEY);
    if (!pending || pending.origin !== origin || pending.state !== query.get("state")) {
      write("sessionStorage", PENDING_KEY, null);
      showError(words("mismatch"));
      return;
    }
    if (query.has("error")) {
      write("sessionStorage", PENDING_KEY, null);
      showError(words("denied"));
      return;
    }
    exchange(pending, query.get("code"));
  }

  /* --- the posts: image with alt text, then the status -------------------------------------- */

  function wait(ms) {
    return new Promise(function (done) {
      window.setTimeout(done, ms);
    });
  }

  function uploadImage(figure) {
    var img = figure.querySelector("img");
    var alt = figure.querySelector(".alt-text").textContent;
    return fetch(img.src, { credentials: "same-origin" }).then(function (answer) {
      if (!answer.ok) {
        throw new Error("image");
      }
      return answer.blob();
    }).catch(function () {
      throw new Failure(words("image"), 0);
    }).then(function (blob) {
      var form = new FormData();
      form.append("file", blob, img.src.split("/").pop());
      form.append("description", alt);
      return call("POST", "/api/v2/media", { form: form });
    }).then(function (answer) {
      return ready(answer.data, 0);
    });
  }

  // 202 and url null while the server processes the image; asked again until it has one.
  function ready(media, tries) {
    if (media.url) {
      return Promise.resolve(media.id);
    }
    if (tries >= 60) {
      return Promise.reject(new Failure(words("server"), 0));
    }
    return wait(1000).then(function () {
      return call("GET", "/api/v1/media/" + encodeURIComponent(media.id));
    }).then(function (answer) {
      return ready(answer.data, tries + 1);
    });
  }

  function uploadAll(article) {
    var figures = Array.prototype.slice.call(article.querySelectorAll("figure.image"));
    var ids = [];
    return figures.reduce(function (previous, figure) {
      return previous.then(function () {
        return uploadImage(figure).then(function (id) {
          ids.push(id);
        });
      });
    }, Promise.resolve()).then(function () {
      return ids;
    });
  }

  function status(article, mediaIds, when, key) {
    var number = article.getAttribute("data-post-number");
    var fields = {
      status: kit.postText(number), media_ids: mediaIds, visibility: "public",
      language: kit.lang.split("-")[0]
    };
    if (when) {
      fields.scheduled_at = when;
    }
    return call("POST", "/api/v1/statuses", { json: fields, key: key });
  }

  function postControls(article) {
    var n = article.getAttribute("data-post-number");
    return {
      schedule: byId("post-" + n + "-schedule"),
      atStart: byId("post-" + n + "-schedule-at-start"),
      now: byId("post-" + n + "-schedule-now"),
      status: byId("post-" + n + "-schedule-status")
    };
  }

  function tell(controls, state, text) {
    controls.status.setAttribute("data-state", state);
    controls.status.textContent = text;
  }

  function schedule(article) {
    var c = postControls(article);
    c.atStart.hidden = true;
    c.now.hidden = true;
    var left = kit.at - Date.now();
    if (left <= 0) {
      tell(c, "past", words("past"));
      c.now.hidden = false;
      return;
    }
    if (left < MIN_AHEAD_MS + MARGIN_MS) {
      tell(c, "soon", words("soon"));
      c.atStart.hidden = false;
      return;
    }
    c.schedule.disabled = true;
    tell(c, "working", words("working"));
    var key = randomText(16);
    uploadAll(article).then(function (ids) {
      return status(article, ids, new Date(kit.at).toISOString(), key);
    }).then(function (answer) {
      var list = scheduledList();
      list.push({ id: String(answer.data.id), file: article.getAttribute("data-post-file"),
                  at: kit.at });
      write("localStorage", listKey, list);
      tell(c, "scheduled", words("done"));
      showList();
    }).catch(function (error) {
      c.schedule.disabled = false;
      if (error instanceof Failure && error.status === 422 && kit.at - Date.now() < 2 * MIN_AHEAD_MS) {
        // The server's clock is ahead of this one: too close to schedule after all.
        tell(c, "soon", words("soon"));
        c.atStart.hidden = false;
        return;
      }
      tell(c, "error", explain(error));
    });
  }

  // Posts from this page at T, never before: the image goes up now (processed by T); the
  // status at T on this page's clock. Only while the page stays open — it says so.
  function postAtStart(article) {
    var c = postControls(article);
    c.atStart.hidden = true;
    c.schedule.disabled = true;
    tell(c, "working", words("working"));
    var key = randomText(16);
    uploadAll(article).then(function (ids) {
      tell(c, "waiting", words("waiting"));
      return new Promise(function (done) {
        kit.atStorm(function () {
          done(ids);
        });
      });
    }).then(function (ids) {
      return status(article, ids, null, key);
    }).then(function () {
      tell(c, "posted", words("posted"));
    }).catch(function (error) {
      c.schedule.disabled = false;
      tell(c, "error", explain(error));
    });
  }

  function postNow(article) {
    var c = postControls(article);
    c.now.hidden = true;
    c.schedule.disabled = true;
    tell(c, "working", words("working"));
    var key = randomText(16);
    uploadAll(article).then(function (ids) {
      return status(article, ids, null, key);
    }).then(function () {
      tell(c, "posted", words("posted"));
    }).catch(function (error) {
      c.schedule.disabled = false;
      c.now.hidden = false;
      tell(c, "error", explain(error));
    });
  }

  /* --- what this page scheduled: shown, cancellable ----------------------------------------- */

  // Only what is still ahead: once T has passed the server has published it.
  function scheduledList() {
    var list = read("localStorage", listKey);
    return (Array.isArray(list) ? list : []).filter(function (item) {
      return item && item.id && item.at > Date.now();
    });
  }

  function articleOf(file) {
    var found = null;
    Array.prototype.forEach.call(document.querySelectorAll("article.post"), function (a) {
      if (a.getAttribute("data-post-file") === file) {
        found = a;
      }
    });
    return found;
  }

  function cancel(item, button) {
    button.disabled = true;
    showError("");
    call("DELETE", "/api/v1/scheduled_statuses/" + encodeURIComponent(item.id))
      .catch(function (error) {
        if (error.status !== 404) { // 404: already gone (cancelled elsewhere): the same end
          throw error;
        }
      }).then(function () {
        write("localStorage", listKey, scheduledList().filter(function (other) {
          return other.id !== item.id;
        }));
        var article = articleOf(item.file);
        if (article && postControls(article).status) {
          tell(postControls(article), "cancelled", words("cancelled"));
        }
        showStatus(words("cancelled"));
        showList();
      }).catch(function (error) {
        button.disabled = false;
        showError(explain(error));
      });
  }

  function showList() {
    var list = scheduledList();
    var ul = byId("schedule-list");
    ul.textContent = "";
    byId("schedule-list-holder").hidden = !list.length;
    var when = new Intl.DateTimeFormat(kit.lang, {
      weekday: "long", day: "numeric", month: "long", hour: "numeric", minute: "2-digit"
    });
    Array.prototype.forEach.call(document.querySelectorAll("article.post"), function (a) {
      var controls = postControls(a);
      if (controls.schedule) {
        controls.schedule.disabled = false;
      }
    });
    list.forEach(function (item) {
      var li = document.createElement("li");
      li.setAttribute("data-scheduled-id", item.id);
      var article = articleOf(item.file);
      var text = article ? kit.postText(article.getAttribute("data-post-number")) : item.file;
      if (article && postControls(article).schedule) {
        postControls(article).schedule.disabled = true; // never twice from this page
      }
      var quote = document.createElement("span");
      quote.className = "schedule-text";
      quote.textContent = text.length > 80 ? text.slice(0, 79) + "…" : text;
      var at = document.createElement("span");
      at.className = "schedule-when";
      at.textContent = when.format(new Date(item.at));
      var button = document.createElement("button");
      button.type = "button";
      button.className = "schedule-cancel";
      button.textContent = words("cancel");
      button.addEventListener("click", function () {
        cancel(item, button);
      });
      li.appendChild(quote);
      li.appendChild(document.createTextNode(" — "));
      li.appendChild(at);
      li.appendChild(document.createTextNode(" "));
      li.appendChild(button);
      ul.appendChild(li);
    });
  }

  /* --- the page ------------------------------------------------------------------------------ */

  function showStatus(text) {
    byId("schedule-status").textContent = text;
  }

  function showConnection() {
    var connected = !!read("sessionStorage", tokenKey);
    box.setAttribute("data-connected", connected ? "true" : "false");
    byId("schedule-connect").hidden = connected;
    byId("schedule-connected").hidden = !connected;
    if (connected) {
      byId("schedule-code-form").hidden = true;
    }
    Array.prototype.forEach.call(document.querySelectorAll(".schedule-post"), function (el) {
      el.hidden = !connected;
    });
  }

  function wire() {
    byId("schedule-connect").addEventListener("click", connect);
    byId("schedule-disconnect").addEventListener("click", function () {
      write("sessionStorage", tokenKey, null);
      showStatus("");
      showConnection();
      byId("schedule-connect").focus();
    });
    byId("schedule-code-form").addEventListener("submit", function (event) {
      event.preventDefault();
      var pending = read("sessionStorage", PENDING_KEY);
      var code = byId("schedule-code").value.trim();
      if (!pending || pending.origin !== origin || !code) {
        showError(words("mismatch"));
        return;
      }
      byId("schedule-code").value = "";
      exchange(pending, code);
    });
    Array.prototype.forEach.call(document.querySelectorAll("article.post"), function (article) {
      var c = postControls(article);
      if (!c.schedule) {
        return;
      }
      c.schedule.addEventListener("click", function () {
        schedule(article);
      });
      c.atStart.addEventListener("click", function () {
        postAtStart(article);
      });
      c.now.addEventListener("click", function () {
        postNow(article);
      });
    });
  }

  if (!origin) {
    return; // no server chosen yet: the form above asks for one, and reloads the page
  }
  box.hidden = false;
  wire();
  comingBack();
  showConnection();
  showList();
})();
