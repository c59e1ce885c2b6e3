// Browser test of the events page (issue 9, section 2 "Events"), driven by
// tests/integ/test_browser_events.py: an operator (desktop 1280x800) and a viewer (phone 390x844)
// open #/events BEFORE any event exists and the script prints READY; the Python side then starts
// the simulator with a scheduled dip (DIP_TERM, DIP_LEVEL % residual) and a swell (SWELL_TERM).
// Asserted: both events appear live (no reload, highlighted) in the list with terminal, depth and
// duration as the API gives them, and in the ITIC/SEMI F47 scatter; the filters change the list
// (kind, terminal, state, time range through the API; depth and duration in the browser, "N of M
// loaded"), stay in the URL and survive a reload; an empty range says what to do; paging with
// next_before; the dip's page (opened from the scatter) shows its details and draws the waveform
// and RMS(1/2) with the dip's depth (primary and secondary units; a pinch zooms the time axis of
// every chart on the phone); the operator acknowledges it (the API then says acked_by =
// operator) and sees a 409 shown clearly for an event acknowledged meanwhile; the viewer sees the
// state but no button, and the API refuses the viewer's ack; an unknown event shows the 404; the
// Chinese switch; axe-core on each view; screenshots; no console error or failed request.
//   node tests/browser/events.mjs PORT SHOTS OP OP_PW VIEWER VIEWER_PW DIP_TERM SWELL_TERM DIP_LEVEL VT
import { launch, newPage, login, axeCheck, shot, apiGet, fail, ok, DESKTOP, PHONE } from "./lib.mjs";

const [port, shots, opUser, opPw, viewUser, viewPw, dipTerm, swellTerm, levelStr, vtStr] = process.argv.slice(2);
const base = `http://127.0.0.1:${port}`;
const LEVEL = Number(levelStr), VT = Number(vtStr);
const LIVE_MS = 90000; // bound on waiting for the simulator's events to reach the page
const fmtDur = (s) => (s < 1 ? `${(s * 1000).toFixed(0)} ms` : `${s.toFixed(2)} s`); // as lib.js fmtDuration
const pctOf = (e) => (e.kind === "swell" ? e.maximum_pct : e.residual_pct);

const browser = await launch();
const problems = [];
// expected error answers: the 409 of the deliberate double ack and the viewer's refused ack
const allow = (status, url, method) => (method === "POST" && /\/api\/v1\/events\/\d+\/ack$/.test(url) && (status === 409 || status === 403))
  || (method === "GET" && status === 404 && url.endsWith("/api/v1/events/999999")); // the deliberate unknown event
const op = await newPage(browser, DESKTOP, "desktop", problems, allow);
const view = await newPage(browser, PHONE, "phone", problems, allow);

// ---- 1. both open the list before any event exists ----
for (const [p, u, pw, tag] of [[op.page, opUser, opPw, "desktop"], [view.page, viewUser, viewPw, "phone"]]) {
  await login(p, base, u, pw, "#/events");
  await p.waitForSelector("#ev-status .empty");
  const txt = await p.textContent("#ev-status");
  if (!/No voltage events recorded yet/.test(txt)) fail(`${tag}: empty state: ${txt}`);
  await p.waitForFunction(() => /live/.test(document.querySelector("#feed")?.textContent || ""));
  await p.evaluate(() => { window.__sameDocument = true; }); // gone if the page reloads
  ok(`${tag}: #/events opened before any event: the empty state says what happens next`);
}
console.log("READY");

