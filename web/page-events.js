// The events page (issue 9, section 2). Two views:
//   #/events[?filters]  the fleet-wide list of voltage events (GET /api/v1/events, newest first,
//                       paged with next_before), live from the feed's "events" topic, with
//                       filters kept in the URL, acknowledgement (operator, admin), and a scatter
//                       of the loaded dips and swells against the ITIC (CBEMA) and SEMI F47 curves;
//   #/events/ID[?side=&pre=&post=]  one event: its details, the stored waveform around it and
//                       its RMS(1/2) envelope (GET /api/v1/events/{id}/waveform), uPlot charts.
// The API filters kind, terminal, acknowledged state and time range; depth and duration have no
// API filter, so they are applied in the browser to the loaded events and the count says so.
// show(main, route) returns the function that undoes subscriptions, timers and charts.
import { el, t, api, apiError, can, fmtNum, fmtDuration, timeEl, href, feed, loading, errorBox, emptyBox } from "/app/lib.js";

const PAGE = 100; // events per request (the URL's limit=N, 1..1000, changes it: no control, for links)

const kindName = (k) => ({ dip: t("ev_kind_dip"), swell: t("ev_kind_swell"), interruption: t("ev_kind_interruption") })[k] || k;
/** The event's magnitude in % of its reference: residual of a dip/interruption, maximum of a swell. */
const magPct = (e) => (e.kind === "swell" ? e.maximum_pct : e.residual_pct);
const magV = (e) => (e.kind === "swell" ? e.maximum : e.residual);
const rowId = (e) => "ev-" + e.id;

// ---- tolerance curves --------------------------------------------------------------------------
// ITI (CBEMA) curve, Information Technology Industry Council, "ITI (CBEMA) Curve Application Note"
// (2000, https://www.itic.org/technical/iticurv.pdf): within the envelope equipment is expected to
// work without interruption. Lower edge: dropout (0 %) up to 20 ms, 70 % up to 0.5 s, 80 % up to
// 10 s, 90 % (steady-state tolerance) beyond. Upper edge (from 3 ms on, where this chart starts
// after it): 120 % up to 0.5 s, 110 % beyond. Durations in seconds, magnitudes in % of nominal.
const ITIC_LOW = [[0, 0], [0.02, 0], [0.02, 70], [0.5, 70], [0.5, 80], [10, 80], [10, 90], [Infinity, 90]];
const ITIC_HIGH = [[0, 120], [0.5, 120], [0.5, 110], [Infinity, 110]];
export const iticLow = (d) => (d <= 0.02 ? 0 : d <= 0.5 ? 70 : d <= 10 ? 80 : 90);
export const iticHigh = (d) => (d <= 0.5 ? 120 : 110);
/** Whether an event lies inside the ITIC envelope (a dip/interruption above the lower edge, a swell below the upper). */
export const insideItic = (e) => (e.kind === "swell" ? magPct(e) <= iticHigh(e.duration_s) : magPct(e) >= iticLow(e.duration_s));
// SEMI F47-0706 "Specification for semiconductor processing equipment voltage sag immunity"
// (SEMI, 2006; summarised e.g. by Power Standards Lab, https://www.powerstandards.com/tutorials/
// what-is-semi-f47/ and PG&E Power Quality Bulletin No. 3): equipment must ride through sags to
// 50 % for up to 200 ms, to 70 % for up to 0.5 s and to 80 % for up to 1 s. The curve's
// mandatory part spans 50 ms .. 1 s (shorter sags carry only a non-mandatory recommendation, longer
// ones nothing), so it is drawn over that span only.
const F47 = [[0.05, 50], [0.2, 50], [0.2, 70], [0.5, 70], [0.5, 80], [1, 80]];

// Phase colours as in Chinese practice (GB: A yellow, B green, C red), darkened for contrast.
const PHASE_COLOR = { a: "#b08900", b: "#2e7d32", c: "#c62828", n: "#455a64" };
const chanColor = (name, i) => PHASE_COLOR[(name.match(/^[UI]([abcn])$/) || [])[1]] || ["#1565c0", "#6a1b9a", "#ef6c00", "#00838f"][i % 4];

export function show(main, route) {
  return route.parts.length ? showEvent(main, route, route.parts[0]) : showList(main, route);
}

// ================================================================================================
// the list
// ================================================================================================

/** The filters of the URL query (all strings; "" = not set). */
function readFilters(q) {
  const f = {};
  for (const k of ["kind", "terminal", "acked", "range", "from", "to", "dmin", "dmax", "tmin", "tmax", "limit"]) f[k] = q.get(k) || "";
  if (!/^\d+$/.test(f.limit) || Number(f.limit) < 1 || Number(f.limit) > 1000) f.limit = "";
  if (!["dip", "swell", "interruption"].includes(f.kind)) f.kind = "";
  if (!["true", "false"].includes(f.acked)) f.acked = "";
  if (!["1h", "24h", "7d", "30d", "custom"].includes(f.range)) f.range = f.from || f.to ? "custom" : "";
  return f;
}
const RANGE_MS = { "1h": 3600e3, "24h": 86400e3, "7d": 7 * 86400e3, "30d": 30 * 86400e3 };
/** [from, to] in epoch ms (null = open) of the time filter, evaluated now. */
function rangeMs(f) {
  if (RANGE_MS[f.range]) return [Date.now() - RANGE_MS[f.range], null];
  if (f.range !== "custom") return [null, null];
  const p = (s) => { const v = Date.parse(s); return Number.isNaN(v) ? null : v; };
  return [f.from ? p(f.from) : null, f.to ? p(f.to) : null];
}
const num = (s) => (s === "" || s === undefined || Number.isNaN(Number(s)) ? null : Number(s));
/** How many filters are set (for the folded filter box's summary). */
function activeFilters(f) {
  return ["kind", "terminal", "acked", "range"].filter((k) => f[k]).length
    + ["dmin", "dmax", "tmin", "tmax"].filter((k) => num(f[k]) !== null).length;
}
/** Whether the depth/duration filters (applied here, the API has none) hide anything. */
const clientFiltered = (f) => [f.dmin, f.dmax, f.tmin, f.tmax].some((x) => num(x) !== null);
function passesClient(f, e) {
  const m = magPct(e);
  const [dmin, dmax, tmin, tmax] = [num(f.dmin), num(f.dmax), num(f.tmin), num(f.tmax)];
  if (dmin !== null && !(m >= dmin)) return false;
  if (dmax !== null && !(m <= dmax)) return false;
  if (tmin !== null && !(e.duration_s >= tmin)) return false;
  if (tmax !== null && !(e.duration_s <= tmax)) return false;
  return true;
}
/** Whether a live event belongs to the list the API filters asked for. */
function passesApi(f, e) {
  if (f.kind && e.kind !== f.kind) return false;
  if (f.terminal && e.terminal !== f.terminal) return false;
  if (f.acked && String(!!e.acked) !== f.acked) return false;
  const [from, to] = rangeMs(f);
  const s = Date.parse(e.start);
  if (from !== null && s < from) return false;
  if (to !== null && s >= to) return false;
  return true;
}
/** ISO UTC -> the value of a datetime-local input (local time), and back. */
function isoToLocal(iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return "";
  const p = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
}
const localToIso = (v) => { const d = new Date(v); return v && !Number.isNaN(d.getTime()) ? d.toISOString() : ""; };

