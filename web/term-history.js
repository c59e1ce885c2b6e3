// The terminal page's history tabs (issue 9): trends of the stored 3 s / 10 min / 2 h values
// (uPlot, zoom and pan, gaps shown), status history charts and session history, the terminal's
// events, and its commands with the form to send one (operator, admin) and live states.
// Each show* (box, term, route) -> dispose.
import { el, t, api, apiError, can, feed, fmtNum, fmtTime, timeEl, fmtDuration, href, enc,
  loading, errorBox, emptyBox } from "/app/lib.js";

// ---- shared ---------------------------------------------------------------------------------
const RANGES = { "1h": 3600e3, "24h": 86400e3, "7d": 7 * 86400e3, "30d": 30 * 86400e3 };
const RANGE_LABEL = () => ({ "1h": t("th_range_hour"), "24h": t("th_range_day"), "7d": t("th_range_week"), "30d": t("th_range_month") });
const COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"];
const MAX_PAGES = 4; // pages of a REST list read for one view (each up to 10000 rows / 8 MiB)

/** "2026-12-05 13:04:05 UTC" of epoch seconds. */
const utcOf = (s) => new Date(s * 1000).toISOString().slice(0, 19).replace("T", " ") + " UTC";
/** ns since the epoch (as a decimal string, exact) of epoch ms. */
const nsOf = (ms) => `${Math.round(ms)}000000`;

/** Keeps `params` in the page's URL (#/terminal/ID/TAB?k=v) without redrawing the page. */
function keepInUrl(term, tab, params) {
  const q = new URLSearchParams(Object.entries(params).filter(([, v]) => v !== null && v !== undefined && v !== ""));
  const h = href.terminal(term.id, tab) + (q.toString() ? "?" + q : "");
  if (location.hash !== h) history.replaceState(null, "", h);
}

/** A labelled <select> (options [[value, text]]); returns [wrapper, select]. */
function selectField(id, label, options, value) {
  const s = el("select", { id }, ...options.map(([v, txt]) => el("option", { value: v, textContent: txt })));
  s.value = value;
  return [el("label", { className: "th-field", for: id }, el("span", { textContent: label }), s), s];
}

/**
 * A uPlot chart in `box`, sized to its width (resized with it), a local time x axis with UTC in
 * the legend, drag to zoom, Shift-drag / one-finger drag to pan, pinch to zoom. `full` is the
 * x range [min, max] (s) the view returns to on reset and that panning stays inside.
 * Returns {u, reset(), view(min, max), destroy()}.
 */
// Time-axis ticks in 24-hour local time, dates as YYYY-MM-DD (uPlot's default is US-style
// 12-hour): [tick step s, label, label when the year / month / day / hour / minute / second
// rolls over, mode 1].
const X_TICKS = [
  [3600 * 24 * 365, "{YYYY}", null, null, null, null, null, null, 1],
  [3600 * 24 * 28, "{YYYY}-{MM}", null, null, null, null, null, null, 1],
  [3600 * 24, "{MM}-{DD}", "\n{YYYY}", null, null, null, null, null, 1],
  [3600, "{HH}:{mm}", "\n{YYYY}-{MM}-{DD}", null, "\n{MM}-{DD}", null, null, null, 1],
  [60, "{HH}:{mm}", "\n{YYYY}-{MM}-{DD}", null, "\n{MM}-{DD}", null, null, null, 1],
  [1, "{HH}:{mm}:{ss}", "\n{YYYY}-{MM}-{DD}", null, "\n{MM}-{DD}", null, null, null, 1],
];

function timeChart(box, { series, axes, data, full, height = 300, onView = () => {} }) {
  const phone = () => window.innerWidth < 600;
  const width = () => Math.max(240, box.clientWidth || 300);
  const clamp = (min, max) => {
    const w = Math.min(max - min, full[1] - full[0]);
    if (min < full[0]) { min = full[0]; max = min + w; }
    if (max > full[1]) { max = full[1]; min = max - w; }
    return [min, max];
  };
  let u = null;
  const view = (min, max) => { [min, max] = clamp(min, max); u.setScale("x", { min, max }); };
  let pan = null; // {x, min, max} while a Shift-drag or a touch drag is on
  const panTo = (clientX) => {
    const dx = (clientX - pan.x) / u.over.clientWidth * (pan.max - pan.min);
    view(pan.min - dx, pan.max - dx);
  };
  const opts = {
    width: width(), height: phone() ? Math.min(height, 220) : height,
    series: [{ label: t("th_time"), value: (_, v) => (v === null || v === undefined ? t("none") : `${fmtTime(v * 1000)} (${utcOf(v)})`) }, ...series],
    axes: [{ space: 70, values: X_TICKS }, ...axes],
    scales: { x: { time: true } },
    legend: { live: true },
    cursor: {
      drag: { x: true, y: false, setScale: true },
      bind: {
        mousedown: (_, __, handler) => (e) => {
          if (!e.shiftKey) return handler(e);
          pan = { x: e.clientX, min: u.scales.x.min, max: u.scales.x.max };
          const move = (ev) => panTo(ev.clientX);
          const up = () => { pan = null; document.removeEventListener("mousemove", move); document.removeEventListener("mouseup", up); };
          document.addEventListener("mousemove", move);
          document.addEventListener("mouseup", up);
          return null;
        },
        dblclick: () => () => { reset(); return null; },
      },
    },
    hooks: { setScale: [(uu, key) => { if (key === "x") onView(uu.scales.x.min, uu.scales.x.max); }] },
  };
  u = new window.uPlot(opts, data, box);
  const reset = () => u.setScale("x", { min: full[0], max: full[1] });
  reset();
  // touch: one finger pans, two fingers pinch-zoom (the page still scrolls vertically)
  let pinch = null;
  const touchX = (tt) => tt.clientX;
  const onStart = (e) => {
    if (e.touches.length === 1) { pan = { x: touchX(e.touches[0]), min: u.scales.x.min, max: u.scales.x.max }; pinch = null; }
    if (e.touches.length === 2) {
      const r = u.over.getBoundingClientRect();
      const a = touchX(e.touches[0]), b = touchX(e.touches[1]);
      const min = u.scales.x.min, max = u.scales.x.max;
      pinch = { d: Math.max(10, Math.abs(a - b)), c: min + (((a + b) / 2 - r.left) / r.width) * (max - min), min, max, f: ((a + b) / 2 - r.left) / r.width };
      pan = null;
    }
  };
  const onMove = (e) => {
    if (pan && e.touches.length === 1) { panTo(touchX(e.touches[0])); e.preventDefault(); }
    else if (pinch && e.touches.length === 2) {
      const d = Math.max(10, Math.abs(touchX(e.touches[0]) - touchX(e.touches[1])));
      const w = Math.max(10, (pinch.max - pinch.min) * pinch.d / d);
      view(pinch.c - pinch.f * w, pinch.c + (1 - pinch.f) * w);
      e.preventDefault();
    }
  };
  const onEnd = () => { pan = null; pinch = null; };
  u.over.addEventListener("touchstart", onStart, { passive: true });
  u.over.addEventListener("touchmove", onMove, { passive: false });
  u.over.addEventListener("touchend", onEnd);
  const ro = new ResizeObserver(() => { if (u) u.setSize({ width: width(), height: phone() ? Math.min(height, 220) : height }); });
  ro.observe(box);
  box.uplot = u; // for the browser tests: what is plotted
  return { u, reset, view, destroy() { ro.disconnect(); if (u) u.destroy(); u = null; box.uplot = null; } };
}