// ---- 2. the dip and the swell arrive live ----
// (the feed carries the stored event, with its id: the row links and can be acknowledged at once)
const anyRow = (term, kind) => `#ev-table tr.ev-row[data-terminal="${term}"][data-kind="${kind}"]`;
const rowSel = (term, kind) => anyRow(term, kind) + "[data-id]";
await op.page.waitForSelector(anyRow(dipTerm, "dip"), { timeout: LIVE_MS });
const dipSeenAt = Date.now(); // (same machine as the server: one clock)
const highlighted = await op.page.$eval(anyRow(dipTerm, "dip"), (tr) => tr.classList.contains("new"));
if (!highlighted) fail("desktop: the new row is not highlighted");
await op.page.waitForSelector(rowSel(dipTerm, "dip"), { timeout: LIVE_MS });
await op.page.waitForSelector(rowSel(swellTerm, "swell"), { timeout: LIVE_MS });
await view.page.waitForSelector(rowSel(swellTerm, "swell"), { timeout: LIVE_MS });
await view.page.waitForSelector(rowSel(dipTerm, "dip"), { timeout: LIVE_MS });
for (const [p, tag] of [[op.page, "desktop"], [view.page, "phone"]])
  if (!(await p.evaluate(() => window.__sameDocument === true))) fail(`${tag}: the page was reloaded`);
ok("the dip and the swell appeared live on both pages (no reload; the new row highlighted)");

const all = await apiGet(op.page, "/api/v1/events");
if (all.status !== 200) fail(`GET /events: ${all.status}`);
const dip = all.body.events.find((e) => e.kind === "dip" && e.terminal === dipTerm);
const swell = all.body.events.find((e) => e.kind === "swell" && e.terminal === swellTerm);
if (!dip || !swell) fail(`the API lacks the events: ${JSON.stringify(all.body.events)}`);
if (Math.abs(dip.residual_pct - LEVEL) > 3) fail(`the stored dip is ${dip.residual_pct} %, scheduled ${LEVEL} %`);
ok(`figure: the dip's row showed ${((dipSeenAt - Date.parse(dip.start) - dip.duration_s * 1000) / 1000).toFixed(2)} s after the dip ended`);
ok(`API: dip ${dip.id} on ${dip.terminal} ${dip.residual_pct.toFixed(2)} % for ${dip.duration_s} s; swell ${swell.id} ${swell.maximum_pct.toFixed(2)} %`);

for (const [p, tag] of [[op.page, "desktop"], [view.page, "phone"]]) {
  for (const e of [dip, swell]) {
    const r = await p.$eval(`#ev-${e.id}`, (tr) => ({ term: tr.children[1].textContent, kind: tr.dataset.kind,
      dur: tr.querySelector(".ev-dur").textContent, pct: tr.querySelector(".ev-pct").textContent,
      d: Number(tr.dataset.duration), m: Number(tr.dataset.pct), state: tr.querySelector(".ev-state").textContent,
      ack: !!tr.querySelector("button.ev-ack") }));
    const want = { term: e.terminal, dur: fmtDur(e.duration_s), pct: `${pctOf(e).toFixed(1)} %` };
    if (r.term !== want.term || r.dur !== want.dur || r.pct !== want.pct || r.d !== e.duration_s || r.m !== pctOf(e))
      fail(`${tag}: row of event ${e.id} shows ${JSON.stringify(r)}, the API ${JSON.stringify(want)} (${e.duration_s} s, ${pctOf(e)} %)`);
    if (!/not acknowledged/.test(r.state)) fail(`${tag}: state of ${e.id}: ${r.state}`);
    if (r.ack !== (tag === "desktop")) fail(`${tag}: ack button ${r.ack ? "shown" : "missing"} for ${tag === "desktop" ? "an operator" : "a viewer"}`);
    // the scatter: one point per event, at the API's duration and magnitude, coloured by kind
    const pt = await p.$eval(`#ev-scatter a.pt[data-id="${e.id}"]`, (a) => ({ cls: a.getAttribute("class"), d: Number(a.dataset.duration), m: Number(a.dataset.pct), href: a.getAttribute("href") }));
    if (pt.d !== e.duration_s || pt.m !== pctOf(e) || !pt.cls.includes("k-" + e.kind) || pt.href !== `#/events/${e.id}`)
      fail(`${tag}: scatter point of ${e.id}: ${JSON.stringify(pt)}`);
  }
  const count = await p.textContent("#ev-count");
  if (!count.startsWith(`${all.body.events.length} events loaded`)) fail(`${tag}: count: ${count}`);
  ok(`${tag}: list rows and scatter points show the API's terminal, depth and duration; ack button only for the operator`);
}
// the scatter: the dip (40 %, 0.2 s) lies below the ITIC envelope's 70 % step; the note says so
const note = await op.page.textContent("#ev-scatter-note");
const outside = [dip, swell].filter((e) => (e.kind === "swell" ? pctOf(e) > (e.duration_s <= 0.5 ? 120 : 110)
  : pctOf(e) < (e.duration_s <= 0.02 ? 0 : e.duration_s <= 0.5 ? 70 : e.duration_s <= 10 ? 80 : 90))).length;