async function showList(main, route) {
  document.title = `${t("ev_title")} · gridsense`;
  const f = readFilters(route.query);
  const events = new Map(); // id -> E
  let nextBefore = null;
  let ready = false; // the first page of the current filters is loaded
  let gen = 0; // ignores answers of a request superseded by a filter change
  let pending = 0;
  const fresh = new Set(); // ids added live, highlighted for a while
  const timers = new Set();
  const operator = can("operator");

  // ---- filter controls (labels on every input; the form never submits) ----
  const sel = (id, value, opts) => el("select", { id, name: id },
    ...opts.map(([v, label]) => el("option", { value: v, textContent: label, selected: v === value })));
  const kindIn = sel("ev-kind", f.kind, [["", t("ev_all_kinds")], ["dip", t("ev_kind_dip")], ["swell", t("ev_kind_swell")], ["interruption", t("ev_kind_interruption")]]);
  const termIn = sel("ev-terminal", f.terminal, [["", t("ev_all_terminals")], ...(f.terminal ? [[f.terminal, f.terminal]] : [])]);
  const ackIn = sel("ev-acked", f.acked, [["", t("ev_all_states")], ["false", t("ev_open")], ["true", t("ev_acked")]]);
  const rangeIn = sel("ev-range", f.range, [["", t("ev_range_all")], ["1h", t("ev_range_hour")], ["24h", t("ev_range_day")], ["7d", t("ev_range_week")], ["30d", t("ev_range_month")], ["custom", t("ev_range_custom")]]);
  const fromIn = el("input", { id: "ev-from", name: "ev-from", type: "datetime-local", value: isoToLocal(f.from) });
  const toIn = el("input", { id: "ev-to", name: "ev-to", type: "datetime-local", value: isoToLocal(f.to) });
  const numIn = (id, value, step) => el("input", { id, name: id, type: "number", inputMode: "decimal", min: "0", step, value, className: "num-in" });
  const dminIn = numIn("ev-dmin", f.dmin, "1"), dmaxIn = numIn("ev-dmax", f.dmax, "1");
  const tminIn = numIn("ev-tmin", f.tmin, "0.001"), tmaxIn = numIn("ev-tmax", f.tmax, "0.001");
  const lab = (input, text) => el("label", { for: input.id, textContent: text });
  const custom = el("div", { className: "ev-custom", hidden: f.range !== "custom" },
    el("span", {}, lab(fromIn, t("ev_from")), fromIn), el("span", {}, lab(toIn, t("ev_to")), toIn));
  const clearBtn = el("button", { type: "button", id: "ev-clear", textContent: t("ev_clear") });
  const form = el("form", { className: "ev-filters", "aria-label": t("ev_filters") },
    el("span", {}, lab(kindIn, t("ev_kind")), kindIn),
    el("span", {}, lab(termIn, t("ev_terminal")), termIn),
    el("span", {}, lab(ackIn, t("ev_state")), ackIn),
    el("span", {}, lab(rangeIn, t("ev_range")), rangeIn),
    custom,
    el("fieldset", {}, el("legend", { textContent: t("ev_depth_range") }),
      lab(dminIn, t("ev_min")), dminIn, lab(dmaxIn, t("ev_max")), dmaxIn),
    el("fieldset", {}, el("legend", { textContent: t("ev_dur_range") }),
      lab(tminIn, t("ev_min")), tminIn, lab(tmaxIn, t("ev_max")), tmaxIn),
    clearBtn);
  form.addEventListener("submit", (e) => e.preventDefault());
  // open on a desktop; on a phone folded unless a filter is set (the list comes first there)
  const summary = el("summary");
  const filterBox = el("details", { className: "ev-filter-box", open: !window.matchMedia("(max-width: 600px)").matches || activeFilters(f) > 0 },
    summary, form);
  const paintSummary = () => { const n = activeFilters(f); summary.textContent = n ? t("ev_filters_active", { n }) : t("ev_filters"); };
  paintSummary();

  const count = el("p", { id: "ev-count", className: "ev-count", role: "status" });
  const msg = el("div", { id: "ev-msg", "aria-live": "assertive" });
  const status = el("div", { id: "ev-status" });
  const table = el("table", { id: "ev-table" });
  const more = el("button", { type: "button", id: "ev-more", textContent: t("ev_load_more"), hidden: true });
  const scatterBox = el("div", { id: "ev-scatter", className: "ev-scatter" });
  const scatterNote = el("p", { id: "ev-scatter-note", className: "note" });
  main.append(
    el("h1", { textContent: t("ev_title") }),
    filterBox, count, msg,
    el("div", { className: "ev-body" },
      el("section", { className: "ev-scatter-sec", "aria-labelledby": "ev-scatter-h" },
        el("h2", { id: "ev-scatter-h", textContent: t("ev_scatter_title") }), scatterBox, scatterNote),
      el("section", { className: "ev-list-sec", "aria-labelledby": "ev-list-h" },
        el("h2", { id: "ev-list-h", textContent: t("ev_list_title") }),
        status, el("div", { className: "scroll" }, table), more)));

  function keepUrl() { // the filters are part of the page's address (links can be shared)
    const p = new URLSearchParams();
    for (const k of ["kind", "terminal", "acked", "range"]) if (f[k]) p.set(k, f[k]);
    if (f.range === "custom") { if (f.from) p.set("from", f.from); if (f.to) p.set("to", f.to); }
    for (const k of ["dmin", "dmax", "tmin", "tmax"]) if (num(f[k]) !== null) p.set(k, f[k]);
    if (f.limit) p.set("limit", f.limit);
    const h = "#/events" + (p.size ? "?" + p : "");
    if (location.hash !== h) history.replaceState(null, "", h);
    paintSummary();
  }

  // ---- rows ----
  function stateCell(e) {
    const td = el("td", { className: "ev-state" });
    if (e.acked) td.append(el("span", { className: "ev-acked", textContent: t("ev_acked_by", { user: e.acked_by || t("none") }) }), " ", timeEl(e.acked_at));
    else td.append(el("span", { className: "warn", textContent: t("ev_open") }));
    if (operator && !e.acked) td.append(" ", ackButton(e));
    return td;
  }
  function ackButton(e) {
    const b = el("button", { type: "button", className: "ev-ack", textContent: t("ev_ack"), "aria-label": t("ev_ack_label", { id: e.id }) });
    b.addEventListener("click", () => acknowledge(e.id, b));
    return b;
  }
  async function acknowledge(id, button) {
    button.disabled = true;
    const r = await api(`/api/v1/events/${id}/ack`, { method: "POST" });
    if (r.status === 200) {
      events.set(id, r.body);
      msg.replaceChildren(el("p", { className: "note ev-ok", textContent: t("ev_ack_done", { id }) }));
    } else {
      // 409: someone else acknowledged it meanwhile; the message says who and when
      msg.replaceChildren(errorBox(r.status === 409 ? t("ev_ack_conflict", { msg: r.body?.error?.message || "" }) : t("ev_ack_failed", { id, msg: apiError(r) })));
      const g = await api(`/api/v1/events/${id}`);
      if (g.status === 200) events.set(id, g.body);
      else button.disabled = false;
    }
    later();
  }
  function row(e) {
    const m = magPct(e);
    const tr = el("tr", { id: rowId(e), className: `ev-row k-${e.kind}${fresh.has(e.id) ? " new" : ""}`,
      "data-id": e.id, "data-terminal": e.terminal, "data-kind": e.kind, "data-duration": e.duration_s, "data-pct": m ?? "" },
      el("td", {}, el("a", { href: href.event(e.id), className: "ev-open", title: t("ev_open_label", { id: e.id, kind: kindName(e.kind), terminal: e.terminal }) }, timeEl(e.start, true))),
      el("td", {}, el("a", { href: href.terminal(e.terminal), textContent: e.terminal })),
      el("td", {}, el("span", { className: "ev-kind k-" + e.kind, textContent: kindName(e.kind) })),
      el("td", { className: "num ev-dur", textContent: fmtDuration(e.duration_s) }),
      el("td", { className: "num ev-pct", textContent: fmtNum(m, 1, "%") }),
      el("td", { className: "num wide", textContent: fmtNum(magV(e), 2, "V") }),
      el("td", { className: "wide", textContent: `${(e.channels || []).join(" ")}${e.worst_channel ? " (" + e.worst_channel + ")" : ""}` }),
      stateCell(e));
    return tr;
  }

  function shownEvents() {
    return [...events.values()].filter((e) => passesClient(f, e))
      .sort((a, b) => (b.start_ns > a.start_ns ? 1 : b.start_ns < a.start_ns ? -1 : (b.id || 0) - (a.id || 0)));
  }

  function draw() {
    pending = 0;
    if (!ready) return; // loading or failed: the status line says so
    const list = shownEvents();
    const total = events.size;
    count.textContent = clientFiltered(f)
      ? t("ev_count_of", { n: list.length, total })
      : t("ev_count", { n: total });
    if (nextBefore !== null) count.textContent += " " + t("ev_count_more");
    more.hidden = nextBefore === null;
    const head = el("tr", {}, ...["ev_col_start", "ev_col_terminal", "ev_col_kind", "ev_col_duration", "ev_col_depth", "ev_col_value", "ev_col_channels", "ev_col_state"]
      .map((k, i) => el("th", { scope: "col", className: i === 5 || i === 6 ? "wide" : "", textContent: colName(k) })));
    table.replaceChildren(el("thead", {}, head), el("tbody", {}, ...list.map(row)));
    table.hidden = !list.length;
    if (!list.length)
      status.replaceChildren(emptyBox(total ? t("ev_empty_client") : anyFilter() ? t("ev_empty") : t("ev_empty_none")));
    else status.replaceChildren();
    drawScatter(scatterBox, list.filter((e) => magPct(e) !== null && magPct(e) !== undefined));
    const outside = list.filter((e) => !insideItic(e)).length;
    scatterNote.textContent = list.length ? t("ev_itic_outside", { n: outside, total: list.length }) : "";
  }
  const colName = (k) => ({ ev_col_start: t("ev_col_start"), ev_col_terminal: t("ev_col_terminal"), ev_col_kind: t("ev_col_kind"),
    ev_col_duration: t("ev_col_duration"), ev_col_depth: t("ev_col_depth"), ev_col_value: t("ev_col_value"),
    ev_col_channels: t("ev_col_channels"), ev_col_state: t("ev_col_state") })[k];
  const anyFilter = () => !!(f.kind || f.terminal || f.acked || f.range || clientFiltered(f));
  const later = () => { if (!pending) pending = requestAnimationFrame(draw); };

  // ---- loading ----
  function query(before) {
    const p = new URLSearchParams({ limit: f.limit || String(PAGE) });
    for (const k of ["kind", "terminal", "acked"]) if (f[k]) p.set(k, f[k]);
    const [from, to] = rangeMs(f);
    if (from !== null) p.set("from", new Date(from).toISOString());
    if (to !== null) p.set("to", new Date(to).toISOString());
    if (before !== null && before !== undefined) p.set("before", String(before));
    return "/api/v1/events?" + p;
  }
  async function load(before = null) {
    const my = ++gen;
    if (before === null) { ready = false; events.clear(); nextBefore = null; table.hidden = true; status.replaceChildren(loading()); count.textContent = ""; }
    else { more.disabled = true; more.textContent = t("loading"); }
    const r = await api(query(before));
    if (my !== gen) return;
    more.disabled = false;
    more.textContent = t("ev_load_more");
    if (r.status !== 200) {
      const retry = el("button", { type: "button", textContent: t("ev_retry") });
      retry.addEventListener("click", () => { msg.replaceChildren(); load(before); });
      // the first page failed: in place of the list; an older page: above the list, which stays
      (before === null ? status : msg).replaceChildren(errorBox(apiError(r)), retry);
      return;
    }
    for (const e of r.body.events) events.set(e.id, e);
    nextBefore = r.body.next_before;
    ready = true;
    draw();
  }
  more.addEventListener("click", () => { if (nextBefore !== null) load(nextBefore); });

  // ---- filter changes: the API's filters reload, the browser's only redraw ----
  const apiChange = () => {
    f.kind = kindIn.value; f.terminal = termIn.value; f.acked = ackIn.value; f.range = rangeIn.value;
    custom.hidden = f.range !== "custom";
    f.from = f.range === "custom" ? localToIso(fromIn.value) : "";
    f.to = f.range === "custom" ? localToIso(toIn.value) : "";
    keepUrl();
    load();
  };
  for (const x of [kindIn, termIn, ackIn, rangeIn, fromIn, toIn]) x.addEventListener("change", apiChange);
  const clientChange = () => {
    f.dmin = dminIn.value; f.dmax = dmaxIn.value; f.tmin = tminIn.value; f.tmax = tmaxIn.value;
    keepUrl();
    later();
  };
  for (const x of [dminIn, dmaxIn, tminIn, tmaxIn]) x.addEventListener("input", clientChange);
  clearBtn.addEventListener("click", () => {
    for (const x of [kindIn, termIn, ackIn, rangeIn]) x.value = "";
    for (const x of [fromIn, toIn, dminIn, dmaxIn, tminIn, tmaxIn]) x.value = "";
    clientChange();
    apiChange();
  });

  // the terminal filter lists every terminal (ids only)
  api("/api/v1/terminals").then((r) => {
    if (r.status !== 200 || !termIn.isConnected) return;
    const ids = r.body.terminals.map((x) => x.id);
    if (f.terminal && !ids.includes(f.terminal)) ids.unshift(f.terminal);
    termIn.replaceChildren(el("option", { value: "", textContent: t("ev_all_terminals") }),
      ...ids.map((id) => el("option", { value: id, textContent: id, selected: id === f.terminal })));
  });

  // ---- live: new events from the feed (each the stored event, with its id: docs/api.md
  // "Live feed"); after a reconnect, the first page again (merged) ----
  function flash(key) { // highlighted for 5 s
    fresh.add(key);
    const tm = setTimeout(() => { timers.delete(tm); fresh.delete(key); later(); }, 5000);
    timers.add(tm);
  }
  const unsub = feed.subscribe(["events"], (m) => {
    if (m.topic !== "events" || !m.data || !m.data.event) return;
    const e = m.data.event;
    if (!passesApi(f, e) || events.has(e.id)) return;
    events.set(e.id, e);
    flash(e.id);
    later();
  });
  let lastState = feed.state;
  const unstate = feed.onState(async (s) => {
    const was = lastState;
    lastState = s;
    if (s !== "live" || was !== "reconnecting") return;
    const my = gen;
    const r = await api(query(null));
    if (my !== gen || r.status !== 200) return;
    for (const e of r.body.events) if (!events.has(e.id)) events.set(e.id, e);
    later();
  });

  const ro = new ResizeObserver(() => later());
  ro.observe(scatterBox);
  await load();
  return () => {
    gen++;
    unsub(); unstate(); ro.disconnect();
    for (const x of timers) clearTimeout(x);
    if (pending) cancelAnimationFrame(pending);
  };
}