/** Sorted rows -> uPlot columns with a null row wherever two rows are more than gap s apart. */
function columns(rows, xOf, ys, gap) {
  const out = [[], ...ys.map(() => [])];
  let prev = null;
  for (const r of rows) {
    const x = xOf(r);
    if (prev !== null && gap && x - prev > gap) {
      out[0].push(prev + Math.min(gap, (x - prev) / 2));
      for (let i = 0; i < ys.length; i++) out[i + 1].push(null);
    }
    out[0].push(x);
    ys.forEach((f, i) => { const v = f(r); out[i + 1].push(v === null || v === undefined || Number.isNaN(v) ? null : v); });
    prev = x;
  }
  return out;
}

/** Calls fn() when the live feed is back after a break (what changed meanwhile was missed). */
function onFeedBack(fn) {
  let down = false;
  return feed.onState((st) => {
    if (st === "reconnecting") down = true;
    else if (st === "live" && down) { down = false; fn(); }
  });
}

/** Reads pages of a newest-first list (`key` rows, `next_before`) up to `max` rows. */
async function readBefore(path, key, max) {
  let rows = [], before = null, more = false;
  for (let i = 0; i < MAX_PAGES; i++) {
    const r = await api(path + (before ? `&before=${before}` : ""));
    if (r.status !== 200) return { r };
    rows = rows.concat(r.body[key]);
    before = r.body.next_before;
    more = before !== null && before !== undefined;
    if (!more || rows.length >= max) break;
  }
  return { rows, more };
}

// ---- trends ---------------------------------------------------------------------------------
const IVS = { "3s": 3, "10min": 600, "2h": 7200 };
const AUTO_IV = { "1h": "3s", "24h": "10min", "7d": "10min", "30d": "2h" };

/** The channel names of a terminal's voltages and currents (from its latest values, or names). */
function chanKind(term, name) {
  const c = term.latest && term.latest.channels && term.latest.channels.find((x) => x.name === name);
  if (c && c.kind) return c.kind;
  return name.startsWith("U") ? "voltage" : name.startsWith("I") ? "current" : "other";
}

/** The quantities a trend can show: label, unit, and the series of a measurement A. */
function quantities(term, chans, side) {
  const vt = side === "primary" ? term.vt_ratio || 1 : 1;
  const ct = side === "primary" ? term.ct_ratio || 1 : 1;
  const ch = (name, f) => (a) => { const c = a.channels.find((x) => x.name === name); return c ? f(c) : null; };
  const scale = (v, k) => (v === null || v === undefined ? null : v * k);
  const volts = chans.filter((n) => chanKind(term, n) === "voltage");
  const amps = chans.filter((n) => chanKind(term, n) === "current");
  const sideNote = side === "primary" ? t("th_primary") : t("th_secondary");
  return {
    freq: { label: t("th_q_freq"), unit: "Hz", digits: 3, axis: t("th_axis_hz"),
      series: [[t("th_mean"), (a) => a.freq && a.freq.mean], [t("th_min"), (a) => a.freq && a.freq.min], [t("th_max"), (a) => a.freq && a.freq.max]] },
    urms: { label: t("th_q_urms"), unit: "V", digits: side === "primary" ? 1 : 3, axis: `V (${sideNote})`,
      series: volts.map((n) => [n, ch(n, (c) => scale(c.rms, vt))]) },
    irms: { label: t("th_q_irms"), unit: "A", digits: 3, axis: `A (${sideNote})`,
      series: amps.map((n) => [n, ch(n, (c) => scale(c.rms, ct))]) },
    thd: { label: t("th_q_thd"), unit: "%", digits: 2, axis: t("th_axis_pct"),
      series: volts.map((n) => [n, ch(n, (c) => c.thd_pct)]) },
    ithd: { label: t("th_q_ithd"), unit: "%", digits: 2, axis: t("th_axis_pct"),
      series: amps.map((n) => [n, ch(n, (c) => c.thd_pct)]) },
    unb: { label: t("th_q_unb"), unit: "%", digits: 3, axis: t("th_axis_pct"),
      series: [["u0", (a) => a.u0_pct], ["u2", (a) => a.u2_pct], ["i0", (a) => a.i0_pct], ["i2", (a) => a.i2_pct]] },
    power: { label: t("th_q_power"), unit: "", digits: side === "primary" ? 0 : 2, axis: `W · var · VA (${sideNote})`,
      units: ["W", "var", "VA"],
      series: [["P", (a) => scale(a.p, vt * ct)], ["Q", (a) => scale(a.q, vt * ct)], ["S", (a) => scale(a.s_eff, vt * ct)]] },
  };
}