if (!note.startsWith(`${outside} of 2 events lie outside the ITIC envelope`)) fail(`scatter note: ${note}`);
const curves = await op.page.$$eval("#ev-scatter path.itic-line, #ev-scatter path.f47-line", (ps) => ps.length);
if (curves !== 3) fail(`ITIC and F47 curves drawn: ${curves}`);
ok(`scatter: ITIC (2 edges) and SEMI F47 drawn; ${outside} of 2 outside ITIC`);

// ---- 3. filters (the API's kind filter; the browser's depth filter), kept in the URL ----
{
  const p = op.page;
  await p.selectOption("#ev-kind", "swell");
  await p.waitForFunction(() => location.hash.includes("kind=swell") && document.querySelector("#ev-count")?.textContent.length
    && [...document.querySelectorAll("#ev-table tr.ev-row")].every((tr) => tr.dataset.kind === "swell"));
  const api = await apiGet(p, "/api/v1/events?kind=swell");
  const ids = await p.$$eval("#ev-table tr.ev-row", (trs) => trs.map((tr) => Number(tr.dataset.id)));
  if (JSON.stringify(ids) !== JSON.stringify(api.body.events.map((e) => e.id))) fail(`kind=swell shows ${ids}, the API ${api.body.events.map((e) => e.id)}`);
  await p.selectOption("#ev-kind", "");
  await p.waitForFunction((n) => document.querySelectorAll("#ev-table tr.ev-row").length === n, all.body.events.length);
  await p.selectOption("#ev-terminal", swellTerm);
  await p.waitForFunction((t) => location.hash.includes("terminal=" + t) && document.querySelector("#ev-count")?.textContent.length
    && [...document.querySelectorAll("#ev-table tr.ev-row")].every((tr) => tr.dataset.terminal === t), swellTerm);
  const byTerm = await apiGet(p, `/api/v1/events?terminal=${swellTerm}`);
  const tids = await p.$$eval("#ev-table tr.ev-row", (trs) => trs.map((tr) => Number(tr.dataset.id)));
  if (JSON.stringify(tids) !== JSON.stringify(byTerm.body.events.map((e) => e.id))) fail(`terminal=${swellTerm} shows ${tids}`);
  await p.selectOption("#ev-terminal", "");
  await p.waitForFunction((n) => document.querySelectorAll("#ev-table tr.ev-row").length === n, all.body.events.length);
  await p.fill("#ev-dmax", "60");
  await p.waitForFunction(() => location.hash.includes("dmax=60"));
  await p.waitForFunction(() => /of \d+ loaded events match/.test(document.querySelector("#ev-count").textContent));
  const rows = await p.$$eval("#ev-table tr.ev-row", (trs) => trs.map((tr) => Number(tr.dataset.pct)));
  const want = all.body.events.filter((e) => pctOf(e) <= 60).length;
  const cnt = await p.textContent("#ev-count");
  if (rows.length !== want || rows.some((x) => x > 60) || !cnt.startsWith(`${want} of ${all.body.events.length} loaded`))
    fail(`depth <= 60 %: rows ${rows}, count "${cnt}", want ${want}`);
  const pts = await p.$$eval("#ev-scatter a.pt", (as) => as.length);
  if (pts !== want) fail(`the scatter follows the filters: ${pts} points, want ${want}`);
  // the duration filter too (browser): at least 0.2 s keeps the 200 ms dip, not the 150 ms swell
  await p.fill("#ev-dmax", "");
  await p.fill("#ev-tmin", "0.2");
  await p.waitForFunction(() => location.hash.includes("tmin=0.2") && !location.hash.includes("dmax"));
  const durs = await p.$$eval("#ev-table tr.ev-row", (trs) => trs.map((tr) => Number(tr.dataset.duration)));
  const wantD = all.body.events.filter((e) => e.duration_s >= 0.2).length;
  if (durs.length !== wantD || durs.some((x) => x < 0.2)) fail(`duration >= 0.2 s: rows ${durs}, want ${wantD}`);
  await p.fill("#ev-tmin", "");
  await p.fill("#ev-dmax", "60");
  await p.waitForFunction(() => location.hash.includes("dmax=60") && !location.hash.includes("tmin"));
  // a shared link keeps the filters: reload the page at this URL
  await p.reload();
  await p.waitForSelector("#ev-table tr.ev-row");
  const kept = await p.$eval("#ev-dmax", (i) => i.value);
  if (kept !== "60") fail(`the URL did not keep the depth filter: ${kept}`);
  await p.click("#ev-clear");
  await p.waitForFunction((n) => location.hash === "#/events" && document.querySelectorAll("#ev-table tr.ev-row").length === n, all.body.events.length);
  // a time range without events: the empty state says what to do
  await p.selectOption("#ev-range", "custom");
  await p.fill("#ev-from", "2001-01-01T00:00");
  await p.fill("#ev-to", "2001-01-02T00:00");
  await p.dispatchEvent("#ev-to", "change");
  await p.waitForSelector("#ev-status .empty");
  const empty = await p.textContent("#ev-status");
  if (!/No events in this range: widen the time range or clear filters/.test(empty)) fail(`empty range: ${empty}`);
  if (!/range=custom/.test(await p.evaluate(() => location.hash))) fail("custom range not in the URL");
  await p.click("#ev-clear");
  await p.waitForFunction((n) => document.querySelectorAll("#ev-table tr.ev-row").length === n, all.body.events.length);
  ok("filters: kind, terminal (API), depth and duration (browser, \"N of M loaded\") change the list and the scatter, stay in the URL; an empty range says what to do");
}

