// Browser test of the terminal page's history tabs (issue 9): trends, status, events, commands,
// on a desktop and a phone viewport, against the real server with simulated terminals.
//   node tests/browser/terminal_history.mjs PORT TERMINAL OFFLINE_TERMINAL SEEDED_TERMINAL OPERATOR OP_PASSWORD VIEWER VIEWER_PASSWORD
// (SEEDED_TERMINAL: simulated, with a week of 10-min values seeded before the server started)
// Asserts on data: the plotted 3 s values equal the measurements API's, the "last" value shown
// is the API's, zoom narrows the x range and pan moves it, the quantity and range are kept in the
// URL, 10-min values (none yet) show the empty state, the status charts and sessions hold the
// API's values, the events list is the API's and a new dip appears live, an operator's capture
// reaches done live (its result shown), a viewer sees no form and the API refuses the viewer's
// POST (403); a terminal that never connected shows the empty states and a command to it stays
// queued until cancelled from the page. axe-core on every tab, screenshots terminal-TAB-VIEWPORT.png into GS_SHOTS.
import { launch, newPage, login, axeCheck, shot, apiGet, fail, ok, DESKTOP, PHONE } from "./lib.mjs";

const [port, tid, offId, seedId, opUser, opPw, viUser, viPw] = process.argv.slice(2);
const base = `http://127.0.0.1:${port}`;
const shots = process.env.GS_SHOTS || ".";
const problems = [];
const browser = await launch();
const T = { timeout: 30000 };

async function noOverflow(page, tag) {
  // (against the viewport asked for: a phone browser widens its layout viewport to the content)
  const over = await page.evaluate(() => document.documentElement.scrollWidth) - page.viewportSize().width;
  if (over > 0) fail(`${tag}: the page is ${over} px wider than the viewport`);
}
/** The plotted columns of the chart in `sel` (uPlot's data, gaps as null). */
const plotted = (page, sel) => page.evaluate((s) => { const u = document.querySelector(s).uplot; return u ? u.data.map((c) => Array.from(c)) : null; }, sel);
const xRange = (page, sel) => page.evaluate((s) => { const u = document.querySelector(s).uplot; return [u.scales.x.min, u.scales.x.max]; }, sel);