/** Reads the stored values of one interval in (from, to] (ms), page by page up to a bound. */
async function readMeasurements(id, iv, from, to) {
  let rows = [], cursor = nsOf(from), more = false;
  for (let i = 0; i < MAX_PAGES; i++) {
    const r = await api(`/api/v1/terminals/${enc(id)}/measurements?interval=${iv}&from=${cursor}&to=${nsOf(to)}&limit=10000`);
    if (r.status !== 200) return { r };
    const page = r.body.measurements;
    rows = rows.concat(page);
    more = !!r.body.more;
    if (!more || !page.length) break;
    // the next page starts after the last end time (ms + 999999 ns is past it, and well before
    // the next value: next_from is a 64-bit integer that a JSON number cannot hold exactly)
    cursor = `${Date.parse(page[page.length - 1].t_end)}999999`;
  }
  return { rows, more };
}

export function showTrends(box, term, route) {
  const q0 = route.query;
  const st = {
    q: q0.get("q") || "freq",
    range: RANGES[q0.get("range")] ? q0.get("range") : "1h",
    iv: ["auto", ...Object.keys(IVS)].includes(q0.get("iv")) ? q0.get("iv") : "auto",
    side: q0.get("side") === "primary" ? "primary" : "secondary",
    end: Number(q0.get("end")) || null, // ms; null = now
  };
  let chart = null;
  let gen = 0; // a newer load makes an older answer stale
  let loaded = null; // {from, to} ms of the data on screen
  const chans = (term.latest && term.latest.channels ? term.latest.channels.map((c) => c.name) : []);
  const [qWrap, qSel] = selectField("th-q", t("th_quantity"), Object.entries(quantities(term, chans, st.side)).map(([k, v]) => [k, v.label]), st.q);
  if (qSel.value !== st.q) { st.q = "freq"; qSel.value = "freq"; }
  const [rWrap, rSel] = selectField("th-range", t("th_range"), Object.entries(RANGE_LABEL()), st.range);
  const [iWrap, iSel] = selectField("th-iv", t("th_interval"), [["auto", t("th_iv_auto")], ["3s", t("th_iv_threes")], ["10min", t("th_iv_tenmin")], ["2h", t("th_iv_twoh")]], st.iv);
  const [sWrap, sSel] = selectField("th-side", t("th_side"), [["secondary", t("th_secondary")], ["primary", t("th_primary")]], st.side);
  const btn = (id, label, fn) => el("button", { type: "button", id, textContent: label, onclick: fn });
  const earlier = btn("th-earlier", t("th_earlier"), () => panBy(-1));
  const later = btn("th-later", t("th_later"), () => panBy(1));
  const resetB = btn("th-reset", t("th_reset"), () => chart && chart.reset());
  const zoomBy = (f) => {
    if (!chart) return;
    const { min, max } = chart.u.scales.x, c = (min + max) / 2, w = (max - min) * f;
    chart.view(c - w / 2, c + w / 2);
  };
  const zoomIn = btn("th-zoom-in", t("th_zoom_in"), () => zoomBy(0.5));
  const zoomOut = btn("th-zoom-out", t("th_zoom_out"), () => zoomBy(2));
  const nowB = btn("th-now", t("th_now"), () => { st.end = null; load(); });
  const info = el("p", { id: "th-info", className: "note", role: "status" });
  const detailNote = el("p", { id: "th-detail", className: "note" });
  // Zoomed in with the automatic interval, the part on screen is read again with the interval
  // that suits its width (e.g. 3 s values inside a 7-day view of 10 min values): `detail`
  let cur = null, detail = null, dgen = 0, refineT = null;
  const area = el("div", { id: "th-trend", className: "th-chart" });
  const stats = el("div", { id: "th-stats", className: "scroll", tabIndex: 0, role: "region", "aria-label": t("th_values_table") });
  box.append(
    el("div", { className: "th-controls" }, qWrap, rWrap, iWrap, sWrap),
    el("div", { className: "th-controls th-buttons" }, earlier, later, zoomIn, zoomOut, resetB, nowB),
    info, area, detailNote, stats,
    el("p", { className: "note th-hint", textContent: t("th_zoom_hint") }));

  const ivOf = () => (st.iv === "auto" ? AUTO_IV[st.range] : st.iv);
  const save = () => keepInUrl(term, "trends", { q: st.q, range: st.range, iv: st.iv === "auto" ? null : st.iv,
    side: st.side === "primary" ? "primary" : null, end: st.end });

  // an end within 2 % of the range from now is "now" (the view follows the newest values)
  const nearNow = (ms) => ms >= Date.now() - RANGES[st.range] * 0.02;
  function panBy(dir) {
    if (!chart || !loaded) { // nothing plotted: move the whole range
      const end = (st.end || Date.now()) + dir * RANGES[st.range] / 2;
      st.end = nearNow(end) ? null : end;
      load();
      return;
    }
    const min = chart.u.scales.x.min, max = chart.u.scales.x.max, w = max - min;
    const nmin = min + dir * w / 2, nmax = max + dir * w / 2;
    if (nmin * 1000 >= loaded.from - 1 && nmax * 1000 <= loaded.to + 1) { chart.view(nmin, nmax); return; }
    // outside what is loaded: load the range that ends at (or starts at) the new view
    const len = RANGES[st.range];
    let end = dir > 0 ? nmax * 1000 : nmin * 1000 + len;
    if (nearNow(end)) end = null;
    st.end = end;
    load(w < len / 1000 * 0.999 ? [nmin, nmax] : null);
  }

  async function load(keepView = null) {
    const my = ++gen;
    save();
    const to = st.end || Date.now(), from = to - RANGES[st.range];
    const iv = ivOf();
    if (chart) { chart.destroy(); chart = null; }
    loaded = null; cur = null; detail = null; dgen++;
    detailNote.replaceChildren();
    zoomIn.disabled = zoomOut.disabled = resetB.disabled = true;
    area.replaceChildren(loading());
    stats.replaceChildren();
    info.replaceChildren();
    later.disabled = !st.end;
    const res = await readMeasurements(term.id, iv, from, to);
    if (my !== gen) return;
    if (res.r) { area.replaceChildren(errorBox(apiError(res.r))); return; }
    const rows = res.rows;
    info.replaceChildren(t("th_info", { n: rows.length, iv: ivLabel(iv) }), " ", timeEl(from), " – ", timeEl(to),
      res.more ? el("span", { className: "warn", textContent: " " + t("th_truncated") }) : "");
    if (!rows.length) {
      area.replaceChildren(emptyBox(iv === "3s" ? t("th_empty_fine") : t("th_empty", { iv: ivLabel(iv) })));
      return;
    }
    // the channels of the stored values (the latest values may be missing when offline)
    const names = [...new Set(rows.flatMap((a) => a.channels.map((c) => c.name)))];
    const qs = quantities(term, names.length ? names : chans, st.side);
    const qd = qs[st.q];
    if (!qd.series.length) { area.replaceChildren(emptyBox(t("th_no_channels"))); return; }
    cur = { rows, iv, qd, from, to };
    const data = compose();
    const unitOf = (i) => (qd.units ? qd.units[i] : qd.unit);
    area.replaceChildren();
    loaded = { from, to };
    chart = timeChart(area, {
      data, full: [from / 1000, to / 1000],
      series: qd.series.map(([label], i) => ({ label, stroke: COLORS[i % COLORS.length], width: 1.5, spanGaps: false,
        value: (_, v) => fmtNum(v, qd.digits, unitOf(i)) })),
      axes: [{ label: qd.axis, size: 70 }],
      onView: (min, max) => {
        resetB.disabled = zoomOut.disabled = min <= from / 1000 + 1 && max >= to / 1000 - 1;
        zoomIn.disabled = max - min < 20;
        if (refineT) clearTimeout(refineT);
        refineT = setTimeout(() => { refineT = null; refine(min, max); }, 400);
      },
    });
    if (keepView) chart.view(keepView[0], keepView[1]);
    // the values of the range as text: what the chart shows, readable and copyable
    stats.replaceChildren(el("table", { id: "th-stats-table" },
      el("caption", { textContent: t("th_stats_caption", { q: qd.label }) }),
      el("thead", {}, el("tr", {}, ...[t("th_series"), t("th_min"), t("th_mean"), t("th_max"), t("th_last"), t("th_last_time")].map((h) => el("th", { scope: "col", textContent: h })))),
      el("tbody", {}, ...qd.series.map(([label, f], i) => {
        const vs = rows.map(f).filter((v) => v !== null && v !== undefined && !Number.isNaN(v));
        let last = null;
        for (let k = rows.length - 1; k >= 0; k--) { const v = f(rows[k]); if (v !== null && v !== undefined) { last = [v, rows[k]]; break; } }
        const d = (v) => fmtNum(v, qd.digits, unitOf(i));
        return el("tr", { "data-series": label },
          el("th", { scope: "row", textContent: label }),
          el("td", { className: "num", textContent: vs.length ? d(Math.min(...vs)) : t("none") }),
          el("td", { className: "num", textContent: vs.length ? d(vs.reduce((a, b) => a + b, 0) / vs.length) : t("none") }),
          el("td", { className: "num", textContent: vs.length ? d(Math.max(...vs)) : t("none") }),
          el("td", { className: "num th-last", textContent: last ? d(last[0]) : t("none") }),
          el("td", {}, last ? timeEl(last[1].t_end) : t("none")));
      }))));
  }
  const xs = (a) => Date.parse(a.t_end) / 1000;
  /** The chart's columns: the range's values, and inside the detail window its finer ones. */
  function compose() {
    const f = cur.qd.series.map((q) => q[1]);
    const gap = IVS[cur.iv] * 1.5;
    if (!detail) return columns(cur.rows, xs, f, gap);
    const parts = [columns(cur.rows.filter((r) => xs(r) <= detail.a), xs, f, gap),
      columns(detail.rows, xs, f, IVS[detail.iv] * 1.5),
      columns(cur.rows.filter((r) => xs(r) > detail.b), xs, f, gap)];
    const out = parts[0].map(() => []);
    for (const p of parts) {
      if (!p[0].length) continue;
      if (out[0].length) { // a break where the resolution changes
        out[0].push((out[0][out[0].length - 1] + p[0][0]) / 2);
        for (let i = 1; i < out.length; i++) out[i].push(null);
      }
      p.forEach((c, i) => out[i].push(...c));
    }
    return out;
  }
  async function refine(min, max) {
    if (st.iv !== "auto" || !cur || !chart) return;
    const w = max - min;
    const want = w <= 3 * 3600 ? "3s" : w <= 10 * 86400 ? "10min" : "2h";
    if (IVS[want] >= IVS[cur.iv]) { // the range's own values suit this width
      if (detail) { detail = null; dgen++; redraw(); }
      return;
    }
    if (detail && detail.iv === want && detail.a <= min && detail.b >= max) return;
    const a = Math.max(cur.from / 1000, min - w / 2), b = Math.min(cur.to / 1000, max + w / 2);
    const my = ++dgen;
    detailNote.replaceChildren(loading(t("th_detail_loading", { iv: ivLabel(want) })));
    const res = await readMeasurements(term.id, want, a * 1000, b * 1000);
    if (my !== dgen || !chart) return;
    if (res.r) { detailNote.replaceChildren(errorBox(apiError(res.r))); return; }
    detail = { a, b, iv: want, rows: res.rows };
    redraw();
  }
  function redraw() {
    if (!chart) return;
    const { min, max } = chart.u.scales.x;
    chart.u.setData(compose(), false);
    chart.u.setScale("x", { min, max }); // (re-ranges y for the new values)
    detailNote.replaceChildren(...(detail ? [t("th_detail", { iv: ivLabel(detail.iv), n: detail.rows.length }), " ",
      timeEl(detail.a * 1000), " – ", timeEl(detail.b * 1000)] : []));
  }
  const ivLabel = (iv) => ({ "3s": t("th_iv_threes"), "10min": t("th_iv_tenmin"), "2h": t("th_iv_twoh") })[iv];

  qSel.onchange = () => { st.q = qSel.value; load(); };
  rSel.onchange = () => { st.range = rSel.value; st.end = null; load(); };
  iSel.onchange = () => { st.iv = iSel.value; load(); };
  sSel.onchange = () => { st.side = sSel.value; load(); };
  load();
  return () => { gen++; dgen++; if (refineT) clearTimeout(refineT); if (chart) chart.destroy(); chart = null; };
}