// ---- 4. accessibility, screenshots and width of the list ----
for (const [p, tag] of [[op.page, "desktop"], [view.page, "phone"]]) {
  const overflow = await p.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  if (overflow > 0) fail(`${tag}: the list page is ${overflow} px wider than the viewport`);
  // a phone: the filters folded and the list above the scatter; a desktop: filters open, scatter first
  const lay = await p.evaluate(() => ({ open: document.querySelector("details.ev-filter-box").open,
    list: document.querySelector("#ev-table").getBoundingClientRect().top, scatter: document.querySelector("#ev-scatter").getBoundingClientRect().top }));
  if (tag === "phone" ? lay.open || lay.list > lay.scatter : !lay.open || lay.list < lay.scatter) fail(`${tag}: layout ${JSON.stringify(lay)}`);
  await axeCheck(p, `events ${tag}`);
  await shot(p, shots, `events-${tag}`);
}

// ---- 5. the dip's page: opened from the scatter, details, waveform, RMS(1/2) ----
async function checkEventPage(p, tag) {
  await p.waitForSelector("#ev-details");
  const det = await p.evaluate(() => ({ term: document.querySelector("#ev-term")?.textContent, href: document.querySelector("#ev-term")?.getAttribute("href"),
    kind: document.querySelector("#ev-kind-v")?.textContent, dur: document.querySelector("#ev-dur-v")?.textContent,
    pct: document.querySelector("#ev-pct-v")?.textContent, time: document.querySelector("#ev-details time")?.getAttribute("datetime") }));
  if (det.term !== dip.terminal || det.href !== `#/terminal/${dip.terminal}` || det.kind !== "dip" || det.dur !== fmtDur(dip.duration_s)
      || det.pct !== `${dip.residual_pct.toFixed(1)} %` || det.time !== dip.start)
    fail(`${tag}: details ${JSON.stringify(det)} vs the API ${JSON.stringify(dip)}`);
  await p.waitForSelector("#ev-rms-summary[data-pct]", { timeout: 30000 });
  const plot = await p.evaluate(() => {
    const v = document.querySelector(".ev-chart-v")?.uplot, r = document.querySelector(".ev-chart-rms")?.uplot;
    const mins = r ? r.data.slice(1).map((ys) => Math.min(...ys.filter((y) => y !== null))) : [];
    return { vPoints: v ? v.data[0].length : 0, vSeries: v ? v.data.length - 1 : 0, rPoints: r ? r.data[0].length : 0,
      rmsMin: mins.length ? Math.min(...mins) : null, pct: Number(document.querySelector("#ev-rms-summary").dataset.pct),
      v: Number(document.querySelector("#ev-rms-summary").dataset.v), canvas: !!document.querySelector(".ev-chart-v canvas"),
      width: document.querySelector(".ev-chart-v .uplot")?.getBoundingClientRect().width };
  });
  const w = await apiGet(p, `/api/v1/events/${dip.id}/waveform?pre=0.5&post=1&max_points=100000`);
  let apiMin = Infinity;
  for (const s of w.body.rms_half.segments) for (const vs of Object.values(s.values)) for (const v of vs) if (v !== null) apiMin = Math.min(apiMin, v);
  const ref = w.body.event.reference * w.body.vt_ratio;
  if (plot.vPoints < 1000 || plot.vSeries < 3 || !plot.canvas || plot.rPoints < 50) fail(`${tag}: waveform not drawn: ${JSON.stringify(plot)}`);
  if (Math.abs(plot.rmsMin - apiMin) > 1e-9 || Math.abs(plot.v - apiMin) > 1e-9) fail(`${tag}: RMS(1/2) min ${plot.rmsMin} / shown ${plot.v}, the API ${apiMin}`);
  if (Math.abs(plot.pct - (apiMin / ref) * 100) > 1e-6 || Math.abs(plot.pct - LEVEL) > 3)
    fail(`${tag}: the dip's RMS(1/2) minimum is ${plot.pct} % (scheduled ${LEVEL} %)`);
  const vw = await p.evaluate(() => window.innerWidth);
  if (!(plot.width <= vw)) fail(`${tag}: chart ${plot.width} px in a ${vw} px window`);
  ok(`${tag}: event ${dip.id}: details as the API; waveform ${plot.vPoints} points x ${plot.vSeries} voltages; RMS(1/2) lowest ${plot.v.toFixed(1)} V = ${plot.pct.toFixed(1)} % (scheduled ${LEVEL} %)`);
  return plot;
}
{
  const p = op.page;
  const t0 = Date.now();
  await p.click(`#ev-scatter a.pt[data-id="${dip.id}"]`);
  await p.waitForFunction((id) => location.hash === `#/events/${id}`, dip.id);
  await p.waitForSelector("#ev-rms-summary[data-pct]", { timeout: 30000 });
  ok(`figure: from the click on the scatter point to the waveform drawn: ${Date.now() - t0} ms`);
  const prim = await checkEventPage(p, "desktop");
  await axeCheck(p, "event desktop");
  await shot(p, shots, "event-desktop");
  // secondary units: the same dip, values divided by the VT ratio
  await p.selectOption("#ev-side", "secondary");
  await p.waitForFunction((v) => { const s = document.querySelector("#ev-rms-summary"); return s && s.dataset.v && Number(s.dataset.v) !== v; }, prim.v);
  const sec = await p.$eval("#ev-rms-summary", (s) => ({ v: Number(s.dataset.v), pct: Number(s.dataset.pct) }));
  if (Math.abs(sec.v * VT - prim.v) > prim.v * 0.002 || Math.abs(sec.pct - prim.pct) > 0.05 || !location_has(await p.evaluate(() => location.hash), "side=secondary"))
    fail(`secondary: ${JSON.stringify(sec)} vs primary ${prim.v} V / VT ${VT}`);
  ok(`desktop: secondary units: ${sec.v.toFixed(2)} V (primary ${prim.v.toFixed(1)} V / ${VT}), same ${sec.pct.toFixed(1)} %`);

  // ---- 6. the operator acknowledges the dip here ----
  await p.click("#ev-ack");
  await p.waitForFunction((u) => document.querySelector("#ev-acked-by")?.textContent === `acknowledged by ${u}`, opUser);
  if (await p.$("#ev-ack")) fail("the ack button is still there");
  const after = await apiGet(p, `/api/v1/events/${dip.id}`);
  if (!after.body.acked || after.body.acked_by !== opUser) fail(`API after ack: ${JSON.stringify(after.body)}`);
  ok(`desktop: acknowledged on the event page; the API says acked_by=${after.body.acked_by} at ${after.body.acked_at}`);

  // ---- 7. a 409 is shown clearly: the swell is acknowledged elsewhere while the list shows it open ----
  await p.goto(`${base}/#/events`);
  await p.waitForSelector(`#ev-${swell.id} button.ev-ack`);
  const st = await p.evaluate(async (id) => (await fetch(`/api/v1/events/${id}/ack`, { method: "POST" })).status, swell.id);
  if (st !== 200) fail(`ack through the API: ${st}`);
  await p.click(`#ev-${swell.id} button.ev-ack`);
  await p.waitForSelector("#ev-msg .error");
  const m = await p.textContent("#ev-msg");
  if (!/Not acknowledged: event \d+ was already acknowledged by/.test(m)) fail(`409 message: ${m}`);
  await p.waitForFunction((id) => /acknowledged by/.test(document.querySelector(`#ev-${id} .ev-state`)?.textContent || "")
    && !document.querySelector(`#ev-${id} button.ev-ack`), swell.id);
  ok(`desktop: a second ack shows the 409 clearly ("${m.trim()}") and the row shows who acknowledged it`);

  // the acknowledged-state filter (API): nothing is open any more, both are acknowledged
  await p.selectOption("#ev-acked", "false");
  await p.waitForSelector("#ev-status .empty");
  await p.selectOption("#ev-acked", "true");
  await p.waitForFunction((n) => location.hash.includes("acked=true") && document.querySelectorAll("#ev-table tr.ev-row").length === n, all.body.events.length);
  ok("desktop: the state filter: none open, both acknowledged");
  // paging: one event per page, then "load older events"
  await p.goto(`${base}/#/events?limit=1`);
  await p.waitForSelector("#ev-table tr.ev-row");
  const first = await p.$$eval("#ev-table tr.ev-row", (trs) => trs.map((tr) => Number(tr.dataset.id)));
  const cnt1 = await p.textContent("#ev-count");
  if (first.length !== 1 || first[0] !== all.body.events[0].id || !/Older events exist/.test(cnt1) || await p.$eval("#ev-more", (b) => b.hidden))
    fail(`paging, page 1: ${first} "${cnt1}"`);
  await p.click("#ev-more");
  await p.waitForFunction(() => document.querySelectorAll("#ev-table tr.ev-row").length === 2);
  const both = await p.$$eval("#ev-table tr.ev-row", (trs) => trs.map((tr) => Number(tr.dataset.id)));
  if (JSON.stringify(both) !== JSON.stringify(all.body.events.map((e) => e.id))) fail(`paging: ${both}`);
  // a full page always carries a next key (docs/api.md "Paging"): the next, empty page ends it
  if (!(await p.$eval("#ev-more", (b) => b.hidden))) {
    await p.click("#ev-more");
    await p.waitForFunction(() => document.querySelector("#ev-more").hidden && !document.querySelector("#ev-more").disabled);
  }
  if (await p.$$eval("#ev-table tr.ev-row", (trs) => trs.length) !== 2) fail("paging: the last page changed the rows");
  ok("desktop: paging with next_before: 1 event, then the older one with \"Load older events\"");
  // an unknown event: the error says so
  await p.goto(`${base}/#/events/999999`);
  await p.waitForSelector("#main .error.box");
  const err = await p.textContent("#main .error.box");
  if (!/404 not_found/.test(err)) fail(`unknown event: ${err}`);
  ok(`desktop: an unknown event shows the API's error ("${err}")`);
  // Chinese
  await p.goto(`${base}/#/events`);
  await p.waitForFunction((n) => document.querySelectorAll("#ev-table tr.ev-row").length === n, all.body.events.length);
  await p.selectOption("#lang", "zh");
  await p.waitForFunction(() => document.querySelector("h1")?.textContent === "事件" && document.querySelector("#ev-table tr.ev-row .ev-kind"));
  const kinds = await p.$$eval("#ev-table .ev-kind", (xs) => xs.map((x) => x.textContent));
  const ths = await p.$$eval("#ev-table th", (xs) => xs.map((x) => x.textContent));
  if (!kinds.includes("电压暂降") || !kinds.includes("电压暂升") || !ths.includes("持续时间")) fail(`Chinese: ${kinds} ${ths}`);
  await shot(p, shots, "events-desktop-zh");
  await p.selectOption("#lang", "en");
  await p.waitForFunction(() => document.querySelector("h1")?.textContent === "Events");
  ok("desktop: the Chinese switch translates the page (kinds, headers)");
}