async function trends(page, tag) {
  await page.goto(`${base}/#/terminal/${tid}/trends`);
  await page.waitForSelector("#th-trend .u-over", T);
  // the default view: frequency of the last hour from the 3 s values
  const data = await plotted(page, "#th-trend");
  const api = await apiGet(page, `/api/v1/terminals/${tid}/measurements?interval=3s&limit=10000&from=${(Date.now() - 3700e3)}000000`);
  if (api.status !== 200) fail(`${tag}: measurements API ${api.status}`);
  const byEnd = new Map(api.body.measurements.map((a) => [Date.parse(a.t_end) / 1000, a]));
  let n = 0;
  for (let i = 0; i < data[0].length; i++) {
    if (data[1][i] === null) continue; // a gap
    const a = byEnd.get(data[0][i]);
    if (!a) fail(`${tag}: plotted point at ${data[0][i]} is not a stored 3 s value`);
    if (a.freq.mean !== data[1][i] || a.freq.min !== data[2][i] || a.freq.max !== data[3][i])
      fail(`${tag}: plotted frequency ${data[1][i]}/${data[2][i]}/${data[3][i]} != API ${JSON.stringify(a.freq)}`);
    n++;
  }
  if (n < 3) fail(`${tag}: only ${n} plotted values`);
  ok(`${tag}: trends plot ${n} stored 3 s frequency values, each equal to the measurements API's`);
  // the "last" value shown as text is the API's last value of that time
  const last = await page.$eval('#th-stats-table tr[data-series] .th-last', (e) => e.textContent);
  const lastT = await page.$eval('#th-stats-table tr[data-series] time', (e) => e.dateTime);
  const la = byEnd.get(Date.parse(lastT) / 1000);
  if (!la || last !== `${la.freq.mean.toFixed(3)} Hz`) fail(`${tag}: last value shown ${last} at ${lastT} vs API ${la && la.freq.mean}`);
  ok(`${tag}: the table shows the last mean frequency ${last}, as the API`);
  // (uPlot draws the axis labels on the canvas: read them from the chart's options)
  const axis = await page.evaluate(() => document.querySelector("#th-trend").uplot.axes[1].label);
  if (axis !== "Hz") fail(`${tag}: no unit on the y axis: ${axis}`);

  // zoom: drag across the middle of the plot; the x range narrows inside the old one
  const full = await xRange(page, "#th-trend");
  if (full[1] - full[0] < 3590 || full[1] - full[0] > 3610) fail(`${tag}: the 1 h range spans ${full[1] - full[0]} s`);
  const box = await (await page.$("#th-trend .u-over")).boundingBox();
  if (tag === "desktop") {
    // hovering shows the time in local time and UTC in the legend, and the value with its unit
    await page.mouse.move(box.x + box.width * 0.99, box.y + box.height / 2);
    const leg = await page.$$eval("#th-trend .u-legend .u-value", (tds) => tds.map((td) => td.textContent));
    if (!/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC\)$/.test(leg[0]) || !/^\d+\.\d{3} Hz$/.test(leg[1]))
      fail(`${tag}: legend while hovering: ${leg}`);
    ok(`${tag}: the legend shows "${leg[0]}" and "${leg[1]}"`);
    await page.mouse.move(box.x + box.width * 0.3, box.y + box.height / 2);
    await page.mouse.down();
    await page.mouse.move(box.x + box.width * 0.5, box.y + box.height / 2, { steps: 5 });
    await page.mouse.move(box.x + box.width * 0.7, box.y + box.height / 2, { steps: 5 });
    await page.mouse.up();
  } else {
    // on the phone with the buttons (a pinch is hard to synthesise): the middle half
    await page.click("#th-zoom-in");
  }
  const zoomed = await xRange(page, "#th-trend");
  const zw = zoomed[1] - zoomed[0];
  if (!(zoomed[0] > full[0] + 100 && zoomed[1] < full[1] - 100 && zw < (full[1] - full[0]) * 0.6))
    fail(`${tag}: zoom did not narrow the x range: ${full} -> ${zoomed}`);
  ok(`${tag}: zoom narrows the x range to ${Math.round(zw)} s`);
  await page.click("#th-earlier");
  const panned = await xRange(page, "#th-trend");
  if (!(Math.abs(panned[0] - (zoomed[0] - zw / 2)) < 1 && Math.abs(panned[1] - panned[0] - zw) < 1))
    fail(`${tag}: "Earlier" did not pan by half the view: ${zoomed} -> ${panned}`);
  ok(`${tag}: "Earlier" pans by half the view`);
  if (tag === "phone") {
    await page.click("#th-zoom-out");
    const o = await xRange(page, "#th-trend");
    if (Math.abs((o[1] - o[0]) - 2 * zw) > 1) fail(`${tag}: "Zoom out" did not double the view: ${panned} -> ${o}`);
    ok(`${tag}: "Zoom in" / "Zoom out" halve and double the view`);
  }
  // (zooming out at the start of the range shows all of it: then "Reset zoom" is off)
  if (!(await page.$eval("#th-reset", (b) => b.disabled))) await page.click("#th-reset");
  const back = await xRange(page, "#th-trend");
  if (Math.abs(back[0] - full[0]) > 1 || Math.abs(back[1] - full[1]) > 1) fail(`${tag}: reset: ${back} vs ${full}`);
  ok(`${tag}: reset shows the whole range again`);
  if (tag === "desktop") {
    // Shift-drag pans: dragging to the right shows earlier times
    await page.mouse.move(box.x + box.width * 0.5, box.y + box.height / 2);
    await page.mouse.click(box.x + box.width * 0.5, box.y + box.height / 2); // (no drag: no zoom)
    await page.evaluate(() => { const u = document.querySelector("#th-trend").uplot; const w = u.scales.x.max - u.scales.x.min; u.setScale("x", { min: u.scales.x.min + w * 0.5, max: u.scales.x.max - w * 0.25 }); });
    const z2 = await xRange(page, "#th-trend");
    await page.keyboard.down("Shift");
    await page.mouse.move(box.x + box.width * 0.4, box.y + box.height / 2);
    await page.mouse.down();
    await page.mouse.move(box.x + box.width * 0.6, box.y + box.height / 2, { steps: 5 });
    await page.mouse.up();
    await page.keyboard.up("Shift");
    const p2 = await xRange(page, "#th-trend");
    const want = (z2[1] - z2[0]) * 0.2;
    if (!(Math.abs((z2[0] - p2[0]) - want) < want * 0.1 && Math.abs((p2[1] - p2[0]) - (z2[1] - z2[0])) < 1))
      fail(`${tag}: Shift-drag did not pan: ${z2} -> ${p2}`);
    ok(`${tag}: Shift-drag pans the view by the distance dragged (${Math.round(z2[0] - p2[0])} s)`);
    // past the loaded range: "Earlier" loads the half hour before, "Later" comes back to now
    await page.click("#th-reset");
    await page.click("#th-earlier");
    await page.waitForFunction(() => /[?&]end=\d+/.test(location.hash), null, T);
    await page.waitForSelector("#th-trend .u-over, #th-trend .empty", T);
    const e1 = await page.evaluate(() => Number(/end=(\d+)/.exec(location.hash)[1]) / 1000);
    if (Math.abs(e1 - (full[1] - 1800)) > 60) fail(`${tag}: "Earlier" at the whole range ends at ${e1}, not ${full[1] - 1800}`);
    if (await page.$eval("#th-later", (b) => b.disabled)) fail(`${tag}: "Later" is disabled after going back`);
    await page.click("#th-later");
    await page.waitForFunction(() => !/[?&]end=/.test(location.hash), null, T);
    await page.waitForSelector("#th-trend .u-over", T);
    ok(`${tag}: "Earlier" past the loaded hour reads the half hour before (end in the URL); "Later" returns to now`);
  }

  // another quantity, kept in the URL; a reload shows the same
  await page.selectOption("#th-q", "urms");
  await page.waitForSelector("#th-trend .u-over", T);
  if (!/[?&]q=urms/.test(await page.evaluate(() => location.hash))) fail(`${tag}: the quantity is not in the URL`);
  const ua = await plotted(page, "#th-trend");
  const i = ua[1].findLastIndex((v) => v !== null);
  const api2 = await apiGet(page, `/api/v1/terminals/${tid}/measurements?interval=3s&limit=10000&from=${(Date.now() - 3700e3)}000000`);
  const aU = api2.body.measurements.find((a) => Date.parse(a.t_end) / 1000 === ua[0][i]);
  const chUa = aU && aU.channels.find((c) => c.name === "Ua");
  if (!chUa || chUa.rms !== ua[1][i]) fail(`${tag}: plotted Ua ${ua[1][i]} != API ${chUa && chUa.rms}`);
  ok(`${tag}: RMS Ua plotted as stored (${ua[1][i].toFixed(3)} V)`);
  await page.selectOption("#th-range", "24h");
  // 10-min values: none in a short run (the empty state says what to do), unless the run
  // crossed a 10-min boundary (then one, plotted as the API's)
  await page.waitForSelector("#th-trend .empty, #th-trend .u-over", T);
  const api10 = (await apiGet(page, `/api/v1/terminals/${tid}/measurements?interval=10min&from=${Date.now() - 86500e3}000000`)).body.measurements;
  if (!api10.length) {
    const empty = await page.textContent("#th-trend .empty").catch(() => "(no empty state)");
    if (!/No stored 10 min values/.test(empty) || !/longer range|3 s values/.test(empty)) fail(`${tag}: empty state: ${empty}`);
    ok(`${tag}: no 10-min values yet: the empty state says "${empty.slice(0, 60)}…"`);
  } else {
    const d10 = await plotted(page, "#th-trend");
    const xs = d10[0].filter((_, i) => d10[1][i] !== null);
    const [, end] = await xRange(page, "#th-trend"); // (a value cut short by a restart may end later)
    const want = api10.map((a) => Date.parse(a.t_end) / 1000).filter((x) => x <= end);
    if (xs.join() !== want.join()) fail(`${tag}: 10-min values plotted at ${xs}, API ${want}`);
    ok(`${tag}: the ${want.length} 10-min value(s) of this run plotted as the API's`);
  }
  await page.selectOption("#th-iv", "3s");
  await page.waitForSelector("#th-trend .u-over", T);
  const hash = await page.evaluate(() => location.hash);
  if (!/range=24h/.test(hash) || !/iv=3s/.test(hash) || !/q=urms/.test(hash)) fail(`${tag}: URL ${hash}`);
  await page.reload();
  await page.waitForSelector("#th-trend .u-over", T);
  const sel = await page.evaluate(() => [document.querySelector("#th-q").value, document.querySelector("#th-range").value, document.querySelector("#th-iv").value]);
  if (sel.join() !== "urms,24h,3s") fail(`${tag}: after a reload the controls show ${sel}`);
  const r24 = await xRange(page, "#th-trend");
  if (Math.abs(r24[1] - r24[0] - 86400) > 10) fail(`${tag}: the 24 h range spans ${r24[1] - r24[0]} s`);
  ok(`${tag}: quantity, range and interval kept in the URL (${hash}) and restored by a reload`);
  await page.goto(`${base}/#/terminal/${tid}/trends`);
  await page.waitForSelector("#th-trend .u-over", T);
  await noOverflow(page, tag);
  await axeCheck(page, `${tag} trends`);
  await shot(page, shots, `terminal-trends-${tag}`);
}