// ---- status ---------------------------------------------------------------------------------
export function showStatus(box, term, route) {
  let range = RANGES[route.query.get("range")] ? route.query.get("range") : "24h";
  const [rWrap, rSel] = selectField("th-srange", t("th_range"), Object.entries(RANGE_LABEL()), range);
  const charts = [];
  let rows = []; // oldest first
  let to = 0, from = 0, gen = 0;
  const area = el("div", { id: "th-status-charts" });
  const info = el("p", { id: "th-status-info", className: "note", role: "status" });
  const sess = el("div", { id: "th-sessions" });
  box.append(el("h2", { textContent: t("th_status_title") }), el("div", { className: "th-controls" }, rWrap), info, area,
    el("h2", { textContent: t("th_sessions_title") }), sess);
  const x = (s) => Date.parse(s.time) / 1000; // the terminal's report time (the range filters on it)
  const DEFS = [
    { id: "th-signal", title: t("th_signal"), axes: [{ label: "RSRP (dBm)", size: 60 }, { label: "CSQ", side: 1, scale: "csq", grid: { show: false }, size: 40 }],
      series: [{ label: "RSRP", f: (s) => s.rsrp_dbm, unit: "dBm", d: 0 }, { label: "RSSI", f: (s) => s.rssi_dbm, unit: "dBm", d: 0 }, { label: "CSQ", f: (s) => s.csq, unit: "", d: 0, scale: "csq" }] },
    { id: "th-temp", title: t("th_temperature"), axes: [{ label: "°C", size: 60 }],
      series: [{ label: t("th_temperature"), f: (s) => s.temperature_c, unit: "°C", d: 1 }] },
    { id: "th-supply", title: t("th_supply"), axes: [{ label: "V", size: 60 }],
      series: [{ label: t("th_supply"), f: (s) => s.supply_v, unit: "V", d: 2 }] },
  ];
  const gapOf = () => {
    const d = []; for (let i = 1; i < rows.length; i++) d.push(x(rows[i]) - x(rows[i - 1]));
    d.sort((a, b) => a - b);
    return d.length ? Math.max(3 * d[d.length >> 1], 5) : 0;
  };
  function draw() {
    for (const c of charts) c.destroy();
    charts.length = 0;
    if (!rows.length) { area.replaceChildren(emptyBox(t("th_status_empty"))); return; }
    area.replaceChildren();
    const gap = gapOf();
    for (const d of DEFS) {
      const box2 = el("div", { id: d.id, className: "th-chart th-small" });
      area.append(el("figure", { className: "th-fig" }, el("figcaption", { textContent: d.title }), box2));
      charts.push(timeChart(box2, {
        data: columns(rows, x, d.series.map((s) => s.f), gap), full: [from / 1000, to / 1000], height: 200,
        series: d.series.map((s, i) => ({ label: s.label, ...(s.scale ? { scale: s.scale } : {}), stroke: COLORS[i], width: 1.5, spanGaps: false,
          points: { show: rows.length < 80 }, value: (_, v) => fmtNum(v, s.d, s.unit) })),
        axes: d.axes,
      }));
    }
  }
  async function load() {
    const my = ++gen;
    keepInUrl(term, "status", { range: range === "24h" ? null : range });
    to = Date.now(); from = to - RANGES[range];
    area.replaceChildren(loading());
    const res = await readBefore(`/api/v1/terminals/${enc(term.id)}/status?from=${nsOf(from)}&to=${nsOf(to)}&limit=10000`, "status", 50000);
    if (my !== gen) return;
    if (res.r) { area.replaceChildren(errorBox(apiError(res.r))); return; }
    rows = res.rows.slice().reverse();
    info.replaceChildren(t("th_status_info", { n: rows.length }), " ", timeEl(from), " – ", timeEl(to),
      res.more ? el("span", { className: "warn", textContent: " " + t("th_truncated_newest") }) : "");
    draw();
  }
  rSel.onchange = () => { range = rSel.value; load(); };

  // the session history: newest first, "more" for older ones; reloaded when the terminal
  // connects or disconnects (the fleet topic)
  let sessRows = [], sessNext = null;
  const tbody = el("tbody");
  const moreB = el("button", { type: "button", id: "th-sessions-more", textContent: t("th_more") });
  // an open session: the newest one while the terminal is online; any other was cut off by a
  // hard stop of the server (docs/api.md)
  const sessRow = (s, newest) => el("tr", { "data-id": s.id },
    el("td", {}, timeEl(s.connected)),
    el("td", {}, s.disconnected ? timeEl(s.disconnected) : newest && term.online
      ? el("span", { className: "on", textContent: t("th_still_open") }) : el("span", { className: "note", textContent: t("th_not_closed") })),
    el("td", { className: "num", textContent: s.duration_s === null ? t("none") : fmtDuration(s.duration_s) }),
    el("td", { textContent: s.remote || t("none") }),
    el("td", { textContent: s.reason || t("none") }),
    el("td", { className: "num", textContent: s.blocks === null ? t("none") : String(s.blocks) }),
    el("td", { className: "num", textContent: s.bytes === null ? t("none") : fmtNum(s.bytes / 1e6, 2, "MB") }));
  async function loadSessions(older) {
    const r = await api(`/api/v1/terminals/${enc(term.id)}/sessions?limit=50` + (older && sessNext ? `&before=${sessNext}` : ""));
    if (r.status !== 200) { sess.replaceChildren(errorBox(apiError(r))); return; }
    sessRows = older ? sessRows.concat(r.body.sessions) : r.body.sessions;
    sessNext = r.body.next_before;
    if (!sessRows.length) { sess.replaceChildren(emptyBox(t("th_sessions_empty"))); return; }
    tbody.replaceChildren(...sessRows.map((s, i) => sessRow(s, i === 0)));
    moreB.hidden = sessNext === null || sessNext === undefined;
    if (!sess.querySelector("table")) {
      sess.replaceChildren(el("div", { className: "scroll", tabIndex: 0, role: "region", "aria-label": t("th_sessions_title") }, el("table", { id: "th-sessions-table" },
        el("thead", {}, el("tr", {}, ...[t("th_connected"), t("th_disconnected"), t("th_duration"), t("th_remote"), t("th_reason"), t("th_blocks"), t("th_bytes")].map((h) => el("th", { scope: "col", textContent: h })))),
        tbody)), moreB);
    }
  }
  moreB.onclick = () => loadSessions(true);
  sess.append(loading());
  let wasOnline = term.online;
  const unsub = feed.subscribe(["fleet"], (m) => {
    if (m.topic !== "fleet" || m.data.id !== term.id) return;
    if (m.data.online !== wasOnline) { wasOnline = m.data.online; term.online = m.data.online; loadSessions(false); }
    // a new STATUS: the rows stored since the newest shown are read and appended (the feed
    // carries the server's receive time, the history the terminal's report time and its id)
    const s = m.data.status;
    if (s && s.received !== lastRx && rows.length) { lastRx = s.received; if (!fetching) appendNew(); }
  });
  let lastRx = null, fetching = false, retried = false;
  async function appendNew() {
    fetching = true;
    const last = rows[rows.length - 1];
    const r = await api(`/api/v1/terminals/${enc(term.id)}/status?from=${nsOf(Date.parse(last.time))}&limit=1000`);
    fetching = false;
    if (gone || r.status !== 200 || rows[rows.length - 1] !== last) return;
    const fresh = r.body.status.filter((x2) => x2.id > last.id).reverse();
    if (!fresh.length) { // published before it was stored: look once more a little later
      if (!retried) { retried = true; setTimeout(() => { if (!gone && !fetching) appendNew(); }, 1500); }
      return;
    }
    retried = false;
    const keep = charts.map((c) => [c.u.scales.x.min, c.u.scales.x.max]);
    const whole = keep.every(([a2, b2]) => a2 <= from / 1000 + 1 && b2 >= to / 1000 - 1);
    rows.push(...fresh);
    to = Math.max(to, Date.parse(fresh[fresh.length - 1].time) + 1000);
    if (whole) from = to - RANGES[range];
    draw();
    if (!whole) charts.forEach((c, i) => c.view(keep[i][0], keep[i][1]));
  }
  let gone = false;
  load();
  loadSessions(false);
  const unback = onFeedBack(() => { loadSessions(false); if (rows.length) appendNew(); else load(); });
  return () => { gone = true; gen++; unsub(); unback(); for (const c of charts) c.destroy(); };
}