// ---- the scatter (SVG drawn here: a log axis, two step curves and points that are links) ------
const SVGNS = "http://www.w3.org/2000/svg";
function svg(tag, attrs = {}, ...kids) {
  const e = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined && v !== null) e.setAttribute(k, v);
  for (const k of kids.flat()) if (k !== null && k !== undefined) e.append(k);
  return e;
}
const X_MIN = 0.01, X_MAX = 100, Y_MIN = 0, Y_MAX = 160;

function drawScatter(box, list) {
  const W = Math.max(300, Math.round(box.clientWidth || 600));
  const H = Math.round(Math.min(420, Math.max(260, W * 0.5)));
  const m = { l: 62, r: 22, t: 10, b: 44 };
  const pw = W - m.l - m.r, ph = H - m.t - m.b;
  const clampD = (d) => Math.min(X_MAX, Math.max(X_MIN, d));
  const X = (d) => m.l + ((Math.log10(clampD(d)) - Math.log10(X_MIN)) / (Math.log10(X_MAX) - Math.log10(X_MIN))) * pw;
  const Y = (p) => m.t + (1 - (Math.min(Y_MAX, Math.max(Y_MIN, p)) - Y_MIN) / (Y_MAX - Y_MIN)) * ph;
  const path = (pts) => pts.map(([d, p], i) => `${i ? "L" : "M"}${X(d).toFixed(1)},${Y(p).toFixed(1)}`).join("");
  const clip = (pts) => pts.map(([d, p]) => [Math.min(X_MAX, Math.max(X_MIN, d)), p]);
  const low = clip(ITIC_LOW), high = clip(ITIC_HIGH);

  const g = [];
  // grid and ticks
  for (const d of [0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100]) {
    const major = [0.01, 0.1, 1, 10, 100].includes(d);
    g.push(svg("line", { x1: X(d), x2: X(d), y1: m.t, y2: m.t + ph, class: major ? "grid major" : "grid" }));
    if (major || W > 560) g.push(svg("text", { x: X(d), y: m.t + ph + 14, class: "tick", "text-anchor": "middle" }, d < 1 ? `${Math.round(d * 1000)} ms` : `${d} s`));
  }
  for (let p = 0; p <= Y_MAX; p += 20) {
    g.push(svg("line", { x1: m.l, x2: m.l + pw, y1: Y(p), y2: Y(p), class: p === 100 ? "grid major" : "grid" }));
    g.push(svg("text", { x: m.l - 4, y: Y(p) + 4, class: "tick", "text-anchor": "end" }, `${p} %`));
  }
  // ITIC: the band between the edges, then the edges; SEMI F47: the band above its steps up to 100 %
  g.push(svg("path", { d: path(high) + path([...low].reverse()).replace(/^M/, "L") + "Z", class: "itic-band" }));
  g.push(svg("path", { d: path(low), class: "itic-line" }), svg("path", { d: path(high), class: "itic-line" }));
  g.push(svg("path", { d: path([[0.05, 100], ...F47, [1, 100]]) + "Z", class: "f47-band" }));
  g.push(svg("path", { d: path(F47), class: "f47-line" }));
  // axes and their labels
  g.push(svg("rect", { x: m.l, y: m.t, width: pw, height: ph, class: "frame" }));
  g.push(svg("text", { x: m.l + pw / 2, y: H - 6, class: "axis", "text-anchor": "middle" }, t("ev_axis_duration")));
  g.push(svg("text", { x: 12, y: m.t + ph / 2, class: "axis", "text-anchor": "middle", transform: `rotate(-90 12 ${m.t + ph / 2})` },
    W < 560 ? t("ev_axis_magnitude_short") : t("ev_axis_magnitude")));
  // points: each a link to its event
  for (const e of list) {
    const d = e.duration_s, p = magPct(e);
    const label = t("ev_point", { kind: kindName(e.kind), terminal: e.terminal, dur: fmtDuration(d), pct: fmtNum(p, 1, "%") });
    g.push(svg("a", { href: href.event(e.id), "aria-label": label,
      class: "pt k-" + e.kind, "data-id": e.id, "data-duration": d, "data-pct": p },
      svg("title", {}, label),
      svg("circle", { cx: X(d).toFixed(1), cy: Y(p).toFixed(1), r: W < 500 ? 6 : 5 })));
  }
  const chart = svg("svg", { width: W, height: H, viewBox: `0 0 ${W} ${H}`, role: "group", "aria-label": t("ev_scatter_title"), class: "scatter" }, g);
  const legend = el("ul", { className: "legend" },
    ...[["dip", "ev_kind_dip"], ["swell", "ev_kind_swell"], ["interruption", "ev_kind_interruption"]].map(([k, s]) =>
      el("li", {}, el("span", { className: "sw pt-" + k, "aria-hidden": "true" }), legendText(s))),
    el("li", {}, el("span", { className: "sw itic", "aria-hidden": "true" }), t("ev_legend_itic")),
    el("li", {}, el("span", { className: "sw f47", "aria-hidden": "true" }), t("ev_legend_semi")));
  box.replaceChildren(chart, legend);
}
const legendText = (k) => ({ ev_kind_dip: t("ev_kind_dip"), ev_kind_swell: t("ev_kind_swell"), ev_kind_interruption: t("ev_kind_interruption") })[k];