async function week(page, tag) {
  // 7 days of (seeded) 10-min values: plotted as the API's, the 6-hour hole as a gap
  await page.goto(`${base}/#/terminal/${seedId}/trends?range=7d`);
  await page.waitForSelector("#th-trend .u-over", T);
  const [from, to] = await xRange(page, "#th-trend");
  const api = (await apiGet(page, `/api/v1/terminals/${seedId}/measurements?interval=10min&limit=10000&from=${Math.round(from * 1000)}000000&to=${Math.round(to * 1000)}000000`)).body.measurements;
  const d = await plotted(page, "#th-trend");
  const pts = [];
  for (let i = 0; i < d[0].length; i++) if (d[1][i] !== null) pts.push([d[0][i], d[1][i]]);
  if (pts.length !== api.length || api.some((a, i) => Date.parse(a.t_end) / 1000 !== pts[i][0] || a.freq.mean !== pts[i][1]))
    fail(`${tag}: 7-day view plots ${pts.length} values, the API has ${api.length} (or they differ)`);
  // the hole of the seeded week (the running server's own first 10-min value, incomplete, may
  // follow the seeded ones after a longer pause when the test crosses a 10-minute boundary)
  const seeded = api.filter((a) => !a.flags.includes("incomplete"));
  let holes = 0;
  for (let i = 1; i < seeded.length; i++) {
    const a = Date.parse(seeded[i - 1].t_end) / 1000, b = Date.parse(seeded[i].t_end) / 1000;
    if (b - a > 900) { holes++; if (!d[0].some((x, j) => x > a && x < b && d[1][j] === null)) fail(`${tag}: no gap drawn between ${a} and ${b}`); }
  }
  if (holes !== 1) fail(`${tag}: ${holes} holes in the seeded week (${seeded.length} complete values of ${api.length})`);
  ok(`${tag}: the 7-day view plots the ${api.length} stored 10-min values as the API's, the 6-hour hole as a gap`);
  await shot(page, shots, `terminal-trends-week-${tag}`);
  // zoomed into the last hour, the 3 s values of that part are read and plotted
  await page.evaluate(() => { const u = document.querySelector("#th-trend").uplot; u.setScale("x", { min: u.scales.x.max - 3600, max: u.scales.x.max }); });
  // (the note says "Reading the 3 s values…" while they load: wait for the values themselves)
  await page.waitForFunction(() => /^Zoomed in: 3 s values/.test(document.querySelector("#th-detail")?.textContent || ""), null, T);
  const z = await plotted(page, "#th-trend");
  const fine = (await apiGet(page, `/api/v1/terminals/${seedId}/measurements?interval=3s&limit=10000&from=${Math.round(to * 1000) - 7200e3}000000`)).body.measurements;
  const byEnd = new Map(fine.map((a) => [Date.parse(a.t_end) / 1000, a]));
  let n = 0;
  for (let i = 0; i < z[0].length; i++) {
    if (z[1][i] === null || z[0][i] <= to - 3600) continue; // the part on screen
    const a = byEnd.get(z[0][i]);
    if (!a || a.freq.mean !== z[1][i]) fail(`${tag}: zoomed-in point ${z[0][i]}=${z[1][i]} is not a stored 3 s value`);
    n++;
  }
  if (n < 3) fail(`${tag}: only ${n} 3 s values after zooming in`);
  ok(`${tag}: zoomed into the last hour, ${n} stored 3 s values are plotted there (as the API's): "${await page.textContent("#th-detail")}"`);
  await page.click("#th-reset");
  await page.waitForFunction(() => document.querySelector("#th-detail").textContent === "", null, T);
  ok(`${tag}: reset shows the week of 10-min values again`);
}