// ---- events ---------------------------------------------------------------------------------
const kindLabel = (k) => ({ dip: t("th_kind_dip"), swell: t("th_kind_swell"), interruption: t("th_kind_interruption") })[k] || k;

export function showEvents(box, term) {
  let rows = [], next = null;
  const ids = new Set();
  const tbody = el("tbody");
  const moreB = el("button", { type: "button", id: "th-events-more", textContent: t("th_more") });
  const wrap = el("div", { id: "th-events" }, loading());
  box.append(el("p", { className: "note", textContent: t("th_events_note") }), wrap);
  const row = (e, fresh) => el("tr", { "data-id": e.id, className: fresh ? "th-new" : "" },
    el("td", {}, el("a", { href: href.event(e.id), textContent: `#${e.id}` })),
    el("td", { textContent: kindLabel(e.kind) }),
    el("td", {}, timeEl(e.start, true)),
    el("td", { className: "num", textContent: fmtDuration(e.duration_s) }),
    el("td", { className: "num", textContent: e.kind === "swell" ? `${t("th_maximum")} ${fmtNum(e.maximum_pct, 1, "%")}` : fmtNum(e.residual_pct, 1, "%") }),
    el("td", { textContent: `${(e.channels || []).join(" ")}${e.worst_channel ? ` (${t("th_worst")} ${e.worst_channel})` : ""}` }),
    el("td", {}, e.acked ? el("span", {}, t("th_acked_by", { user: e.acked_by || "" }), " ", timeEl(e.acked_at)) : el("span", { className: "warn", textContent: t("th_not_acked") })));
  const table = () => el("div", { className: "scroll", tabIndex: 0, role: "region", "aria-label": t("th_events_label") }, el("table", { id: "th-events-table" },
    el("thead", {}, el("tr", {}, ...[t("th_event"), t("th_kind"), t("th_start"), t("th_duration"), t("th_residual"), t("th_channels"), t("th_ack")].map((h) => el("th", { scope: "col", textContent: h })))),
    tbody));
  function paint() {
    if (!rows.length) { wrap.replaceChildren(emptyBox(t("th_events_empty"))); return; }
    if (!wrap.querySelector("table")) wrap.replaceChildren(table(), moreB);
    moreB.hidden = next === null || next === undefined;
  }
  async function load(older) {
    const r = await api(`/api/v1/terminals/${enc(term.id)}/events?limit=50` + (older && next ? `&before=${next}` : ""));
    if (r.status !== 200) { wrap.replaceChildren(errorBox(apiError(r))); return; }
    const fresh = r.body.events.filter((e) => !ids.has(e.id));
    fresh.forEach((e) => ids.add(e.id));
    rows = rows.concat(fresh);
    next = r.body.next_before;
    tbody.append(...fresh.map((e) => row(e, false)));
    paint();
  }
  moreB.onclick = () => load(true);
  // The feed carries each event once it is stored, as GET /events/{id} answers it; after a
  // feed outage the newest page is read again (what arrived meanwhile).
  let gone = false;
  function add(list) {
    const fresh = list.filter((e) => !ids.has(e.id));
    fresh.forEach((e) => ids.add(e.id));
    rows = fresh.concat(rows);
    tbody.prepend(...fresh.map((e) => row(e, true)));
    paint();
  }
  async function newest() {
    const r = await api(`/api/v1/terminals/${enc(term.id)}/events?limit=100`);
    if (!gone && r.status === 200) add(r.body.events);
  }
  const unsub = feed.subscribe(["events"], (m) => {
    if (m.topic !== "events" || !m.data || m.data.terminal !== term.id || !m.data.event) return;
    add([m.data.event]);
  });
  load(false);
  const unback = onFeedBack(() => newest());
  return () => { gone = true; unsub(); unback(); };
}

