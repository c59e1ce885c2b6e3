// Browser test of the terminal page's live tab (issue 9): oscilloscope, phasors, spectrum and the
// latest values against the real server with analysis and the simulator, on a desktop and a
// phone viewport. Asserts on data: the scope's uPlot data are secondary volts/amps in the
// simulator's range and change from frame to frame; the Ua angle, the RMS values and the THD
// shown equal the API's /latest for the same window; Hold stops every update; a channel toggle
// hides its series and its phasor; the primary switch multiplies by the provisioned ratios.
// Also the offline terminal (last known values and when) and the one never analysed.
//   node tests/browser/terminal_live.mjs PORT USER PASSWORD LIVE_ID OFFLINE_ID NEVER_ID VT CT
// With a server run with --no-analysis (desktop only): the tab says there are no analysis
// values and why, and the oscilloscope still draws:
//   node tests/browser/terminal_live.mjs PORT USER PASSWORD LIVE_ID --no-analysis
// Prints "figure: ..." lines (frames per second drawn, ms per redraw) for docs/benchmarks.md.
import { launch, newPage, login, axeCheck, shot, apiGet, fail, ok, DESKTOP, PHONE } from "./lib.mjs";

const [port, user, password, liveId, offId, neverId, vtStr, ctStr] = process.argv.slice(2);
const VT = Number(vtStr), CT = Number(ctStr);
const base = `http://127.0.0.1:${port}`;
const shots = process.env.GS_SHOTS || "build/screenshots";
const NOMINAL_PEAK = 57.735 * Math.SQRT2; // simulator default: 57.735 V RMS secondary
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const num = (s) => Number(String(s).replace(/[^0-9.+-eE]/g, " ").trim().split(/\s+/)[0]);

/** Retries fn() (returns a value or throws/returns undefined) until it gives a value, or fails. */
async function until(what, fn, timeoutMs = 20000, stepMs = 250) {
  const end = Date.now() + timeoutMs;
  let last;
  while (Date.now() < end) {
    try { const v = await fn(); if (v !== undefined && v !== null && v !== false) return v; } catch (e) { last = e; }
    await sleep(stepMs);
  }
  fail(`timed out: ${what}${last ? " (" + last.message + ")" : ""}`);
}

const scope = (page, sel) => page.evaluate((s) => {
  const u = document.querySelector(s)?.uplot;
  if (!u) return null;
  return { data: u.data.map((a) => Array.from(a)), show: u.series.map((x) => x.show), labels: u.series.map((x) => x.label),
           axis: u.axes[1].label };
}, sel);
const ds = (page) => page.evaluate(() => ({ ...document.querySelector("#term-tab").dataset }));