async function status(page, tag) {
  await page.goto(`${base}/#/terminal/${tid}/status`);
  await page.waitForSelector("#th-signal .u-over", T);
  await page.waitForSelector("#th-sessions-table tbody tr", T);
  const api = await apiGet(page, `/api/v1/terminals/${tid}/status?limit=10000`);
  const byRx = new Map(api.body.status.map((s) => [Date.parse(s.time) / 1000, s])); // (plotted at the report time)
  const newest = Math.max(...byRx.keys()); // a report appended live may not be stored yet
  for (const [sel, col, key] of [["#th-signal", 1, "rsrp_dbm"], ["#th-temp", 1, "temperature_c"], ["#th-supply", 1, "supply_v"]]) {
    const d = await plotted(page, sel);
    let n = 0;
    for (let i = 0; i < d[0].length; i++) {
      if (d[col][i] === null) continue;
      const s = byRx.get(d[0][i]);
      if (!s && d[0][i] > newest) continue;
      if (!s || s[key] !== d[col][i]) fail(`${tag}: ${sel} plots ${d[col][i]} at ${d[0][i]}, API ${s && s[key]}`);
      n++;
    }
    if (n < 2) fail(`${tag}: ${sel} has ${n} points`);
    ok(`${tag}: status chart ${sel} plots ${n} reports equal to the API's ${key}`);
  }
  // a STATUS every 2 s: the charts grow live (the feed tells, the page reads the new rows)
  const n0 = (await plotted(page, "#th-signal"))[0].length;
  await page.waitForFunction((n) => document.querySelector("#th-signal").uplot?.data[0].length > n, n0, T);
  ok(`${tag}: new status reports are appended to the charts live`);
  const sess = await apiGet(page, `/api/v1/terminals/${tid}/sessions`);
  const first = await page.$$eval("#th-sessions-table tbody tr:first-child td", (tds) => tds.map((td) => td.textContent));
  if (first[3] !== sess.body.sessions[0].remote || !/still connected/.test(first[1])) fail(`${tag}: session row ${first}`);
  ok(`${tag}: the open session from ${first[3]} is listed as still connected`);
  await noOverflow(page, tag);
  await axeCheck(page, `${tag} status`);
  await shot(page, shots, `terminal-status-${tag}`);
}