// ---- commands -------------------------------------------------------------------------------
// Verbs and arguments as the API takes them (docs/api.md POST /terminals/{id}/commands, the
// server's src/api/verbs.c): type int (whole numbers) or dec (one decimal), range, or a bool.
const VERBS = {
  "get-status": [],
  capture: [{ k: "cycles", type: "int", min: 1, max: 3000 }, { k: "pretrigger", type: "int", min: 0, max: 3000 }],
  "stream-start": [],
  "stream-stop": [],
  "set-config": [{ k: "report_interval", type: "int", min: 1, max: 86400, unit: "s" }, { k: "stream", type: "bool" },
    { k: "dip", type: "dec", min: 0.1, max: 100, unit: "%" }, { k: "swell", type: "dec", min: 100, max: 200, unit: "%" }],
  "time-sync": [],
  reboot: [],
};
const verbHelp = () => ({ "get-status": t("th_v_get_status"), capture: t("th_v_capture"), "stream-start": t("th_v_stream_start"),
  "stream-stop": t("th_v_stream_stop"), "set-config": t("th_v_set_config"), "time-sync": t("th_v_time_sync"), reboot: t("th_v_reboot") });
const argLabel = () => ({ cycles: t("th_a_cycles"), pretrigger: t("th_a_pretrigger"), report_interval: t("th_a_report_interval"),
  stream: t("th_a_stream"), dip: t("th_a_dip"), swell: t("th_a_swell") });
