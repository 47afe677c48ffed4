"""A real Chromium on a page of another origin uses the simulated Mastodon as the storm kit
will: a CORS-preflighted app registration, the OAuth consent form with PKCE, the token, an
image with alt text, a scheduled status — published on the simulator's clock, not before."""

from __future__ import annotations

import base64
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
from fixtures_sim import png_bytes

if TYPE_CHECKING:
    from playwright.sync_api import Page

# Run in the page (its origin, its CORS): the same calls the kit's script makes.
REGISTER = """async ([sim, redirect]) => {
  const answer = await fetch(sim + "/api/v1/apps", {
    method: "POST",
    headers: {"Content-Type": "application/json"},  // not a simple request: preflighted
    body: JSON.stringify({client_name: "storm kit", redirect_uris: redirect,
                          scopes: "write:statuses write:media"}),
  });
  return await answer.json();
}"""
CHALLENGE = """async (verifier) => {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier));
  return btoa(String.fromCharCode(...new Uint8Array(digest)))
    .replace(/\\+/g, "-").replace(/\\//g, "_").replace(/=+$/, "");
}"""
TOKEN = """async ([sim, fields]) => {
  const answer = await fetch(sim + "/oauth/token", {method: "POST",
    body: new URLSearchParams(fields)});
  return await answer.json();
}"""
SCHEDULE = """async ([sim, token, png, alt, text, at]) => {
  const auth = {"Authorization": "Bearer " + token};
  const file = new Blob([Uint8Array.from(atob(png), c => c.charCodeAt(0))], {type: "image/png"});
  const upload = new FormData();
  upload.append("file", file, "storm.png");
  upload.append("description", alt);
  let media = await (await fetch(sim + "/api/v2/media",
                                 {method: "POST", headers: auth, body: upload})).json();
  while (media.url === null) {  // 202: still processing; ask again (GET /api/v1/media/:id)
    await new Promise(done => setTimeout(done, 50));
    media = await (await fetch(sim + "/api/v1/media/" + media.id, {headers: auth})).json();
  }
  const answer = await fetch(sim + "/api/v1/statuses", {method: "POST",
    headers: {...auth, "Content-Type": "application/json"},
    body: JSON.stringify({status: text, media_ids: [media.id], scheduled_at: at})});
  return await answer.json();
}"""
SCHEDULE_AND_CANCEL = """async ([sim, token, at]) => {
  const auth = {"Authorization": "Bearer " + token};
  const made = await (await fetch(sim + "/api/v1/statuses", {method: "POST",
    headers: {...auth, "Content-Type": "application/json"},
    body: JSON.stringify({status: "#storm cancelled", scheduled_at: at})})).json();
  const gone = await fetch(sim + "/api/v1/scheduled_statuses/" + made.id,
                           {method: "DELETE", headers: auth});  // preflighted: DELETE
  return [made.scheduled_at, gone.status, await gone.json()];
}"""
REFUSED = """async (url) => {
  try {
    await fetch(url, {method: "POST", headers: {"Content-Type": "application/json"},
                      body: "{}"});
    return "allowed";
  } catch (e) {
    return e.name;  // the browser's CORS refusal is a TypeError, whatever the server did
  }
}"""


def test_a_page_of_another_origin_registers_authorizes_and_schedules(
    page: Page, simulator: str, serve_folder: Callable[[Path], str], tmp_path: Path
) -> None:
    (tmp_path / "kit.html").write_text("<!DOCTYPE html><title>kit</title><p>kit</p>")
    (tmp_path / "back.html").write_text("<!DOCTYPE html><title>back</title><p>back</p>")
    kit = serve_folder(tmp_path)
    assert kit != simulator  # another port: another origin
    redirect = f"{kit}/back.html"
    page.goto(f"{kit}/kit.html")

    app = page.evaluate(REGISTER, [simulator, redirect])
    assert app["redirect_uris"] == [redirect] and app["client_id"]
    # Without CORS the browser refuses: a control endpoint sends none.
    assert page.evaluate(REFUSED, f"{simulator}/_sim/config") == "TypeError"

    verifier = base64.urlsafe_b64encode(b"the visitor's browser keeps this").decode().rstrip("=")
    challenge = page.evaluate(CHALLENGE, verifier)
    page.goto(
        str(
            httpx.URL(
                f"{simulator}/oauth/authorize",
                params={
                    "client_id": app["client_id"],
                    "redirect_uri": redirect,
                    "response_type": "code",
                    "scope": "write:statuses write:media",
                    "state": "kit-42",
                    "code_challenge": challenge,
                    "code_challenge_method": "S256",
                },
            )
        )
    )
    from axe_playwright_python.sync_playwright import Axe

    # The consent page a participant meets is usable with a keyboard and a screen reader.
    found = Axe().run(page).response["violations"]
    assert [v["id"] for v in found if v["impact"] in ("serious", "critical")] == [], found
    page.get_by_role("button", name="Authorize").click()
    page.wait_for_url(f"{redirect}?*")
    back = httpx.URL(page.url)
    assert back.params["state"] == "kit-42" and back.params["code"]
    assert page.locator("p").inner_text() == "back"  # the kit's own page, on the kit's origin

    fields = {
        "grant_type": "authorization_code",
        "code": back.params["code"],
        "client_id": app["client_id"],
        "client_secret": app["client_secret"],
        "redirect_uri": redirect,
        "code_verifier": verifier,
    }
    token = page.evaluate(TOKEN, [simulator, fields])
    assert token["scope"] == "write:statuses write:media", token
    now = datetime.fromisoformat(httpx.get(f"{simulator}/_sim/clock", timeout=10).json()["now"])
    at = (now + timedelta(hours=1)).replace(microsecond=0)
    png = base64.b64encode(png_bytes()).decode()
    scheduled = page.evaluate(
        SCHEDULE,
        [simulator, token["access_token"], png, "a red square", "#storm now", at.isoformat()],
    )
    assert scheduled["params"]["text"] == "#storm now", scheduled
    assert scheduled["media_attachments"][0]["description"] == "a red square"
    assert scheduled["scheduled_at"] == at.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    cancelled = page.evaluate(
        SCHEDULE_AND_CANCEL, [simulator, token["access_token"], at.isoformat()]
    )
    assert cancelled == [scheduled["scheduled_at"], 200, {}]

    assert _posts(simulator) == []
    _clock_to(simulator, at - timedelta(seconds=30))
    assert _posts(simulator) == []  # never before its time
    _clock_to(simulator, at)
    (post,) = _posts(simulator)  # once, and not the cancelled one
    assert post["text"] == "#storm now"
    assert post["media"] == [{"alt": "a red square", "size": 73, "mime": "image/png"}]


def _posts(simulator: str) -> list[dict]:
    return httpx.get(f"{simulator}/_sim/posts", timeout=10).json()


def _clock_to(simulator: str, moment: datetime) -> None:
    httpx.post(
        f"{simulator}/_sim/clock", json={"to": moment.isoformat()}, timeout=10
    ).raise_for_status()
