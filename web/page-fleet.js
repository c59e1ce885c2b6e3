// The fleet page (issue 9, section 2): every terminal with its state, link quality, supply,
// temperature, time quality, buffered blocks, analysis state and unacknowledged events; counts,
// filters, search, sorting and a map of locations coloured by state. Live from the feed's
// `fleet` and `events` topics (no polling); redraws are batched to one per animation frame so
// hundreds of terminals updating every second stay smooth.
import { $, el, t, api, apiError, fmtAgo, fmtNum, fmtTime, feed, href, loading, errorBox, emptyBox } from "/app/lib.js";
import { createMap } from "/app/map.js";

// columns: key, header string, cell(term) -> [text, className, title], sort value(term)
const st = (x) => x.status || {};
const COLS = [
  { k: "id", v: (x) => x.id },
  { k: "name", wide: 1, v: (x) => x.name || "" },
  { k: "state", v: (x) => (x.online ? 0 : 1) },
  { k: "last_seen", v: (x) => -(Date.parse(x.last_seen || 0) || 0) },
  { k: "rsrp", v: (x) => st(x).rsrp_dbm ?? -999 },
  { k: "supply", wide: 1, v: (x) => st(x).supply_v ?? -1 },
  { k: "temperature", wide: 1, v: (x) => st(x).temperature_c ?? -999 },
  { k: "time_q", wide: 1, v: (x) => st(x).time_quality ?? -1 },
  { k: "buffered", wide: 1, v: (x) => st(x).buffered_blocks ?? -1 },
  { k: "analysis", wide: 1, v: (x) => (x.analysis ? (x.analysis.behind ? 1 : 0) : -1) },
  { k: "events_open", v: (x) => x.open_events || 0 },
];

// GSTP time_quality (docs/protocol.md, HELLO tag 11): 0 unknown, 1 GPS locked, 2 network synced, 3 free running
const TQ = ["tq_none", "tq_gps", "tq_net", "tq_free"];

