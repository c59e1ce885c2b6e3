// Browser test of the web app's first slice (issue 9), with Debian's chromium driven by
// playwright-core (no browser download): log in with a wrong and then the right password, see
// every simulated terminal online in the fleet table (from the REST list and the live feed),
// switch to Chinese and back, log out; no console error and no failed request; screenshots
// (desktop and phone) into SHOTS.
//   node tests/browser/fleet.mjs PORT USER PASSWORD N SHOTS
import { chromium } from "playwright-core";

const [port, user, password, nStr, shots] = process.argv.slice(2);
const N = Number(nStr);
const base = `http://127.0.0.1:${port}`;
const fail = (msg) => { console.error("FAIL: " + msg); process.exit(1); };
const ok = (msg) => console.log("ok: " + msg);

const browser = await chromium.launch({
  executablePath: process.env.GS_CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-dev-shm-usage"],
});
const problems = [];
let loggedOut = false; // after logout, the test's own request is expected to get 401
async function run(viewport, tag) {
  const ctx = await browser.newContext({ viewport });
  const page = await ctx.newPage();
  // (Chromium also logs every 4xx answer as "Failed to load resource": the answers themselves
  // are checked below, where the expected 401s are told apart.)
  page.on("console", (m) => {
    if (m.type() === "error" && !m.text().startsWith("Failed to load resource"))
      problems.push(`${tag} console: ${m.text()}`);
  });
  page.on("pageerror", (e) => problems.push(`${tag} page error: ${e.message}`));
  page.on("requestfailed", (r) => problems.push(`${tag} request failed: ${r.url()} ${r.failure()?.errorText}`));
  page.on("response", (r) => {
    // the deliberate wrong login and the first "who am I" (not logged in yet) are expected
    if (r.status() >= 400 && !(r.status() === 401 && (r.url().endsWith("/api/v1/session") || loggedOut)))
      problems.push(`${tag} HTTP ${r.status()} ${r.url()}`);
  });
  await page.goto(base + "/");
  await page.waitForSelector("form.login");
  await page.fill("input[name=user]", user);
  await page.fill("input[name=password]", "not-the-password");
  await page.click("form.login button");
  await page.waitForFunction(() => document.querySelector(".error")?.textContent.length > 0);
  const err = await page.textContent(".error");
  if (!/wrong user name or password/i.test(err)) fail(`${tag}: wrong password message: ${err}`);
  ok(`${tag}: a wrong password says so, not which of the two`);
  await page.fill("input[name=password]", password);
  await page.click("form.login button");
  await page.waitForSelector("#fleet tbody tr");
  await page.waitForFunction((n) => document.querySelector("#count-on")?.textContent === String(n), N,
                             { timeout: 30000 });
  const rows = await page.$$eval("#fleet tbody tr", (trs) => trs.map((tr) => tr.children[2].textContent));
  if (rows.length !== N || rows.some((s) => s !== "online")) fail(`${tag}: rows ${JSON.stringify(rows)}`);
  ok(`${tag}: ${N} terminals online in the fleet table`);
  await page.waitForFunction(() => /live/.test(document.querySelector("#feed")?.textContent || ""));
  ok(`${tag}: the live feed is connected`);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  if (overflow > 0) fail(`${tag}: the page is ${overflow} px wider than the viewport`);
  ok(`${tag}: the page fits the viewport's width`);
  const who = await page.textContent("#who");
  if (!who.includes(user)) fail(`${tag}: current user not shown: ${who}`);
  await page.screenshot({ path: `${shots}/fleet-${tag}.png`, fullPage: true });
  await page.selectOption("#lang", "zh");
  // the page is redrawn: its title first, then the table once the list has been fetched again
  await page.waitForFunction(() => document.querySelector("h1")?.textContent === "终端总览" &&
                             document.querySelectorAll("#fleet th").length > 0);
  const th = await page.$$eval("#fleet th", (ths) => ths.map((t) => t.textContent.replace(/ [▲▼]$/, "")));
  if (!th.includes("终端") || !th.includes("状态")) fail(`${tag}: Chinese headers: ${th}`);
  const live = await page.textContent("#feed");
  if (live !== "实时") fail(`${tag}: the feed state is not translated: ${live}`);
  ok(`${tag}: the language switch shows Chinese labels`);
  await page.screenshot({ path: `${shots}/fleet-${tag}-zh.png`, fullPage: true });
  await page.selectOption("#lang", "en");
  await page.click("#logout");
  await page.waitForSelector("form.login");
  loggedOut = true;
  const r = await page.evaluate(async () => (await fetch("/api/v1/terminals")).status);
  if (r !== 401) fail(`${tag}: after logout the API answers ${r}`);
  loggedOut = false;
  ok(`${tag}: logout ends the session`);
  await ctx.close();
}
await run({ width: 1280, height: 800 }, "desktop");
await run({ width: 390, height: 844 }, "phone");
await browser.close();
if (problems.length) fail("console errors or failed requests:\n  " + problems.join("\n  "));
ok("no console error, no failed request");