// ================================================================================================
// one event
// ================================================================================================

const PRE = ["0.1", "0.2", "0.5", "1", "2", "5"];
const POST = ["0.2", "0.5", "1", "2", "5", "10"];

async function showEvent(main, route, idStr) {
  const id = Number(idStr);
  document.title = `${t("ev_event_title", { id: idStr })} · gridsense`;
  const q = route.query;
  const opt = {
    side: q.get("side") === "secondary" ? "secondary" : "primary",
    pre: PRE.includes(q.get("pre")) ? q.get("pre") : "0.5",
    post: POST.includes(q.get("post")) ? q.get("post") : "1",
  };
  const charts = [];
  let alive = true;
  const back = el("p", { className: "ev-back" }, el("a", { href: "#/events", textContent: t("ev_back") }));
  const h1 = el("h1", { textContent: t("ev_event_title", { id: idStr }) });
  main.append(back, h1);
  if (!Number.isInteger(id) || id < 1) { main.append(errorBox(t("ev_bad_id", { id: idStr }))); return () => {}; }
  const body = el("div", {}, loading());
  main.append(body);
  const r = await api(`/api/v1/events/${id}`);
  if (!alive) return () => {};
  if (r.status !== 200) { body.replaceChildren(errorBox(apiError(r))); return () => {}; }
  let ev = r.body;
  h1.textContent = t("ev_event_head", { kind: kindName(ev.kind), terminal: ev.terminal, id });

  // ---- details ----
  const details = el("dl", { id: "ev-details", className: "ev-details" });
  const ackMsg = el("div", { id: "ev-ack-msg", "aria-live": "assertive" });
  function drawDetails() {
    const row = (key, ...v) => [el("dt", { textContent: key }), el("dd", {}, ...v)];
    const magLabel = ev.kind === "swell" ? t("ev_maximum") : t("ev_residual");
    const inside = insideItic(ev);
    const ack = [];
    if (ev.acked) ack.push(el("span", { id: "ev-acked-by", textContent: t("ev_acked_by", { user: ev.acked_by || t("none") }) }), " ", timeEl(ev.acked_at, true));
    else {
      ack.push(el("span", { className: "warn", id: "ev-acked-by", textContent: t("ev_open") }));
      if (can("operator")) {
        const b = el("button", { type: "button", id: "ev-ack", className: "ev-ack", textContent: t("ev_ack") });
        b.addEventListener("click", async () => {
          b.disabled = true;
          const a = await api(`/api/v1/events/${id}/ack`, { method: "POST" });
          if (a.status === 200) { ev = a.body; ackMsg.replaceChildren(el("p", { className: "note ev-ok", textContent: t("ev_ack_done", { id }) })); }
          else {
            ackMsg.replaceChildren(errorBox(a.status === 409 ? t("ev_ack_conflict", { msg: a.body?.error?.message || "" }) : t("ev_ack_failed", { id, msg: apiError(a) })));
            const g = await api(`/api/v1/events/${id}`);
            if (g.status === 200) ev = g.body; else b.disabled = false;
          }
          if (alive) drawDetails();
        });
        ack.push(" ", b);
      }
    }
    details.replaceChildren(
      ...row(t("ev_terminal"), el("a", { href: href.terminal(ev.terminal), id: "ev-term", textContent: ev.terminal })),
      ...row(t("ev_kind"), el("span", { id: "ev-kind-v", className: "ev-kind k-" + ev.kind, textContent: kindName(ev.kind) })),
      ...row(t("ev_start"), timeEl(ev.start, true)),
      ...row(t("ev_duration"), el("span", { id: "ev-dur-v", textContent: fmtDuration(ev.duration_s) }), ev.cut_short ? el("span", { className: "warn", textContent: " " + t("ev_cut_short") }) : ""),
      ...row(magLabel, el("span", { id: "ev-pct-v", textContent: fmtNum(magPct(ev), 1, "%") }), ` (${fmtNum(magV(ev), 2, "V")} ${t("ev_secondary_note")})`),
      ...row(t("ev_reference"), `${fmtNum(ev.reference, 3, "V")} ${t("ev_secondary_note")}, ${ev.reference_kind === "declared" ? t("ev_ref_declared") : ev.reference_kind === "sliding" ? t("ev_ref_sliding") : ev.reference_kind || t("none")}`),
      ...row(t("ev_channels"), (ev.channels || []).join(", ") || t("none")),
      ...row(t("ev_worst"), ev.worst_channel || t("none")),
      ...row(t("ev_itic"), el("span", { className: inside ? "on" : "off", textContent: inside ? t("ev_itic_inside") : t("ev_itic_out") })),
      ...row(t("ev_state"), ...ack));
  }
  drawDetails();

  // ---- waveform controls and charts ----
  const sideIn = el("select", { id: "ev-side" }, ...["primary", "secondary"].map((s) =>
    el("option", { value: s, selected: s === opt.side, textContent: s === "primary" ? t("ev_primary") : t("ev_secondary") })));
  const preIn = el("select", { id: "ev-pre" }, ...PRE.map((s) => el("option", { value: s, selected: s === opt.pre, textContent: `${s} s` })));
  const postIn = el("select", { id: "ev-post" }, ...POST.map((s) => el("option", { value: s, selected: s === opt.post, textContent: `${s} s` })));
  const reset = el("button", { type: "button", id: "ev-reset", textContent: t("ev_reset_zoom") });
  const lab = (input, text) => el("label", { for: input.id, textContent: text });
  const wave = el("div", { id: "ev-wave" });
  body.replaceChildren(
    el("div", { className: "ev-grid" },
      el("section", { "aria-labelledby": "ev-det-h" }, el("h2", { id: "ev-det-h", textContent: t("ev_details") }), details, ackMsg),
      el("section", { className: "ev-wave-sec", "aria-labelledby": "ev-wave-h" },
        el("h2", { id: "ev-wave-h", textContent: t("ev_waveform") }),
        el("div", { className: "ev-filters" },
          el("span", {}, lab(sideIn, t("ev_side")), sideIn),
          el("span", {}, lab(preIn, t("ev_pre")), preIn),
          el("span", {}, lab(postIn, t("ev_post")), postIn),
          reset),
        wave)));

  function keepUrl() {
    const p = new URLSearchParams();
    if (opt.side !== "primary") p.set("side", opt.side);
    if (opt.pre !== "0.5") p.set("pre", opt.pre);
    if (opt.post !== "1") p.set("post", opt.post);
    const h = `#/events/${id}` + (p.size ? "?" + p : "");
    if (location.hash !== h) history.replaceState(null, "", h);
  }
  let wgen = 0;
  let rate; // the terminal's sample rate (S/s), read once
  async function loadWave() {
    const my = ++wgen;
    destroyCharts();
    wave.replaceChildren(loading(t("ev_wave_loading")));
    // raw samples for up to 100,000 sample sets (25 s at 4 kS/s); a longer window as an envelope
    // of 4000 buckets (about 2 per pixel of a wide chart) rather than 100,000
    if (rate === undefined) {
      const tr = await api(`/api/v1/terminals/${encodeURIComponent(ev.terminal)}`);
      rate = tr.status === 200 && tr.body.sample_rate ? tr.body.sample_rate : null;
    }
    const sets = (Number(opt.pre) + ev.duration_s + Number(opt.post)) * (rate || 4000);
    const maxPoints = sets <= 100000 ? 100000 : 4000;
    const w = await api(`/api/v1/events/${id}/waveform?pre=${opt.pre}&post=${opt.post}&side=${opt.side}&max_points=${maxPoints}`);
    if (!alive || my !== wgen) return;
    if (w.status !== 200) { wave.replaceChildren(errorBox(apiError(w))); return; }
    drawWave(w.body);
  }
  for (const [input, k] of [[sideIn, "side"], [preIn, "pre"], [postIn, "post"]])
    input.addEventListener("change", () => { opt[k] = input.value; keepUrl(); loadWave(); });

  function destroyCharts() { for (const c of charts) c.destroy(); charts.length = 0; }

  function drawWave(w) {
    const t0 = w.event.start_ns; // x: ms from the event's start
    const durMs = w.event.duration_ns / 1e6;
    const xr = [-Number(opt.pre) * 1000, durMs + Number(opt.post) * 1000];
    const notes = [];
    if (w.truncated) notes.push(t("ev_wave_truncated"));
    const realGaps = (w.gaps || []).filter((g) => g.to_ns > g.from_ns);
    if (realGaps.length) notes.push(t("ev_wave_gaps", { n: realGaps.length, ms: fmtNum(realGaps.reduce((s, g) => s + (g.to_ns - g.from_ns), 0) / 1e6, 0) }));
    if (!w.segments.length) {
      wave.replaceChildren(emptyBox(t("ev_wave_none")), ...notes.map((n) => el("p", { className: "note", textContent: n })));
      return;
    }
    if (w.mode === "envelope") notes.push(t("ev_wave_envelope", { n: w.max_points }));
    const chans = [];
    for (const s of w.segments) for (const c of s.channels) if (!chans.find((x) => x.name === c.name)) chans.push(c);
    const volts = chans.filter((c) => c.kind === "voltage"), amps = chans.filter((c) => c.kind === "current");
    // the RMS(1/2) summary: the extreme value over the voltage channels, in % of the reference
    const ratio = w.side === "primary" ? w.vt_ratio || 1 : 1;
    const ref = w.event.reference * ratio;
    let ext = null, extCh = "";
    const swell = w.event.kind === "swell";
    for (const s of w.rms_half?.segments || []) for (const [ch, vs] of Object.entries(s.values))
      for (const v of vs) if (v !== null && (ext === null || (swell ? v > ext : v < ext))) { ext = v; extCh = ch; }
    const summary = el("p", { id: "ev-rms-summary", className: "ev-rms-summary" });
    if (ext !== null) {
      const vars = { v: fmtNum(ext, ext > 1000 ? 0 : 2, "V"), ch: extCh };
      summary.append(swell ? t("ev_rms_max", vars) : t("ev_rms_min", vars), " ",
        el("b", { id: "ev-rms-pct", textContent: fmtNum(ref ? (ext / ref) * 100 : null, 1, "%") }), " ", t("ev_of_reference", { v: fmtNum(ref, ref > 1000 ? 0 : 2, "V") }));
      summary.dataset.v = ext;
      summary.dataset.pct = ref ? (ext / ref) * 100 : "";
    }
    const unitSide = w.side === "primary" ? t("ev_primary") : t("ev_secondary");
    const boxes = [];
    const mk = (cls, title) => { const b = el("figure", { className: "ev-chart " + cls }, el("figcaption", { textContent: title })); boxes.push(b); return b; };
    const vBox = volts.length ? mk("ev-chart-v", t("ev_chart_voltage", { side: unitSide })) : null;
    const iBox = amps.length ? mk("ev-chart-i", t("ev_chart_current", { side: unitSide })) : null;
    const rBox = w.rms_half?.segments?.length ? mk("ev-chart-rms", t("ev_chart_rms", { side: unitSide })) : null;
    wave.replaceChildren(summary, ...notes.map((n) => el("p", { className: "note ev-wave-note", textContent: n })), ...boxes,
      el("p", { className: "note", textContent: t("ev_zoom_hint") }));
    if (typeof window.uPlot !== "function") { wave.append(errorBox(t("ev_no_uplot"))); return; }

    const sync = { busy: false };
    const mkPlot = (box, data, series, yLabel, extra = {}) => {
      const width = Math.max(280, box.clientWidth || 600);
      const u = new window.uPlot({
        width, height: width < 500 ? 200 : 240,
        scales: { x: { time: false, min: xr[0], max: xr[1] } },
        axes: [{ label: t("ev_axis_time"), size: 40 }, { label: yLabel, size: 64 }],
        series: [{ label: t("ev_time_ms"), value: (u, v) => (v === null ? "" : `${v.toFixed(2)} ms`) }, ...series],
        cursor: { sync: { key: "ev-" + id }, drag: { x: true, y: false } },
        legend: { live: true },
        hooks: {
          drawClear: [(u) => shadeEvent(u, durMs)],
          draw: extra.lines ? [(u) => hLines(u, extra.lines)] : [],
          setScale: [(u, key) => {
            if (key !== "x" || sync.busy) return;
            sync.busy = true;
            for (const c of charts) if (c !== u) c.setScale("x", { min: u.scales.x.min, max: u.scales.x.max });
            sync.busy = false;
          }],
        },
      }, data, box);
      touchZoom(u);
      box.uplot = u; // for the browser test: the plotted data
      charts.push(u);
      return u;
    };
    const lineSeries = (cs, unit) => cs.map((c, i) => ({ label: c.name, stroke: chanColor(c.name, i), width: 1.2, spanGaps: false,
      value: (u, v) => (v === null ? "" : fmtNum(v, Math.abs(v) >= 1000 ? 0 : 2, unit)) }));
    if (vBox) mkPlot(vBox, waveData(w, volts, t0), lineSeries(volts, "V"), t("ev_axis_volt"));
    if (iBox) mkPlot(iBox, waveData(w, amps, t0), lineSeries(amps, "A"), t("ev_axis_amp"));
    if (rBox) {
      const rc = Object.keys(w.rms_half.segments[0].values);
      const lines = ref ? [[ref, "ref"], [ref * 0.9, "thr"], [ref * 1.1, "thr"]] : [];
      mkPlot(rBox, rmsData(w.rms_half, rc, t0), lineSeries(rc.map((name) => ({ name })), "V"), t("ev_axis_rms"), { lines });
    }
    reset.onclick = () => { for (const c of charts) c.setScale("x", { min: xr[0], max: xr[1] }); };
  }

  const onResize = () => { for (const c of charts) { const w = Math.max(280, c.root.parentElement.clientWidth || 600); c.setSize({ width: w, height: w < 500 ? 200 : 240 }); } };
  window.addEventListener("resize", onResize);
  loadWave();
  return () => { alive = false; wgen++; window.removeEventListener("resize", onResize); destroyCharts(); };
}