async function run(browser, viewport, tag) {
  const problems = [];
  const { ctx, page } = await newPage(browser, viewport, tag, problems);
  await login(page, base, user, password, `#/terminal/${encodeURIComponent(liveId)}`);
  await page.waitForSelector("#tl-scope");

  // ---- oscilloscope draws secondary values that change -------------------------------------
  await until(`${tag}: the scope draws`, async () => Number((await ds(page)).frames) >= 3);
  const s1 = await scope(page, "#tl-scope-v");
  if (!s1 || s1.data[0].length < 20) fail(`${tag}: scope data ${JSON.stringify(s1 && s1.data.map((a) => a.length))}`);
  const ua = s1.labels.indexOf("Ua");
  if (ua < 1) fail(`${tag}: no Ua series: ${s1.labels}`);
  const peak = Math.max(...s1.data[ua].map(Math.abs));
  if (!(peak > 0.8 * NOMINAL_PEAK && peak < 1.25 * NOMINAL_PEAK)) fail(`${tag}: Ua peak ${peak} V, expected ≈ ${NOMINAL_PEAK.toFixed(1)} V`);
  if (!/^V, secondary/.test(s1.axis)) fail(`${tag}: voltage axis label ${s1.axis}`);
  const sa = await scope(page, "#tl-scope-a");
  const ipeak = Math.max(...sa.data.slice(1).flat().map(Math.abs));
  // the simulator's load moves between 0.2 and 1.1 of its 5 A nominal current
  if (!(ipeak > 0.8 && ipeak < 1.1 * 5 * Math.SQRT2 * 1.3)) fail(`${tag}: current peak ${ipeak} A out of the simulator's range`);
  ok(`${tag}: the scope draws ${s1.data.length - 1} voltages and ${sa.data.length - 1} currents, ${s1.data[0].length} points, Ua peak ${peak.toFixed(2)} V, I peak ${ipeak.toFixed(3)} A (secondary)`);
  const t0a = (await ds(page)).t0;
  await until(`${tag}: a new frame is drawn`, async () => {
    const d = await ds(page);
    if (d.t0 === t0a) return false;
    const s2 = await scope(page, "#tl-scope-v");
    return JSON.stringify(s2.data[ua]) !== JSON.stringify(s1.data[ua]);
  });
  ok(`${tag}: the scope's data change from frame to frame`);

  // ---- values, phasor angle and THD equal the API's for the same window ---------------------
  await page.waitForSelector("#tl-ph-table tr[data-ch=Ua] .tl-deg");
  let api;
  const ang = await until(`${tag}: the Ua angle shown and the API's /latest for the same report`, async () => {
    const shown = await page.evaluate(() => {
      const tb = document.querySelector("#tl-ph-table");
      const td = tb.querySelector("tr[data-ch=Ua] .tl-deg");
      return { t: tb.dataset.t, deg: Number(td.dataset.deg), text: td.textContent };
    });
    api = (await apiGet(page, `/api/v1/terminals/${encodeURIComponent(liveId)}/latest`)).body;
    const ref = api.phasor ? { t: api.phasor.t, deg: api.phasor.phasors.Ua.deg }
      : { t: api.t_ref, deg: api.channels.find((c) => c.name === "Ua").phasor.deg };
    if (ref.t !== shown.t) return false; // the page or the API is one update ahead: again
    // the page has the report from the feed's phasors topic (angles to 0.001°) or the member
    if (Math.abs(shown.deg - ref.deg) > 0.0006 || Math.abs(num(shown.text) - ref.deg) > 0.0056 || !shown.text.endsWith("°"))
      fail(`${tag}: Ua angle shown ${shown.text} (${shown.deg}) vs API ${ref.deg} at ${ref.t}`);
    return { ...ref, text: shown.text };
  });
  ok(`${tag}: the Ua angle shown (${ang.text}) is the API's ${ang.deg} for the report of ${ang.t}`);
  const vals = await until(`${tag}: values and spectrum shown for the API's latest window`, async () => {
    api = (await apiGet(page, `/api/v1/terminals/${encodeURIComponent(liveId)}/latest`)).body;
    const shown = await page.evaluate(() => ({
      tv: document.querySelector("#tl-values").dataset.t, ts: document.querySelector("#tl-spectrum").dataset.t,
      rms: Object.fromEntries([...document.querySelectorAll("#tl-rms tbody tr")].map((tr) => [tr.dataset.ch, tr.querySelector(".tl-rms").textContent])),
      freq: document.querySelector("#tl-v-freq").textContent, thd: document.querySelector("#tl-thd").textContent,
      thdCh: document.querySelector("#tl-spec-ch").value,
      bars: [...document.querySelectorAll(".tl-spec-chart rect[data-h]")].map((r) => [Number(r.dataset.h), r.querySelector("title").textContent]),
    }));
    if (shown.tv !== api.t_start || shown.ts !== api.t_start) return false;
    return shown;
  });
  const uaApi = api.channels.find((c) => c.name === "Ua");
  const rmsUa = num(vals.rms.Ua);
  if (Math.abs(rmsUa - uaApi.rms) > 0.0006 || !/ V$/.test(vals.rms.Ua)) fail(`${tag}: Ua RMS shown ${vals.rms.Ua} vs API ${uaApi.rms}`);
  if (Math.abs(num(vals.freq) - api.freq) > 1e-5 || !/Hz$/.test(vals.freq)) fail(`${tag}: frequency shown ${vals.freq} vs API ${api.freq}`);
  const specCh = api.channels.find((c) => c.name === vals.thdCh);
  if (vals.thd !== `${specCh.thd_pct.toFixed(2)} %`) fail(`${tag}: THD shown ${vals.thd} vs API ${specCh.thd_pct} (${vals.thdCh})`);
  const hg = specCh.harmonic_groups;
  if (vals.bars.length !== hg.length - 2) fail(`${tag}: ${vals.bars.length} bars for orders 2..${hg.length - 1}`);
  const b3 = vals.bars.find((b) => b[0] === 3);
  if (b3[1] !== `3: ${(hg[3] / hg[1] * 100).toFixed(3)} %`) fail(`${tag}: bar of order 3 ${b3[1]} vs API ${hg[3] / hg[1] * 100}`);
  ok(`${tag}: RMS Ua ${vals.rms.Ua}, ${vals.freq}, THD ${vals.thd} of ${vals.thdCh} and the order-3 bar (${b3[1]}) equal the API's window ${api.t_start}`);
  // the spectrum's and phasors' options (logic, the same on both viewports: desktop only)
  if (viewport.width >= 500) {
    await page.selectOption("#tl-spec-ch", "Ia");
    const thdIa = await page.textContent("#tl-thd");
    const shownT = await page.evaluate(() => document.querySelector("#tl-spectrum").dataset.t);
    const again = (await apiGet(page, `/api/v1/terminals/${encodeURIComponent(liveId)}/latest`)).body;
    if (again.t_start === shownT && thdIa !== `${again.channels.find((c) => c.name === "Ia").thd_pct.toFixed(2)} %`)
      fail(`${tag}: THD of Ia shown ${thdIa}`);
    if (!(num(thdIa) > 0) || thdIa === vals.thd) fail(`${tag}: choosing Ia did not change the spectrum (${thdIa})`);
    ok(`${tag}: choosing Ia shows its THD ${thdIa}`);

    // the log scale and the angle reference relative to Ua
    await page.selectOption("#tl-spec-scale", "log");
    const logAxis = await page.evaluate(() => [...document.querySelectorAll(".tl-spec-chart text")].map((x) => x.textContent).join("|"));
    if (!/\(log\)/.test(logAxis) || !/0\.001/.test(logAxis)) fail(`${tag}: log scale axis: ${logAxis}`);
    await page.selectOption("#tl-spec-scale", "lin");
    await page.selectOption("#tl-ref", "Ua");
    const rel = await page.evaluate(() => Object.fromEntries([...document.querySelectorAll("#tl-ph-table tbody tr")]
      .map((tr) => [tr.dataset.ch, Number(tr.querySelector(".tl-deg").dataset.deg)])));
    const wrap = (d) => ((d + 540) % 360) - 180;
    if (Math.abs(rel.Ua) > 1e-9 || Math.abs(wrap(rel.Ub + 120)) > 5 || Math.abs(wrap(rel.Uc - 120)) > 5)
      fail(`${tag}: angles relative to Ua: ${JSON.stringify(rel)}`);
    await page.selectOption("#tl-ref", "utc");
    ok(`${tag}: the log scale is labelled; relative to Ua the angles are Ua 0°, Ub ${rel.Ub.toFixed(2)}°, Uc ${rel.Uc.toFixed(2)}°`);

    // the table of values per order stays open across updates
    await page.click("#tl-spectrum details summary");
    const ts0 = await page.evaluate(() => document.querySelector("#tl-spectrum").dataset.t);
    await until(`${tag}: a spectrum update`, async () => (await page.evaluate(() => document.querySelector("#tl-spectrum").dataset.t)) !== ts0);
    const det = await page.evaluate(() => { const d = document.querySelector("#tl-spectrum details"); return { open: d.open, rows: d.querySelectorAll("tbody tr").length }; });
    if (!det.open || det.rows !== hg.length - 2) fail(`${tag}: values per order: ${JSON.stringify(det)}`);
    await page.click("#tl-spectrum details summary");
    ok(`${tag}: the table of ${det.rows} orders stays open across updates`);
  }

  // ---- hold stops every update; resume restarts them ----------------------------------------
  await page.click("#tl-hold");
  if ((await page.getAttribute("#tl-hold", "aria-pressed")) !== "true") fail(`${tag}: hold not pressed`);
  await sleep(300); // a redraw already scheduled for this animation frame may still land
  const h1 = { ds: await ds(page), sc: await scope(page, "#tl-scope-v"),
               tv: await page.evaluate(() => document.querySelector("#tl-values").dataset.t),
               tp: await page.evaluate(() => document.querySelector("#tl-ph-table").dataset.t) };
  await sleep(1500);
  const h2 = { ds: await ds(page), sc: await scope(page, "#tl-scope-v"),
               tv: await page.evaluate(() => document.querySelector("#tl-values").dataset.t),
               tp: await page.evaluate(() => document.querySelector("#tl-ph-table").dataset.t) };
  if (Number(h2.ds.received) <= Number(h1.ds.received)) fail(`${tag}: no frames arrived during the hold test`);
  if (h2.ds.frames !== h1.ds.frames || h2.ds.t0 !== h1.ds.t0 || JSON.stringify(h2.sc.data) !== JSON.stringify(h1.sc.data))
    fail(`${tag}: the scope changed while held`);
  if (h2.tv !== h1.tv || h2.tp !== h1.tp) fail(`${tag}: values or phasors changed while held (${h1.tv} -> ${h2.tv}, ${h1.tp} -> ${h2.tp})`);
  ok(`${tag}: Hold freezes the scope, phasors and values (${Number(h2.ds.received) - Number(h1.ds.received)} frames arrived, none drawn)`);

  // ---- primary side (while held: the same frame and window) ---------------------------------
  const secData = h2.sc.data;
  const secRms = await page.textContent("#tl-rms tr[data-ch=Ua] .tl-rms");
  const secIa = await page.textContent("#tl-rms tr[data-ch=Ia] .tl-rms");
  const secA = await scope(page, "#tl-scope-a");
  await page.check("#tl-side-pri");
  await until(`${tag}: the scope redrawn on the primary side`, async () => /^kV, primary/.test((await scope(page, "#tl-scope-v"))?.axis || ""));
  const pri = await scope(page, "#tl-scope-v");
  const priA = await scope(page, "#tl-scope-a");
  const kv = VT / 1000; // 57.7 V x VT 100 = 5.77 kV: shown in kV
  for (let i = 0; i < secData[ua].length; i++)
    if (Math.abs(pri.data[ua][i] - secData[ua][i] * kv) > 1e-9 * Math.max(1, Math.abs(secData[ua][i] * kv)))
      fail(`${tag}: primary Ua[${i}] ${pri.data[ua][i]} kV vs ${secData[ua][i]} V x ${VT}`);
  const ia = secA.labels.indexOf("Ia");
  const iUnit = /^(k?A), primary/.exec(priA.axis)[1];
  const iF = CT / (iUnit === "kA" ? 1000 : 1);
  for (let i = 0; i < secA.data[ia].length; i++)
    if (Math.abs(priA.data[ia][i] - secA.data[ia][i] * iF) > 1e-9 * Math.max(1, Math.abs(secA.data[ia][i] * iF)))
      fail(`${tag}: primary Ia[${i}] ${priA.data[ia][i]} vs ${secA.data[ia][i]} x ${CT}`);
  const priRms = await page.textContent("#tl-rms tr[data-ch=Ua] .tl-rms");
  const priIa = await page.textContent("#tl-rms tr[data-ch=Ia] .tl-rms");
  if (!/ kV$/.test(priRms) || Math.abs(num(priRms) - num(secRms) * kv) > 0.0006 * kv * 10) fail(`${tag}: primary RMS ${priRms} vs ${secRms} x ${VT}`);
  if (Math.abs(num(priIa) * (iUnit === "kA" ? 1000 : 1) - num(secIa) * CT) > 0.001 * num(secIa) * CT) fail(`${tag}: primary Ia ${priIa} vs ${secIa} x ${CT}`);
  ok(`${tag}: the primary side multiplies by VT ${VT} and CT ${CT} (Ua ${secRms} -> ${priRms}, Ia ${secIa} -> ${priIa}; scope in kV and ${iUnit})`);
  await page.check("#tl-side-sec");
  await until(`${tag}: back on the secondary side`, async () => /^V, secondary/.test((await scope(page, "#tl-scope-v"))?.axis || ""));
  await page.click("#tl-hold");
  const d0 = Number((await ds(page)).frames);
  await until(`${tag}: drawing again after Resume`, async () => Number((await ds(page)).frames) >= d0 + 3);
  ok(`${tag}: Resume draws again`);

  // ---- channel toggle: mouse and keyboard -------------------------------------------------------
  const ub = s1.labels.indexOf("Ub");
  await page.click("label[for=tl-ch-Ub]");
  await until(`${tag}: Ub hidden`, async () => (await scope(page, "#tl-scope-v")).show[ub] === false);
  if (await page.$("#tl-phasor g[data-ch=Ub]")) fail(`${tag}: the Ub phasor is still drawn`);
  if (!(await page.$("#tl-phasor g[data-ch=Ua]"))) fail(`${tag}: the Ua phasor is not drawn`);
  await page.focus("#tl-ch-Ub");
  await page.keyboard.press("Space");
  await until(`${tag}: Ub shown again from the keyboard`, async () => (await scope(page, "#tl-scope-v")).show[ub] === true);
  ok(`${tag}: the Ub toggle hides its trace and phasor, and the keyboard brings them back`);

  // ---- touch: two fingers zoom the time axis of both plots, the zoom survives new frames, a
  // double tap zooms out (Chromium's touch input through the DevTools protocol)
  if (viewport.width < 500) {
    const xs = () => page.evaluate(() => ["#tl-scope-v", "#tl-scope-a"].map((q) => { const x = document.querySelector(q).uplot.scales.x; return [x.min, x.max]; }));
    const full = await xs();
    const r = await page.evaluate(() => { document.querySelector("#tl-scope-v").scrollIntoView(); const b = document.querySelector("#tl-scope-v .u-over").getBoundingClientRect(); return { x: b.left, y: b.top, w: b.width, h: b.height }; });
    const cdp = await page.context().newCDPSession(page);
    const y = r.y + r.h / 2, cx = r.x + r.w / 2;
    const pts = (d) => [{ x: cx - d, y, id: 1 }, { x: cx + d, y, id: 2 }];
    await cdp.send("Input.dispatchTouchEvent", { type: "touchStart", touchPoints: pts(20) });
    for (let d = 40; d <= 100; d += 20) await cdp.send("Input.dispatchTouchEvent", { type: "touchMove", touchPoints: pts(d) });
    await cdp.send("Input.dispatchTouchEvent", { type: "touchEnd", touchPoints: [] });
    const zoomed = await xs();
    const w0 = full[0][1] - full[0][0], w1 = zoomed[0][1] - zoomed[0][0];
    if (!(w1 < w0 / 3) || JSON.stringify(zoomed[0]) !== JSON.stringify(zoomed[1])) fail(`${tag}: pinch: ${JSON.stringify(full)} -> ${JSON.stringify(zoomed)}`);
    const dz = Number((await ds(page)).frames);
    await until(`${tag}: frames drawn while zoomed`, async () => Number((await ds(page)).frames) >= dz + 3);
    if (JSON.stringify(await xs()) !== JSON.stringify(zoomed)) fail(`${tag}: the zoom did not survive new frames`);
    for (let i = 0; i < 2; i++) {
      await cdp.send("Input.dispatchTouchEvent", { type: "touchStart", touchPoints: [{ x: cx, y, id: 3 }] });
      await cdp.send("Input.dispatchTouchEvent", { type: "touchEnd", touchPoints: [] });
    }
    const back = await xs();
    if (JSON.stringify(back) !== JSON.stringify(full)) fail(`${tag}: double tap: ${JSON.stringify(back)} vs ${JSON.stringify(full)}`);
    await cdp.detach();
    await page.evaluate(() => window.scrollTo(0, 0));
    ok(`${tag}: a pinch zooms both plots' time axis ${w0.toFixed(1)} -> ${w1.toFixed(1)} ms (kept while frames arrive), a double tap zooms out`);
  }

  // ---- frames per second (for docs/benchmarks.md) -------------------------------------------
  await sleep(1500);
  const perf = await ds(page);
  if (Number(perf.fps) < 3) fail(`${tag}: only ${perf.fps} frames drawn per second (the feed sends 10)`);
  console.log(`figure: ${tag}: oscilloscope with 6 channels live: ${perf.fps} frames/s drawn, ${perf.drawMs} ms per redraw (${perf.received} frames received, ${perf.frames} drawn, ${perf.lost} lost)`);

  // ---- layout ---------------------------------------------------------------------------------
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  if (overflow > 0) fail(`${tag}: the page is ${overflow} px wider than the viewport`);
  const pos = await page.evaluate(() => Object.fromEntries(["#tl-values", "#tl-scope", "#tl-phasor", "#tl-spectrum"]
    .map((s) => { const r = document.querySelector(s).getBoundingClientRect(); return [s, { top: r.top, width: r.width }]; })));
  if (viewport.width < 500) {
    if (!(pos["#tl-values"].top < pos["#tl-scope"].top)) fail(`${tag}: values are not first on a phone`);
    for (const [s, r] of Object.entries(pos)) if (r.width < viewport.width - 60) fail(`${tag}: ${s} is ${r.width} px wide on a phone`);
    const plotW = await page.evaluate(() => document.querySelector("#tl-scope-v canvas").getBoundingClientRect().width);
    if (plotW < viewport.width - 80 || plotW > viewport.width) fail(`${tag}: the scope is ${plotW} px wide`);
    const wide = await page.evaluate(() => [...document.querySelectorAll(".tl-grid .scroll")]
      .filter((e) => e.scrollWidth > e.clientWidth + 1).map((e) => `${e.getAttribute("aria-label")} ${e.scrollWidth}/${e.clientWidth}`));
    if (wide.length) fail(`${tag}: tables wider than the phone: ${wide}`);
    ok(`${tag}: values first, charts full width (${Math.round(plotW)} px), every table fits, no overflow`);
  } else ok(`${tag}: no horizontal overflow`);
  await shot(page, shots, `terminal-live-${tag}`); // (before axe-core, which stalls the page a moment)
  await axeCheck(page, `${tag} live tab`);

  // ---- "lost" notices: a slow link is not provoked here; the notice is handed to the tab's
  // subscription through the app's own feed object (the same module instance the page uses)
  const lost0 = Number((await ds(page)).lost);
  await page.evaluate(async () => {
    const { feed } = await import("/app/lib.js");
    for (const s of feed.subs) s.fn({ topic: "lost", time: new Date().toISOString(), data: { frames: 3 } });
  });
  const lostText = await page.textContent("#tl-lost");
  if (Number((await ds(page)).lost) !== lost0 + 3 || !(await page.isVisible("#tl-lost")) || !lostText.includes(String(lost0 + 3)))
    fail(`${tag}: lost notice: ${lostText}`);
  ok(`${tag}: a "lost" notice is counted and shown: "${lostText}"`);

  // ---- the offline terminal: the last known values and when ---------------------------------
  await page.goto(`${base}/#/terminal/${encodeURIComponent(offId)}`);
  await page.waitForSelector("#tl-offline:not([hidden])");
  const offText = await page.textContent("#tl-offline");
  const offTime = await page.getAttribute("#tl-offline time", "datetime");
  const offApi = (await apiGet(page, `/api/v1/terminals/${encodeURIComponent(offId)}`)).body;
  if (!offApi.latest || offApi.online) fail(`${tag}: ${offId} should be offline with values`);
  if (!/last known/.test(offText) || offTime !== offApi.latest.t_end) fail(`${tag}: offline banner "${offText}" time ${offTime} vs ${offApi.latest.t_end}`);
  const offRms = await page.textContent("#tl-rms tr[data-ch=Ua] .tl-rms");
  if (Math.abs(num(offRms) - offApi.latest.channels[0].rms) > 0.0006) fail(`${tag}: offline RMS ${offRms}`);
  const offScope = await page.textContent("#tl-scope .tl-scope-msg");
  if (!/offline/.test(offScope)) fail(`${tag}: offline scope message: ${offScope}`);
  ok(`${tag}: an offline terminal shows its last known values (Ua ${offRms}) and their time ${offTime}`);

  // ---- a terminal never analysed (desktop) ----------------------------------------------------
  if (tag === "desktop") {
    await page.goto(`${base}/#/terminal/${encodeURIComponent(neverId)}`);
    await page.waitForSelector("#tl-values .empty");
    const empty = await page.textContent("#tl-values .empty");
    if (!/No analysis values/.test(empty) || !/--no-analysis/.test(empty)) fail(`${tag}: no-analysis message: ${empty}`);
    if (!/never|no values/.test(await page.textContent("#tl-offline"))) fail(`${tag}: never-seen banner`);
    ok(`${tag}: a terminal without analysis values says so plainly`);
    await axeCheck(page, `${tag} live tab without values`);
  }

  await ctx.close();
  if (problems.length) fail("console errors or failed requests:\n  " + problems.join("\n  "));
  ok(`${tag}: no console error, no failed request`);
}

