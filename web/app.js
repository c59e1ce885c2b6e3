// gridsense web app (first slice of issue 9): log in, then the fleet table, live from the
// WebSocket feed (docs/api.md "Live feed"). ES module, no framework, no inline script (the
// server sends a strict Content-Security-Policy).
import { STRINGS } from "/app/i18n.js";

let lang = localStorage.getItem("gs.lang") || ((navigator.language || "en").startsWith("zh") ? "zh" : "en");
const t = (k, vars = {}) =>
  (STRINGS[lang][k] || STRINGS.en[k] || k).replace(/\{(\w+)\}/g, (_, v) => vars[v]);
const $ = (sel) => document.querySelector(sel);
const el = (tag, props = {}, ...kids) => {
  const e = Object.assign(document.createElement(tag), props);
  for (const k of kids) e.append(k);
  return e;
};

let me = null;
const fleet = new Map(); // id -> terminal (REST shape, updated from the feed)
let ws = null;
let wsState = ""; // key of the feed state shown ("live", "reconnecting"), translated when drawn
let ticker = null;

async function api(path, opts = {}) {
  const r = await fetch(path, { credentials: "same-origin", ...opts });
  let body = null;
  try { body = await r.json(); } catch { /* empty or not JSON */ }
  return { status: r.status, body, headers: r.headers };
}

function fmtAgo(iso) {
  if (!iso) return t("none");
  const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  return t("ago", { n: s });
}

function chrome() {
  document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
  $("#lang").value = lang;
  $("#logout").textContent = t("logout");
  $("#logout").hidden = !me;
  $("#who").textContent = me ? `${me.user} (${me.role})` : "";
}

function showLogin(message = "") {
  me = null;
  if (ws) { ws.onclose = null; ws.close(); ws = null; }
  if (ticker) { clearInterval(ticker); ticker = null; }
  chrome();
  const err = el("p", { className: "error", role: "alert", textContent: message });
  const user = el("input", { name: "user", autocomplete: "username", required: true });
  const pw = el("input", { name: "password", type: "password", autocomplete: "current-password", required: true });
  const form = el("form", { className: "login" },
    el("h1", { textContent: t("login_title") }),
    el("label", {}, t("user"), user), el("label", {}, t("password"), pw),
    el("button", { type: "submit", textContent: t("login") }), err);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    let r;
    try {
      r = await api("/api/v1/session", {
        method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ user: user.value, password: pw.value }),
      });
    } catch { err.textContent = t("unreachable"); return; }
    if (r.status === 200) { me = r.body; showFleet(); return; }
    err.textContent = r.status === 429 ? t("too_many", { s: r.headers.get("Retry-After") || "?" })
      : r.status === 401 ? t("bad_login") : (r.body && r.body.error ? r.body.error.message : t("unreachable"));
  });
  $("#main").replaceChildren(form);
  user.focus();
}

function row(term) {
  const st = term.status || {};
  const an = term.analysis;
  return el("tr", { id: "t-" + term.id },
    el("td", { textContent: term.id }),
    el("td", { className: "wide", textContent: term.name || "" }),
    el("td", { className: term.online ? "on" : "off", textContent: term.online ? t("online") : t("offline") }),
    el("td", { textContent: fmtAgo(term.last_seen), title: term.last_seen || "" }),
    el("td", { className: "num", textContent: st.rsrp_dbm != null ? `${st.rsrp_dbm} dBm` : t("none") }),
    el("td", { className: "num wide", textContent: st.supply_v != null ? `${st.supply_v.toFixed(2)} V` : t("none") }),
    el("td", { className: "num wide", textContent: st.temperature_c != null ? `${st.temperature_c.toFixed(1)} °C` : t("none") }),
    el("td", { className: "num wide", textContent: st.buffered_blocks != null ? String(st.buffered_blocks) : t("none") }),
    el("td", { textContent: an ? (an.behind ? t("behind") : t("ok")) : t("none") }));
}

function render() {
  const terms = [...fleet.values()].sort((a, b) => a.id.localeCompare(b.id));
  const q = ($("#search") && $("#search").value || "").toLowerCase();
  const shown = terms.filter((x) => !q || x.id.toLowerCase().includes(q) || (x.name || "").toLowerCase().includes(q));
  const on = terms.filter((x) => x.online).length;
  $("#count-on").textContent = on;
  $("#count-off").textContent = terms.length - on;
  $("#live").textContent = wsState ? t(wsState) : "";
  const head = el("tr", {}, ...["id", "name", "state", "last_seen", "rsrp", "supply", "temperature", "buffered", "analysis"]
    .map((k) => el("th", { scope: "col", textContent: t(k), className: ["name", "supply", "temperature", "buffered"].includes(k) ? "wide" : "" })));
  const body = shown.length ? shown.map(row) : [el("tr", {}, el("td", { colSpan: 9, className: "note", textContent: t("empty") }))];
  $("#fleet").replaceChildren(el("thead", {}, head), el("tbody", {}, ...body));
}

function connect() {
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  ws = new WebSocket(`${proto}//${location.host}/api/v1/live`);
  ws.onopen = () => { wsState = "live"; ws.send(JSON.stringify({ subscribe: ["fleet"] })); render(); };
  ws.onmessage = (e) => {
    const m = JSON.parse(e.data);
    if (m.topic !== "fleet") return;
    const d = m.data;
    const cur = fleet.get(d.id) || { id: d.id };
    fleet.set(d.id, { ...cur, online: d.online, last_seen: d.last_seen, status: d.status, analysis: d.analysis });
    render();
  };
  ws.onclose = (e) => {
    if (e.code === 4401) { showLogin(); return; }
    ws = null;
    wsState = "reconnecting";
    render();
    setTimeout(() => { if (me && !ws) connect(); }, 2000);
  };
}

async function showFleet() {
  chrome();
  $("#main").replaceChildren(
    el("h1", { textContent: t("fleet") }),
    el("div", { className: "counts" },
      el("span", {}, el("b", { id: "count-on" }), " ", t("online")),
      el("span", {}, el("b", { id: "count-off" }), " ", t("offline")),
      el("span", { id: "live", className: "note" })),
    el("label", {}, t("search"), " ", el("input", { id: "search", type: "search" })),
    el("div", { className: "scroll" }, el("table", { id: "fleet" })));
  $("#search").addEventListener("input", render);
  const r = await api("/api/v1/terminals");
  if (r.status === 401) { showLogin(); return; }
  for (const term of (r.body && r.body.terminals) || []) fleet.set(term.id, term);
  render();
  if (!ws) connect(); // (a language switch redraws the page, not the connection)
  if (!ticker) ticker = setInterval(render, 5000); // "time since last data" keeps counting
}

$("#lang").addEventListener("change", () => {
  lang = $("#lang").value;
  localStorage.setItem("gs.lang", lang);
  if (me) showFleet(); else showLogin();
});
$("#logout").addEventListener("click", async () => {
  await api("/api/v1/session", { method: "DELETE" });
  showLogin();
});

(async () => {
  const r = await api("/api/v1/session").catch(() => null);
  if (r && r.status === 200) { me = r.body; showFleet(); } else showLogin();
})();