async function events(page, tag, waitLive) {
  await page.goto(`${base}/#/terminal/${tid}/events`);
  await page.waitForSelector("#th-events-table tbody tr", T);
  const api = await apiGet(page, `/api/v1/terminals/${tid}/events`);
  const ids = await page.$$eval("#th-events-table tbody tr", (trs) => trs.map((tr) => Number(tr.dataset.id)));
  const want = api.body.events.map((e) => e.id);
  // (one may have ended between the two reads)
  if (!want.slice(0, ids.length).every((x) => ids.includes(x)) || ids[0] < want[want.length - 1]) fail(`${tag}: rows ${ids} vs API ${want}`);
  const row = await page.$$eval("#th-events-table tbody tr:first-child td", (tds) => tds.map((td) => td.textContent));
  const link = await page.$eval("#th-events-table tbody tr:first-child a", (a) => a.getAttribute("href"));
  const e0 = api.body.events.find((e) => e.id === ids[0]) || (await apiGet(page, `/api/v1/events/${ids[0]}`)).body;
  const pct = e0.kind === "swell" ? `max ${e0.maximum_pct.toFixed(1)} %` : `${e0.residual_pct.toFixed(1)} %`;
  if (link !== `#/events/${e0.id}` || row[1] !== e0.kind || row[4] !== pct)
    fail(`${tag}: first event row ${row} ${link} vs ${JSON.stringify(e0)}`);
  ok(`${tag}: ${ids.length} events as the API's, the newest (#${e0.id}, ${e0.kind}, residual ${row[4]}) links to its page`);
  if (waitLive) {
    // the simulator dips the terminal every 12 s: a new one appears at the top, live
    await page.waitForSelector("#th-events-table tbody tr.th-new", { timeout: 45000 });
    const nid = await page.$eval("#th-events-table tbody tr:first-child", (tr) => Number(tr.dataset.id));
    if (!(nid > ids[0])) fail(`${tag}: the live row ${nid} is not newer than ${ids[0]}`);
    const e = await apiGet(page, `/api/v1/events/${nid}`);
    if (e.status !== 200 || e.body.terminal !== tid) fail(`${tag}: live event ${nid}: ${e.status}`);
    ok(`${tag}: event #${nid} appeared live at the top`);
  }
  await noOverflow(page, tag);
  await axeCheck(page, `${tag} events`);
  await shot(page, shots, `terminal-events-${tag}`);
}