export async function show(main, route) {
  const fleet = new Map(); // id -> terminal (REST shape, updated from the feed)
  const q = route.query;
  let sortKey = q.get("sort") || "id";
  let sortDir = q.get("dir") === "desc" ? -1 : 1;
  let filter = q.get("filter") || "all";
  let search = q.get("q") || "";
  let pending = 0;
  let map = null;

  const search_in = el("input", { id: "search", type: "search", value: search, placeholder: t("search_hint") });
  const filter_in = el("select", { id: "filter" },
    ...["all", "online", "offline", "events"].map((f) => el("option", { value: f, textContent: t("filter_" + f), selected: f === filter })));
  const table = el("table", { id: "fleet", className: "fleet" });
  const mapBox = el("section", { id: "fleet-map", className: "map-box", "aria-label": t("map") });
  const status = el("div", { id: "fleet-status" });
  main.append(
    el("h1", { textContent: t("fleet") }),
    el("div", { className: "counts" },
      el("span", {}, el("b", { id: "count-on" }), " ", t("online")),
      el("span", {}, el("b", { id: "count-off" }), " ", t("offline")),
      el("span", {}, el("b", { id: "count-ev" }), " ", t("with_events"))),
    el("div", { className: "filters" },
      el("label", {}, t("search"), " ", search_in),
      el("label", {}, t("show"), " ", filter_in)),
    status,
    el("div", { className: "fleet-grid" }, el("div", { className: "scroll" }, table), mapBox));
  status.append(loading());

  function keepUrl() { // the filters are part of the page's address (links can be shared)
    const p = new URLSearchParams();
    if (sortKey !== "id") p.set("sort", sortKey);
    if (sortDir < 0) p.set("dir", "desc");
    if (filter !== "all") p.set("filter", filter);
    if (search) p.set("q", search);
    const h = "#/fleet" + (p.size ? "?" + p : "");
    if (location.hash !== h) history.replaceState(null, "", h);
  }

  function cells(x) {
    const s = x.status;
    const none = t("none");
    const tq = s && s.time_quality != null ? t(TQ[s.time_quality] || "tq_none") : none;
    const gps = s && s.gps_sats != null ? ` · ${t("sats", { n: s.gps_sats })}` : "";
    const ev = x.open_events || 0;
    return [
      el("td", {}, el("a", { href: href.terminal(x.id), textContent: x.id })),
      el("td", { className: "wide", textContent: x.name || "" }),
      el("td", { className: x.online ? "on" : "off", textContent: x.online ? t("online") : t("offline") }),
      el("td", { textContent: fmtAgo(x.last_seen), title: x.last_seen ? `${fmtTime(x.last_seen)} (${x.last_seen.replace("T", " ").replace("Z", " UTC")})` : "" }),
      el("td", { className: "num", textContent: s && s.rsrp_dbm != null ? `${s.rsrp_dbm} dBm` : s && s.csq != null ? `CSQ ${s.csq}` : none,
                 title: s ? `RSRP ${s.rsrp_dbm ?? none} dBm, RSSI ${s.rssi_dbm ?? none} dBm, CSQ ${s.csq ?? none}` : "" }),
      el("td", { className: "num wide", textContent: s ? fmtNum(s.supply_v, 2, "V") : none }),
      el("td", { className: "num wide", textContent: s ? fmtNum(s.temperature_c, 1, "°C") : none }),
      el("td", { className: "wide", textContent: tq + gps }),
      el("td", { className: "num wide", textContent: s && s.buffered_blocks != null ? String(s.buffered_blocks) : none }),
      el("td", { className: "wide " + (x.analysis && x.analysis.behind ? "warn" : ""),
                 textContent: x.analysis ? (x.analysis.behind ? t("behind") : t("ok")) : none,
                 title: x.analysis ? t("analysis_delay", { s: fmtNum(x.analysis.delay_s, 2) }) : "" }),
      el("td", { className: "num" }, ev ? el("a", { href: href.events({ terminal: x.id, acked: "false" }), className: "warn", textContent: String(ev) }) : "0"),
    ];
  }

  // Drawing is incremental: a feed update marks its terminal dirty; the next animation frame
  // rebuilds only the dirty rows' cells, and re-filters / re-sorts (moving existing rows, not
  // making new ones) at most twice a second, and only if the order changed. The map follows
  // once a second. So 1,000 terminals sending a status every few seconds cost little.
  const rows = new Map(); // id -> <tr>
  const dirty = new Set();
  let order = ""; // ids shown, in order, as drawn last
  let full = true; // header, order and every row must be redrawn (sort/filter/search/language)
  let lastOrder = 0, lastMap = 0, reorderDue = false;
  const tbody = el("tbody");
  const thead = el("thead");
  table.append(thead, tbody);

  function header() {
    thead.replaceChildren(el("tr", {}, ...COLS.map((c) => el("th", { scope: "col", className: c.wide ? "wide" : "",
      "aria-sort": c.k === sortKey ? (sortDir > 0 ? "ascending" : "descending") : "none" },
      el("button", { type: "button", className: "sort", textContent: t(c.k) + (c.k === sortKey ? (sortDir > 0 ? " ▲" : " ▼") : ""),
        onclick: () => { if (sortKey === c.k) sortDir = -sortDir; else { sortKey = c.k; sortDir = 1; } keepUrl(); full = true; later(); } })))));
  }

  function draw() {
    pending = 0;
    const now = performance.now();
    const all = [...fleet.values()];
    const on = all.filter((x) => x.online).length;
    $("#count-on").textContent = on;
    $("#count-off").textContent = all.length - on;
    $("#count-ev").textContent = all.filter((x) => x.open_events).length;
    if (full) header();
    for (const id of (full ? fleet.keys() : dirty)) {
      const x = fleet.get(id);
      let tr = rows.get(id);
      if (!tr) { tr = el("tr", { id: "t-" + id }); rows.set(id, tr); }
      tr.replaceChildren(...cells(x));
    }
    if (dirty.size) reorderDue = true;
    if (full || (reorderDue && now - lastOrder > 500)) {
      lastOrder = now;
      reorderDue = false;
      const needle = search.toLowerCase();
      const col = COLS.find((c) => c.k === sortKey) || COLS[0];
      const shown = all.filter((x) => (!needle || x.id.toLowerCase().includes(needle) || (x.name || "").toLowerCase().includes(needle))
        && (filter === "all" || (filter === "online" && x.online) || (filter === "offline" && !x.online) || (filter === "events" && x.open_events)))
        .sort((a, b) => { const va = col.v(a), vb = col.v(b); return (va < vb ? -1 : va > vb ? 1 : a.id.localeCompare(b.id)) * sortDir; });
      const ids = shown.map((x) => x.id).join("\n");
      if (full || ids !== order) {
        order = ids;
        tbody.replaceChildren(...(shown.length ? shown.map((x) => rows.get(x.id))
          : [el("tr", {}, el("td", { colSpan: COLS.length, className: "note", textContent: all.length ? t("no_match") : t("empty") }))]));
      }
    } else if (reorderDue) {
      setTimeout(later, 510 - (now - lastOrder)); // the order is looked at again shortly
    }
    dirty.clear();
    full = false;
    if (map && (now - lastMap > 1000 || !lastMap)) {
      lastMap = now;
      map.setMarkers(all.filter((x) => x.location).map((x) => ({
        id: x.id, lat: x.location.lat, lon: x.location.lon,
        color: !x.online ? "offline" : x.open_events ? "events" : "online",
        label: `${x.id}${x.name ? " · " + x.name : ""}: ${x.online ? t("online") : t("offline")}`,
      })));
    }
  }
  const later = () => { if (!pending) pending = requestAnimationFrame(draw); };

  search_in.addEventListener("input", () => { search = search_in.value; keepUrl(); full = true; later(); });
  filter_in.addEventListener("change", () => { filter = filter_in.value; keepUrl(); full = true; later(); });

  const [r, ev] = await Promise.all([api("/api/v1/terminals"), api("/api/v1/events?acked=false&limit=10000")]);
  if (r.status !== 200) { status.replaceChildren(errorBox(apiError(r))); return () => {}; }
  for (const x of r.body.terminals) fleet.set(x.id, x);
  if (ev.status === 200)
    for (const e of ev.body.events) { const x = fleet.get(e.terminal); if (x) x.open_events = (x.open_events || 0) + 1; }
  status.replaceChildren();
  if (!fleet.size) status.append(emptyBox(t("empty")));
  map = createMap(mapBox, { onSelect: (id) => { location.hash = href.terminal(id); } });
  draw();

  const unsub = feed.subscribe(["fleet", "events"], (m) => {
    if (m.topic === "fleet") {
      const d = m.data;
      const cur = fleet.get(d.id) || { id: d.id };
      fleet.set(d.id, { ...cur, online: d.online, connected_since: d.connected_since, last_seen: d.last_seen, status: d.status, analysis: d.analysis });
      dirty.add(d.id);
    } else if (m.topic === "events") {
      const x = fleet.get(m.data.terminal);
      if (x && !m.data.event.acked) { x.open_events = (x.open_events || 0) + 1; dirty.add(x.id); }
    }
    later();
  });
  // "time since last data" keeps counting: only that cell of each row
  const ticker = setInterval(() => {
    for (const [id, tr] of rows) { const c = tr.children[3]; if (c) c.textContent = fmtAgo(fleet.get(id).last_seen); }
  }, 5000);
  return () => { unsub(); clearInterval(ticker); if (pending) cancelAnimationFrame(pending); if (map) map.destroy(); };
}
