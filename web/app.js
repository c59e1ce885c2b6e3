// gridsense web app: the shell (header, navigation, language, login/logout) and the router.
// ES modules, no framework, no inline script (the server sends a strict Content-Security-Policy).
//
// URLs are hash routes, so each page has a stable address to share (docs/web.md):
//   #/fleet  #/terminal/ID[/TAB]  #/events[?filters]  #/events/ID  #/phase[?ref=ID]  #/admin/TAB
// A page module exports show(main, route) -> optional dispose(); route = {parts, query}:
// parts are the decoded path segments after the page name, query a URLSearchParams.
import { $, el, t, api, setLang, getLang, setUser, currentUser, setExpiredHandler, can, feed, href, onOffline } from "/app/lib.js";
import * as fleetPage from "/app/page-fleet.js";
import * as terminalPage from "/app/page-terminal.js";
import * as eventsPage from "/app/page-events.js";
import * as phasePage from "/app/page-phase.js";
import * as adminPage from "/app/page-admin.js";

const PAGES = {
  fleet: { mod: fleetPage, nav: "nav_fleet" },
  terminal: { mod: terminalPage },
  events: { mod: eventsPage, nav: "nav_events" },
  phase: { mod: phasePage, nav: "nav_phase" },
  admin: { mod: adminPage, nav: "nav_admin", role: "admin" },
};

let dispose = null;
let shown = ""; // the hash of the page on screen

function parseHash() {
  const h = location.hash.replace(/^#\/?/, "");
  const [path, qs] = h.split("?", 2);
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  const page = parts.shift() || "fleet";
  return { page, parts, query: new URLSearchParams(qs || "") };
}

function chrome() {
  const me = currentUser();
  document.documentElement.lang = getLang() === "zh" ? "zh-CN" : "en";
  $("#lang").value = getLang();
  $("#logout").textContent = t("logout");
  $("#logout").hidden = !me;
  const roles = { viewer: t("role_viewer"), operator: t("role_operator"), admin: t("role_admin") };
  $("#who").textContent = me ? `${me.user} (${roles[me.role] || me.role})` : "";
  $("#feed").textContent = feed.state ? t(feed.state) : "";
  $("#offline").textContent = t("offline_app");
  $("#skip").textContent = t("skip");
  const cur = me ? parseHash().page : "";
  $("#nav").replaceChildren(...(me ? Object.entries(PAGES)
    .filter(([, p]) => p.nav && (!p.role || can(p.role)))
    .map(([name, p]) => el("a", { href: `#/${name}`, textContent: t(p.nav),
      "aria-current": cur === name || (cur === "terminal" && name === "fleet") ? "page" : undefined })) : []));
}

async function route() {
  if (!currentUser()) return;
  if (dispose) { try { dispose(); } catch (e) { console.warn(e); } dispose = null; }
  const r = parseHash();
  const p = PAGES[r.page];
  chrome();
  const main = $("#main");
  shown = location.hash;
  if (!p) { main.replaceChildren(el("h1", { textContent: t("not_found") }), el("p", {}, el("a", { href: href.fleet(), textContent: t("nav_fleet") }))); return; }
  if (p.role && !can(p.role)) { main.replaceChildren(el("h1", { textContent: t("forbidden") })); return; }
  main.replaceChildren();
  try {
    dispose = (await p.mod.show(main, r)) || null;
  } catch (e) {
    console.warn(e);
    main.replaceChildren(el("p", { className: "error box", role: "alert", textContent: t("page_failed", { msg: e.message }) }));
  }
}

function showLogin(message = "") {
  setUser(null);
  feed.stop();
  if (dispose) { try { dispose(); } catch { /* page already gone */ } dispose = null; }
  chrome();
  const err = el("p", { className: "error", role: "alert", textContent: message });
  const user = el("input", { name: "user", id: "login-user", autocomplete: "username", required: true });
  const pw = el("input", { name: "password", id: "login-password", type: "password", autocomplete: "current-password", required: true });
  const form = el("form", { className: "login" },
    el("h1", { textContent: t("login_title") }),
    el("label", { for: "login-user" }, t("user")), user,
    el("label", { for: "login-password" }, t("password")), pw,
    el("button", { type: "submit", textContent: t("login") }), err);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const r = await api("/api/v1/session", { method: "POST", json: { user: user.value, password: pw.value } });
    if (r.status === 200) { start(r.body); return; }
    err.textContent = r.status === 429 ? t("too_many", { s: r.headers.get("Retry-After") || "?" })
      : r.status === 401 ? t("bad_login") : r.status === 0 ? t("unreachable")
      : (r.body && r.body.error ? r.body.error.message : t("http_error", { status: r.status }));
  });
  $("#main").replaceChildren(form);
  user.focus();
}

function start(user) {
  setUser(user);
  feed.start();
  route();
}

setExpiredHandler(() => { if (currentUser()) showLogin(t("session_ended")); });
window.addEventListener("hashchange", () => { if (location.hash !== shown) route(); });
$("#lang").addEventListener("change", () => {
  setLang($("#lang").value);
  if (currentUser()) route(); else showLogin();
});
$("#logout").addEventListener("click", async () => {
  await api("/api/v1/session", { method: "DELETE" });
  if (window.caches) await caches.delete("gs-api-v1").catch(() => {}); // sw.js's copies of answers
  showLogin();
});
onOffline((off) => { $("#offline").hidden = !off; });
feed.onState((s) => {
  const b = $("#feed");
  b.textContent = s ? t(s) : "";
  b.className = "feed " + s;
  if (s === "live") $("#offline").hidden = true; // the server is back
});

// Installable app, offline shell (sw.js, served at /sw.js for scope "/"). Service workers need
// a secure context: https, or http on localhost / loopback.
if ("serviceWorker" in navigator && window.isSecureContext)
  navigator.serviceWorker.register("/sw.js").catch((e) => console.warn("service worker:", e.message));

(async () => {
  const r = await api("/api/v1/session");
  if (r.status === 200) start(r.body); else showLogin(r.status === 0 ? t("unreachable") : "");
})();
// the skip link focuses the page's content (an href="#main" would be taken for a route)
$("#skip").addEventListener("click", (e) => { e.preventDefault(); $("#main").focus(); });
