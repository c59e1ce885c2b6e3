// Browser test of the login and the fleet page (issue 9), Debian's chromium driven by
// playwright-core: a wrong and then the right password; every simulated terminal online in the
// fleet table (REST list + live feed), the values shown equal the API's and change live (no
// reload); sorting, filtering and search, kept in the URL; the Chinese switch; logout; desktop
// and phone; axe-core; no console error and no failed request; screenshots.
//   node tests/browser/fleet.mjs PORT USER PASSWORD N     (GS_SHOTS: screenshot folder)
import { launch, newPage, axeCheck, shot, apiGet, fail, ok, DESKTOP, PHONE } from "./lib.mjs";

const [port, user, password, nStr] = process.argv.slice(2);
const N = Number(nStr);
const base = `http://127.0.0.1:${port}`;
const shots = process.env.GS_SHOTS || ".";
const browser = await launch();
const problems = [];
let loggedOut = false; // after logout, the test's own request is expected to get 401
let wrongPw = false; // the deliberate wrong login's 401

async function run(viewport, tag) {
  const { ctx, page } = await newPage(browser, viewport, tag, problems,
    (status, url) => status === 401 && ((wrongPw && url.endsWith("/api/v1/session")) || loggedOut));
  await page.goto(base + "/");
  await page.waitForSelector("form.login");
  await page.fill("input[name=user]", user);
  await page.fill("input[name=password]", "not-the-password");
  wrongPw = true;
  await page.click("form.login button");
  await page.waitForFunction(() => document.querySelector(".error")?.textContent.length > 0);
  wrongPw = false;
  const err = await page.textContent(".error");
  if (!/wrong user name or password/i.test(err)) fail(`${tag}: wrong password message: ${err}`);
  ok(`${tag}: a wrong password says so, not which of the two`);
  await page.fill("input[name=password]", password);
  await page.click("form.login button");
  await page.waitForSelector("#fleet tbody tr td a");
  await page.waitForFunction((n) => document.querySelector("#count-on")?.textContent === String(n), N,
                             { timeout: 30000 });
  const states = await page.$$eval("#fleet tbody tr", (trs) => trs.map((tr) => tr.children[2].textContent));
  if (states.length !== N || states.some((s) => s !== "online")) fail(`${tag}: rows ${JSON.stringify(states)}`);
  ok(`${tag}: ${N} terminals online in the fleet table`);
  await page.waitForFunction(() => /live/.test(document.querySelector("#feed")?.textContent || ""));
  ok(`${tag}: the live feed is connected`);
  if (!/#\/fleet/.test(page.url()) && !page.url().endsWith("/")) fail(`${tag}: url ${page.url()}`);

  // what is shown is what the API says: the signal cell of every row against its status
  // (retried: a STATUS may arrive between the two reads)
  let same = false;
  for (let i = 0; i < 20 && !same; i++) {
    const api = await apiGet(page, "/api/v1/terminals");
    const shown = await page.$$eval("#fleet tbody tr", (trs) => Object.fromEntries(trs.map((tr) => [tr.children[0].textContent, tr.children[4].textContent])));
    same = api.body.terminals.every((x) => shown[x.id] === (x.status && x.status.rsrp_dbm != null ? `${x.status.rsrp_dbm} dBm` : x.status && x.status.csq != null ? `CSQ ${x.status.csq}` : "—"));
    if (!same) await page.waitForTimeout(500);
  }
  if (!same) fail(`${tag}: the signal shown differs from the API's`);
  ok(`${tag}: the signal of every terminal is the API's`);
  // and it changes live: the simulator sends a STATUS every second (test_browser.py); the table
  // is never reloaded (a marker on the table element survives)
  await page.evaluate(() => { document.querySelector("#fleet").dataset.marker = "1"; });
  const before = await page.$$eval("#fleet tbody tr", (trs) => trs.map((tr) => tr.children[4].textContent).join("|"));
  await page.waitForFunction((b) => [...document.querySelectorAll("#fleet tbody tr")].map((tr) => tr.children[4].textContent).join("|") !== b,
                             before, { timeout: 30000 });
  if (await page.$eval("#fleet", (t) => t.dataset.marker) !== "1") fail(`${tag}: the table was rebuilt`);
  ok(`${tag}: values change live, without reloading the table`);

  // sort by id descending (the header's button: the table is sorted by id, so one click turns
  // it around), then filter and search: kept in the URL
  await page.click("#fleet th:first-child button");
  await page.waitForFunction(() => /dir=desc/.test(location.hash));
  const ids = await page.$$eval("#fleet tbody tr", (trs) => trs.map((tr) => tr.children[0].textContent));
  if (ids.join() !== [...ids].sort().reverse().join()) fail(`${tag}: not sorted descending: ${ids}`);
  await page.selectOption("#filter", "offline");
  await page.waitForFunction(() => document.querySelector("#fleet tbody td.note"));
  await page.selectOption("#filter", "all");
  await page.fill("#search", ids[0]);
  await page.waitForFunction(() => document.querySelectorAll("#fleet tbody tr").length === 1);
  const url = page.url();
  if (!url.includes("q=" + ids[0])) fail(`${tag}: search not in the URL: ${url}`);
  await page.fill("#search", "");
  ok(`${tag}: sort, filter and search work and are kept in the URL`);

  // the map: one marker per terminal, coloured as online
  await page.waitForFunction((n) => document.querySelectorAll("#fleet-map path.map-marker").length === n, N, { timeout: 15000 });
  const mstates = new Set(await page.$$eval("#fleet-map path.map-marker", (ps) => ps.map((p) => p.dataset.state)));
  if (mstates.size !== 1 || !mstates.has("online")) fail(`${tag}: map marker states ${[...mstates]}`);
  ok(`${tag}: the map shows the ${N} terminals, online`);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  if (overflow > 0) fail(`${tag}: the page is ${overflow} px wider than the viewport`);
  ok(`${tag}: the page fits the viewport's width`);
  const who = await page.textContent("#who");
  if (!who.includes(user)) fail(`${tag}: current user not shown: ${who}`);
  await axeCheck(page, `${tag} fleet`);
  await shot(page, shots, `fleet-${tag}`);
  await page.selectOption("#lang", "zh");
  // the page is redrawn: its title first, then the table once the list has been fetched again
  await page.waitForFunction(() => document.querySelector("h1")?.textContent === "终端总览" &&
                             document.querySelectorAll("#fleet th").length > 0);
  const th = await page.$$eval("#fleet th", (ths) => ths.map((t) => t.textContent.replace(/ [▲▼]$/, "")));
  if (!th.includes("终端") || !th.includes("状态")) fail(`${tag}: Chinese headers: ${th}`);
  const live = await page.textContent("#feed");
  if (live !== "实时") fail(`${tag}: the feed state is not translated: ${live}`);
  ok(`${tag}: the language switch shows Chinese labels`);
  await shot(page, shots, `fleet-${tag}-zh`);
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
await run(DESKTOP, "desktop");
await run(PHONE, "phone");
await browser.close();
if (problems.length) fail("console errors or failed requests:\n  " + problems.join("\n  "));
ok("no console error, no failed request");