/**
 * uPlot data for some channels of a waveform reply: x in ms from t0, one column per channel.
 * Each segment is its own run and a null row separates segments (uPlot leaves a gap there, never
 * joining across a gap). An envelope bucket becomes two rows (its min, then its max at the same
 * time), so the line sweeps the band between them.
 */
function waveData(w, chans, t0) {
  const x = [], ys = chans.map(() => []);
  const gap = () => { if (x.length) { x.push(x[x.length - 1]); ys.forEach((y) => y.push(null)); } };
  for (const s of w.segments) {
    gap();
    if (w.mode === "raw") {
      const n = s.n, step = 1e9 / s.sample_rate;
      for (let i = 0; i < n; i++) {
        x.push((s.t0_ns - t0 + i * step) / 1e6);
        chans.forEach((c, k) => { const a = s.samples[c.name]; ys[k].push(a ? a[i] ?? null : null); });
      }
    } else {
      const b = s.buckets;
      for (let i = 0; i < b.t_ns.length; i++) {
        const tx = (b.t_ns[i] - t0) / 1e6;
        x.push(tx, tx);
        chans.forEach((c, k) => {
          const lo = b.min[c.name], hi = b.max[c.name];
          ys[k].push(lo ? lo[i] : null, hi ? hi[i] : null);
        });
      }
    }
  }
  return [x, ...ys];
}
/** uPlot data of the RMS(1/2) values: value k of a segment at t0_ns + k·step_ns; segments apart. */
function rmsData(rms, names, t0) {
  const x = [], ys = names.map(() => []);
  for (const s of rms.segments) {
    if (x.length) { x.push(x[x.length - 1]); ys.forEach((y) => y.push(null)); }
    for (let k = 0; k < s.n; k++) {
      x.push((s.t0_ns - t0 + k * s.step_ns) / 1e6);
      names.forEach((n, j) => ys[j].push(s.values[n] ? s.values[n][k] ?? null : null));
    }
  }
  return [x, ...ys];
}
/** The event's span (0 .. duration) shaded behind the lines. */
function shadeEvent(u, durMs) {
  const x0 = u.valToPos(0, "x", true), x1 = u.valToPos(durMs, "x", true);
  const { top, height, left, width } = u.bbox;
  const a = Math.max(left, Math.min(x0, x1)), b = Math.min(left + width, Math.max(x0, x1));
  if (b <= a) return;
  u.ctx.save();
  u.ctx.fillStyle = "rgba(198, 40, 40, 0.08)";
  u.ctx.fillRect(a, top, Math.max(1, b - a), height);
  u.ctx.restore();
}
/** Horizontal reference lines: the reference (solid) and the 90 % / 110 % thresholds (dashed). */
function hLines(u, lines) {
  const { left, width } = u.bbox;
  u.ctx.save();
  for (const [v, kind] of lines) {
    const y = u.valToPos(v, "y", true);
    if (!Number.isFinite(y)) continue;
    u.ctx.strokeStyle = kind === "ref" ? "#5a6470" : "#9a6700";
    u.ctx.setLineDash(kind === "ref" ? [] : [6, 4]);
    u.ctx.lineWidth = 1;
    u.ctx.beginPath();
    u.ctx.moveTo(left, y);
    u.ctx.lineTo(left + width, y);
    u.ctx.stroke();
  }
  u.ctx.restore();
}
/** Touch: one finger pans the time axis, two fingers pinch-zoom it (uPlot's drag zoom is mouse only). */
function touchZoom(u) {
  const over = u.over;
  let start = null;
  const xs = (e) => [...e.touches].map((p) => p.clientX - over.getBoundingClientRect().left);
  over.addEventListener("touchstart", (e) => {
    start = { pts: xs(e), y: e.touches[0].clientY, min: u.scales.x.min, max: u.scales.x.max };
  }, { passive: true });
  over.addEventListener("touchmove", (e) => {
    if (!start) return;
    const pts = xs(e);
    const w = over.clientWidth || 1;
    const span = start.max - start.min;
    const at = (px) => start.min + (px / w) * span;
    if (pts.length >= 2 && start.pts.length >= 2) {
      e.preventDefault();
      const d0 = Math.abs(start.pts[1] - start.pts[0]) || 1, d1 = Math.abs(pts[1] - pts[0]) || 1;
      const nspan = span * (d0 / d1);
      const c0 = at((start.pts[0] + start.pts[1]) / 2);
      const cx = (pts[0] + pts[1]) / 2;
      const min = c0 - (cx / w) * nspan;
      u.setScale("x", { min, max: min + nspan });
    } else if (pts.length === 1 && start.pts.length === 1) {
      const dx = ((pts[0] - start.pts[0]) / w) * span;
      const dy = Math.abs(e.touches[0].clientY - start.y); // a vertical swipe scrolls the page
      if (Math.abs(pts[0] - start.pts[0]) > 8 && Math.abs(pts[0] - start.pts[0]) > dy) { e.preventDefault(); u.setScale("x", { min: start.min - dx, max: start.max - dx }); }
    }
  }, { passive: false });
  over.addEventListener("touchend", () => { start = null; }, { passive: true });
}
