/* Scheduling a sample post on the visitor's own Mastodon (issue 13, item 2), once
   static/mastodon_account.js has connected the page to the account (its token, its calls,
   every failure in words: window.stormerMastodon).

   Each from Mastodon's documentation:
   - the image with its alt text: POST /api/v2/media with `description`, and while the answer
     has no url yet, GET /api/v1/media/:id (https://docs.joinmastodon.org/methods/media/#v2);
   - POST /api/v1/statuses with scheduled_at = T
     (https://docs.joinmastodon.org/methods/statuses/#create), public, in the page's
     language, with an Idempotency-Key; scheduled_at "must be at least 5 minutes in the
     future": closer than that the page offers to post at T itself while it stays open (a
     timer on the page's clock, never before T); after T, to post now;
   - cancel: DELETE /api/v1/scheduled_statuses/:id
     (https://docs.joinmastodon.org/methods/scheduled_statuses/#cancel).

   What this page scheduled is kept in localStorage (ids only: mastodon_account.js says why
   not read:statuses) and listed, each with a Cancel button, as is what the page itself will
   post at T; a post done for this T is not offered again. All text goes in with
   textContent: nothing from a server or a post is ever markup. */
(function () {
  "use strict";

  var kit = window.stormerKit;
  var m = window.stormerMastodon;
  if (!kit || !m) {
    return; // no server chosen: nothing to schedule on
  }
  var byId = m.byId;
  var words = m.words;
  var read = m.read;
  var write = m.write;
  var randomText = m.randomText;
  var call = m.call;
  var Failure = m.Failure;
  var explain = m.explain;
  var showError = m.showError;
  var showStatus = m.showStatus;
  var MIN_AHEAD_MS = 5 * 60 * 1000; // Mastodon's minimum for scheduled_at
  // Margin for the visitor's clock being behind the server's and for the upload's time.
  var MARGIN_MS = 30 * 1000;
  var listKey = "stormer-kit:" + kit.slug + ":mastodon-scheduled:" + m.origin;
  var waiting = []; // what this page itself will post at T (closer than 5 minutes)

  /* --- the posts: image with alt text, then the status ----------------------------------------- */

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
      remember(article, "scheduled", answer.data.id);
      tell(c, "scheduled", words("done"));
      showList();
    }).catch(function (error) {
      c.schedule.disabled = false;
      if (error instanceof Failure && error.status === 422 &&
          kit.at - Date.now() < 2 * MIN_AHEAD_MS) {
        // The server's clock is ahead of this one: too close to schedule after all.
        tell(c, "soon", words("soon"));
        c.atStart.hidden = false;
        return;
      }
      tell(c, "error", explain(error));
    });
  }

  // Posts from this page at T, never before: the image goes up now (processed by T); the
  // status at T on this page's clock. Only while the page stays open (it says so); listed
  // with the scheduled ones, and cancellable until T.
  function postAtStart(article) {
    var c = postControls(article);
    var key = randomText(16);
    var item = { id: "page:" + key, file: article.getAttribute("data-post-file"), at: kit.at,
                 page: true, cancelled: false };
    c.atStart.hidden = true;
    c.schedule.disabled = true;
    tell(c, "working", words("working"));
    uploadAll(article).then(function (ids) {
      waiting.push(item);
      tell(c, "waiting", words("waiting"));
      showList();
      return new Promise(function (done) {
        kit.atStorm(function () {
          done(ids);
        });
      });
    }).then(function (ids) {
      if (item.cancelled) {
        return null;
      }
      return status(article, ids, null, key).then(function (answer) {
        remember(article, "posted", answer.data.id);
        tell(c, "posted", words("posted"));
      });
    }).catch(function (error) {
      c.schedule.disabled = false;
      tell(c, "error", explain(error));
    }).then(function () {
      waiting = waiting.filter(function (other) {
        return other !== item;
      });
      showList();
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
    }).then(function (answer) {
      remember(article, "posted", answer.data.id);
      tell(c, "posted", words("posted"));
    }).catch(function (error) {
      c.schedule.disabled = false;
      c.now.hidden = false;
      tell(c, "error", explain(error));
    });
  }

  /* --- what this page scheduled or posted: shown, cancellable until T ----------------------- */

  // Kept for this storm: what the server will publish (kind "scheduled", cancellable until
  // T) and what is done; a post done for this T is never offered again: never twice.
  function kept() {
    var list = read("localStorage", listKey);
    return (Array.isArray(list) ? list : []).filter(function (item) {
      return item && item.id && item.file && typeof item.at === "number";
    });
  }

  function remember(article, kind, id) {
    var list = kept();
    list.push({ id: String(id), file: article.getAttribute("data-post-file"), at: kit.at,
                kind: kind });
    write("localStorage", listKey, list);
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

  function cancelled(item) {
    var article = articleOf(item.file);
    if (article && postControls(article).status) {
      tell(postControls(article), "cancelled", words("cancelled"));
    }
    showStatus(words("cancelled"));
    showList();
  }

  function cancel(item, button) {
    button.disabled = true;
    showError("");
    if (item.page) {
      item.cancelled = true; // the page's own timer: it will not post
      waiting = waiting.filter(function (other) {
        return other !== item;
      });
      cancelled(item);
      return;
    }
    call("DELETE", "/api/v1/scheduled_statuses/" + encodeURIComponent(item.id))
      .catch(function (error) {
        if (error.status !== 404) { // 404: already gone (cancelled elsewhere): the same end
          throw error;
        }
      }).then(function () {
        write("localStorage", listKey, kept().filter(function (other) {
          return other.id !== item.id;
        }));
        cancelled(item);
      }).catch(function (error) {
        button.disabled = false;
        showError(explain(error));
      });
  }

  function listItem(item, when) {
    var li = document.createElement("li");
    li.setAttribute("data-scheduled-id", item.id);
    var article = articleOf(item.file);
    var text = article ? kit.postText(article.getAttribute("data-post-number")) : item.file;
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
    return li;
  }

  function showList() {
    var all = kept();
    var listed = all.filter(function (item) {
      return item.kind === "scheduled" && item.at > Date.now();
    }).concat(waiting);
    var done = all.filter(function (item) {
      return item.at === kit.at;
    });
    Array.prototype.forEach.call(document.querySelectorAll("article.post"), function (a) {
      var c = postControls(a);
      var file = a.getAttribute("data-post-file");
      var mine = function (item) {
        return item.file === file;
      };
      if (!c.schedule) {
        return;
      }
      var finished = done.filter(mine)[0];
      c.schedule.disabled = !!finished || waiting.some(mine);
      if (finished && !c.status.getAttribute("data-state")) {
        var ahead = finished.kind === "scheduled" && finished.at > Date.now();
        tell(c, ahead ? "scheduled" : "posted", words(ahead ? "done" : "posted"));
      }
    });
    var ul = byId("schedule-list");
    ul.textContent = "";
    byId("schedule-list-holder").hidden = !listed.length;
    var when = new Intl.DateTimeFormat(kit.lang, {
      weekday: "long", day: "numeric", month: "long", hour: "numeric", minute: "2-digit"
    });
    listed.forEach(function (item) {
      ul.appendChild(listItem(item, when));
    });
  }

  function wire() {
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

  wire();
  showList();
})();
