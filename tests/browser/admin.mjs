// Browser test of the admin pages (issue 9): an admin adds a terminal and reads its secret from
// the dialog it is shown in once (copy button, gone from the page once closed); the simulator
// logs in with that secret (the terminal turns online in the table, live); the admin renames the
// terminal, rotates its secret (the simulator's old secret is refused, a simulator with the new
// one comes online) and removes it through a keyboard-usable confirmation; adds a user (generated
// password, which logs in), changes its role, sets its password, is told why the last admin can
// be neither demoted nor removed, removes the user; creates an API token (it works), revokes it
// (it no longer works); reads the audit log with filters, paging and a time range, compared with
// the API. An operator sees no Admin link, #/admin says the page is for administrators and the
// API answers 403. Desktop (1280x800) and phone (390x844); axe-core on every tab; screenshots
// admin-TAB-desktop.png / admin-TAB-phone.png into GS_SHOTS; no console error or failed request.
//   node tests/browser/admin.mjs HTTP_PORT TERMINAL_PORT SIM TMPDIR ADMIN PASSWORD OPERATOR PASSWORD
// On success the last line is "PHONE-SECRETS {id, old, new}": a terminal the phone flow added and
// rotated, for the Python side to check with a raw GSTP login (old refused, new accepted).
import { spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { launch, newPage, login, axeCheck, shot, apiGet, fail, ok, DESKTOP, PHONE } from "./lib.mjs";

const [port, tport, simPath, tmp, admin, adminPw, operator, operatorPw] = process.argv.slice(2);
const base = `http://127.0.0.1:${port}`;
const SHOTS = process.env.GS_SHOTS || ".";
const problems = [];
const sims = new Set();
const T1 = "ADM-NEW1";
const PH = "ADM-PH1";

// ---- helpers ------------------------------------------------------------------------------------
async function waitFor(what, fn, timeout = 20000) {
  const end = Date.now() + timeout;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
/** The terminal simulator logging in as `id` with `secret` (until stopped). */
function startSim(id, secret, tag) {
  const f = `${tmp}/secrets-${tag}.txt`;
  writeFileSync(f, `${id} ${secret}\n`);
  const p = spawn(simPath, ["--server", `127.0.0.1:${tport}`, "--secrets", f, "--quiet", "--disturb", "0",
    "--backoff-min-ms", "200", "--backoff-max-ms", "1000", "--drain", "0"], { stdio: ["ignore", "ignore", "pipe"] });
  let err = "";
  p.stderr.on("data", (d) => { err = (err + d).slice(-4000); });
  p.log = () => err;
  sims.add(p);
  return p;
}
async function stopSim(p) {
  if (p.exitCode !== null) { sims.delete(p); return; }
  const done = new Promise((r) => p.once("exit", r));
  p.kill("SIGINT");
  await done;
  sims.delete(p);
}
process.on("exit", () => { for (const p of sims) try { p.kill("SIGKILL"); } catch { /* gone */ } });

const rowText = (page, table, key, sel) => page.$eval(`#${table} tr[data-${table === "adm-users" ? "name" : "id"}="${key}"] ${sel}`, (e) => e.textContent.trim());
async function noOverflow(page, tag) {
  const over = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  if (over > 0) fail(`${tag}: the page is ${over} px wider than the viewport`);
}
/** The open dialog's secret: read it, copy it, check the warning, close it, check it is gone. */
async function readOnce(page, tag, { pattern, name, copy = true }) {
  await page.waitForSelector("dialog.adm-once[open]");
  const d = await page.$("dialog.adm-once[open]");
  const value = (await d.$eval(".adm-secret", (e) => e.textContent)).trim();
  if (!pattern.test(value)) fail(`${tag}: ${name} shown as ${JSON.stringify(value)}`);
  const warn = await d.$eval(".warn", (e) => e.textContent);
  if (!/only this once/i.test(warn)) fail(`${tag}: no warning that the ${name} is shown once: ${warn}`);
  const focused = await page.evaluate(() => document.activeElement?.closest("dialog") !== null);
  if (!focused) fail(`${tag}: the focus is not in the ${name} dialog`);
  if (copy) {
    await d.$eval("button.primary", (b) => b.click());
    await page.waitForFunction(() => /Copied|selected/.test(document.querySelector("dialog.adm-once .adm-copied")?.textContent || ""));
    if (copy === "fallback") { // no clipboard API (plain http to a LAN address): the text is selected instead
      const sel = await page.evaluate(() => getSelection().toString());
      if (sel.trim() !== value) fail(`${tag}: without a clipboard API the selection is ${JSON.stringify(sel)}, not the ${name}`);
    } else {
      const clip = await page.evaluate(() => navigator.clipboard.readText());
      if (clip !== value) fail(`${tag}: the copy button put ${JSON.stringify(clip)} on the clipboard, not the ${name}`);
    }
  }
  return {
    value,
    async close(viaKeyboard = false) {
      if (viaKeyboard) await page.keyboard.press("Escape");
      else await page.click("dialog.adm-once button:not(.primary)");
      await page.waitForFunction(() => !document.querySelector("dialog"));
      const html = await page.evaluate(() => document.documentElement.outerHTML);
      if (html.includes(value)) fail(`${tag}: the ${name} is still in the page after the dialog closed`);
      const again = await page.evaluate(() => document.body.innerText);
      if (again.includes(value)) fail(`${tag}: the ${name} is still shown`);
    },
  };
}
/** Waits for the status line after a change and returns it. */
async function message(page, re, tag) {
  await page.waitForFunction((s) => new RegExp(s).test(document.querySelector("#adm-msg")?.textContent || ""), re.source, { timeout: 15000 })
    .catch(() => fail(`${tag}: no success message matching ${re}`));
  return page.textContent("#adm-msg");
}
async function tab(page, name, label) {
  await page.click(`nav.adm-tabs a:text-is("${label}")`);
  await page.waitForFunction((n) => location.hash.startsWith("#/admin/" + n) && document.querySelector(`.adm-${n} .adm-list`) && !document.querySelector(".adm-list .loading"), name);
  const cur = await page.$eval("nav.adm-tabs a[aria-current=page]", (a) => a.textContent);
  if (cur !== label) fail(`${name}: the current tab is ${cur}`);
}
const metricRejects = async (page) => {
  const txt = await page.evaluate(async () => (await fetch("/metrics")).text());
  const m = txt.match(/^gridsense_rejects_total\{reason="BAD_AUTH"\} (\d+)/m);
  return m ? Number(m[1]) : 0;
};
/** A request from outside the browser (its own credentials), with Node's fetch. */
async function outside(path, { method = "GET", json, token } = {}) {
  const headers = {};
  if (token) headers.Authorization = "Bearer " + token;
  if (json) headers["Content-Type"] = "application/json";
  const r = await fetch(base + path, { method, headers, body: json ? JSON.stringify(json) : undefined });
  return { status: r.status, body: await r.json().catch(() => null) };
}

// ---- the admin on a desktop: everything ----------------------------------------------------------
async function desktop(browser) {
  const tag = "desktop";
  // the errors this flow provokes on purpose (validation, the last admin)
  const allow = (st, url, method) =>
    (st === 400 && method === "POST" && /\/api\/v1\/(terminals|users)$/.test(url)) ||
    (st === 409 && url.endsWith(`/api/v1/users/${admin}`)) ||
    // the test's own reads after a removal
    (st === 404 && method === "GET" && (url.endsWith(`/api/v1/terminals/${T1}`) || url.endsWith("/api/v1/users/carl")));
  const { ctx, page } = await newPage(browser, DESKTOP, tag, problems, allow);
  await ctx.grantPermissions(["clipboard-read", "clipboard-write"], { origin: base });
  await login(page, base, admin, adminPw, "#/admin");

  // -- terminals: the list is the API's
  await page.waitForSelector("#adm-terminals tbody tr");
  const curTab = await page.$eval("nav.adm-tabs a[aria-current=page]", (a) => a.getAttribute("href"));
  if (curTab !== "#/admin/terminals") fail(`${tag}: #/admin opens ${curTab}`);
  const navAdmin = await page.$eval("#nav a[aria-current=page]", (a) => a.textContent);
  if (navAdmin !== "Admin") fail(`${tag}: the nav marks ${navAdmin}`);
  const api0 = (await apiGet(page, "/api/v1/terminals")).body.terminals;
  const shown0 = await page.$$eval("#adm-terminals tbody tr", (trs) => trs.map((tr) => tr.dataset.id));
  if (JSON.stringify(shown0) !== JSON.stringify(api0.map((x) => x.id))) fail(`${tag}: terminals shown ${shown0} vs API ${api0.map((x) => x.id)}`);
  ok(`${tag}: the terminals tab lists the API's ${api0.length} terminals`);
  await axeCheck(page, `${tag} terminals`);
  await shot(page, SHOTS, "admin-terminals-desktop");

  // -- add: a bad id is refused by the API, its message shown in the form; then a good one
  await page.click("#adm-term-add");
  await page.waitForSelector("dialog.adm-dialog[open] input[name=id]");
  if (await page.evaluate(() => document.activeElement?.name) !== "id") fail(`${tag}: the add form does not focus the id`);
  await page.fill("dialog input[name=id]", "bad id!");
  await page.click("dialog button[type=submit]");
  await page.waitForSelector("dialog .adm-err .error.box");
  const e1 = await page.textContent("dialog .adm-err");
  if (!/id: 1\.\.32/.test(e1) || !/400/.test(e1)) fail(`${tag}: the API's validation message is not shown: ${e1}`);
  ok(`${tag}: the API's validation error is shown in the add form: ${e1}`);
  await page.fill("dialog input[name=lat]", "47.5");
  await page.fill("dialog input[name=id]", T1);
  await page.click("dialog button[type=submit]");
  const e2 = await page.waitForFunction(() => /latitude and longitude/.test(document.querySelector("dialog .adm-err")?.textContent || "")).catch(() => null);
  if (!e2) fail(`${tag}: a latitude without longitude is not pointed out`);
  await page.fill("dialog input[name=name]", "Feeder 7");
  await page.fill("dialog input[name=lon]", "8.25");
  await page.selectOption("dialog select[name=nominal_hz]", "50");
  await page.fill("dialog input[name=vt_ratio]", "100");
  await page.fill("dialog input[name=ct_ratio]", "200");
  await page.fill("dialog input[name=declared_voltage]", "57.735");
  await page.click("dialog button[type=submit]");
  const s1 = await readOnce(page, tag, { pattern: /^[0-9a-f]{64}$/, name: "secret" });
  await axeCheck(page, `${tag} secret dialog`);
  await shot(page, SHOTS, "admin-secret-desktop");
  await s1.close();
  ok(`${tag}: the new secret was shown once (64 hex digits, copied to the clipboard) and is gone after closing`);
  await message(page, new RegExp(`Terminal ${T1} added`), tag);
  const t1 = (await apiGet(page, `/api/v1/terminals/${T1}`)).body;
  if (t1.name !== "Feeder 7" || t1.location?.lat !== 47.5 || t1.location?.lon !== 8.25 || t1.nominal_hz !== 50 ||
      t1.vt_ratio !== 100 || t1.ct_ratio !== 200 || t1.declared_voltage !== 57.735)
    fail(`${tag}: the API has ${JSON.stringify(t1)}`);
  await page.waitForSelector(`#adm-terminals tr[data-id="${T1}"]`);
  const shownRow = await page.$eval(`#adm-terminals tr[data-id="${T1}"]`, (tr) => [...tr.children].map((c) => c.textContent.trim()));
  if (shownRow[1] !== "Feeder 7" || shownRow[2] !== "offline" || shownRow[3] !== "47.50000°, 8.25000°" || shownRow[4] !== "50 Hz" ||
      shownRow[5] !== "100" || shownRow[6] !== "200" || shownRow[7] !== "57.735 V")
    fail(`${tag}: the new row shows ${JSON.stringify(shownRow)}`);
  ok(`${tag}: the API stored the form's values and the table shows them (${shownRow.slice(0, 8).join(" | ")})`);

  // -- the secret works on the real terminal link: the simulator logs in, the table turns online live
  let sim = startSim(T1, s1.value, "first");
  await page.waitForFunction((id) => document.querySelector(`#adm-terminals tr[data-id="${id}"] .adm-state`)?.textContent === "online", T1, { timeout: 30000 })
    .catch(() => fail(`${tag}: ${T1} did not come online with the shown secret; sim: ${sim.log()}`));
  if (!(await apiGet(page, `/api/v1/terminals/${T1}`)).body.online) fail(`${tag}: the API says ${T1} is offline`);
  ok(`${tag}: the simulator logged in with the secret from the dialog; the row turned online from the feed`);

  // -- edit: the name
  await page.click(`#adm-terminals tr[data-id="${T1}"] .adm-edit`);
  await page.waitForSelector("dialog.adm-dialog[open] input[name=name]");
  const v = await page.inputValue("dialog input[name=name]");
  const vt = await page.inputValue("dialog input[name=vt_ratio]");
  if (v !== "Feeder 7" || vt !== "100") fail(`${tag}: the edit form starts from ${v} / ${vt}`);
  await page.fill("dialog input[name=name]", "Feeder 7 south");
  await page.click("dialog button[type=submit]");
  await page.waitForFunction(() => !document.querySelector("dialog"));
  await message(page, new RegExp(`Terminal ${T1} saved`), tag);
  const t1b = (await apiGet(page, `/api/v1/terminals/${T1}`)).body;
  if (t1b.name !== "Feeder 7 south" || t1b.vt_ratio !== 100) fail(`${tag}: after the edit the API has ${t1b.name} / ${t1b.vt_ratio}`);
  await page.waitForFunction((id) => document.querySelector(`#adm-terminals tr[data-id="${id}"] .adm-name`)?.textContent === "Feeder 7 south", T1);
  ok(`${tag}: the new name is what the API answers and the table shows`);

  // -- rotate: confirm (the focus on Cancel), a new secret once; the old one is refused, the new one logs in
  const rejects0 = await metricRejects(page);
  await page.click(`#adm-terminals tr[data-id="${T1}"] .adm-rotate`);
  await page.waitForSelector("dialog.adm-dialog[open]");
  const rt = await page.textContent("dialog.adm-dialog[open]");
  if (!rt.includes(T1) || !rt.includes("Feeder 7 south")) fail(`${tag}: the rotate confirmation does not name the terminal: ${rt}`);
  if (await page.evaluate(() => document.activeElement?.textContent) !== "Cancel") fail(`${tag}: the confirmation does not focus Cancel`);
  await page.click("dialog button[type=submit]");
  const s2 = await readOnce(page, tag, { pattern: /^[0-9a-f]{64}$/, name: "rotated secret", copy: false });
  if (s2.value === s1.value) fail(`${tag}: the rotated secret is the old one`);
  await s2.close(true);
  ok(`${tag}: the rotated secret was shown once and is gone after Escape`);
  await page.waitForFunction((id) => document.querySelector(`#adm-terminals tr[data-id="${id}"] .adm-state`)?.textContent === "offline", T1, { timeout: 15000 })
    .catch(() => fail(`${tag}: the session with the old secret did not end`));
  await waitFor("the old secret to be refused again", async () => (await metricRejects(page)) >= rejects0 + 2, 20000);
  const sess = (await apiGet(page, `/api/v1/terminals/${T1}/sessions`)).body.sessions;
  if (sess[0]?.reason !== "credentials changed") fail(`${tag}: the old session ended with ${sess[0]?.reason}`);
  if ((await apiGet(page, `/api/v1/terminals/${T1}`)).body.online) fail(`${tag}: still online with the old secret`);
  await stopSim(sim);
  ok(`${tag}: after the rotation the old secret's session ended ("credentials changed") and its new logins are refused (BAD_AUTH ${rejects0} -> ${await metricRejects(page)})`);
  sim = startSim(T1, s2.value, "second");
  await page.waitForFunction((id) => document.querySelector(`#adm-terminals tr[data-id="${id}"] .adm-state`)?.textContent === "online", T1, { timeout: 30000 })
    .catch(() => fail(`${tag}: ${T1} did not come online with the rotated secret; sim: ${sim.log()}`));
  ok(`${tag}: the simulator with the rotated secret is online`);

  // -- remove: Escape cancels; then Tab to the remove button and Enter
  await page.click(`#adm-terminals tr[data-id="${T1}"] .adm-remove`);
  await page.waitForSelector("dialog.adm-dialog[open]");
  const dt = await page.textContent("dialog.adm-dialog[open]");
  if (!dt.includes(`Remove terminal ${T1}?`) || !dt.includes("Feeder 7 south")) fail(`${tag}: the confirmation does not name the terminal: ${dt}`);
  await page.keyboard.press("Escape");
  await page.waitForFunction(() => !document.querySelector("dialog"));
  if ((await apiGet(page, `/api/v1/terminals/${T1}`)).status !== 200) fail(`${tag}: Escape removed the terminal`);
  await page.focus(`#adm-terminals tr[data-id="${T1}"] .adm-remove`);
  await page.keyboard.press("Enter");
  await page.waitForSelector("dialog.adm-dialog[open]");
  await page.keyboard.press("Tab");
  if (await page.evaluate(() => document.activeElement?.textContent) !== "Remove for good") fail(`${tag}: Tab does not reach the remove button`);
  await page.keyboard.press("Enter");
  await page.waitForFunction((id) => !document.querySelector("dialog") && !document.querySelector(`#adm-terminals tr[data-id="${id}"]`), T1);
  await message(page, new RegExp(`Terminal ${T1} removed`), tag);
  if ((await apiGet(page, `/api/v1/terminals/${T1}`)).status !== 404) fail(`${tag}: the API still has ${T1}`);
  await stopSim(sim);
  ok(`${tag}: removal asks first (naming the terminal), Escape cancels, the keyboard confirms; the API no longer has it`);

  // -- the language switch redraws the page in Chinese
  await page.selectOption("#lang", "zh");
  await page.waitForFunction(() => document.querySelector("h1")?.textContent === "系统管理" &&
    document.querySelector("nav.adm-tabs a[aria-current=page]")?.textContent === "终端" && document.querySelector("#adm-terminals"));
  const th = await page.$$eval("#adm-terminals th[scope=col]", (x) => x.map((e) => e.textContent));
  if (!th.includes("状态") || !th.includes("操作")) fail(`${tag}: Chinese headers ${th}`);
  await shot(page, SHOTS, "admin-terminals-desktop-zh");
  await page.selectOption("#lang", "en");
  await page.waitForFunction(() => document.querySelector("h1")?.textContent === "Administration");
  ok(`${tag}: the admin page switches to Chinese and back`);

  // -- users
  await tab(page, "users", "Users");
  const u0 = (await apiGet(page, "/api/v1/users")).body.users;
  const us0 = await page.$$eval("#adm-users tbody tr", (trs) => trs.map((tr) => [tr.dataset.name, tr.querySelector(".adm-role").textContent]));
  if (JSON.stringify(us0) !== JSON.stringify(u0.map((u) => [u.name, u.role]))) fail(`${tag}: users ${JSON.stringify(us0)} vs API`);
  ok(`${tag}: the users tab lists the API's users and roles (${us0.map((x) => x.join(":")).join(", ")})`);
  await axeCheck(page, `${tag} users`);
  await page.fill("#adm-user-form input[name=name]", "carl");
  await page.fill("#adm-user-form input[name=password]", "short");
  await page.click("#adm-user-form button[type=submit]");
  await page.waitForSelector("#adm-user-form .adm-err .error.box");
  const e3 = await page.textContent("#adm-user-form .adm-err");
  if (!/10 to 1024 characters/.test(e3)) fail(`${tag}: the weak password message: ${e3}`);
  ok(`${tag}: the API's weak_password message is shown beside the form`);
  await page.fill("#adm-user-form input[name=password]", "");
  await page.selectOption("#adm-user-form select[name=role]", "viewer");
  await page.click("#adm-user-form button[type=submit]");
  const pw = await readOnce(page, tag, { pattern: /^\S{20}$/, name: "generated password" });
  await pw.close();
  await message(page, /User carl added as viewer/, tag);
  let r = await outside("/api/v1/session", { method: "POST", json: { user: "carl", password: pw.value } });
  if (r.status !== 200 || r.body.role !== "viewer") fail(`${tag}: the generated password does not log in: ${r.status}`);
  ok(`${tag}: the generated password was shown once and logs carl in as viewer`);
  await page.waitForSelector('#adm-users tr[data-name="carl"]');
  await page.click('#adm-users tr[data-name="carl"] .adm-role-btn');
  await page.waitForSelector("dialog.adm-dialog[open] select");
  await page.selectOption("dialog select", "operator");
  await page.click("dialog button[type=submit]");
  await message(page, /carl is now operator/, tag);
  if ((await apiGet(page, "/api/v1/users/carl")).body.role !== "operator") fail(`${tag}: the API has not got the new role`);
  if (await rowText(page, "adm-users", "carl", ".adm-role") !== "operator") fail(`${tag}: the table shows the old role`);
  ok(`${tag}: carl's role changed to operator (API and table)`);
  await page.click('#adm-users tr[data-name="carl"] .adm-pw-btn');
  await page.waitForSelector("dialog.adm-dialog[open] input[type=password]");
  const pws = await page.$$("dialog input[type=password]");
  await pws[0].fill("carl-new-password-1");
  await pws[1].fill("carl-new-password-2");
  await page.click("dialog button[type=submit]");
  await page.waitForFunction(() => /differ/.test(document.querySelector("dialog .adm-err")?.textContent || ""));
  await pws[1].fill("carl-new-password-1");
  await page.click("dialog button[type=submit]");
  await message(page, /password of carl was changed/, tag);
  r = await outside("/api/v1/session", { method: "POST", json: { user: "carl", password: "carl-new-password-1" } });
  if (r.status !== 200) fail(`${tag}: the new password does not log in (${r.status})`);
  ok(`${tag}: set password (mismatch caught in the form; the new one logs in)`);
  // the last admin: the API refuses, its message is shown in the dialog
  await page.click(`#adm-users tr[data-name="${admin}"] .adm-role-btn`);
  await page.waitForSelector("dialog.adm-dialog[open] select");
  await page.selectOption("dialog select", "viewer");
  await page.click("dialog button[type=submit]");
  await page.waitForSelector("dialog .adm-err .error.box");
  const e4 = await page.textContent("dialog .adm-err");
  if (!/without an admin/.test(e4) || !/409/.test(e4)) fail(`${tag}: the last-admin message: ${e4}`);
  await shot(page, SHOTS, "admin-last-admin-desktop");
  await page.click("dialog .adm-buttons button[type=button]");
  await page.click(`#adm-users tr[data-name="${admin}"] .adm-remove`);
  await page.click("dialog button[type=submit]");
  await page.waitForSelector("dialog .adm-err .error.box");
  const e5 = await page.textContent("dialog .adm-err");
  if (!/409/.test(e5)) fail(`${tag}: removing the last admin: ${e5}`);
  await page.keyboard.press("Escape");
  if ((await apiGet(page, `/api/v1/users/${admin}`)).body.role !== "admin") fail(`${tag}: the last admin was changed`);
  ok(`${tag}: demoting or removing the last admin shows the API's refusal: ${e4.trim()}`);
  await page.click('#adm-users tr[data-name="carl"] .adm-remove');
  await page.waitForSelector("dialog.adm-dialog[open]");
  if (!(await page.textContent("dialog.adm-dialog[open]")).includes("Remove user carl?")) fail(`${tag}: the user removal does not name carl`);
  await page.click("dialog button[type=submit]");
  await message(page, /User carl removed/, tag);
  if ((await apiGet(page, "/api/v1/users/carl")).status !== 404) fail(`${tag}: carl is still there`);
  if (await page.$('#adm-users tr[data-name="carl"]')) fail(`${tag}: carl is still listed`);
  ok(`${tag}: carl removed (API 404, gone from the table)`);
  await shot(page, SHOTS, "admin-users-desktop");

  // -- API tokens
  await tab(page, "tokens", "API tokens");
  const k0 = (await apiGet(page, "/api/v1/tokens")).body.tokens;
  const ks0 = await page.$$eval("#adm-tokens tbody tr", (trs) => trs.map((tr) => tr.dataset.id));
  if (JSON.stringify(ks0) !== JSON.stringify(k0.map((k) => k.id))) fail(`${tag}: tokens ${ks0} vs API ${k0.map((k) => k.id)}`);
  await axeCheck(page, `${tag} tokens`);
  await page.selectOption("#adm-token-form select[name=user]", operator);
  await page.fill("#adm-token-form input[name=name]", "nightly export");
  await page.fill("#adm-token-form input[name=expires_days]", "30");
  await page.click("#adm-token-form button[type=submit]");
  const tok = await readOnce(page, tag, { pattern: /^gst_[0-9a-f]{16}_\S+$/, name: "token" });
  await tok.close();
  const tokId = tok.value.split("_")[1];
  await message(page, new RegExp(`Token ${tokId} created for ${operator}`), tag);
  r = await outside("/api/v1/session", { token: tok.value });
  if (r.status !== 200 || r.body.user !== operator || r.body.via !== "token") fail(`${tag}: the new token: ${r.status} ${JSON.stringify(r.body)}`);
  const k1 = (await apiGet(page, "/api/v1/tokens")).body.tokens.find((k) => k.id === tokId);
  const days = (Date.parse(k1.expires) - Date.parse(k1.created)) / 86400e3;
  if (k1.name !== "nightly export" || Math.abs(days - 30) > 0.01) fail(`${tag}: the token as stored: ${JSON.stringify(k1)}`);
  await page.waitForSelector(`#adm-tokens tr[data-id="${tokId}"]`);
  const expShown = await page.$eval(`#adm-tokens tr[data-id="${tokId}"] td:nth-child(5) time`, (e) => e.dateTime);
  if (Date.parse(expShown) !== Date.parse(k1.expires)) fail(`${tag}: the token row's expiry ${expShown} vs ${k1.expires}`);
  ok(`${tag}: a token for ${operator} shown once, it authenticates as ${operator}; stored label and 30-day expiry`);
  await shot(page, SHOTS, "admin-tokens-desktop");
  await page.click(`#adm-tokens tr[data-id="${tokId}"] .adm-revoke`);
  await page.waitForSelector("dialog.adm-dialog[open]");
  const rv = await page.textContent("dialog.adm-dialog[open]");
  if (!rv.includes(tokId) || !rv.includes("nightly export")) fail(`${tag}: the revoke confirmation: ${rv}`);
  await page.click("dialog button[type=submit]");
  await message(page, new RegExp(`Token ${tokId} revoked`), tag);
  await page.waitForFunction((id) => /revoked/.test(document.querySelector(`#adm-tokens tr[data-id="${id}"] .adm-token-state`)?.textContent || ""), tokId);
  if (await page.$(`#adm-tokens tr[data-id="${tokId}"] .adm-revoke`)) fail(`${tag}: a revoked token still offers Revoke`);
  r = await outside("/api/v1/session", { token: tok.value });
  if (r.status !== 401) fail(`${tag}: the revoked token still works (${r.status})`);
  ok(`${tag}: the token revoked (marked in the table; the API refuses it: 401)`);
  await page.selectOption("#adm-token-filter", operator);
  await page.waitForFunction((u) => location.hash === `#/admin/tokens?user=${u}` && document.querySelector("#adm-tokens"), operator);
  const owners = await page.$$eval("#adm-tokens tbody tr td:nth-child(2)", (x) => x.map((e) => e.textContent));
  if (!owners.length || owners.some((o) => o !== operator)) fail(`${tag}: the user filter shows ${owners}`);
  ok(`${tag}: the user filter (in the URL) shows only ${operator}'s tokens`);

  // -- audit log
  await tab(page, "audit", "Audit log");
  const a0 = (await apiGet(page, "/api/v1/audit")).body.audit;
  const as0 = await page.$$eval("#adm-audit tbody tr", (trs) => trs.map((tr) => [Number(tr.dataset.id), tr.querySelector("time").dateTime, tr.querySelector(".adm-a-action").textContent]));
  if (JSON.stringify(as0) !== JSON.stringify(a0.map((a) => [a.id, a.time, a.action]))) fail(`${tag}: audit rows differ from the API's`);
  const want = [["terminal.add", `terminal ${T1}`], ["terminal.change", `terminal ${T1}`], ["terminal.secret", `terminal ${T1}`],
    ["terminal.remove", `terminal ${T1}`], ["user.add", "user carl"], ["user.role", "user carl"], ["user.passwd", "user carl"],
    ["user.remove", "user carl"], ["token.create", `token ${tokId}`], ["token.revoke", `token ${tokId}`]];
  const rows = await page.$$eval("#adm-audit tbody tr", (trs) => trs.map((tr) => [tr.querySelector(".adm-a-action").textContent, tr.querySelector(".adm-a-target").textContent, tr.querySelector(".adm-a-user").textContent, tr.querySelector(".adm-a-outcome").textContent]));
  for (const [a, target] of want)
    if (!rows.some((x) => x[0] === a && x[1] === target && x[2] === admin && x[3] === "ok")) fail(`${tag}: the audit log lacks ${a} ${target} by ${admin}`);
  if (!rows.some((x) => x[0] === "user.role" && x[1] === `user ${admin}` && x[3] === "failed")) fail(`${tag}: the refused demotion is not in the audit log`);
  ok(`${tag}: the audit log (= the API's newest ${a0.length}) lists every change made above, by ${admin}, and the refused one`);
  await axeCheck(page, `${tag} audit`);
  await shot(page, SHOTS, "admin-audit-desktop");
  // filter: a group of actions
  await page.fill("#adm-audit-form input[name=action]", "terminal.");
  await page.click("#adm-audit-form button[type=submit]");
  await page.waitForFunction(() => location.hash === "#/admin/audit?action=terminal." && document.querySelector("#adm-audit"));
  const fa = await page.$$eval("#adm-audit tbody tr", (trs) => trs.map((tr) => Number(tr.dataset.id)));
  const fapi = (await apiGet(page, "/api/v1/audit?action=terminal.")).body.audit.map((a) => a.id);
  const facts = await page.$$eval("#adm-audit .adm-a-action", (x) => x.map((e) => e.textContent));
  if (JSON.stringify(fa) !== JSON.stringify(fapi) || facts.some((a) => !a.startsWith("terminal."))) fail(`${tag}: action filter rows ${facts}`);
  if (await page.inputValue("#adm-audit-form input[name=action]") !== "terminal.") fail(`${tag}: the filter form lost its value`);
  ok(`${tag}: the action filter terminal. shows the API's ${fa.length} terminal.* entries`);
  // filter: user + paging with next_before (5 a page, via the URL a link could carry)
  await page.goto(`${base}/#/admin/audit?user=${admin}&limit=5`);
  await page.waitForSelector("#adm-audit tbody tr");
  const p1 = (await apiGet(page, `/api/v1/audit?user=${admin}&limit=5`)).body;
  const ids1 = await page.$$eval("#adm-audit tbody tr", (trs) => trs.map((tr) => Number(tr.dataset.id)));
  if (JSON.stringify(ids1) !== JSON.stringify(p1.audit.map((a) => a.id)) || !p1.next_before) fail(`${tag}: page 1 ${ids1} vs ${p1.audit.map((a) => a.id)}`);
  const users1 = await page.$$eval("#adm-audit .adm-a-user", (x) => x.map((e) => e.textContent));
  if (users1.some((u) => u !== admin)) fail(`${tag}: user filter shows ${users1}`);
  await page.click("#adm-audit-list a.adm-older");
  await page.waitForFunction((b) => location.hash.includes(`before=${b}`) && document.querySelector("#adm-audit"), p1.next_before);
  const p2 = (await apiGet(page, `/api/v1/audit?user=${admin}&limit=5&before=${p1.next_before}`)).body;
  const ids2 = await page.$$eval("#adm-audit tbody tr", (trs) => trs.map((tr) => Number(tr.dataset.id)));
  if (JSON.stringify(ids2) !== JSON.stringify(p2.audit.map((a) => a.id))) fail(`${tag}: page 2 ${ids2} vs ${p2.audit.map((a) => a.id)}`);
  if (Math.max(...ids2) >= Math.min(...ids1)) fail(`${tag}: page 2 is not older than page 1`);
  if (await page.evaluate(() => document.activeElement?.id) !== "adm-audit-list") fail(`${tag}: the results do not get the focus after paging`);
  await page.click("#adm-audit-list a.adm-newer");
  await page.waitForFunction(() => !location.hash.includes("before=") && document.querySelector("#adm-audit"));
  const ids1b = await page.$$eval("#adm-audit tbody tr", (trs) => trs.map((tr) => Number(tr.dataset.id)));
  if (JSON.stringify(ids1b) !== JSON.stringify(ids1)) fail(`${tag}: Newer does not come back to page 1`);
  ok(`${tag}: paging by next_before (5 a page): Older shows the API's next page, Newer comes back`);
  // time range: from a minute ago (local time in the form) -> only entries since; from 2099 -> the empty state
  // (minutes: Chromium writes a datetime-local value with 00 seconds without them)
  const local = (ms) => { const d = new Date(ms); const p = (n) => String(n).padStart(2, "0"); return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`; };
  await page.goto(`${base}/#/admin/audit`);
  await page.waitForSelector("#adm-audit tbody tr");
  const since = Math.floor((Date.now() - 60000) / 60000) * 60000;
  await page.fill("#adm-audit-form input[name=from]", local(since));
  await page.click("#adm-audit-form button[type=submit]");
  await page.waitForFunction(() => location.hash.includes("from=") && document.querySelector("#adm-audit"));
  const fromQ = new URLSearchParams((await page.evaluate(() => location.hash)).split("?")[1]).get("from");
  if (Date.parse(fromQ) !== since) fail(`${tag}: the local time became ${fromQ}, not ${new Date(since).toISOString()}`);
  const times = await page.$$eval("#adm-audit tbody time", (x) => x.map((e) => Date.parse(e.dateTime)));
  const tapi = (await apiGet(page, `/api/v1/audit?from=${fromQ}`)).body.audit;
  if (times.length !== tapi.length || times.some((x) => x < since)) fail(`${tag}: the time range shows ${times.length} entries (API ${tapi.length})`);
  await page.fill("#adm-audit-form input[name=from]", "2099-01-01T00:00");
  await page.click("#adm-audit-form button[type=submit]");
  await page.waitForFunction(() => /No entry matches/.test(document.querySelector("#adm-audit-list")?.textContent || ""));
  ok(`${tag}: the time range (typed in local time, sent as UTC ${fromQ}) shows the API's ${times.length} entries; a future range shows the empty state`);
  await noOverflow(page, tag);
  await ctx.close();
}

// ---- the admin on a phone: each tab fits; add, rotate; user and token once more ------------------
async function phone(browser) {
  const tag = "phone";
  const { ctx, page } = await newPage(browser, PHONE, tag, problems);
  // as over plain http to a LAN address (no secure context): no navigator.clipboard
  await ctx.addInitScript(() => Object.defineProperty(Navigator.prototype, "clipboard", { get: () => undefined, configurable: true }));
  await login(page, base, admin, adminPw, "#/admin/terminals");
  await page.waitForSelector("#adm-terminals tbody tr");
  await noOverflow(page, `${tag} terminals`);
  await axeCheck(page, `${tag} terminals`);
  await page.click("#adm-term-add");
  await page.waitForSelector("dialog.adm-dialog[open] input[name=id]");
  const box = await page.$eval("dialog.adm-dialog[open]", (d) => { const r = d.getBoundingClientRect(); return [r.left, r.right]; });
  if (box[0] < 0 || box[1] > PHONE.width) fail(`${tag}: the add dialog spans ${box} px`);
  await shot(page, SHOTS, "admin-add-phone");
  await page.fill("dialog input[name=id]", PH);
  await page.fill("dialog input[name=name]", "phone test");
  await page.click("dialog button[type=submit]");
  const s1 = await readOnce(page, tag, { pattern: /^[0-9a-f]{64}$/, name: "secret", copy: "fallback" });
  const sb = await page.$eval("dialog.adm-once .adm-secret", (e) => { const r = e.getBoundingClientRect(); return [r.left, r.right]; });
  if (sb[0] < 0 || sb[1] > PHONE.width) fail(`${tag}: the secret spans ${sb} px`);
  await shot(page, SHOTS, "admin-secret-phone");
  await s1.close();
  await page.waitForSelector(`#adm-terminals tr[data-id="${PH}"]`);
  await page.click(`#adm-terminals tr[data-id="${PH}"] .adm-rotate`);
  await page.click("dialog button[type=submit]");
  const s2 = await readOnce(page, tag, { pattern: /^[0-9a-f]{64}$/, name: "rotated secret", copy: false });
  await s2.close();
  if (s2.value === s1.value) fail(`${tag}: the rotated secret is the old one`);
  await noOverflow(page, `${tag} terminals`);
  await shot(page, SHOTS, "admin-terminals-phone");
  ok(`${tag}: terminals tab fits 390 px; add and rotate show the secret once in a dialog within the screen; without a clipboard API, Copy selects the secret`);

  await tab(page, "users", "Users");
  await page.fill("#adm-user-form input[name=name]", "dora");
  await page.fill("#adm-user-form input[name=password]", "dora-password-1");
  await page.click("#adm-user-form button[type=submit]");
  await message(page, /User dora added as viewer/, tag);
  if (await page.$("dialog")) fail(`${tag}: a dialog for a password the admin typed`);
  await page.waitForSelector('#adm-users tr[data-name="dora"]');
  await noOverflow(page, `${tag} users`);
  await axeCheck(page, `${tag} users`);
  await shot(page, SHOTS, "admin-users-phone");
  await page.click('#adm-users tr[data-name="dora"] .adm-remove');
  await page.click("dialog button[type=submit]");
  await message(page, /User dora removed/, tag);
  ok(`${tag}: users tab: add (with a typed password: no dialog) and remove`);

  await tab(page, "tokens", "API tokens");
  await page.fill("#adm-token-form input[name=expires_days]", "1.5");
  await page.click("#adm-token-form button[type=submit]");
  await page.waitForFunction(() => /whole number of days/.test(document.querySelector("#adm-token-form .adm-err")?.textContent || ""));
  await page.fill("#adm-token-form input[name=expires_days]", "");
  await page.click("#adm-token-form button[type=submit]");
  const tok = await readOnce(page, tag, { pattern: /^gst_[0-9a-f]{16}_\S+$/, name: "token", copy: "fallback" });
  await tok.close();
  const id = tok.value.split("_")[1];
  await page.waitForSelector(`#adm-tokens tr[data-id="${id}"]`);
  const exp = await page.$eval(`#adm-tokens tr[data-id="${id}"] td:nth-child(5)`, (e) => e.textContent);
  if (exp !== "never") fail(`${tag}: a token without expiry shows ${exp}`);
  await noOverflow(page, `${tag} tokens`);
  await axeCheck(page, `${tag} tokens`);
  await shot(page, SHOTS, "admin-tokens-phone");
  ok(`${tag}: tokens tab: a fractional expiry is refused in the form; a token without expiry shows "never"`);

  await tab(page, "audit", "Audit log");
  await page.waitForSelector("#adm-audit tbody tr");
  const top = await page.$eval("#adm-audit tbody tr", (tr) => tr.querySelector(".adm-a-action").textContent);
  if (top !== "token.create") fail(`${tag}: the newest audit entry is ${top}`);
  await noOverflow(page, `${tag} audit`);
  await axeCheck(page, `${tag} audit`);
  await shot(page, SHOTS, "admin-audit-phone");
  ok(`${tag}: audit tab fits the phone; its newest entry is the token just made`);
  await ctx.close();
  return { id: PH, old: s1.value, new: s2.value };
}

// ---- an operator: no Admin link, the page says it is for administrators, the API says 403 --------
async function operatorView(browser) {
  const tag = "operator";
  const allow = (st) => st === 403;
  const { ctx, page } = await newPage(browser, DESKTOP, tag, problems, allow);
  // (straight to the admin URL, as from a shared link; leaving the fleet page within half a
  // second of its drawing can hit a timer page-fleet.js does not clear: reported to its owner)
  await login(page, base, operator, operatorPw, "#/admin/users");
  await page.waitForSelector("#nav a");
  const links = await page.$$eval("#nav a", (x) => x.map((a) => a.getAttribute("href")));
  if (links.some((h) => h.startsWith("#/admin"))) fail(`${tag}: the nav shows ${links}`);
  await page.waitForFunction(() => document.querySelector("h1")?.textContent === "This page is for administrators.");
  if (await page.$(".adm-tab, #adm-users")) fail(`${tag}: admin content shown`);
  await page.evaluate(() => { location.hash = "#/admin"; });
  await page.waitForFunction(() => location.hash === "#/admin" && document.querySelector("h1")?.textContent === "This page is for administrators.");
  if (await page.$(".adm-tab")) fail(`${tag}: admin content shown at #/admin`);
  await shot(page, SHOTS, "admin-forbidden-desktop");
  const codes = await page.evaluate(async () => {
    const j = { "Content-Type": "application/json" };
    const out = [];
    for (const [m, p, b] of [["GET", "/api/v1/users"], ["GET", "/api/v1/tokens"], ["GET", "/api/v1/audit"],
      ["POST", "/api/v1/terminals", { id: "OP-1" }], ["POST", "/api/v1/users", { name: "x", role: "admin" }],
      ["POST", "/api/v1/terminals/AD0001/secret"], ["DELETE", "/api/v1/terminals/AD0001"]])
      out.push((await fetch(p, { method: m, headers: b ? j : {}, body: b ? JSON.stringify(b) : undefined })).status);
    return out;
  });
  if (codes.some((c) => c !== 403)) fail(`${tag}: admin routes answered ${codes}`);
  ok(`${tag}: no Admin link; #/admin/users and #/admin say the page is for administrators; 7 admin calls answered 403`);
  await ctx.close();
}

const browser = await launch();
const t0 = Date.now();
const laps = [];
const lap = (name, since) => { laps.push(`${name} ${((Date.now() - since) / 1000).toFixed(1)} s`); return Date.now(); };
let t = Date.now();
await desktop(browser);
t = lap("desktop", t);
const ph = await phone(browser);
t = lap("phone", t);
await operatorView(browser);
lap("operator", t);
await browser.close();
for (const p of [...sims]) await stopSim(p);
if (problems.length) fail("console errors or failed requests:\n  " + problems.join("\n  "));
ok(`no console error, no failed request (${((Date.now() - t0) / 1000).toFixed(1)} s: ${laps.join(", ")})`);
console.log("PHONE-SECRETS " + JSON.stringify(ph));