const stateLabel = (s) => ({ queued: t("th_s_queued"), sent: t("th_s_sent"), acked: t("th_s_acked"), done: t("th_s_done"),
  failed: t("th_s_failed"), expired: t("th_s_expired"), cancelled: t("th_s_cancelled") })[s] || s;
const RANK = { queued: 0, sent: 1, acked: 2, done: 3, failed: 3, expired: 3, cancelled: 3 };
const RESULT = () => ({ 0: t("th_r_ok"), 1: t("th_r_accepted"), 2: t("th_r_unknown_verb"), 3: t("th_r_bad_args"), 4: t("th_r_busy"), 5: t("th_r_failed") });

/** The result of a command as text: the status name, then its values. */
function resultText(c) {
  if (!("result_status" in c)) return c.state === "expired" ? t("th_no_answer") : c.state === "cancelled" ? t("th_never_sent") : t("none");
  const parts = [RESULT()[c.result_status] || t("th_r_other", { n: c.result_status })];
  const r = c.result || {};
  if (r.message) parts.push(`“${r.message}”`);
  if (r.block_seq !== undefined) parts.push(t("th_block", { n: r.block_seq }));
  if (r.clock_offset_ns !== undefined) parts.push(t("th_offset", { v: fmtNum(r.clock_offset_ns / 1e6, 3, "ms") }));
  if (r.round_trip_ns !== undefined) parts.push(t("th_rtt", { v: fmtNum(r.round_trip_ns / 1e6, 1, "ms") }));
  return parts.join(" · ");
}
const argsText = (a) => Object.entries(a || {}).map(([k, v]) => `${k}=${v}`).join(", ") || t("none");

/** Checks the form's values; returns {args} or {errors: [[key, message]]}. */
function validate(verb, values) {
  const errors = [], args = {};
  for (const a of VERBS[verb]) {
    const raw = (values[a.k] ?? "").trim();
    if (raw === "") continue;
    if (a.type === "bool") { args[a.k] = raw === "on"; continue; }
    const re = a.type === "int" ? /^\d+$/ : /^\d+(\.\d)?$/;
    const v = Number(raw);
    if (!re.test(raw) || v < a.min || v > a.max) {
      const vars = { name: argLabel()[a.k], min: a.min, max: a.max };
      errors.push([a.k, a.type === "int" ? t("th_err_int", vars) : t("th_err_dec", vars)]);
      continue;
    }
    args[a.k] = v;
  }
  if (verb === "capture" && args.cycles !== undefined && args.pretrigger !== undefined && args.pretrigger >= args.cycles)
    errors.push(["pretrigger", t("th_err_pretrigger")]);
  if (verb === "set-config" && !errors.length && !Object.keys(args).length) errors.push(["report_interval", t("th_err_set_config")]);
  return errors.length ? { errors } : { args };
}

