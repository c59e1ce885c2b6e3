// The terminal page's live tab (issue 9): oscilloscope of the voltages and currents from the
// feed's terminal/{id}/wave topic, phasor diagram and table, harmonic spectrum with THD, and the
// latest values (terminal/{id}/latest). showLive(box, term, route) -> dispose.
//
// The oscilloscope is triggered on UTC: the server sends at most 10 frames a second, each at most
// 2 nominal cycles taken at the start of a 100 ms block, so frames are not contiguous and a
// rolling strip would be mostly gaps. Each frame is drawn against "time since the start of the
// nominal cycle in UTC" (t mod 1/f_nominal), the same reference as the phasor angles: a trace
// stands still while the frequency is nominal, drifts slowly as it is not, and a cosine at 0°
// peaks at 0 ms. Hold freezes the whole tab (scope, phasors, spectrum, values) so they can be
// read together, like the HOLD key of a power-quality analyser.
//
// For tests and benchmarks (bench/web_perf.mjs) the box carries data-frames (frames drawn),
// data-received (frames received from the feed), data-fps (frames drawn in the last second),
// data-draw-ms (mean redraw time in the last second) and data-lost (frames the server dropped
// for this connection); each plot's element has .uplot.
import { el, t, feed, timeEl, fmtNum, emptyBox } from "/app/lib.js";

const SVG = "http://www.w3.org/2000/svg";
// Okabe-Ito colours (readable with the common colour-vision deficiencies), per phase
const PHASE_COLOUR = { a: "#d55e00", b: "#0072b2", c: "#009e73", n: "#7a5195" };
const OTHER_COLOUR = "#555555";
const phaseOf = (name) => (/^[UI][abcn]$/.test(name) ? name[1] : "");
const colourOf = (name) => PHASE_COLOUR[phaseOf(name)] || OTHER_COLOUR;
/** A wide table's box: scrolls sideways on a phone, focusable so the keyboard can scroll it. */
const scrollBox = (label, child) => el("div", { className: "scroll", tabIndex: 0, role: "region", "aria-label": label }, child);
const kindOfName = (name) => (name[0] === "U" ? "voltage" : name[0] === "I" ? "current" : "other");

function svg(tag, attrs = {}, ...kids) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined && v !== null) e.setAttribute(k, v);
  for (const k of kids) if (k !== null && k !== undefined) e.append(k);
  return e;
}

/** v with `sig` significant digits (at most 6 decimals) and its unit; "—" when unknown. */
function num(v, unit, sig = 5) {
  if (v === null || v === undefined || !Number.isFinite(v)) return t("none");
  const a = Math.abs(v);
  const d = a === 0 ? sig - 1 : Math.max(0, Math.min(6, sig - 1 - Math.floor(Math.log10(a))));
  return fmtNum(v, d, unit);
}
/** The smallest of 1, 2, 2.5, 5 x 10^k not below x. */
function nice(x) {
  if (!(x > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(x));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= x * (1 - 1e-9)) return m * p;
  return 10 * p;
}
/** An SI prefix for values up to maxAbs: [prefix, factor to multiply by]. */
const prefix = (maxAbs) => (maxAbs >= 1e6 ? ["M", 1e-6] : maxAbs >= 1e3 ? ["k", 1e-3] : ["", 1]);

/**
 * A uPlot plugin: on a touch screen two fingers zoom and pan the time axis (one finger still
 * scrolls the page) and a double tap zooms back out to span(). Mouse: drag to zoom, double-click.
 */
function touchZoom(span) {
  return { hooks: { init(u) {
    const over = u.over;
    let start = null, lastTap = 0;
    const xsOf = (e) => { const r = over.getBoundingClientRect(); return [...e.touches].map((t) => t.clientX - r.left).sort((a, b) => a - b); };
    over.addEventListener("touchstart", (e) => {
      if (e.touches.length !== 2) return;
      e.preventDefault();
      const [a, b] = xsOf(e);
      const { min, max } = u.scales.x;
      const w = over.clientWidth;
      start = { va: min + (a / w) * (max - min), vb: min + (b / w) * (max - min) };
    }, { passive: false });
    over.addEventListener("touchmove", (e) => {
      if (!start || e.touches.length !== 2) return;
      e.preventDefault();
      const [a, b] = xsOf(e);
      const w = over.clientWidth;
      const per = (start.vb - start.va) / Math.max(8, b - a); // x units per pixel
      const min = start.va - a * per;
      u.setScale("x", { min, max: min + w * per });
    }, { passive: false });
    over.addEventListener("touchend", (e) => {
      if (e.touches.length < 2) start = null;
      if (e.touches.length === 0 && e.changedTouches.length === 1) {
        const now = Date.now();
        if (now - lastTap < 350) u.setScale("x", { min: 0, max: span() });
        lastTap = now;
      }
    });
    over.addEventListener("dblclick", () => u.setScale("x", { min: 0, max: span() }));
  } } };
}