// ---- 8. the viewer (phone): sees the states, no ack button; the API refuses the viewer ----
{
  const p = view.page;
  await p.reload();
  await p.waitForSelector(`#ev-${dip.id} .ev-state`);
  const states = await p.$$eval("#ev-table tr.ev-row", (trs) => trs.map((tr) => tr.querySelector(".ev-state").textContent));
  if (await p.$("button.ev-ack")) fail("phone: a viewer sees an ack button");
  if (!states.every((s) => s.includes(`acknowledged by ${opUser}`))) fail(`phone: states ${states}`);
  const st = await p.evaluate(async (id) => (await fetch(`/api/v1/events/${id}/ack`, { method: "POST" })).status, dip.id);
  if (st !== 403) fail(`a viewer's ack: ${st}`);
  ok("phone: the viewer sees who acknowledged, no ack button; the API refuses the viewer (403)");
  await p.click(`#ev-${dip.id} a.ev-open`);
  await checkEventPage(p, "phone");
  if (await p.$("#ev-ack")) fail("phone: a viewer sees the ack button on the event page");
  // touch: a two-finger spread on the RMS(1/2) chart zooms the time axis; the other charts follow
  const over = await p.$(".ev-chart-rms .u-over");
  await over.scrollIntoViewIfNeeded();
  const bx = await over.boundingBox();
  const span = () => p.evaluate(() => [".ev-chart-rms", ".ev-chart-v"].map((c) => { const x = document.querySelector(c).uplot.scales.x; return x.max - x.min; }));
  const before = await span();
  const cdp = await view.ctx.newCDPSession(p);
  const cx = bx.x + bx.width / 2, cy = bx.y + bx.height / 2;
  const touch = (type, d) => cdp.send("Input.dispatchTouchEvent", { type, touchPoints: d === null ? [] : [{ x: cx - d, y: cy, id: 1 }, { x: cx + d, y: cy, id: 2 }] });
  await touch("touchStart", 20);
  for (const d of [40, 60, 80, 100]) await touch("touchMove", d);
  await touch("touchEnd", null);
  await p.waitForFunction((b) => { const x = document.querySelector(".ev-chart-v").uplot.scales.x; return x.max - x.min < b / 2; }, before[1]);
  const after = await span();
  if (!(after[0] < before[0] / 3 && Math.abs(after[0] - after[1]) < 1e-6)) fail(`pinch zoom: span ${before} -> ${after}`);
  ok(`phone: a pinch zooms the time axis ${before[0].toFixed(0)} ms -> ${after[0].toFixed(0)} ms, the other charts follow`);
  await p.click("#ev-reset");
  const reset = await span();
  if (Math.abs(reset[0] - before[0]) > 1e-6) fail(`reset zoom: ${reset}`);
  const overflow = await p.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  if (overflow > 0) fail(`phone: the event page is ${overflow} px wider than the viewport`);
  await axeCheck(p, "event phone");
  await shot(p, shots, "event-phone");
}

await op.ctx.close();
await view.ctx.close();
await browser.close();
if (problems.length) fail("console errors or failed requests:\n  " + problems.join("\n  "));
ok("no console error, no failed request");

function location_has(hash, s) { return hash.includes(s); }
