// Shared parts of the browser tests (issue 9): Debian's chromium through playwright-core (no
// browser download), pages that record console errors, page errors, failed requests and error
// answers, a login helper, the axe-core accessibility check and screenshots.
import { chromium } from "playwright-core";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import path from "node:path";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
export const DESKTOP = { width: 1280, height: 800 };
export const PHONE = { width: 390, height: 844 };

export const fail = (msg) => { console.error("FAIL: " + msg); process.exit(1); };
export const ok = (msg) => console.log("ok: " + msg);

export async function launch() {
  return chromium.launch({
    executablePath: process.env.GS_CHROMIUM || "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-dev-shm-usage"],
  });
}

/**
 * A new context and page whose problems (console errors, uncaught exceptions, failed requests,
 * answers >= 400) go into `problems` as "TAG ...". allow(status, url) -> true lets an expected
 * error answer through (e.g. the 401 of "who am I" before login, a 403 the test provokes).
 */
export async function newPage(browser, viewport, tag, problems, allow = () => false) {
  const ctx = await browser.newContext({ viewport, isMobile: viewport.width < 500, hasTouch: viewport.width < 500 });
  const page = await ctx.newPage();
  // Chromium also logs every 4xx answer as "Failed to load resource": answers are checked below.
  page.on("console", (m) => {
    if (m.type() === "error" && !m.text().startsWith("Failed to load resource"))
      problems.push(`${tag} console: ${m.text()}`);
  });
  page.on("pageerror", (e) => problems.push(`${tag} page error: ${e.message}`));
  page.on("requestfailed", (r) => {
    // a page left while its request was in flight is not a failure of the app
    if (r.failure()?.errorText !== "net::ERR_ABORTED") problems.push(`${tag} request failed: ${r.url()} ${r.failure()?.errorText}`);
  });
  page.on("response", (r) => {
    const first = r.status() === 401 && r.url().endsWith("/api/v1/session") && r.request().method() === "GET";
    if (r.status() >= 400 && !first && !allow(r.status(), r.url(), r.request().method()))
      problems.push(`${tag} HTTP ${r.status()} ${r.request().method()} ${r.url()}`);
  });
  return { ctx, page };
}

/** Opens base (optionally at a hash route) and logs in through the form. */
export async function login(page, base, user, password, hash = "") {
  await page.goto(base + "/" + hash);
  await page.waitForSelector("form.login");
  await page.fill("input[name=user]", user);
  await page.fill("input[name=password]", password);
  await page.click("form.login button");
  await page.waitForSelector("#logout:not([hidden])");
}

let axeSource = null;
/**
 * Runs axe-core (npm) on the page as it is now; fails on any serious or critical violation of
 * WCAG 2 A/AA rules. page.evaluate is not subject to the page's CSP, so the strict policy stays on.
 */
export async function axeCheck(page, tag) {
  if (!axeSource) axeSource = readFileSync(path.join(ROOT, "node_modules", "axe-core", "axe.min.js"), "utf8");
  await page.evaluate(axeSource);
  const res = await page.evaluate(async () => {
    const r = await window.axe.run(document, { runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"] } });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 3).map((n) => n.target.join(" ")) }));
  });
  const bad = res.filter((v) => v.impact === "serious" || v.impact === "critical");
  if (bad.length) fail(`${tag}: accessibility: ${JSON.stringify(bad, null, 1)}`);
  ok(`${tag}: axe-core finds no serious violation (${res.length} minor)`);
}

/** A full-page screenshot into the SHOTS folder (build/screenshots). */
export async function shot(page, dir, name) {
  await page.screenshot({ path: `${dir}/${name}.png`, fullPage: true });
}

/** The logged-in page's own API call (same cookie), for comparing what is shown with the API. */
export async function apiGet(page, p) {
  return page.evaluate(async (u) => { const r = await fetch(u); return { status: r.status, body: await r.json().catch(() => null) }; }, p);
}
