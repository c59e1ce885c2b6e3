// Shared helpers of the web app's pages: strings, DOM, the API, formatting, the live feed.
// Pages import only from here (and i18n.js through t()); app.js owns the shell and the router.
import { STRINGS } from "/app/i18n.js";

// ---- language -------------------------------------------------------------------------------
let lang = localStorage.getItem("gs.lang") || ((navigator.language || "en").startsWith("zh") ? "zh" : "en");
export const getLang = () => lang;
export function setLang(l) { lang = l; localStorage.setItem("gs.lang", l); }
/** The string `k` in the current language ({name} replaced from vars); English if missing. */
export const t = (k, vars = {}) =>
  String(STRINGS[lang][k] ?? STRINGS.en[k] ?? k).replace(/\{(\w+)\}/g, (_, v) => vars[v] ?? "");

// ---- DOM ------------------------------------------------------------------------------------
export const $ = (sel, root = document) => root.querySelector(sel);
export const $$ = (sel, root = document) => [...root.querySelectorAll(sel)];
/** createElement with properties (className, textContent, onclick, dataset via "data-x" keys...). */
export function el(tag, props = {}, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v === undefined || v === null) continue;
    if (k.startsWith("data-") || k.startsWith("aria-") || k === "role" || k === "for") e.setAttribute(k, v);
    else e[k] = v;
  }
  for (const k of kids.flat()) if (k !== null && k !== undefined && k !== false) e.append(k);
  return e;
}
/** A loading line, an error box (role=alert) and an empty-state line, the same on every page. */
export const loading = (what = t("loading")) => el("p", { className: "note loading", textContent: what });
export const errorBox = (msg) => el("p", { className: "error box", role: "alert", textContent: msg });
export const emptyBox = (msg) => el("p", { className: "note empty", textContent: msg });

// ---- session --------------------------------------------------------------------------------
let me = null;
let onExpired = () => {};
export const currentUser = () => me;
export function setUser(u) { me = u; }
/** Called by app.js: what to do when the API says the session is gone (show the login form). */
export function setExpiredHandler(fn) { onExpired = fn; }
const RANK = { viewer: 1, operator: 2, admin: 3 };
/** Whether the logged-in user has at least `role` (viewer < operator < admin). */
export const can = (role) => !!me && RANK[me.role] >= RANK[role];

// ---- API ------------------------------------------------------------------------------------
/**
 * fetch() of an API path with the session cookie. Resolves {status, body (parsed JSON or null),
 * headers}; status 0 and body null when the server cannot be reached. A 401 on anything but the
 * login route means the session ended: the expired handler runs (back to the login form).
 * opts.json: an object sent as the JSON body.
 */
export async function api(path, opts = {}) {
  const o = { credentials: "same-origin", ...opts };
  if (opts.json !== undefined) {
    o.body = JSON.stringify(opts.json);
    o.headers = { "Content-Type": "application/json", ...(opts.headers || {}) };
    delete o.json;
  }
  let r;
  try { r = await fetch(path, o); } catch { setOffline(true); return { status: 0, body: null, headers: new Headers() }; }
  setOffline(!!r.headers.get("X-GS-Offline"));
  let body = null;
  try { body = await r.json(); } catch { /* empty or not JSON */ }
  if (r.status === 401 && path !== "/api/v1/session") onExpired();
  return { status: r.status, body, headers: r.headers };
}
// Offline: the service worker (sw.js) answered from its copy of the last good answer (header
// X-GS-Offline), or nothing answered at all. app.js shows a banner while it lasts.
let offline = false;
const offlineFns = new Set();
function setOffline(v) { if (v !== offline) { offline = v; for (const f of offlineFns) f(v); } }
/** Calls fn(isOffline) now and whenever it changes; returns the function that stops it. */
export function onOffline(fn) { offlineFns.add(fn); fn(offline); return () => offlineFns.delete(fn); }
export const isOffline = () => offline;

/** The message to show for a failed API answer: the server's own, or "cannot be reached". */
export function apiError(r) {
  if (r.status === 0) return t("unreachable");
  if (r.body && r.body.error) return `${r.body.error.message} (${r.status} ${r.body.error.code})`;
  return t("http_error", { status: r.status });
}
export const enc = encodeURIComponent;