export function showLive(box, term) {
  const id = term.id;
  const nominalHz = term.nominal_hz || 50;
  const periodMs = 1000 / nominalHz;
  const S = {
    side: localStorage.getItem("gs.tl.side") === "primary" ? "primary" : "secondary",
    hold: false, hidden: new Set(), frame: null, latest: term.latest || null, pendFrame: null, pendLatest: null,
    phasor: term.latest?.phasor || null, pendPhasor: null, // the latest synchrophasor report
    frames: 0, draws: 0, lost: 0, ym: { voltage: 0, current: 0 }, ref: "utc", specCh: "", specLog: false, specOpen: false,
    names: [], // channel names of the toggles
  };
  let raf = 0;
  let plots = {}; // kind -> {u (uPlot), names, div}
  let disposed = false;
  let syncingX = false;
  let secDraws = 0, secMs = 0, frameTimeAt = 0;
  let specW = 0; // the spectrum box's width, from a ResizeObserver (reading it would force a layout)
  box.dataset.frames = "0"; box.dataset.received = "0"; box.dataset.fps = "0"; box.dataset.drawMs = "0"; box.dataset.lost = "0";

  // ---- units (primary / secondary) ----------------------------------------------------------
  const ratio = (kind) => (S.side === "primary" ? (kind === "voltage" ? term.vt_ratio || 1 : kind === "current" ? term.ct_ratio || 1 : 1) : 1);
  let units = null;
  function computeUnits() {
    const L = S.latest;
    let vmax = 0, imax = 0, smax = 0;
    if (L) {
      for (const c of L.channels || []) {
        if (c.kind === "voltage") vmax = Math.max(vmax, c.rms || 0);
        if (c.kind === "current") imax = Math.max(imax, c.rms || 0);
      }
      smax = Math.abs(L.power?.s_eff || 0);
    } else if (S.frame) {
      for (const c of S.frame.channels) for (const x of c.values) {
        if (c.kind === "voltage") vmax = Math.max(vmax, Math.abs(x));
        if (c.kind === "current") imax = Math.max(imax, Math.abs(x));
      }
    }
    const rv = ratio("voltage"), ri = ratio("current");
    const [pv, fv] = prefix(vmax * rv), [pi, fi] = prefix(imax * ri), [ps, fs] = prefix(smax * rv * ri);
    units = {
      voltage: { u: pv + "V", f: rv * fv }, current: { u: pi + "A", f: ri * fi }, other: { u: "", f: 1 },
      p: { u: ps + "W", f: rv * ri * fs }, q: { u: ps + "var", f: rv * ri * fs }, s: { u: ps + "VA", f: rv * ri * fs },
    };
  }
  const U = (kind) => units[kind] || units.other;
  computeUnits();

  // ---- skeleton -----------------------------------------------------------------------------
  const holdBtn = el("button", { type: "button", id: "tl-hold", className: "tl-hold", "aria-pressed": "false", textContent: t("tl_hold") });
  const sideSec = el("input", { type: "radio", name: "tl-side", id: "tl-side-sec", value: "secondary", checked: S.side === "secondary" });
  const sidePri = el("input", { type: "radio", name: "tl-side", id: "tl-side-pri", value: "primary", checked: S.side === "primary" });
  const ratioNote = el("span", { className: "note", textContent: (term.vt_ratio || 1) === 1 && (term.ct_ratio || 1) === 1
    ? t("tl_ratio_none") : t("tl_ratios", { vt: term.vt_ratio, ct: term.ct_ratio }) });
  const stats = el("span", { className: "note tl-stats" });
  const heldNote = el("span", { id: "tl-held", className: "tl-held-note", role: "status", hidden: true, textContent: t("tl_held") });
  const lostEl = el("span", { id: "tl-lost", className: "note", hidden: true });
  const banner = el("p", { id: "tl-offline", className: "warn tl-banner", hidden: true });
  const bar = el("div", { className: "tl-bar" },
    holdBtn, heldNote,
    el("fieldset", { className: "tl-side" }, el("legend", { textContent: t("tl_side") }),
      el("label", { for: "tl-side-sec" }, sideSec, " ", t("tl_secondary")),
      el("label", { for: "tl-side-pri" }, sidePri, " ", t("tl_primary")), ratioNote),
    stats, lostEl);

  // values
  const valBody = el("div", { className: "tl-values-body" });
  const valSec = el("section", { id: "tl-values", className: "card tl-values", "aria-labelledby": "tl-h-values" },
    el("h2", { id: "tl-h-values", textContent: t("tl_values") }), valBody);
  // scope
  const chips = el("div", { className: "tl-chips", role: "group", "aria-label": t("tl_channels") });
  const scopeV = el("div", { id: "tl-scope-v", className: "tl-plot", role: "img", "aria-label": t("tl_scope_v") });
  const scopeA = el("div", { id: "tl-scope-a", className: "tl-plot", role: "img", "aria-label": t("tl_scope_a") });
  const scopeMsg = el("p", { className: "note tl-scope-msg" });
  const frameTime = el("span", { className: "note" });
  const scopeSec = el("section", { id: "tl-scope", className: "card tl-scope", "aria-labelledby": "tl-h-scope" },
    el("h2", { id: "tl-h-scope", textContent: t("tl_scope") }), chips, scopeMsg, scopeV, scopeA,
    el("p", { className: "note" }, t("tl_scope_note", { hz: nominalHz }), " ", frameTime));
  // phasors
  const refSel = el("select", { id: "tl-ref" },
    el("option", { value: "utc", textContent: t("tl_ref_utc") }), el("option", { value: "Ua", textContent: t("tl_ref_ua") }));
  const phasorSvg = el("div", { className: "tl-phasor-svg" });
  const phasorTable = el("div", { className: "scroll", tabIndex: 0, role: "region", "aria-label": t("tl_phasors") });
  const phasorBody = el("div", {}, phasorSvg, phasorTable);
  const phasorSec = el("section", { id: "tl-phasor", className: "card tl-phasor", "aria-labelledby": "tl-h-phasor" },
    el("h2", { id: "tl-h-phasor", textContent: t("tl_phasors") }),
    el("div", { className: "tl-row" }, el("label", { for: "tl-ref" }, t("tl_ref")), refSel),
    phasorBody);
  // spectrum
  const chSel = el("select", { id: "tl-spec-ch" });
  const scaleSel = el("select", { id: "tl-spec-scale" },
    el("option", { value: "lin", textContent: t("tl_lin") }), el("option", { value: "log", textContent: t("tl_log") }));
  const specSvg = el("div", { className: "tl-spec-svg" });
  const specBody = el("div", {}, specSvg);
  const specSec = el("section", { id: "tl-spectrum", className: "card tl-spectrum", "aria-labelledby": "tl-h-spec" },
    el("h2", { id: "tl-h-spec", textContent: t("tl_spectrum") }),
    el("div", { className: "tl-row" }, el("label", { for: "tl-spec-ch" }, t("tl_channel")), chSel,
      el("label", { for: "tl-spec-scale" }, t("tl_scale")), scaleSel),
    specBody);

  box.append(bar, banner, el("div", { className: "tl-grid" }, valSec, scopeSec, phasorSec, specSec));

  // ---- state line ---------------------------------------------------------------------------
  function paintBanner() {
    if (term.online) { banner.hidden = true; return; }
    banner.hidden = false;
    const when = S.latest ? S.latest.t_end : term.last_seen;
    banner.replaceChildren(when ? t("tl_offline_last") : t("tl_offline_never"), " ", when ? timeEl(when, !!S.latest) : "");
  }
  function paintLost() {
    box.dataset.lost = String(S.lost);
    lostEl.hidden = S.lost === 0;
    lostEl.textContent = t("tl_lost", { n: S.lost });
  }
  function paintScopeMsg() {
    if (S.frame) { scopeMsg.hidden = true; return; }
    scopeMsg.hidden = false;
    scopeMsg.textContent = term.online ? t("tl_wait_frames") : t("tl_no_frames_offline");
  }
  paintBanner(); paintScopeMsg();

  // ---- channel toggles ----------------------------------------------------------------------
  function ensureChips(names) {
    if ([...names].sort().join() === [...S.names].sort().join()) return; // (keeps the focus)
    S.names = names;
    chips.replaceChildren(...names.map((n) => {
      const cb = el("input", { type: "checkbox", id: "tl-ch-" + n, checked: !S.hidden.has(n), "data-ch": n });
      cb.onchange = () => {
        if (cb.checked) S.hidden.delete(n); else S.hidden.add(n);
        for (const p of Object.values(plots)) {
          const i = p.names.indexOf(n);
          if (i >= 0) p.u.setSeries(i + 1, { show: cb.checked });
        }
        if (S.latest) drawPhasors(S.latest);
      };
      const sw = el("span", { className: "tl-swatch", "aria-hidden": "true" });
      sw.style.background = colourOf(n);
      if (kindOfName(n) === "current") sw.classList.add("tl-swatch-i");
      return el("label", { className: "tl-chip", for: "tl-ch-" + n }, cb, sw, n);
    }));
  }
  if (S.latest) ensureChips(S.latest.channels.filter((c) => c.kind !== "other").map((c) => c.name));

  // ---- oscilloscope -------------------------------------------------------------------------
  function plotWidth(div) { return Math.max(200, Math.floor(div.clientWidth || scopeSec.clientWidth - 24 || 300)); }
  const plotHeight = () => (window.innerWidth < 600 ? 170 : 210);
  function makePlot(div, kind, names) {
    const unit = U(kind).u;
    const u = new window.uPlot({
      width: plotWidth(div), height: plotHeight(),
      legend: { show: false },
      cursor: { sync: { key: "tl-scope-" + id }, drag: { x: true, y: false } },
      scales: { x: { time: false }, y: { auto: false, range: () => [-S.ym[kind], S.ym[kind]] } },
      axes: [
        { label: t("tl_ms_axis"), labelSize: 20, size: 36 },
        { label: `${unit}, ${S.side === "primary" ? t("tl_primary") : t("tl_secondary")}`, labelSize: 20, size: 56 },
      ],
      plugins: [touchZoom(() => plots[kind]?.span || 2 * periodMs)],
      hooks: { setScale: [(src, key) => { // the voltage and current plots zoom together
        if (key !== "x" || syncingX) return;
        syncingX = true;
        for (const p of Object.values(plots)) if (p.u !== src) p.u.setScale("x", { min: src.scales.x.min, max: src.scales.x.max });
        syncingX = false;
      }] },
      series: [{ label: "ms" }, ...names.map((n) => ({ label: n, stroke: colourOf(n), width: 1.5, show: !S.hidden.has(n), points: { show: false } }))],
    }, [[], ...names.map(() => [])], div);
    div.uplot = u;
    return { u, names, div, span: 0, unit };
  }
  function destroyPlots() {
    for (const p of Object.values(plots)) { p.u.destroy(); delete p.div.uplot; }
    plots = {};
  }
  function drawScope() {
    raf = 0;
    const f = S.frame;
    if (!f || disposed || !window.uPlot) return;
    const t0 = performance.now();
    const n = Math.max(0, ...f.channels.map((c) => c.values.length));
    const dtMs = f.dt_ns / 1e6;
    const offset = (((f.t0_ns % (periodMs * 1e6)) + periodMs * 1e6) % (periodMs * 1e6)) / 1e6;
    const xs = Array.from({ length: n }, (_, i) => offset + i * dtMs);
    const span = Math.max(1, Math.ceil((offset + n * dtMs) / periodMs - 1e-6)) * periodMs;
    for (const kind of ["voltage", "current"]) {
      const chans = f.channels.filter((c) => c.kind === kind);
      const div = kind === "voltage" ? scopeV : scopeA;
      div.hidden = chans.length === 0;
      if (!chans.length) continue;
      const names = chans.map((c) => c.name);
      let p = plots[kind];
      // new channels, or a new unit (primary values crossing 1000: A -> kA): a new plot
      if (p && (p.names.join() !== names.join() || p.unit !== U(kind).u)) { p.u.destroy(); p = null; S.ym[kind] = 0; }
      if (!p) p = plots[kind] = makePlot(div, kind, names);
      const k = U(kind).f;
      const ys = chans.map((c) => c.values.map((v) => v * k));
      let peak = 0;
      chans.forEach((c, i) => { if (!S.hidden.has(c.name)) for (const v of ys[i]) peak = Math.max(peak, Math.abs(v)); });
      const want = nice(peak * 1.1 || 1);
      const rescale = want > S.ym[kind] || want < 0.5 * S.ym[kind];
      if (rescale) S.ym[kind] = want;
      p.u.setData([xs, ...ys], false);
      // the x zoom (drag, pinch) stays from frame to frame until the frame's span changes
      if (p.span !== span) { p.u.setScale("x", { min: 0, max: span }); p.span = span; }
      if (rescale || !p.yset) { p.u.setScale("y", { min: -S.ym[kind], max: S.ym[kind] }); p.yset = true; }
    }
    // the frame's time as text at most once a second (a text change costs a layout)
    if (t0 - frameTimeAt > 1000) { frameTime.replaceChildren(t("tl_frame"), " ", timeEl(f.t0, true)); frameTimeAt = t0; }
    // uPlot paints in a microtask queued by setData: measure after it
    queueMicrotask(() => { secMs += performance.now() - t0; });
    S.draws++; secDraws++;
    box.dataset.frames = String(S.draws);
    box.dataset.t0 = f.t0;
  }
  const schedule = () => { if (!raf && !disposed) raf = requestAnimationFrame(drawScope); };
  function onFrame(f) {
    S.frames++;
    box.dataset.received = String(S.frames);
    if (S.hold) { S.pendFrame = f; return; }
    const first = !S.frame;
    S.frame = f;
    if (first) { paintScopeMsg(); if (!S.latest) computeUnits(); }
    ensureChips(f.channels.filter((c) => c.kind !== "other").map((c) => c.name));
    schedule();
  }
  const tick = setInterval(() => {
    box.dataset.fps = String(secDraws);
    box.dataset.drawMs = secDraws ? (secMs / secDraws).toFixed(2) : "0";
    stats.textContent = t("tl_stats", { fps: secDraws, ms: secDraws ? (secMs / secDraws).toFixed(1) : "0" });
    secDraws = 0; secMs = 0;
  }, 1000);
  stats.textContent = t("tl_stats", { fps: 0, ms: "0" });
  let scopeW = 0;
  const ro = new ResizeObserver((entries) => {
    for (const e of entries) {
      const w = Math.floor(e.contentRect.width);
      if (e.target === scopeSec && w !== scopeW) {
        scopeW = w;
        for (const p of Object.values(plots)) p.u.setSize({ width: plotWidth(p.div), height: plotHeight() });
      }
      if (e.target === specBody && w !== specW && w > 0) { specW = w; if (S.latest) drawSpectrum(S.latest); }
    }
  });
  ro.observe(scopeSec);
  ro.observe(specBody);

  // ---- latest values ------------------------------------------------------------------------
  const FLAGS = { event: () => t("tl_flag_event"), freq_held: () => t("tl_flag_freq_held"), no_rocof: () => t("tl_flag_no_rocof"),
    time_unsync: () => t("tl_flag_time_unsync"), resync: () => t("tl_flag_resync"), restart: () => t("tl_flag_restart") };
  const flagText = (fs) => (fs && fs.length ? fs.map((f) => (FLAGS[f] ? FLAGS[f]() : f)).join(", ") : t("tl_flags_none"));
  const row = (label, value, idn) => el("tr", {}, el("th", { scope: "row", textContent: label }),
    el("td", { className: "num", id: idn }, value));
  function drawValues(L) {
    const vs = L.voltage_sequence, cs = L.current_sequence;
    const volts = L.channels.filter((c) => c.kind === "voltage");
    const V = U("voltage");
    const general = el("table", { className: "tl-kv" }, el("caption", { textContent: t("tl_general") }), el("tbody", {},
      row(t("tl_freq"), num(L.freq, "Hz", 7), "tl-v-freq"),
      row(t("tl_rocof"), num(L.rocof, "Hz/s", 3), "tl-v-rocof"),
      row(t("tl_unb_uz"), fmtNum(vs?.unbalance_zero_pct, 3, "%"), "tl-v-u0"),
      row(t("tl_unb_un"), fmtNum(vs?.unbalance_neg_pct, 3, "%"), "tl-v-u2"),
      row(t("tl_unb_iz"), fmtNum(cs?.unbalance_zero_pct, 3, "%"), "tl-v-i0"),
      row(t("tl_unb_in"), fmtNum(cs?.unbalance_neg_pct, 3, "%"), "tl-v-i2"),
      ...(L.line_to_line_rms || []).map((v, i) => row(t("tl_ll", { name: llName(volts, i) }), num(v * V.f, V.u), "tl-v-ll" + i)),
      row(t("tl_window"), el("span", {}, timeEl(L.t_start, true), ` + ${fmtNum((Date.parse(L.t_end) - Date.parse(L.t_start)), 0, "ms")}`), "tl-v-window"),
      row(t("tl_flags"), flagText(L.flags), "tl-v-flags")));
    const chRows = L.channels.map((c) => {
      const u = U(c.kind);
      return el("tr", { "data-ch": c.name }, el("th", { scope: "row", textContent: c.name }),
        el("td", { className: "num tl-rms", textContent: num(c.rms * u.f, u.u) }),
        el("td", { className: "num", textContent: num((c.fundamental?.mag ?? null) * u.f, u.u) }),
        el("td", { className: "num", textContent: fmtNum(c.thd_pct, 2, "%") }),
        el("td", { className: "num wide", textContent: num(c.dc * u.f, u.u, 3) }));
    });
    const chans = el("table", { id: "tl-rms" }, el("caption", { textContent: t("tl_per_channel") }),
      el("thead", {}, el("tr", {}, ...[t("tl_channel"), t("tl_rms"), t("tl_fund"), t("tl_thd"), t("tl_dc")].map((h, i) => el("th", { scope: "col", className: i === 4 ? "num wide" : i ? "num" : "", textContent: h })))),
      el("tbody", {}, ...chRows));
    const P = L.power;
    let power = emptyBox(t("tl_no_power"));
    if (P) {
      const pu = U("p"), qu = U("q"), su = U("s");
      // units in the column heads: the table fits a phone
      const cell = (v, u, idn) => el("td", { className: "num", id: idn, textContent: num(v * u.f, "", 4) });
      power = el("table", { id: "tl-power" }, el("caption", {}, t("tl_power"), " ", el("span", { className: "note tl-cap-note", textContent: t("tl_power_note") })),
        el("thead", {}, el("tr", {}, ...[t("tl_phase"), `${t("tl_p")} (${pu.u})`, `${t("tl_q")} (${qu.u})`, `${t("tl_s")} (${su.u})`, t("tl_pf")]
          .map((h, i) => el("th", { scope: "col", className: i ? "num" : "", textContent: h })))),
        el("tbody", {}, ...(P.phases || []).map((ph) => el("tr", {}, el("th", { scope: "row", textContent: ph.phase.toUpperCase() }),
          cell(ph.p, pu), cell(ph.q, qu), cell(ph.s, su), el("td", { className: "num", textContent: fmtNum(ph.pf, 3) }))),
        el("tr", { className: "tl-total" }, el("th", { scope: "row", textContent: t("tl_total") }),
          cell(P.p, pu, "tl-v-p"), cell(P.q, qu), cell(P.s_eff, su), el("td", { className: "num", textContent: fmtNum(P.pf, 3) }))));
    }
    valSec.dataset.t = L.t_start;
    valBody.replaceChildren(scrollBox(t("tl_general"), general), scrollBox(t("tl_per_channel"), chans), P ? scrollBox(t("tl_power"), power) : power);
  }
  function llName(volts, i) {
    const ph = volts.map((c) => phaseOf(c.name)).filter((x) => "abc".includes(x) && x);
    if (ph.length === 3) return ["Uab", "Ubc", "Uca"][i];
    return `${i + 1}`;
  }

  // ---- phasors ------------------------------------------------------------------------------
  // The synchrophasor report: the "phasor" member of /latest (and of the feed's first latest
  // message), then the last report of each second of the phasors topic (the feed's later latest
  // messages come without it). Without reports (phasor_rate 0): the window's phasors.
  function reportFromRow(row) {
    const cols = row.columns, r = row.reports && row.reports[row.reports.length - 1];
    if (!cols || !r) return null;
    const phasors = {};
    for (const [i, c] of cols.entries()) {
      const m = /^(.+)\.mag$/.exec(c);
      if (m && m[1] !== "V1" && m[1] !== "I1") phasors[m[1]] = { mag: r[i], deg: r[cols.indexOf(m[1] + ".deg")] };
    }
    const index = r[cols.indexOf("index")];
    const seq = (n) => (cols.includes(n + ".mag") ? { mag: r[cols.indexOf(n + ".mag")], deg: r[cols.indexOf(n + ".deg")] } : null);
    return { t: new Date(Date.parse(row.t) + (index * 1000) / row.rate).toISOString(), index, rate: row.rate, phasors, v1: seq("V1"), i1: seq("I1") };
  }
  function phasorsOf(L) {
    const kinds = Object.fromEntries(L.channels.map((c) => [c.name, c.kind]));
    const rep = S.phasor;
    if (rep && rep.phasors) {
      return { t: rep.t, src: "report", list: Object.entries(rep.phasors)
        .map(([name, p]) => ({ name, kind: kinds[name] || kindOfName(name), mag: p.mag, deg: p.deg })),
        seq: [rep.v1 && { name: "U1", kind: "voltage", ...rep.v1 }, rep.i1 && { name: "I1", kind: "current", ...rep.i1 }].filter(Boolean) };
    }
    const vs = L.voltage_sequence, cs = L.current_sequence;
    return { t: L.t_ref, src: "window", list: L.channels.filter((c) => c.kind !== "other" && (c.phasor || c.fundamental))
      .map((c) => ({ name: c.name, kind: c.kind, mag: (c.phasor || c.fundamental).mag, deg: (c.phasor || c.fundamental).deg })),
      seq: [vs && vs.positive_deg != null && { name: "U1", kind: "voltage", mag: vs.positive, deg: vs.positive_deg },
            cs && cs.positive_deg != null && { name: "I1", kind: "current", mag: cs.positive, deg: cs.positive_deg }].filter(Boolean) };
  }
  const wrap = (d) => { let x = ((d + 180) % 360 + 360) % 360 - 180; if (x === -180) x = 180; return x; };
  function drawPhasors(L) {
    const ph = phasorsOf(L);
    const refItem = S.ref === "Ua" ? ph.list.find((p) => p.name === "Ua") : null;
    const ref = refItem ? refItem.deg : 0;
    const R = 100;
    const vmax = Math.max(0, ...ph.list.filter((p) => p.kind === "voltage").map((p) => p.mag));
    const imax = Math.max(0, ...ph.list.filter((p) => p.kind === "current").map((p) => p.mag));
    const g = svg("svg", { viewBox: "-142 -142 284 284", class: "tl-phasor-diagram", role: "img", "aria-labelledby": "tl-ph-title" },
      svg("title", { id: "tl-ph-title" }, t("tl_phasor_title")));
    g.append(svg("circle", { cx: 0, cy: 0, r: R, fill: "none", stroke: "#b8c0c8" }),
      svg("circle", { cx: 0, cy: 0, r: R * 0.62, fill: "none", stroke: "#b8c0c8", "stroke-dasharray": "3 3" }));
    for (let a = 0; a < 360; a += 30) {
      const r = (a * Math.PI) / 180;
      g.append(svg("line", { x1: 0, y1: 0, x2: R * Math.cos(r), y2: -R * Math.sin(r), stroke: "#e3e7eb" }));
      if (a % 90 === 0) {
        const lx = (R + 28) * Math.cos(r), ly = -(R + 28) * Math.sin(r) + 4;
        g.append(svg("text", { x: lx, y: ly, "text-anchor": "middle", class: "tl-ph-grid" }, `${a > 180 ? a - 360 : a}°`));
      }
    }
    for (const p of ph.list) {
      if (S.hidden.has(p.name) || p.kind === "other") continue;
      const scale = p.kind === "voltage" ? (vmax ? R / vmax : 0) : (imax ? (R * 0.62) / imax : 0);
      const len = p.mag * scale;
      const a = ((p.deg - ref) * Math.PI) / 180;
      const x = len * Math.cos(a), y = -len * Math.sin(a);
      const c = colourOf(p.name);
      const head = Math.min(10, len * 0.3);
      const ang = Math.atan2(y, x);
      const hx = (dx, dy) => `${x - head * Math.cos(ang) + dx},${y - head * Math.sin(ang) + dy}`;
      const px = -Math.sin(ang) * head * 0.45, py = Math.cos(ang) * head * 0.45;
      const isI = p.kind === "current";
      g.append(svg("g", { "data-ch": p.name },
        svg("line", { x1: 0, y1: 0, x2: x - head * 0.8 * Math.cos(ang), y2: y - head * 0.8 * Math.sin(ang), stroke: c, "stroke-width": isI ? 2 : 3,
          "stroke-dasharray": isI ? "5 3" : undefined }),
        svg("polygon", { points: `${x},${y} ${hx(px, py)} ${hx(-px, -py)}`, fill: c }),
        svg("text", { x: x + 12 * Math.cos(ang), y: y + 12 * Math.sin(ang) + 4, "text-anchor": "middle", class: "tl-ph-label" }, p.name)));
    }
    const V = U("voltage"), I = U("current");
    const scaleNote = el("p", { className: "note" }, t("tl_ph_scale", { v: num(vmax * V.f, V.u, 4), i: num(imax * I.f, I.u, 4) }));
    const refNote = el("p", { className: "note" }, S.ref === "Ua" && refItem ? t("tl_ref_note_ua") : t("tl_ref_note_utc", { hz: nominalHz }));
    const when = el("p", { className: "note" }, ph.src === "report" ? t("tl_ph_report") : t("tl_ph_window"), " ", timeEl(ph.t, true));
    phasorSvg.replaceChildren(g);
    const table = el("table", { id: "tl-ph-table", "data-t": ph.t },
      el("thead", {}, el("tr", {}, ...[t("tl_channel"), t("tl_mag"), t("tl_angle")].map((h, i) => el("th", { scope: "col", className: i ? "num" : "", textContent: h })))),
      el("tbody", {}, ...[...ph.list, ...ph.seq].map((p) => {
        const u = U(p.kind);
        const label = p.name === "U1" ? t("tl_pos_u") : p.name === "I1" ? t("tl_pos_i") : p.name;
        return el("tr", { "data-ch": p.name }, el("th", { scope: "row", textContent: label }),
          el("td", { className: "num", textContent: num(p.mag * u.f, u.u) }),
          el("td", { className: "num tl-deg", "data-deg": String(wrap(p.deg - ref)), textContent: fmtNum(wrap(p.deg - ref), 2) + "°" }));
      })));
    phasorSec.dataset.t = ph.t;
    phasorTable.replaceChildren(table, refNote, scaleNote, when);
  }

  // ---- harmonic spectrum --------------------------------------------------------------------
  function drawSpectrum(L) {
    const withH = L.channels.filter((c) => c.harmonic_groups && c.harmonic_groups.length > 2);
    if (!withH.length) { specBody.replaceChildren(emptyBox(t("tl_no_harmonics"))); return; }
    if (chSel.options.length !== withH.length || [...chSel.options].some((o, i) => o.value !== withH[i].name)) {
      chSel.replaceChildren(...withH.map((c) => el("option", { value: c.name, textContent: c.name })));
    }
    if (!withH.some((c) => c.name === S.specCh)) S.specCh = withH[0].name;
    chSel.value = S.specCh;
    const c = withH.find((x) => x.name === S.specCh);
    const hg = c.harmonic_groups;
    const fund = hg[1];
    const orders = [];
    for (let h = 2; h < hg.length; h++) orders.push({ h, pct: fund > 0 ? (hg[h] / fund) * 100 : 0, mag: hg[h] });
    // the SVG is as wide as its box (redrawn on resize) so text keeps its size on a phone
    if (!specW) specW = specBody.clientWidth;
    const W = Math.max(280, Math.floor(specW || 600));
    const H = window.innerWidth < 600 ? 200 : 240;
    const ml = 48, mr = 8, mt = 10, mb = 34;
    const pw = W - ml - mr, ph = H - mt - mb;
    const maxPct = Math.max(0, ...orders.map((o) => o.pct));
    let yOf, ticks;
    if (S.specLog) {
      const lo = 1e-3, hi = Math.max(1, 10 ** Math.ceil(Math.log10(Math.max(maxPct, lo))));
      const l0 = Math.log10(lo), l1 = Math.log10(hi);
      yOf = (p) => mt + ph - ((Math.log10(Math.max(p, lo)) - l0) / (l1 - l0)) * ph;
      ticks = []; for (let e = l0; e <= l1 + 1e-9; e++) ticks.push(10 ** e);
    } else {
      const top = nice(Math.max(maxPct * 1.1, 0.1));
      yOf = (p) => mt + ph - (Math.min(p, top) / top) * ph;
      const step = nice(top / 5);
      ticks = []; for (let v = 0; v <= top + 1e-9; v += step) ticks.push(v);
    }
    const g = svg("svg", { viewBox: `0 0 ${W} ${H}`, width: W, height: H, class: "tl-spec-chart", role: "img", "aria-labelledby": "tl-spec-title" },
      svg("title", { id: "tl-spec-title" }, t("tl_spec_title", { ch: c.name })));
    for (const v of ticks) {
      const y = yOf(v);
      g.append(svg("line", { x1: ml, x2: W - mr, y1: y, y2: y, stroke: "#e3e7eb" }),
        svg("text", { x: ml - 4, y: y + 4, "text-anchor": "end", class: "tl-axis" }, v >= 1 || v === 0 ? String(+v.toPrecision(3)) : String(+v.toPrecision(1))));
    }
    g.append(svg("text", { x: 12, y: mt + ph / 2, transform: `rotate(-90 12 ${mt + ph / 2})`, "text-anchor": "middle", class: "tl-axis" },
      S.specLog ? t("tl_pct_axis_log") : t("tl_pct_axis_lin")));
    const bw = pw / orders.length;
    const every = bw >= 18 ? 1 : bw >= 5 ? 5 : 10;
    const colour = colourOf(c.name);
    for (const [i, o] of orders.entries()) {
      const x = ml + i * bw;
      const y = yOf(o.pct);
      g.append(svg("rect", { x: x + bw * 0.15, y, width: Math.max(1, bw * 0.7), height: Math.max(0, mt + ph - y), fill: colour, "data-h": o.h },
        svg("title", {}, `${o.h}: ${fmtNum(o.pct, 3, "%")}`)));
      if (o.h % every === 0 || (every > 1 && o.h === 2)) g.append(svg("text", { x: x + bw / 2, y: H - mb + 14, "text-anchor": "middle", class: "tl-axis" }, String(o.h)));
    }
    g.append(svg("line", { x1: ml, x2: W - mr, y1: mt + ph, y2: mt + ph, stroke: "#5a6470" }),
      svg("text", { x: ml + pw / 2, y: H - 4, "text-anchor": "middle", class: "tl-axis" }, t("tl_order_axis")));
    const u = U(c.kind);
    const thdList = el("table", { id: "tl-thd-table" },
      el("thead", {}, el("tr", {}, el("th", { scope: "col", textContent: t("tl_channel") }), el("th", { scope: "col", className: "num", textContent: t("tl_thd") }))),
      el("tbody", {}, ...withH.map((x) => el("tr", { "data-ch": x.name, className: x.name === c.name ? "tl-sel" : "" },
        el("th", { scope: "row", textContent: x.name }), el("td", { className: "num", textContent: fmtNum(x.thd_pct, 2, "%") })))));
    // (redrawn every second: an opened table stays open)
    const details = el("details", { open: S.specOpen, ontoggle: (e) => { S.specOpen = e.target.open; } }, el("summary", { textContent: t("tl_spec_numbers") }),
      scrollBox(t("tl_spec_numbers"), el("table", {},
        el("thead", {}, el("tr", {}, ...[t("tl_order"), t("tl_mag"), t("tl_pct_fund")].map((h) => el("th", { scope: "col", className: "num", textContent: h })))),
        el("tbody", {}, ...orders.map((o) => el("tr", {}, el("td", { className: "num", textContent: String(o.h) }),
          el("td", { className: "num", textContent: num(o.mag * u.f, u.u, 3) }), el("td", { className: "num", textContent: fmtNum(o.pct, 3, "%") })))))));
    specSec.dataset.t = L.t_start;
    specSvg.replaceChildren(g);
    specBody.replaceChildren(
      el("p", { className: "tl-thd" }, t("tl_thd_of", { ch: c.name }), " ", el("b", { id: "tl-thd", "data-thd": String(c.thd_pct), textContent: fmtNum(c.thd_pct, 2, "%") }),
        " · ", t("tl_fund"), " ", num(fund * u.f, u.u), " · ", t("tl_orders", { max: hg.length - 1 })),
      specSvg, scrollBox(t("tl_thd"), thdList), details);
  }

  // ---- applying a latest value --------------------------------------------------------------
  function noAnalysis() {
    const msg = t("tl_no_analysis");
    valBody.replaceChildren(emptyBox(msg));
    phasorBody.replaceChildren(emptyBox(msg));
    specBody.replaceChildren(emptyBox(msg));
    refSel.disabled = chSel.disabled = scaleSel.disabled = true;
  }
  let bodiesPlaced = false;
  function showLatest(L) {
    S.latest = L;
    computeUnits();
    ensureChips(L.channels.filter((c) => c.kind !== "other").map((c) => c.name));
    if (!bodiesPlaced) {
      phasorBody.replaceChildren(phasorSvg, phasorTable);
      specBody.replaceChildren(specSvg);
      refSel.disabled = chSel.disabled = scaleSel.disabled = false;
      bodiesPlaced = true;
    }
    drawValues(L); drawPhasors(L); drawSpectrum(L);
    paintBanner();
  }
  function onLatest(L) {
    if (!L || !L.channels) return;
    if (S.hold) { S.pendLatest = L; if (L.phasor) S.pendPhasor = L.phasor; return; }
    if (L.phasor && (!S.phasor || L.phasor.t >= S.phasor.t)) S.phasor = L.phasor;
    showLatest(L);
  }
  function onPhasors(row) {
    const rep = reportFromRow(row);
    if (!rep) return;
    if (S.hold) { S.pendPhasor = rep; return; }
    S.phasor = rep;
    if (S.latest) drawPhasors(S.latest);
  }
  if (S.latest) showLatest(S.latest); else noAnalysis();

  // ---- controls -----------------------------------------------------------------------------
  holdBtn.onclick = () => {
    S.hold = !S.hold;
    holdBtn.setAttribute("aria-pressed", String(S.hold));
    heldNote.hidden = !S.hold;
    box.classList.toggle("tl-held", S.hold);
    if (!S.hold) {
      if (S.pendPhasor) { S.phasor = S.pendPhasor; S.pendPhasor = null; }
      if (S.pendLatest) { showLatest(S.pendLatest); S.pendLatest = null; } else if (S.latest) drawPhasors(S.latest);
      if (S.pendFrame) { const f = S.pendFrame; S.pendFrame = null; S.frames--; onFrame(f); }
    }
  };
  const onSide = () => {
    S.side = sidePri.checked ? "primary" : "secondary";
    localStorage.setItem("gs.tl.side", S.side);
    computeUnits();
    destroyPlots();
    S.ym = { voltage: 0, current: 0 };
    if (S.latest) showLatest(S.latest);
    if (S.frame) schedule();
  };
  sideSec.onchange = onSide; sidePri.onchange = onSide;
  refSel.onchange = () => { S.ref = refSel.value; if (S.latest) drawPhasors(S.latest); };
  chSel.onchange = () => { S.specCh = chSel.value; if (S.latest) drawSpectrum(S.latest); };
  scaleSel.onchange = () => { S.specLog = scaleSel.value === "log"; if (S.latest) drawSpectrum(S.latest); };

  // ---- feed ---------------------------------------------------------------------------------
  const tw = `terminal/${id}/wave`, tlat = `terminal/${id}/latest`, tph = `terminal/${id}/phasors`;
  const unsub = feed.subscribe([tw, tlat, tph, "fleet"], (m) => {
    if (disposed) return;
    if (m.topic === tw) onFrame(m.data);
    else if (m.topic === tlat) onLatest(m.data);
    else if (m.topic === tph) onPhasors(m.data);
    else if (m.topic === "lost") { S.lost += m.data?.frames || 0; paintLost(); }
    else if (m.topic === "fleet" && m.data.id === id) {
      term.online = m.data.online; term.last_seen = m.data.last_seen;
      paintBanner(); paintScopeMsg();
    }
  });

  return () => {
    disposed = true;
    unsub();
    if (raf) cancelAnimationFrame(raf);
    clearInterval(tick);
    ro.disconnect();
    destroyPlots();
  };
}
