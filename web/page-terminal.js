// The terminal page (issue 9, section 2): a header with the terminal's identity and state, and
// tabs, each with its own URL (#/terminal/ID/TAB): live (oscilloscope, phasors, spectrum, latest
// values: term-live.js), trends, status, events and commands (term-history.js). A tab module's
// function draws into its box and returns the function that stops its feeds and timers.
import { el, t, api, apiError, feed, href, timeEl, fmtNum, errorBox, loading } from "/app/lib.js";
import * as live from "/app/term-live.js";
import * as hist from "/app/term-history.js";

const TABS = [
  ["live", "term_tab_live", live.showLive],
  ["trends", "term_tab_trends", hist.showTrends],
  ["status", "term_tab_status", hist.showStatus],
  ["events", "term_tab_events", hist.showEvents],
  ["commands", "term_tab_commands", hist.showCommands],
];

export async function show(main, route) {
  const id = route.parts[0] || "";
  const tab = TABS.find((x) => x[0] === route.parts[1]) || TABS[0];
  document.title = `${id} · gridsense`;
  main.append(el("h1", { textContent: t("term_title", { id }) }), loading());
  const r = await api(`/api/v1/terminals/${encodeURIComponent(id)}`);
  if (r.status !== 200) { main.lastChild.replaceWith(errorBox(apiError(r))); return () => {}; }
  const term = r.body;
  const state = el("span", { id: "term-state" });
  const since = el("span", { id: "term-since" });
  const paint = (x) => {
    state.className = x.online ? "on" : "off";
    state.textContent = x.online ? t("online") : t("offline");
    since.replaceChildren(x.online ? t("term_since") : t("term_last"), " ", timeEl(x.online ? x.connected_since : x.last_seen));
  };
  paint(term);
  const loc = term.location ? `${term.location.lat.toFixed(4)}, ${term.location.lon.toFixed(4)}` : t("none");
  main.lastChild.replaceWith(
    el("div", { className: "term-head" },
      el("span", { className: "term-name", textContent: term.name || "" }), state, since,
      el("span", { className: "note", textContent: `${t("term_fw")} ${term.firmware || t("none")} · ${fmtNum(term.sample_rate, 0, "S/s")} · ${term.channels ?? t("none")} ${t("term_ch")} · ${fmtNum(term.nominal_hz, 0, "Hz")} · VT ${term.vt_ratio} · CT ${term.ct_ratio} · ${loc}` })),
    el("nav", { className: "tabs", "aria-label": t("term_tabs") },
      ...TABS.map(([k, label]) => el("a", { href: href.terminal(id, k === "live" ? "" : k), textContent: t(label),
        "aria-current": k === tab[0] ? "page" : undefined }))));
  const box = el("section", { id: "term-tab", className: "term-tab-" + tab[0] });
  main.append(box);
  const unsub = feed.subscribe(["fleet"], (m) => {
    if (m.topic !== "fleet" || m.data.id !== id) return;
    Object.assign(term, { online: m.data.online, connected_since: m.data.connected_since, last_seen: m.data.last_seen, status: m.data.status, analysis: m.data.analysis });
    paint(term);
  });
  let stop = null;
  try { stop = await tab[2](box, term, route); } catch (e) { box.replaceChildren(errorBox(t("page_failed", { msg: e.message }))); }
  return () => { unsub(); if (stop) stop(); };
}
