// The installable app and its offline shell (issue 9, section 3), and the app across a server
// restart: the manifest and its icons, the service worker in control, then the server stops
// (the feed says it is reconnecting; a reload is answered by the service worker: the fleet as
// last seen, and a banner saying so), then it starts again (the feed is live again, the banner
// goes, the terminals come back online). Accessibility of the login and fleet pages.
// The Python side (tests/integ/test_browser_pwa.py) stops and starts the server when this
// script prints "@stop" / "@start" and answers on stdin when it is done.
//   node tests/browser/pwa.mjs PORT USER PASSWORD N     (GS_SHOTS: screenshot folder)
import { createInterface } from "node:readline";
import { launch, newPage, login, axeCheck, shot, fail, ok, DESKTOP, PHONE } from "./lib.mjs";

const [port, user, password, nStr] = process.argv.slice(2);
const N = Number(nStr);
const base = `http://127.0.0.1:${port}`;
const shots = process.env.GS_SHOTS || ".";
const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
async function ask(what) { console.log("@" + what); const r = await lines.next(); if (r.value !== (what === "stop" ? "stopped" : "started")) fail(`${what}: ${r.value}`); }

const browser = await launch();
const problems = [];
let down = false; // while the server is down, failed requests are what we expect
const { ctx, page } = await newPage(browser, PHONE, "phone", problems, (status) => down && status === 503);

// login page: accessible before anyone is logged in
await page.goto(base + "/");
await page.waitForSelector("form.login");
await axeCheck(page, "login");
await login(page, base, user, password);
await page.waitForFunction((n) => document.querySelector("#count-on")?.textContent === String(n), N, { timeout: 30000 });
await axeCheck(page, "fleet (phone)");

// the manifest and the icons it names
const man = await page.evaluate(async () => {
  const link = document.querySelector('link[rel="manifest"]').href;
  const m = await (await fetch(link)).json();
  const icons = [];
  for (const i of m.icons) {
    const r = await fetch(i.src);
    const b = new Uint8Array(await r.arrayBuffer());
    // PNG: width and height are the big-endian words at bytes 16 and 20 of the IHDR
    const dim = i.type === "image/png" ? `${(b[16] << 24 | b[17] << 16 | b[18] << 8 | b[19])}x${(b[20] << 24 | b[21] << 16 | b[22] << 8 | b[23])}` : "any";
    icons.push({ sizes: i.sizes, type: r.headers.get("content-type"), want: i.type, dim, status: r.status });
  }
  return { m, icons };
});
if (man.m.display !== "standalone" || man.m.start_url !== "/#/fleet" || man.m.scope !== "/" || !man.m.name)
  fail("manifest: " + JSON.stringify(man.m));
for (const i of man.icons)
  if (i.status !== 200 || !i.type.startsWith(i.want) || (i.want === "image/png" && i.dim !== i.sizes)) fail("icon: " + JSON.stringify(i));
if (!man.icons.some((i) => i.sizes === "512x512") || !man.icons.some((i) => i.sizes === "192x192")) fail("icons 192 and 512 missing");
ok(`manifest: standalone, start ${man.m.start_url}, ${man.icons.length} icons of the sizes they claim`);

// the service worker controls the page (a reload makes sure every request went through it)
await page.evaluate(() => navigator.serviceWorker.ready);
await page.reload();
await page.waitForFunction(() => !!navigator.serviceWorker.controller, null, { timeout: 15000 });
await page.waitForFunction((n) => document.querySelector("#count-on")?.textContent === String(n), N, { timeout: 30000 });
ok("the service worker controls the page");

// the server goes away
down = true;
const i0 = problems.length;
await ask("stop");
await page.waitForFunction(() => /reconnecting/.test(document.querySelector("#feed")?.textContent || ""), null, { timeout: 20000 });
ok("server stopped: the feed says it is reconnecting");
await page.reload();
await page.waitForSelector("#fleet tbody tr");
await page.waitForFunction(() => !document.querySelector("#offline").hidden, null, { timeout: 15000 });
const rows = await page.$$eval("#fleet tbody tr", (t) => t.length);
const banner = await page.textContent("#offline");
if (rows !== N) fail(`offline: ${rows} rows of the last known fleet, want ${N}`);
if (!/offline/i.test(banner)) fail("offline banner: " + banner);
ok(`offline: the reloaded app shows the last known fleet (${rows} terminals) and says "${banner}"`);
await shot(page, shots, "offline-phone");

// the server comes back on the same port
await ask("start");
down = false;
await page.waitForFunction(() => /live/.test(document.querySelector("#feed")?.textContent || ""), null, { timeout: 30000 });
await page.waitForFunction(() => document.querySelector("#offline").hidden, null, { timeout: 15000 });
await page.waitForFunction((n) => document.querySelector("#count-on")?.textContent === String(n), N, { timeout: 60000 });
ok(`server restarted: the feed is live again, the banner is gone, ${N} terminals online`);
// while it was down: refused connections (requests, the feed's WebSocket) are expected
const whileDown = problems.splice(i0, problems.length - i0);
const odd = whileDown.filter((p) => !/ERR_CONNECTION_REFUSED|ERR_FAILED|WebSocket connection .* failed|HTTP 503/.test(p));
if (odd.length) fail("while the server was down:\n  " + odd.join("\n  "));
ok(`while the server was down: ${whileDown.length} refused connections, nothing else`);

await ctx.close();
await browser.close();
if (problems.length) fail("console errors or failed requests:\n  " + problems.join("\n  "));
ok("no console error, no unexpected failed request");
process.exit(0);
