/* Connecting the kit page to the visitor's own Mastodon account (issue 13, item 2), for
   static/mastodon_schedule.js, which schedules the posts. The page is static and there is no
   server of ours: the visitor's browser talks only to the visitor's own server, which
   kit.js's second policy (connect-src) names.

   The steps, each from Mastodon's documentation:
   - register an app: POST /api/v1/apps (https://docs.joinmastodon.org/methods/apps/#create);
   - authorize with PKCE S256 (https://docs.joinmastodon.org/methods/oauth/#authorize): a
     top-level navigation to the server's consent page (form-action 'none' does not cover
     it), back to this very page with ?code&state, the state checked; from a page opened from
     disk there is no address to come back to, so the out-of-band redirect
     (urn:ietf:wg:oauth:2.0:oob) shows the code in a new tab, to paste here;
   - the token: POST /oauth/token by fetch, with the code_verifier
     (https://docs.joinmastodon.org/methods/oauth/#token);
   - disconnecting gives it back: POST /oauth/revoke with the app's client_id and
     client_secret and the token (https://docs.joinmastodon.org/methods/oauth/#revoke;
     allowed through CORS since Mastodon 4.3), then the page forgets it, told or not.

   Scopes: write:statuses write:media only. Listing scheduled statuses would need
   read:statuses, which lets a page read every post of the account, private ones included;
   instead mastodon_schedule.js keeps the ids of what it scheduled (localStorage, not
   secret: an id is useless without the token) and shows and cancels those: all a visitor
   needs here, with the least access.

   The token lives in sessionStorage: it stays in this tab (it survives the trip to the
   server's consent page and back, which is the same tab), as does the PKCE code_verifier,
   and is forgotten when the tab is closed, so a key that can post on the visitor's account
   does not linger in the browser. It never appears in a URL: the code that comes back in
   the address bar is removed from it with history.replaceState before anything else, and
   exchanged by fetch. The app's client id and secret are kept in localStorage per server (a
   page anyone can copy cannot hide an app secret; keeping it avoids registering a new app
   at each visit).

   All text goes in with textContent: nothing from a server is ever markup. */
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
  var PENDING_KEY = "stormer-kit:mastodon-pending";
  var tokenKey = "stormer-kit:mastodon-token:" + origin;
  var appKey = "stormer-kit:mastodon-app:" + origin + " " + redirectUri();

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
    var oauth = path === "/oauth/token" || path === "/oauth/revoke" || path === "/api/v1/apps";
    if (status === 401 && !oauth) {
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

  /* --- connecting: app, consent with PKCE, token ----------------------------------------------- */

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
    var probe = "stormer-kit:probe";
    if (!write("sessionStorage", probe, 1) || !write("localStorage", probe, 1)) {
      // Storage refused (kit.js then keeps the server for this page only, and its narrowed
      // policy names none): the verifier, the token and the list would have nowhere to live.
      showError(words("storage"));
      return;
    }
    write("sessionStorage", probe, null);
    write("localStorage", probe, null);
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
      showStatus("");
      showConnection();
      byId("schedule-connected").focus(); // read out: connected, and what comes next
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

  /* --- the page -------------------------------------------------------------------------------- */

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

  // The server is asked to revoke the token, so that it stops working at once and not only
  // in this tab; the page forgets it in any case, and says so if the server was not told.
  function disconnect() {
    var token = read("sessionStorage", tokenKey);
    var registered = read("localStorage", appKey);
    showError("");
    var revoked = Promise.resolve();
    if (token && registered && registered.client_id && registered.client_secret) {
      var fields = new URLSearchParams({
        client_id: registered.client_id, client_secret: registered.client_secret, token: token
      });
      showStatus(words("working"));
      revoked = call("POST", "/oauth/revoke", { auth: false, params: fields });
    }
    return revoked.catch(function (error) {
      showError(explain(error));
    }).then(function () {
      write("sessionStorage", tokenKey, null);
      showStatus("");
      showConnection();
      byId("schedule-connect").focus();
    });
  }

  function wire() {
    byId("schedule-connect").addEventListener("click", connect);
    byId("schedule-disconnect").addEventListener("click", disconnect);
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
  }

  if (!origin) {
    return; // no server chosen yet: the form above asks for one, and reloads the page
  }
  // What mastodon_schedule.js uses: the server, the words, storage, the calls.
  window.stormerMastodon = Object.freeze({
    origin: origin,
    byId: byId,
    words: words,
    read: read,
    write: write,
    randomText: randomText,
    call: call,
    Failure: Failure,
    explain: explain,
    showError: showError,
    showStatus: showStatus
  });
  box.hidden = false;
  wire();
  comingBack();
  showConnection();
})();
