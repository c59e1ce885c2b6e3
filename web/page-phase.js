// The wide-area phase view (issue 9, section 2): #/phase?ref=ID[&q=V1|Ua|Ub|Uc][&win=S].
// The terminals' synchrophasor reports are all referenced to UTC and lie on the same UTC grid
// (docs/api.md, GET /terminals/{id}/phasors), so the reports of two terminals with the same
// report time describe the same instant: their angle difference is the phase difference between
// the two sites. For every terminal this page shows Δθ = θ(terminal) − θ(reference), wrapped to
// (−180°, 180°], of the positive-sequence voltage V1 (or one phase voltage), matched by report
// time: a rolling chart (uPlot), a table with frequency and ROCOF, and a snapshot on the map.
// Data: the last minutes from GET /terminals/{id}/phasors, then the live feed's
// terminal/{id}/phasors topics (one UTC second of reports per message).
import { el, t, api, apiError, enc, feed, fmtNum, href, timeEl, loading, errorBox, emptyBox } from "/app/lib.js";
import { createMap } from "/app/map.js";

const KEEP_S = 300;             // seconds of reports kept (the longest window)
const WINDOWS = [60, 120, 300]; // chart windows offered, seconds
const QTYS = ["V1", "Ua", "Ub", "Uc"];
const MAX_TOPICS = 900;         // the feed allows 1024 topics per connection (other pages share it)
const FLAG_UNSYNC = 1;          // report flags: 1 time_unsync, 2 restart, 4 freq_held
const PALETTE = ["#0b57d0", "#b42318", "#1a7f37", "#8250df", "#bc4c00", "#0e7490", "#bf3989",
                 "#57606a", "#6e5600", "#1f6feb", "#a40e26", "#116329"];

/** An angle in degrees wrapped to (−180, 180]. */
export function wrap180(d) {
  let w = d % 360;
  if (w > 180) w -= 360;
  if (w <= -180) w += 360;
  return w;
}

const pad2 = (n) => String(n).padStart(2, "0");
/** Local time of day "16:37:05" of a time in seconds since the epoch (the chart's time axis). */
const hms = (s) => { const d = new Date(s * 1000); return `${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())}`; };

/** A report time as an integer number of microseconds since the epoch (exact, comparable
 *  between terminals: t is a whole UTC second, index / rate the report's offset in it). */
const keyOf = (tMs, index, rate) => tMs * 1000 + Math.round((index * 1e6) / rate);