async function commands(page, tag) {
  await page.goto(`${base}/#/terminal/${tid}/commands`);
  await page.waitForSelector("#th-command-form", T);
  await page.waitForSelector("#th-commands-table, #th-commands .empty", T);
  const before = (await apiGet(page, `/api/v1/terminals/${tid}/commands`)).body.commands.length;
  // validation: nothing is sent while a field is wrong
  await page.selectOption("#th-verb", "capture");
  await page.fill("#th-arg-cycles", "abc");
  await page.fill("#th-arg-pretrigger", "4");
  await page.click("#th-send");
  const err = await page.textContent("#th-arg-cycles-err");
  if (!/whole number from 1 to 3000/.test(err)) fail(`${tag}: validation message: ${err}`);
  await page.fill("#th-arg-cycles", "4");
  await page.click("#th-send");
  if (!/fewer than the total/.test(await page.textContent("#th-arg-pretrigger-err"))) fail(`${tag}: pretrigger >= cycles accepted`);
  if ((await apiGet(page, `/api/v1/terminals/${tid}/commands`)).body.commands.length !== before) fail(`${tag}: an invalid command was sent`);
  ok(`${tag}: the form refuses "abc" cycles and pretrigger >= cycles with clear messages, sending nothing`);
  await page.fill("#th-arg-cycles", "20");
  await page.click("#th-send");
  await page.waitForSelector("#th-send-status [role=status]", T);
  const msg = await page.textContent("#th-send-status");
  const id = Number(/#(\d+)/.exec(msg)[1]);
  const top = await page.$eval("#th-commands-table tbody tr:first-child", (tr) => Number(tr.dataset.id));
  if (top !== id) fail(`${tag}: the new command ${id} is not at the top (${top})`);
  await page.waitForSelector(`#th-commands-table tr[data-id="${id}"][data-state="done"]`, T);
  const row = await page.$$eval(`#th-commands-table tr[data-id="${id}"] td`, (tds) => tds.map((td) => td.textContent));
  const c = (await apiGet(page, `/api/v1/commands/${id}`)).body;
  if (c.state !== "done" || c.verb !== "capture" || c.args.cycles !== 20 || c.args.pretrigger !== 4)
    fail(`${tag}: API command ${JSON.stringify(c)}`);
  // columns: id, verb, state, result, arguments, created, updated (state and result first: a phone shows them)
  if (!row[4].includes("cycles=20") || !/^OK/.test(row[3]) || !row[3].includes(`block ${c.result.block_seq}`))
    fail(`${tag}: command row ${row} vs ${JSON.stringify(c)}`);
  ok(`${tag}: capture #${id} (cycles=20, pretrigger=4) went to done live; result "${row[3]}"`);
  if (tag === "desktop") {
    // a capture longer than the terminal holds: the terminal refuses it, the page shows why
    await page.fill("#th-arg-cycles", "3000");
    await page.fill("#th-arg-pretrigger", "2999");
    await page.click("#th-send");
    await page.waitForFunction((old) => { const m = /#(\d+)/.exec(document.querySelector("#th-send-status")?.textContent || ""); return m && Number(m[1]) !== old; }, id, T);
    const fid = Number(/#(\d+)/.exec(await page.textContent("#th-send-status"))[1]);
    await page.waitForSelector(`#th-commands-table tr[data-id="${fid}"][data-state="failed"]`, T);
    const fr = await page.$eval(`#th-commands-table tr[data-id="${fid}"] .th-result`, (td) => td.textContent);
    const fc = (await apiGet(page, `/api/v1/commands/${fid}`)).body;
    if (fc.state !== "failed" || !fr.startsWith("bad arguments") || (fc.result.message && !fr.includes(fc.result.message)))
      fail(`${tag}: failed command shows "${fr}", API ${JSON.stringify(fc)}`);
    ok(`${tag}: capture #${fid} of 3000 cycles went to failed live; the page shows "${fr}"`);
  }
  await noOverflow(page, tag);
  await axeCheck(page, `${tag} commands`);
  await shot(page, shots, `terminal-commands-${tag}`);
  if (tag === "desktop") {
    // the language switch redraws the tab in Chinese (and back), states included
    await page.selectOption("#lang", "zh");
    await page.waitForFunction(() => document.querySelector("#th-command-form h2")?.textContent === "发送命令" &&
      document.querySelector(`#th-commands-table .th-state-done`)?.textContent === "完成", null, T);
    await page.selectOption("#lang", "en");
    await page.waitForFunction(() => document.querySelector("#th-command-form h2")?.textContent === "Send a command", null, T);
    ok(`${tag}: the language switch shows the commands tab in Chinese and back`);
  }
  return id;
}

async function viewer(viewport, tag, cmdId) {
  const { ctx, page } = await newPage(browser, viewport, `${tag} viewer`, problems,
    (st, url, method) => st === 403 && method === "POST" && url.endsWith(`/terminals/${tid}/commands`));
  await login(page, base, viUser, viPw, `#/terminal/${tid}/commands`);
  await page.waitForSelector("#th-no-form", T);
  await page.waitForSelector(`#th-commands-table tr[data-id="${cmdId}"][data-state="done"]`, T);
  if (await page.$("#th-command-form")) fail(`${tag}: the viewer sees the command form`);
  if (await page.$(".th-cancel")) fail(`${tag}: the viewer sees a cancel button`);
  const note = await page.textContent("#th-no-form");
  if (!/operators/.test(note)) fail(`${tag}: viewer note: ${note}`);
  const r = await page.evaluate(async (p) => {
    const x = await fetch(p, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ verb: "get-status" }) });
    return { status: x.status, body: await x.json().catch(() => null) };
  }, `/api/v1/terminals/${tid}/commands`);
  if (r.status !== 403) fail(`${tag}: the viewer's POST got ${r.status}`);
  ok(`${tag}: a viewer sees the commands (#${cmdId} done) and a note but no form; the API refuses the viewer's POST (403 ${r.body?.error?.code})`);
  await noOverflow(page, `${tag} viewer`);
  await axeCheck(page, `${tag} viewer commands`);
  await shot(page, shots, `terminal-commands-viewer-${tag}`);
  await ctx.close();
}

async function offline(page, tag) {
  // a terminal that never connected: every tab says what to do next
  await page.goto(`${base}/#/terminal/${offId}/trends`);
  await page.waitForSelector("#th-trend .empty", T);
  const e = await page.textContent("#th-trend .empty");
  if (!/No stored 3 s values in this range/.test(e) || !/longer range/.test(e)) fail(`${tag}: offline trends: ${e}`);
  await page.goto(`${base}/#/terminal/${offId}/status`);
  await page.waitForSelector("#th-status-charts .empty", T);
  await page.waitForSelector("#th-sessions .empty", T);
  await page.goto(`${base}/#/terminal/${offId}/events`);
  await page.waitForSelector("#th-events .empty", T);
  ok(`${tag}: a terminal that never connected shows the empty states ("${e.slice(0, 50)}…")`);
  await page.goto(`${base}/#/terminal/${offId}/commands`);
  await page.waitForSelector("#th-commands .empty, #th-commands-table", T);
  await page.selectOption("#th-verb", "set-config");
  await page.click("#th-send");
  if (!/at least one setting/.test(await page.textContent("#th-arg-report_interval-err"))) fail(`${tag}: empty set-config accepted`);
  await page.fill("#th-arg-dip", "85.5");
  await page.selectOption("#th-arg-stream", "off");
  await page.click("#th-send");
  await page.waitForSelector('#th-commands-table tr[data-state="queued"]', T);
  const id = await page.$eval('#th-commands-table tr[data-state="queued"]', (tr) => Number(tr.dataset.id));
  const args = await page.$eval(`#th-commands-table tr[data-id="${id}"] .th-args-cell`, (td) => td.textContent);
  const c0 = (await apiGet(page, `/api/v1/commands/${id}`)).body;
  if (c0.state !== "queued" || c0.args.dip !== 85.5 || c0.args.stream !== false) fail(`${tag}: queued command ${JSON.stringify(c0)}`);
  await page.click(`#th-commands-table tr[data-id="${id}"] .th-cancel`);
  await page.waitForSelector(`#th-commands-table tr[data-id="${id}"][data-state="cancelled"]`, T);
  const c1 = (await apiGet(page, `/api/v1/commands/${id}`)).body;
  if (c1.state !== "cancelled") fail(`${tag}: after cancel the API says ${c1.state}`);
  ok(`${tag}: set-config (${args}) to an offline terminal stays queued; "Cancel" makes it cancelled (API agrees)`);
  await axeCheck(page, `${tag} offline commands`);
}

const t0 = Date.now();
const took = {};
const timed = async (name, p) => { const s = Date.now(); const r = await p; took[name] = ((Date.now() - s) / 1000).toFixed(1); return r; };
for (const [viewport, tag] of [[DESKTOP, "desktop"], [PHONE, "phone"]]) {
  const { ctx, page } = await newPage(browser, viewport, tag, problems);
  await login(page, base, opUser, opPw, `#/terminal/${tid}/trends`);
  await timed(`${tag} trends`, trends(page, tag));
  if (tag === "desktop") await timed(`${tag} week`, week(page, tag));
  await timed(`${tag} status`, status(page, tag));
  await timed(`${tag} events`, events(page, tag, tag === "desktop"));
  const id = await timed(`${tag} commands`, commands(page, tag));
  if (tag === "desktop") await timed(`${tag} offline`, offline(page, tag));
  await ctx.close();
  await timed(`${tag} viewer`, viewer(viewport, tag, id));
}
console.log(`seconds per part: ${JSON.stringify(took)}; total ${((Date.now() - t0) / 1000).toFixed(1)} s`);
await browser.close();
if (problems.length) fail("console errors or failed requests:\n  " + problems.join("\n  "));
ok("no console error, no failed request");