export function showCommands(box, term) {
  const operator = can("operator");
  const byId = new Map();
  let next = null, gen = 0;
  const tbody = el("tbody");
  const moreB = el("button", { type: "button", id: "th-commands-more", textContent: t("th_more") });
  const wrap = el("div", { id: "th-commands" }, loading());
  const formBox = el("div", { id: "th-command-form-box" });
  box.append(formBox, el("h2", { textContent: t("th_commands_title") }), wrap);

  // ---- the list, with live states
  function rowOf(c, fresh) {
    const cancel = operator && c.state === "queued"
      ? el("button", { type: "button", className: "th-cancel", textContent: t("th_cancel"), "aria-label": t("th_cancel_n", { n: c.id }), onclick: () => cancelCmd(c.id) })
      : "";
    return el("tr", { "data-id": c.id, "data-state": c.state, className: fresh ? "th-new" : "" },
      el("td", { className: "num", textContent: `#${c.id}` }),
      el("td", { textContent: c.verb }),
      el("td", {}, el("span", { className: `th-state th-state-${c.state}`, textContent: stateLabel(c.state) })),
      el("td", { className: "th-result", textContent: resultText(c) }),
      el("td", { className: "th-args-cell", textContent: argsText(c.args) }),
      el("td", {}, timeEl(c.created)),
      el("td", {}, timeEl(c.updated)),
      el("td", {}, cancel));
  }
  function upsert(c, fresh) {
    const old = byId.get(c.id);
    // an answer or message older than what is shown (the POST's answer may come after the feed's)
    if (old && (c.updated < old.c.updated || (c.updated === old.c.updated && RANK[c.state] < RANK[old.c.state]))) return;
    const tr = rowOf(c, fresh || (old && old.tr.classList.contains("th-new")));
    if (old) old.tr.replaceWith(tr);
    else if (fresh) tbody.prepend(tr);
    else tbody.append(tr);
    byId.set(c.id, { c, tr });
    paint();
  }
  const table = () => el("div", { className: "scroll", tabIndex: 0, role: "region", "aria-label": t("th_commands_title") }, el("table", { id: "th-commands-table" },
    el("thead", {}, el("tr", {}, ...[t("th_id"), t("th_verb"), t("th_state"), t("th_result"), t("th_args"), t("th_created"), t("th_updated"), el("span", { className: "th-sr", textContent: t("th_actions") })].map((h) => el("th", { scope: "col" }, h)))),
    tbody));
  function paint() {
    if (!byId.size) { wrap.replaceChildren(emptyBox(operator ? t("th_commands_empty_op") : t("th_commands_empty"))); return; }
    if (!wrap.querySelector("table")) wrap.replaceChildren(table(), moreB);
    moreB.hidden = next === null || next === undefined;
  }
  async function load(older) {
    const my = older ? gen : ++gen;
    const r = await api(`/api/v1/terminals/${enc(term.id)}/commands?limit=50` + (older && next ? `&before=${next}` : ""));
    if (my !== gen) return;
    if (r.status !== 200) { wrap.replaceChildren(errorBox(apiError(r))); return; }
    if (!older) { byId.clear(); tbody.replaceChildren(); }
    next = r.body.next_before;
    for (const c of r.body.commands) upsert(c, false);
    paint();
  }
  moreB.onclick = () => load(true);
  const unsub = feed.subscribe(["commands"], (m) => {
    if (m.topic === "lost") return;
    if (m.topic !== "commands" || !m.data) return;
    if (m.data.expired !== undefined) { load(false); return; } // N commands expired: read the list again
    if (m.data.terminal === term.id) upsert(m.data, !byId.has(m.data.id));
  });

  async function cancelCmd(id) {
    const r = await api(`/api/v1/commands/${id}`, { method: "DELETE" });
    if (r.status === 200) upsert(r.body, false);
    else status.replaceChildren(errorBox(apiError(r)));
  }

  // ---- the form (operator, admin)
  const status = el("div", { id: "th-send-status", "aria-live": "polite" });
  if (!operator) {
    formBox.append(el("p", { id: "th-no-form", className: "note box", textContent: t("th_viewer_note") }));
  } else {
    const [vWrap, vSel] = selectField("th-verb", t("th_verb"), Object.keys(VERBS).map((v) => [v, v]), "capture");
    const help = el("p", { id: "th-verb-help", className: "note" });
    const argsBox = el("div", { className: "th-args" });
    const ttl = el("input", { id: "th-ttl", name: "ttl_s", inputMode: "numeric", placeholder: t("th_ttl_default"), "aria-describedby": "th-ttl-err" });
    const ttlErr = el("span", { id: "th-ttl-err", className: "error th-err" });
    const confirmBox = el("input", { type: "checkbox", id: "th-reboot-ok" });
    const confirmWrap = el("label", { className: "th-confirm", for: "th-reboot-ok" }, confirmBox, " ", t("th_reboot_confirm"));
    const sendB = el("button", { type: "submit", id: "th-send", textContent: t("th_send") });
    const inputs = new Map();
    const errs = new Map();
    const drawArgs = () => {
      inputs.clear(); errs.clear();
      const v = vSel.value;
      help.textContent = verbHelp()[v];
      argsBox.replaceChildren(...VERBS[v].map((a) => {
        const id = `th-arg-${a.k}`;
        const err = el("span", { id: id + "-err", className: "error th-err" });
        const inp = a.type === "bool"
          ? el("select", { id, name: a.k, "aria-describedby": id + "-err" }, el("option", { value: "", textContent: t("th_unchanged") }), el("option", { value: "on", textContent: t("th_on") }), el("option", { value: "off", textContent: t("th_off") }))
          : el("input", { id, name: a.k, inputMode: a.type === "int" ? "numeric" : "decimal", placeholder: `${a.min}…${a.max}`, "aria-describedby": id + "-err" });
        inputs.set(a.k, inp); errs.set(a.k, err);
        const hint = a.type === "bool" ? "" : ` (${a.min}–${a.max}${a.unit ? " " + a.unit : ""}${t("th_optional")})`;
        return el("div", { className: "th-arg" }, el("label", { for: id }, argLabel()[a.k] + hint), inp, err);
      }));
      if (!VERBS[v].length) argsBox.append(el("p", { className: "note", textContent: t("th_no_args") }));
      confirmWrap.hidden = v !== "reboot";
      confirmBox.checked = false;
    };
    vSel.onchange = drawArgs;
    const form = el("form", { id: "th-command-form", className: "card", noValidate: true },
      el("h2", { textContent: t("th_send_title") }),
      el("div", { className: "th-controls" }, vWrap), help, argsBox,
      el("div", { className: "th-arg" }, el("label", { for: "th-ttl" }, t("th_ttl")), ttl, ttlErr),
      confirmWrap, el("div", {}, sendB), status);
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      for (const [k, err] of errs) { err.textContent = ""; inputs.get(k).removeAttribute("aria-invalid"); }
      ttlErr.textContent = ""; ttl.removeAttribute("aria-invalid");
      status.replaceChildren();
      const verb = vSel.value;
      const values = Object.fromEntries([...inputs].map(([k, i]) => [k, i.value]));
      const res = validate(verb, values);
      let bad = false;
      for (const [k, msg] of res.errors || []) { errs.get(k).textContent = msg; inputs.get(k).setAttribute("aria-invalid", "true"); bad = true; }
      const tv = ttl.value.trim();
      if (tv && (!/^\d+$/.test(tv) || Number(tv) < 1 || Number(tv) > 31536000)) {
        ttlErr.textContent = t("th_err_int", { name: t("th_ttl"), min: 1, max: 31536000 }); ttl.setAttribute("aria-invalid", "true"); bad = true;
      }
      if (verb === "reboot" && !confirmBox.checked) { status.replaceChildren(errorBox(t("th_err_reboot"))); bad = true; }
      if (bad) { status.prepend(errorBox(t("th_err_fix"))); return; }
      const body = { verb, args: res.args };
      if (tv) body.ttl_s = Number(tv);
      sendB.disabled = true;
      const r = await api(`/api/v1/terminals/${enc(term.id)}/commands`, { method: "POST", json: body });
      sendB.disabled = false;
      if (r.status === 201) {
        upsert(r.body, true);
        status.replaceChildren(el("p", { className: "note", role: "status", textContent: t("th_sent_ok", { n: r.body.id, state: stateLabel(r.body.state) }) }));
      } else status.replaceChildren(errorBox(apiError(r)));
    });
    drawArgs();
    formBox.append(form);
  }
  if (!operator) formBox.append(status);
  load(false);
  const unback = onFeedBack(() => load(false));
  return () => { gen++; unsub(); unback(); };
}
