// Browser side of the web app benchmark (bench/web_bench.py, issue 9 section 5), with Debian's
// chromium through playwright-core. Prints "RESULT {json}" lines; talks to the Python side on
// stdin/stdout ("@kill" / "@start" -> it answers with the epoch ms at which it acted).
//   node bench/web_perf.mjs cold  PORT USER PASSWORD TERMINAL SCOPE_S
//   node bench/web_perf.mjs fleet PORT USER PASSWORD PROBE_ID WINDOW_S CHANGES
import { chromium } from "playwright-core";
import { createInterface } from "node:readline";

const [mode, port, user, password, arg1, arg2, arg3] = process.argv.slice(2);
const base = `http://127.0.0.1:${port}`;
const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
const out = (o) => console.log("RESULT " + JSON.stringify(o));
async function ask(what) { console.log("@" + what); return Number((await lines.next()).value); }
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s.length ? s[Math.floor(s.length / 2)] : null; };

const browser = await chromium.launch({
  executablePath: process.env.GS_CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-dev-shm-usage"],
});
const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
const page = await ctx.newPage();
const cdp = await ctx.newCDPSession(page);
await cdp.send("Performance.enable");
const taskTime = async () => (await cdp.send("Performance.getMetrics")).metrics.find((m) => m.name === "TaskDuration").value;

async function login() {
  await page.fill("input[name=user]", user);
  await page.fill("input[name=password]", password);
  await page.click("form.login button");
}

if (mode === "cold") {
  // 1. first load, cold cache: the login page, then the fleet page after logging in
  const t0 = Date.now();
  await page.goto(base + "/");
  await page.waitForSelector("form.login");
  const tLogin = Date.now() - t0;
  const nav = await page.evaluate(() => { const n = performance.getEntriesByType("navigation")[0]; return { dcl: n.domContentLoadedEventEnd, load: n.loadEventEnd }; });
  const t1 = Date.now();
  await login();
  await page.waitForSelector("#fleet tbody tr td a");
  const tFleet = Date.now() - t1;
  // the first live value: the feed's first fleet update drawn after the table (the row's
  // "last data" cell changes when the feed delivers the terminal's next state)
  await page.waitForFunction(() => /live/.test(document.querySelector("#feed")?.textContent || ""));
  const tLive = Date.now() - t1;
  // shipped assets: what went over the wire for the app's own files (compressed bodies)
  const assets = await page.evaluate(() => performance.getEntriesByType("resource")
    .filter((r) => new URL(r.name).origin === location.origin && !new URL(r.name).pathname.startsWith("/api/"))
    .map((r) => ({ name: new URL(r.name).pathname, enc: r.encodedBodySize, dec: r.decodedBodySize })));
  const nav2 = await page.evaluate(() => { const n = performance.getEntriesByType("navigation")[0]; return { enc: n.encodedBodySize, dec: n.decodedBodySize }; });
  const encTotal = assets.reduce((s, a) => s + a.enc, 0) + nav2.enc;
  const decTotal = assets.reduce((s, a) => s + a.dec, 0) + nav2.dec;
  out({ what: "cold", login_page_ms: tLogin, dcl_ms: Math.round(nav.dcl), load_ms: Math.round(nav.load), fleet_after_login_ms: tFleet,
        feed_live_after_login_ms: tLive, files: assets.length + 1, bytes_compressed: encTotal, bytes_uncompressed: decTotal });
  // 2. the oscilloscope: frames drawn per second with 6 channels live
  const scopeS = Number(arg2 || 20);
  await page.goto(`${base}/#/terminal/${encodeURIComponent(arg1)}`);
  await page.waitForSelector("#term-tab");
  await page.waitForTimeout(3000);
  const got = await page.evaluate(async (s) => {
    // frames drawn = animation frames in which the oscilloscope's canvas changed; counted by
    // the page itself if it exposes a counter (data-frames on .scope), else by watching paints
    const el = document.querySelector("[data-frames]");
    const c0 = el ? Number(el.dataset.frames) : null;
    const t0 = performance.now();
    await new Promise((r) => setTimeout(r, s * 1000));
    const c1 = el ? Number(el.dataset.frames) : null;
    return { frames: c0 === null ? null : c1 - c0, s: (performance.now() - t0) / 1000 };
  }, scopeS);
  const c0 = await taskTime();
  await page.waitForTimeout(10000);
  const c1 = await taskTime();
  out({ what: "scope", fps: got.frames === null ? null : got.frames / got.s, main_thread_cpu_pct: (c1 - c0) / 10 * 100 });
} else if (mode === "fleet") {
  const probe = arg1;
  const windowS = Number(arg2 || 30);
  const changes = Number(arg3 || 10);
  await page.goto(base + "/");
  await login();
  const t0 = Date.now();
  await page.waitForSelector("#fleet tbody tr td a");
  const n = await page.$$eval("#fleet tbody tr", (r) => r.length);
  const tTable = Date.now() - t0;
  // where that time went: the login (argon2id on the server) and the two API reads
  const parts = await page.evaluate(() => Object.fromEntries(performance.getEntriesByType("resource")
    .filter((r) => /\/api\/v1\/(session|terminals|events)/.test(r.name) && r.initiatorType === "fetch")
    .map((r) => [new URL(r.name).pathname, Math.round(r.responseEnd - r.startTime)])));
  await page.waitForFunction(() => /live/.test(document.querySelector("#feed")?.textContent || ""));
  await page.waitForTimeout(5000); // the subscription's first burst (every terminal once)
  const c0 = await taskTime();
  const w0 = Date.now();
  await page.waitForTimeout(windowS * 1000);
  const c1 = await taskTime();
  const heap = (await cdp.send("Performance.getMetrics")).metrics.find((m) => m.name === "JSHeapUsedSize").value;
  out({ what: "fleet", rows: n, table_ms: tTable, login_ms: parts["/api/v1/session"], terminals_ms: parts["/api/v1/terminals"], events_ms: parts["/api/v1/events"], main_thread_cpu_pct: (c1 - c0) / ((Date.now() - w0) / 1000) * 100, js_heap_mb: heap / 1048576 });
  // online/offline changes of one terminal: from the Python side's kill/start to the row
  const cell = `#t-${probe} td:nth-child(3)`;
  const offMs = [], onMs = [];
  for (let i = 0; i < changes; i++) {
    await page.waitForFunction((c) => document.querySelector(c)?.textContent === "online", cell, { timeout: 60000 });
    const tk = await ask("kill");
    await page.waitForFunction((c) => document.querySelector(c)?.textContent === "offline", cell, { timeout: 60000, polling: "raf" });
    offMs.push(Date.now() - tk);
    const ts = await ask("start");
    await page.waitForFunction((c) => document.querySelector(c)?.textContent === "online", cell, { timeout: 60000, polling: "raf" });
    onMs.push(Date.now() - ts);
  }
  out({ what: "changes", offline_ms_median: median(offMs), offline_ms_max: Math.max(...offMs), online_ms_median: median(onMs), online_ms_max: Math.max(...onMs), n: changes });
}
await browser.close();
process.exit(0);