export async function show(main, route) {
  const q = route.query;
  let ref = q.get("ref") || "";
  let qty = QTYS.includes(q.get("q")) ? q.get("q") : "V1";
  let win = WINDOWS.includes(Number(q.get("win"))) ? Number(q.get("win")) : 120;
  let paused = false;

  const terms = new Map(); // id -> terminal (REST shape; online kept from the feed)
  const data = new Map();  // id -> Map(report key µs -> {V1, Ua, Ub, Uc, freq, rocof, flags})
  let chart = null, chartKey = "", map = null, pending = 0, lastPrune = 0;
  let alive = true, loadingHistory = true, zoomed = false;
  let newestKey = 0;           // the newest report time seen (µs), of any terminal
  const unsyncAt = new Map();  // id -> the newest report time flagged time_unsync

  const refSel = el("select", { id: "ph-ref" });
  const qtySel = el("select", { id: "ph-qty" },
    ...QTYS.map((x) => el("option", { value: x, textContent: t(x === "V1" ? "ph_qty_pos" : "ph_qty_phase", { ch: x }), selected: x === qty })));
  const winSel = el("select", { id: "ph-win" },
    ...WINDOWS.map((s) => el("option", { value: String(s), textContent: t("ph_win_min", { n: s / 60 }), selected: s === win })));
  const liveBtn = el("button", { type: "button", id: "ph-live", textContent: t("ph_live_view"), hidden: true });
  const pauseBtn = el("button", { type: "button", id: "ph-pause", textContent: t("ph_pause"), "aria-pressed": "false" });
  const status = el("div", { id: "ph-status" });
  const unsyncNote = el("p", { id: "ph-unsync", className: "warn", role: "status", hidden: true });
  const chartBox = el("div", { id: "ph-chart", className: "ph-chart", role: "figure", "aria-labelledby": "ph-chart-h" });
  const chartNote = el("div", { id: "ph-chart-note" });
  const table = el("table", { id: "ph-table" });
  const mapBox = el("section", { id: "ph-map", className: "map-box", "aria-label": t("ph_map_title") });
  const what = el("p", { className: "note", id: "ph-what" });
  const scale = el("div", { className: "ph-scale", "aria-hidden": "true" });
  const scaleText = el("p", { className: "note", id: "ph-scale-text" });

  main.append(
    el("h1", { textContent: t("ph_title") }),
    el("p", { className: "ph-why", textContent: t("ph_why") }),
    el("div", { className: "filters" },
      el("label", {}, t("ph_ref"), " ", refSel),
      el("label", {}, t("ph_qty"), " ", qtySel),
      el("label", {}, t("ph_window"), " ", winSel),
      pauseBtn, liveBtn),
    status, unsyncNote,
    el("div", { className: "ph-grid" },
      el("section", { className: "ph-left", "aria-labelledby": "ph-chart-h" },
        el("h2", { id: "ph-chart-h", textContent: t("ph_chart_title") }),
        what, chartNote, chartBox, el("p", { className: "note", textContent: t("ph_zoom_hint") })),
      el("div", { className: "ph-right" },
        el("h2", { textContent: t("ph_map_title") }),
        el("p", { className: "note", textContent: t("ph_map_hint") }),
        mapBox, scale, scaleText)),
    el("h2", { textContent: t("ph_table_title") }),
    el("div", { className: "scroll" }, table));
  status.append(loading());

  const r = await api("/api/v1/terminals");
  if (!main.isConnected) return () => {}; // the user left the page meanwhile
  if (r.status !== 200) { status.replaceChildren(errorBox(apiError(r))); return () => {}; }
  for (const x of r.body.terminals) terms.set(x.id, x);
  status.replaceChildren();
  if (!terms.size) { status.append(emptyBox(t("ph_no_terminals"))); return () => {}; }
  const ids = [...terms.keys()].sort();
  const colorOf = new Map(ids.map((id, i) => [id, PALETTE[i % PALETTE.length]]));
  if (ref && !terms.has(ref)) { status.append(errorBox(t("ph_ref_unknown", { id: ref }))); ref = ""; }
  if (!ref) ref = (ids.find((id) => terms.get(id).online) || ids[0]);

  function keepUrl() { // the reference, quantity and window are part of the page's address
    const p = new URLSearchParams({ ref });
    if (qty !== "V1") p.set("q", qty);
    if (win !== 120) p.set("win", String(win));
    const h = "#/phase?" + p;
    if (location.hash !== h) history.replaceState(null, "", h);
  }
  function fillRefs() {
    refSel.replaceChildren(...ids.map((id) => {
      const x = terms.get(id);
      return el("option", { value: id, selected: id === ref,
        textContent: `${id}${x.name ? " · " + x.name : ""}${x.online ? "" : " (" + t("offline") + ")"}` });
    }));
  }
  fillRefs();
  keepUrl();

  // ---- data ----------------------------------------------------------------------------------
  /** Adds one UTC second of reports (a row of GET /phasors or a feed message) of terminal id. */
  function addSecond(id, s) {
    if (!s || !Array.isArray(s.reports) || !Array.isArray(s.columns)) return;
    let m = data.get(id);
    if (!m) { m = new Map(); data.set(id, m); }
    const c = Object.fromEntries(s.columns.map((name, i) => [name, i]));
    const tMs = Date.parse(s.t);
    const get = (row, name) => (c[name] === undefined ? null : row[c[name]]);
    for (const row of s.reports) {
      const key = keyOf(tMs, row[c.index], s.rate);
      if (key > newestKey) newestKey = key;
      if ((get(row, "flags") & FLAG_UNSYNC) && !(unsyncAt.get(id) >= key)) unsyncAt.set(id, key);
      m.set(key, {
        V1: get(row, "V1.deg"), Ua: get(row, "Ua.deg"), Ub: get(row, "Ub.deg"), Uc: get(row, "Uc.deg"),
        freq: get(row, "freq"), rocof: get(row, "rocof"), flags: get(row, "flags") || 0,
      });
    }
  }
  function prune(now) {
    const cut = now - (KEEP_S + 30) * 1e6;
    for (const m of data.values()) for (const key of m.keys()) if (key < cut) m.delete(key);
  }

  // ---- drawing -------------------------------------------------------------------------------
  const deltaAt = (id, key) => {
    const a = data.get(id)?.get(key), b = data.get(ref)?.get(key);
    return a && b && a[qty] != null && b[qty] != null ? wrap180(a[qty] - b[qty]) : null;
  };

  function draw() {
    pending = 0;
    const t0 = performance.now();
    const last = newestKey;
    if (last - lastPrune > 10e6) { prune(last); lastPrune = last; }
    const refData = data.get(ref) || new Map();
    const from = last - win * 1e6;
    const xs = [...refData.keys()].filter((k) => k > from && refData.get(k)[qty] != null).sort((a, b) => a - b);
    const others = ids.filter((id) => id !== ref && data.get(id)?.size);
    // snapshot: per terminal, the newest report time it shares with the reference
    const snap = new Map();
    for (const id of ids) {
      if (id === ref) continue;
      const m = data.get(id);
      if (!m) continue;
      for (let i = xs.length - 1; i >= 0 && i >= xs.length - 300; i--) {
        const rec = m.get(xs[i]);
        if (rec && rec[qty] != null) { snap.set(id, { key: xs[i], d: deltaAt(id, xs[i]), rec }); break; }
      }
    }
    const unsync = ids.filter((id) => unsyncAt.get(id) > from);
    unsyncNote.hidden = !unsync.length;
    unsyncNote.textContent = unsync.length ? t("ph_unsync_note", { ids: unsync.join(", ") }) : "";
    what.textContent = t("ph_what", { qty: qty === "V1" ? t("ph_qty_pos") : qty, ref });
    drawChart(xs, others, unsync);
    drawTable(snap, unsync, refData, xs);
    drawMap(snap);
    chartBox.dataset.drawMs = (performance.now() - t0).toFixed(1); // (the cost of one redraw, for the tests' figures)
  }
  const later = () => { if (!pending) pending = requestAnimationFrame(draw); };

  function drawChart(xs, others, unsync) {
    const series = others.filter((id) => xs.some((k) => data.get(id).has(k)));
    const key = `${ref}|${qty}|${win}|${series.join(",")}|${unsync.join(",")}`;
    if (paused && chart && key === chartKey) return;
    const counts = {};
    const cols = series.map((id) => {
      let n = 0, prev = null;
      const ys = xs.map((k) => {
        const d = deltaAt(id, k);
        if (d === null) return null;
        n++;
        // a difference crossing ±180° wraps: leave a gap there instead of a vertical line
        const jump = prev !== null && Math.abs(d - prev) > 180;
        prev = d;
        return jump ? null : d;
      });
      counts[id] = n;
      return ys;
    });
    chartBox.dataset.ref = ref;
    chartBox.dataset.points = JSON.stringify(counts);
    chartBox.dataset.xs = String(xs.length);
    chartBox.dataset.from = xs.length ? new Date(xs[0] / 1000).toISOString() : "";
    if (!xs.length || !series.length) {
      if (chart) { chart.destroy(); chart = null; chartKey = ""; }
      if (loadingHistory) return; // the "loading" note stays until the history is in
      chartNote.replaceChildren(emptyBox(!data.get(ref)?.size ? t("ph_ref_no_data", { id: ref })
        : t("ph_no_others")));
      return;
    }
    chartNote.replaceChildren();
    const plotData = [xs.map((k) => k / 1e6), ...cols];
    if (chart && key === chartKey) { chart.setData(plotData, !zoomed); return; }
    if (chart) chart.destroy();
    chartKey = key;
    setZoomed(false);
    const w = Math.max(260, chartBox.clientWidth || 600);
    chart = new window.uPlot({
      width: w, height: w < 500 ? 240 : 320,
      cursor: { drag: { x: true, y: false } },
      scales: { x: { time: true } },
      series: [{ label: t("ph_time") },
        ...series.map((id) => ({ label: id + (unsync.includes(id) ? " ⚠" : ""), stroke: colorOf.get(id), width: 1.5,
          value: (u, v) => (v == null ? t("none") : `${v.toFixed(2)}°`) }))],
      axes: [{ space: 70, values: (u, vals) => vals.map(hms) }, { label: t("ph_axis"), size: 60, values: (u, vals) => vals.map((v) => `${v}°`) }],
      // a time range dragged out with the mouse stays while live values come in
      hooks: { setSelect: [(u) => { if (u.select.width > 0) setZoomed(true); }],
               // the time range shown, for tests and tools: seconds since the epoch
               setScale: [(u, k) => { if (k === "x") chartBox.dataset.range = `${u.scales.x.min} ${u.scales.x.max}`; }] },
    }, plotData, chartBox);
    chart.over.addEventListener("dblclick", () => setZoomed(false)); // (uPlot shows all again)
    pinchZoom(chart);
  }

  /** Two fingers on the chart zoom its time axis (one finger still scrolls the page). */
  function pinchZoom(u) {
    let start = null;
    const span = (e) => Math.max(10, Math.abs(e.touches[0].clientX - e.touches[1].clientX));
    u.over.addEventListener("touchstart", (e) => {
      if (e.touches.length !== 2) return;
      const r = u.over.getBoundingClientRect();
      const f = Math.min(1, Math.max(0, ((e.touches[0].clientX + e.touches[1].clientX) / 2 - r.left) / r.width));
      start = { d: span(e), f, min: u.scales.x.min, max: u.scales.x.max };
    });
    u.over.addEventListener("touchmove", (e) => {
      if (!start || e.touches.length !== 2) return;
      const w = (start.max - start.min) * (start.d / span(e));
      const at = start.min + (start.max - start.min) * start.f;
      setZoomed(true);
      u.setScale("x", { min: at - w * start.f, max: at + w * (1 - start.f) });
    });
    u.over.addEventListener("touchend", () => { start = null; });
  }
  function setZoomed(z) {
    zoomed = z;
    liveBtn.hidden = !z;
  }

  function drawTable(snap, unsync, refData, xs) {
    const head = el("tr", {}, ...["ph_col_terminal", "ph_col_delta", "ph_col_time", "ph_col_freq", "ph_col_rocof", "ph_col_sync", "ph_col_state"]
      .map((k) => el("th", { scope: "col", textContent: t(k) })));
    const syncCell = (id) => unsync.includes(id)
      ? el("td", { className: "warn", textContent: t("ph_unsync") })
      : el("td", { textContent: data.get(id)?.size ? t("ph_synced") : t("none") });
    const nameCell = (id) => {
      const x = terms.get(id);
      return el("td", {}, el("span", { className: "ph-swatch", "aria-hidden": "true" }),
        el("a", { href: href.terminal(id), textContent: id }), x.name ? ` · ${x.name}` : "");
    };
    const stateCell = (id) => el("td", { className: terms.get(id).online ? "on" : "off", textContent: terms.get(id).online ? t("online") : t("offline") });
    const refLast = xs.length ? refData.get(xs[xs.length - 1]) : null;
    const rows = [];
    const refRow = el("tr", { id: "ph-row-" + ref, className: "ph-refrow" }, nameCell(ref),
      el("td", { className: "num", textContent: t("ph_is_ref") }),
      el("td", {}, refLast ? timeEl(xs[xs.length - 1] / 1000, true) : t("none")),
      el("td", { className: "num", textContent: refLast ? fmtNum(refLast.freq, 4, "Hz") : t("none") }),
      el("td", { className: "num", textContent: refLast ? fmtNum(refLast.rocof, 4, "Hz/s") : t("none") }),
      syncCell(ref), stateCell(ref));
    rows.push(refRow);
    for (const id of ids) {
      if (id === ref) continue;
      const s = snap.get(id);
      const tr = el("tr", { id: "ph-row-" + id }, nameCell(id),
        el("td", { className: "num ph-delta", textContent: s && s.d !== null ? `${s.d.toFixed(2)}°` : t("none"),
          "data-t": s ? new Date(s.key / 1000).toISOString() : undefined, "data-us": s ? String(s.key) : undefined }),
        el("td", {}, s ? timeEl(s.key / 1000, true) : t("none")),
        el("td", { className: "num", textContent: s ? fmtNum(s.rec.freq, 4, "Hz") : t("none") }),
        el("td", { className: "num", textContent: s ? fmtNum(s.rec.rocof, 4, "Hz/s") : t("none") }),
        syncCell(id), stateCell(id));
      rows.push(tr);
    }
    for (const tr of rows) tr.querySelector(".ph-swatch").style.background = colorOf.get(tr.id.slice(7));
    table.replaceChildren(el("caption", { className: "note", textContent: t("ph_table_caption", { ref }) }),
      el("thead", {}, head), el("tbody", {}, ...rows));
  }

  // diverging colour scale for the map: blue (behind the reference) .. grey (0) .. red (ahead)
  const mix = (a, b, f) => a.map((v, i) => Math.round(v + (b[i] - v) * f));
  const NEG = [33, 102, 172], MID = [150, 150, 150], POS = [178, 24, 43];
  const shade = (d, max) => {
    const f = Math.min(1, Math.abs(d) / max);
    const c = mix(MID, d < 0 ? NEG : POS, f);
    return `rgb(${c[0]}, ${c[1]}, ${c[2]})`;
  };
  function drawMap(snap) {
    if (!map) return;
    const max = Math.max(1, ...[...snap.values()].filter((s) => s.d !== null).map((s) => Math.abs(s.d)));
    const few = terms.size <= 30;
    map.setMarkers(ids.map((id) => {
      const x = terms.get(id);
      const s = snap.get(id);
      const loc = x.location || {};
      const isRef = id === ref;
      const dtxt = s && s.d !== null ? `${s.d >= 0 ? "+" : ""}${s.d.toFixed(1)}°` : "";
      return {
        id, lat: loc.lat ?? null, lon: loc.lon ?? null,
        color: isRef ? "#1d3b57" : s && s.d !== null ? shade(s.d, max) : "#d0d7de",
        label: isRef ? t("ph_map_ref", { id }) : s && s.d !== null ? t("ph_map_delta", { id, d: dtxt }) : t("ph_map_nodata", { id }),
        text: few ? (isRef ? t("ph_ref_short") : dtxt) : "",
      };
    }));
    scaleText.textContent = t("ph_scale", { max: max.toFixed(1) });
  }

  // ---- controls ------------------------------------------------------------------------------
  refSel.addEventListener("change", () => { ref = refSel.value; keepUrl(); draw(); });
  qtySel.addEventListener("change", () => { qty = qtySel.value; keepUrl(); draw(); });
  winSel.addEventListener("change", () => { win = Number(winSel.value); keepUrl(); draw(); });
  liveBtn.addEventListener("click", () => { setZoomed(false); draw(); });
  pauseBtn.addEventListener("click", () => {
    paused = !paused;
    pauseBtn.textContent = paused ? t("ph_resume") : t("ph_pause");
    pauseBtn.setAttribute("aria-pressed", String(paused));
    if (!paused) draw();
  });
  const ro = new ResizeObserver(() => {
    if (!chart) return;
    const w = Math.max(260, chartBox.clientWidth);
    if (Math.abs(w - chart.width) > 2) chart.setSize({ width: w, height: w < 500 ? 240 : 320 });
  });
  ro.observe(chartBox);

  map = createMap(mapBox, { onSelect: (id) => { ref = id; fillRefs(); keepUrl(); draw(); } });

  // ---- live feed first (nothing missed), then the recent history ------------------------------
  const topics = ids.slice(0, MAX_TOPICS).map((id) => `terminal/${id}/phasors`);
  const unsub = feed.subscribe([...topics, "fleet"], (m) => {
    if (m.topic === "fleet") {
      const x = terms.get(m.data.id);
      if (x && x.online !== m.data.online) { x.online = m.data.online; fillRefs(); later(); }
      return;
    }
    if (!m.topic.startsWith("terminal/") || !m.topic.endsWith("/phasors")) return;
    const id = m.topic.slice(9, -8);
    addSecond(id, m.data);
    // The feed keeps only the newest queued second of a phasors topic for a slow client: a
    // second skipped that way is fetched from the store, so the chart has no holes.
    const tMs = Date.parse(m.data.t), prev = lastLive.get(id);
    if (prev && tMs - prev > 1000 && tMs - prev <= KEEP_S * 1000 && !loadingHistory)
      backfill(id, new Date(prev + 1000).toISOString(), new Date(tMs).toISOString());
    if (!prev || tMs > prev) lastLive.set(id, tMs);
    later();
  });
  const lastLive = new Map(); // id -> start (ms) of the newest second the feed brought
  let backfilled = 0, backfills = 0;
  async function backfill(id, from, to, retry = 1) {
    if (backfills >= 4) return; // (a client this slow has other worries; keep the load bounded)
    backfills++;
    const h = await api(`/api/v1/terminals/${enc(id)}/phasors?from=${enc(from)}&to=${enc(to)}&limit=3600`);
    backfills--;
    if (!alive || h.status !== 200) return;
    for (const s of h.body.seconds) addSecond(id, s);
    backfilled += h.body.seconds.length;
    chartBox.dataset.backfilled = String(backfilled);
    later();
    // the store may not have written the skipped seconds yet: ask once more a little later
    const want = Math.round((Date.parse(to) - Date.parse(from)) / 1000) - 1;
    if (h.body.seconds.length < want && retry > 0) setTimeout(() => { if (alive) backfill(id, from, to, retry - 1); }, 3000);
  }
  const since = new Date(Date.now() - KEEP_S * 1000).toISOString();
  async function loadHistory(id) {
    let from = since;
    for (let page = 0; page < 5 && alive; page++) {
      const h = await api(`/api/v1/terminals/${enc(id)}/phasors?from=${enc(from)}&limit=3600`);
      if (!alive) return;
      if (h.status !== 200) { status.append(errorBox(`${id}: ${apiError(h)}`)); return; }
      for (const s of h.body.seconds) addSecond(id, s);
      if (!h.body.more || h.body.next_from == null) return;
      from = String(h.body.next_from);
    }
  }
  const queue = ids.filter((id) => terms.get(id).online).slice(0, MAX_TOPICS);
  chartNote.replaceChildren(loading(t("ph_loading_history")));
  (async () => { // at most 4 requests at a time
    await Promise.all(Array.from({ length: 4 }, async () => { while (queue.length && alive) await loadHistory(queue.shift()); }));
    loadingHistory = false;
    if (alive) draw();
  })();
  draw();

  return () => {
    alive = false;
    unsub();
    ro.disconnect();
    if (pending) cancelAnimationFrame(pending);
    if (chart) chart.destroy();
    if (map) map.destroy();
  };
}