async function noAnalysis(browser) {
  const problems = [];
  const { ctx, page } = await newPage(browser, DESKTOP, "no-analysis", problems);
  await login(page, base, user, password, `#/terminal/${encodeURIComponent(liveId)}`);
  await page.waitForSelector("#tl-values .empty");
  const msg = await page.textContent("#tl-values .empty");
  if (!/No analysis values/.test(msg) || !/--no-analysis/.test(msg)) fail(`no-analysis: message: ${msg}`);
  if (!(await page.isHidden("#tl-offline"))) fail("no-analysis: the online terminal is shown offline");
  await until("no-analysis: the scope draws", async () => Number((await ds(page)).frames) >= 3);
  const s = await scope(page, "#tl-scope-v");
  const peak = Math.max(...s.data[s.labels.indexOf("Ua")].map(Math.abs));
  if (!(peak > 0.8 * NOMINAL_PEAK && peak < 1.25 * NOMINAL_PEAK)) fail(`no-analysis: Ua peak ${peak} V`);
  const st = (await apiGet(page, `/api/v1/terminals/${encodeURIComponent(liveId)}`)).body;
  if (st.latest !== null) fail("no-analysis: the API has values");
  await axeCheck(page, "no-analysis live tab");
  await ctx.close();
  if (problems.length) fail("console errors or failed requests:\n  " + problems.join("\n  "));
  ok(`no-analysis: the tab says "${msg.slice(0, 60)}…" and the scope still draws (Ua peak ${peak.toFixed(2)} V)`);
}

const browser = await launch();
if (offId === "--no-analysis") {
  await noAnalysis(browser);
} else {
  await run(browser, DESKTOP, "desktop");
  await run(browser, PHONE, "phone");
}
await browser.close();
ok("terminal live tab passed");