// ---- formatting -----------------------------------------------------------------------------
/** A number with fixed digits and its unit ("230.12 V"); t("none") for null/undefined/NaN. */
export function fmtNum(v, digits = 2, unit = "") {
  if (v === null || v === undefined || Number.isNaN(v)) return t("none");
  const s = Number(v).toFixed(digits);
  return unit ? `${s} ${unit}` : s;
}
const pad = (n, w = 2) => String(n).padStart(w, "0");
/** Local date and time "2026-12-05 17:03:04" (ms with ms=true) of an ISO time or epoch ms. */
export function fmtTime(ts, ms = false) {
  if (ts === null || ts === undefined || ts === "") return t("none");
  const d = new Date(typeof ts === "number" ? ts : Date.parse(ts));
  if (Number.isNaN(d.getTime())) return String(ts);
  const s = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  return ms ? `${s}.${pad(d.getMilliseconds(), 3)}` : s;
}
/** A <time> element: local time shown, UTC (ISO) on hover and in datetime. */
export function timeEl(ts, ms = false) {
  if (ts === null || ts === undefined || ts === "") return document.createTextNode(t("none"));
  const d = new Date(typeof ts === "number" ? ts : Date.parse(ts));
  const iso = Number.isNaN(d.getTime()) ? String(ts) : d.toISOString();
  return el("time", { dateTime: iso, title: iso.replace("T", " ").replace("Z", " UTC"), textContent: fmtTime(ts, ms) });
}
/** "12 s ago" / "5 min ago" / "3 h ago" / "2 d ago" since an ISO time. */
export function fmtAgo(iso) {
  if (!iso) return t("none");
  const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  if (s < 120) return t("ago_s", { n: s });
  if (s < 7200) return t("ago_min", { n: Math.round(s / 60) });
  if (s < 172800) return t("ago_h", { n: Math.round(s / 3600) });
  return t("ago_d", { n: Math.round(s / 86400) });
}
/** A duration in seconds as "85 ms" / "1.25 s" / "3 min 20 s". */
export function fmtDuration(s) {
  if (s === null || s === undefined) return t("none");
  if (s < 1) return `${(s * 1000).toFixed(0)} ms`;
  if (s < 60) return `${s.toFixed(2)} s`;
  return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
}

// ---- navigation -----------------------------------------------------------------------------
/** Go to an app URL ("#/terminal/T1"); the router in app.js shows the page. */
export function go(hash) { if (location.hash !== hash) location.hash = hash; }
/** The link to a page, for <a href>. */
export const href = {
  fleet: () => "#/fleet",
  terminal: (id, tab) => `#/terminal/${enc(id)}${tab ? "/" + tab : ""}`,
  events: (q) => "#/events" + (q ? "?" + new URLSearchParams(q) : ""),
  event: (id) => `#/events/${id}`,
  phase: (ref) => "#/phase" + (ref ? "?ref=" + enc(ref) : ""),
  admin: (tab = "terminals") => `#/admin/${tab}`,
};

// ---- live feed ------------------------------------------------------------------------------
/**
 * One WebSocket to /api/v1/live for the whole app (docs/api.md "Live feed"). subscribe(topics,
 * fn) adds topics (counted: two pages may want the same one) and calls fn(message) for each
 * update of those topics (and for "lost" notices); it returns the function that unsubscribes.
 * After a disconnect it reconnects every 2 s and subscribes again; onState(fn) tells "live",
 * "reconnecting" or "" (closed). A 4401 close (session ended) runs the expired handler.
 */
class Feed {
  constructor() { this.ws = null; this.refs = new Map(); this.subs = new Set(); this.states = new Set(); this.state = ""; this.timer = null; this.want = false; }
  setState(s) { this.state = s; for (const f of this.states) f(s); }
  onState(fn) { this.states.add(fn); fn(this.state); return () => this.states.delete(fn); }
  start() { this.want = true; if (!this.ws) this.connect(); }
  stop() {
    this.want = false;
    if (this.timer) { clearTimeout(this.timer); this.timer = null; }
    if (this.ws) { this.ws.onclose = null; this.ws.close(); this.ws = null; }
    this.setState("");
  }
  connect() {
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(`${proto}//${location.host}/api/v1/live`);
    this.ws = ws;
    ws.onopen = () => {
      this.setState("live");
      if (this.refs.size) ws.send(JSON.stringify({ subscribe: [...this.refs.keys()] }));
    };
    ws.onmessage = (e) => {
      let m;
      try { m = JSON.parse(e.data); } catch { return; }
      if (!m.topic || m.topic === "subscribed") return;
      for (const s of this.subs) if (s.topics.has(m.topic) || m.topic === "lost") s.fn(m);
    };
    ws.onclose = (e) => {
      this.ws = null;
      if (e.code === 4401) { this.stop(); onExpired(); return; }
      if (!this.want) return;
      this.setState("reconnecting");
      this.timer = setTimeout(() => { this.timer = null; if (this.want && !this.ws) this.connect(); }, 2000);
    };
  }
  send(obj) { if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(obj)); }
  subscribe(topics, fn) {
    const sub = { topics: new Set(topics), fn };
    this.subs.add(sub);
    const fresh = topics.filter((x) => { const n = this.refs.get(x) || 0; this.refs.set(x, n + 1); return n === 0; });
    if (fresh.length) this.send({ subscribe: fresh });
    return () => {
      if (!this.subs.delete(sub)) return;
      const gone = topics.filter((x) => { const n = this.refs.get(x) - 1; if (n) this.refs.set(x, n); else this.refs.delete(x); return !n; });
      if (gone.length) this.send({ unsubscribe: gone });
    };
  }
}
export const feed = new Feed();
