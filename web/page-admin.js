// The admin pages (issue 9, section 2; admin only: the router shows them to admins, and the API
// answers 403 to anyone else). One tab per URL (#/admin/TAB):
//   terminals  list (online state live from the feed), add, edit (PATCH), remove, rotate secret
//   users      list, add (password given or generated), change role, set password, remove
//   tokens     list (per user), create, revoke
//   audit      the audit trail with the filters the API takes (user, action, outcome, time
//              range) in the URL, paged with next_before
// A secret, generated password or token value is shown once, in a dialog with a copy button;
// closing the dialog removes it from the page. Changes are confirmed in a <dialog> that names
// what is changed; the API's refusals (validation, the last admin) are shown inside the form.
import { el, t, api, apiError, errorBox, emptyBox, loading, timeEl, fmtNum, currentUser, go, href, feed, enc } from "/app/lib.js";

const TABS = [
  ["terminals", "adm_tab_terminals", showTerminals],
  ["users", "adm_tab_users", showUsers],
  ["tokens", "adm_tab_tokens", showTokens],
  ["audit", "adm_tab_audit", showAudit],
];
const ROLES = ["viewer", "operator", "admin"];
const roleName = (r) => ({ viewer: t("role_viewer"), operator: t("role_operator"), admin: t("role_admin") })[r] || r;

export function show(main, route) {
  const tab = TABS.find((x) => x[0] === route.parts[0]) || TABS[0];
  document.title = `${t(tab[1])} · ${t("nav_admin")} · gridsense`;
  // what the tab leaves behind when the user goes elsewhere: open dialogs, feed subscriptions
  const ctx = { dialogs: new Set(), stops: [], gone: false, msg: el("p", { id: "adm-msg", className: "adm-msg", role: "status" }) };
  const box = el("section", { id: "adm-tab", className: "adm-tab adm-" + tab[0], "aria-labelledby": "adm-h2" });
  main.append(
    el("h1", { textContent: t("adm_title") }),
    el("nav", { className: "tabs adm-tabs", "aria-label": t("adm_tabs") },
      ...TABS.map(([k, label]) => el("a", { href: href.admin(k), textContent: t(label), "aria-current": k === tab[0] ? "page" : undefined }))),
    box);
  box.append(el("h2", { id: "adm-h2", textContent: t(tab[1]) }), ctx.msg);
  // not awaited: the router gets the way to undo this page at once, even while lists load
  tab[2](box, ctx, route).catch((e) => { if (!ctx.gone) box.append(errorBox(t("page_failed", { msg: e.message }))); });
  return () => {
    ctx.gone = true;
    for (const s of ctx.stops) s();
    for (const d of ctx.dialogs) { if (d.open) d.close(); d.remove(); }
  };
}

// ---- shared pieces ----------------------------------------------------------------------------
let uid = 0;
const nextId = (p) => `${p}-${++uid}`;

/** A labelled form field: label, the control and an optional hint tied to it (aria-describedby). */
function field(label, input, hint) {
  if (!input.id) input.id = nextId("adm-f");
  const kids = [el("label", { for: input.id, textContent: label }), input];
  if (hint) {
    const h = el("small", { id: input.id + "-hint", className: "note", textContent: hint });
    input.setAttribute("aria-describedby", h.id);
    kids.push(h);
  }
  return el("div", { className: "adm-field" }, ...kids);
}
const input = (props) => el("input", { autocomplete: "off", ...props });
function select(options, value, props = {}) {
  const s = el("select", props, ...options.map(([v, label]) => el("option", { value: v, textContent: label })));
  s.value = value;
  return s;
}
/** The number typed into an <input type=number>: {empty}, {value} or {bad} (not a number). */
function numberOf(inp) {
  if (inp.validity.badInput) return { bad: true };
  if (inp.value.trim() === "") return { empty: true };
  const v = Number(inp.value);
  return Number.isFinite(v) ? { value: v } : { bad: true };
}
const say = (ctx, msg) => { ctx.msg.textContent = msg; };

/**
 * A modal <dialog> holding a form: title, body nodes, a cancel and a submit button. onSubmit()
 * runs on submit and resolves {error: message} (shown inside the form, the dialog stays) or
 * {value} (the dialog closes and the promise resolves with value). Escape or cancel resolves
 * null. The dialog is removed from the page once closed.
 */
function formDialog(ctx, { title, body = [], submit, danger = false, onSubmit, focus, focusCancel = false }) {
  return new Promise((resolve) => {
    const hid = nextId("adm-dlg");
    const err = el("div", { className: "adm-err" });
    const ok = el("button", { type: "submit", className: danger ? "danger" : "primary", textContent: submit });
    const cancel = el("button", { type: "button", textContent: t("adm_cancel") });
    const form = el("form", { noValidate: true },
      el("h2", { id: hid, textContent: title }), ...body, err,
      el("div", { className: "adm-buttons" }, cancel, ok));
    const d = el("dialog", { className: "adm-dialog", "aria-labelledby": hid }, form);
    let result = null;
    cancel.addEventListener("click", () => d.close());
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      ok.disabled = true;
      err.replaceChildren();
      let r;
      try { r = await onSubmit(); } catch (x) { r = { error: x.message }; }
      ok.disabled = false;
      if (!d.isConnected) return;
      if (r && r.error) { err.replaceChildren(errorBox(r.error)); return; }
      result = r ? r.value ?? true : true;
      d.close();
    });
    d.addEventListener("close", () => { d.remove(); ctx.dialogs.delete(d); resolve(result); });
    ctx.dialogs.add(d);
    document.body.append(d);
    d.showModal();
    (focusCancel ? cancel : focus ? focus() : null)?.focus();
  });
}

/**
 * Shows a secret (terminal secret, generated password, API token) once: a warning that it will
 * not be shown again, the value, a copy button (the clipboard API; where it is missing or
 * refused, the text is selected for Ctrl+C). Resolves when closed; the dialog (and the value)
 * is then removed from the page.
 */
function showOnce(ctx, { title, label, value, hint }) {
  return new Promise((resolve) => {
    const hid = nextId("adm-once");
    const code = el("code", { className: "adm-secret", id: hid + "-value", textContent: value });
    const status = el("p", { className: "note adm-copied", role: "status" });
    const copy = el("button", { type: "button", className: "primary", textContent: t("adm_copy") });
    const close = el("button", { type: "button", textContent: t("adm_close_once") });
    const selectIt = () => { const s = getSelection(); s.removeAllRanges(); const r = document.createRange(); r.selectNodeContents(code); s.addRange(r); };
    copy.addEventListener("click", async () => {
      try {
        if (!navigator.clipboard) throw new Error("no clipboard");
        await navigator.clipboard.writeText(value);
        status.textContent = t("adm_copied");
      } catch {
        selectIt();
        let done = false;
        try { done = document.execCommand("copy"); } catch { /* not supported */ }
        status.textContent = done ? t("adm_copied") : t("adm_copy_manual");
      }
    });
    const d = el("dialog", { className: "adm-dialog adm-once", "aria-labelledby": hid },
      el("h2", { id: hid, textContent: title }),
      el("p", { className: "warn", id: hid + "-warn", textContent: t("adm_once_warning") }),
      el("p", { className: "adm-secret-label", textContent: label }), code,
      hint ? el("p", { className: "note", textContent: hint }) : null,
      status,
      el("div", { className: "adm-buttons" }, copy, close));
    d.setAttribute("aria-describedby", hid + "-warn");
    close.addEventListener("click", () => d.close());
    d.addEventListener("close", () => { d.remove(); ctx.dialogs.delete(d); resolve(); });
    ctx.dialogs.add(d);
    document.body.append(d);
    d.showModal();
    copy.focus();
  });
}

/** A confirmation that names what is changed; resolves the API answer's body or null. */
function confirmDialog(ctx, { title, text, submit, danger = true, run }) {
  // the safe choice has the focus: Enter on an unread dialog does not remove anything
  return formDialog(ctx, { title, submit, danger, body: [el("p", { className: "adm-confirm", textContent: text })], onSubmit: run, focusCancel: true });
}
/** {value: body} for an expected status, {error: message} otherwise. */
const answer = (r, ...okStatus) => (okStatus.includes(r.status) ? { value: r.body } : { error: apiError(r) });

/** A table in a horizontally scrolling box (phones), with a caption for screen readers. */
function table(caption, heads, rows, id) {
  // focusable, so that a keyboard can scroll it sideways where it is wider than the screen
  return el("div", { className: "scroll", tabIndex: 0, role: "region", "aria-label": caption },
    el("table", { id, className: "adm-table" },
      el("caption", { className: "sr-only", textContent: caption }),
      el("thead", {}, el("tr", {}, ...heads.map(([label, cls]) => el("th", { scope: "col", className: cls || "", textContent: label })))),
      el("tbody", {}, ...rows)));
}
const td = (content, cls) => el("td", { className: cls || "" }, content ?? t("none"));
const when = (ts, ifNull) => (ts ? timeEl(ts) : document.createTextNode(ifNull ?? t("none")));

// ---- terminals --------------------------------------------------------------------------------
async function showTerminals(box, ctx) {
  const addBtn = el("button", { type: "button", className: "primary", id: "adm-term-add", textContent: t("adm_term_add") });
  const list = el("div", { className: "adm-list" }, loading());
  box.append(el("div", { className: "adm-toolbar" }, addBtn), list);
  let terms = [];
  const rowOf = new Map();

  const paintState = (tr, x) => {
    const s = tr.querySelector(".adm-state");
    s.className = "adm-state " + (x.online ? "on" : "off");
    s.textContent = x.online ? t("adm_online") : t("adm_offline");
    tr.querySelector(".adm-seen").replaceChildren(when(x.last_seen));
  };
  async function load(focusSel) {
    const all = [];
    let after = null;
    for (let page = 0; page < 100; page++) { // 1000 a page; a fleet of 100,000 at most
      const r = await api("/api/v1/terminals?limit=1000" + (after ? "&after=" + enc(after) : ""));
      if (ctx.gone) return;
      if (r.status !== 200) { list.replaceChildren(errorBox(apiError(r))); return; }
      all.push(...r.body.terminals);
      after = r.body.next_after;
      if (!after) break;
    }
    terms = all;
    rowOf.clear();
    if (!terms.length) { list.replaceChildren(emptyBox(t("adm_term_empty"))); if (focusSel) addBtn.focus(); return; }
    const rows = terms.map((x) => {
      const tr = el("tr", { "data-id": x.id },
        el("th", { scope: "row" }, el("a", { href: href.terminal(x.id), textContent: x.id })),
        td(x.name || t("none"), "adm-name"),
        el("td", {}, el("span", { className: "adm-state" })),
        td(x.location ? `${x.location.lat.toFixed(5)}°, ${x.location.lon.toFixed(5)}°` : t("none"), "wide adm-loc"),
        td(fmtNum(x.nominal_hz, 0, "Hz"), "num wide"),
        td(String(x.vt_ratio), "num wide adm-vt"),
        td(String(x.ct_ratio), "num wide adm-ct"),
        td(x.declared_voltage === null ? t("adm_sliding") : fmtNum(x.declared_voltage, 3, "V"), "num wide adm-udin"),
        el("td", { className: "adm-seen wide" }),
        el("td", { className: "adm-actions" },
          el("button", { type: "button", className: "adm-edit", textContent: t("adm_edit"), "aria-label": t("adm_edit_of", { id: x.id }), onclick: () => edit(x) }),
          el("button", { type: "button", className: "adm-rotate", textContent: t("adm_rotate"), "aria-label": t("adm_rotate_of", { id: x.id }), onclick: () => rotate(x) }),
          el("button", { type: "button", className: "adm-remove danger", textContent: t("adm_remove"), "aria-label": t("adm_remove_of", { id: x.id }), onclick: () => remove(x) })));
      tr.term = x;
      paintState(tr, x);
      rowOf.set(x.id, tr);
      return tr;
    });
    list.replaceChildren(
      el("p", { className: "note", textContent: t("adm_term_count", { n: terms.length }) }),
      table(t("adm_tab_terminals"), [[t("adm_col_id")], [t("adm_col_name")], [t("adm_col_state")], [t("adm_col_location"), "wide"],
        [t("adm_col_hz"), "num wide"], [t("adm_col_vt"), "num wide"], [t("adm_col_ct"), "num wide"], [t("adm_col_udin"), "num wide"],
        [t("adm_col_seen"), "wide"], [t("adm_col_actions")]], rows, "adm-terminals"));
    if (focusSel) list.querySelector(focusSel)?.focus();
  }
  // online/offline changes arrive on the feed (no polling); on subscribing, every terminal once
  ctx.stops.push(feed.subscribe(["fleet"], (m) => {
    if (m.topic !== "fleet") return;
    const tr = rowOf.get(m.data.id);
    const x = tr && tr.term;
    if (!x) return;
    Object.assign(x, { online: m.data.online, last_seen: m.data.last_seen });
    paintState(tr, x);
  }));

  /** The add/edit form's fields; read() gives the body to send or {error}. */
  function termForm(x) {
    const f = {
      id: input({ name: "id", required: true, maxLength: 32, pattern: "[A-Za-z0-9._\\-]{1,32}", spellcheck: false }),
      name: input({ name: "name", maxLength: 64, value: x ? x.name : "" }),
      lat: input({ name: "lat", type: "number", step: "any", min: -90, max: 90, inputMode: "decimal", value: x?.location ? x.location.lat : "" }),
      lon: input({ name: "lon", type: "number", step: "any", min: -180, max: 180, inputMode: "decimal", value: x?.location ? x.location.lon : "" }),
      hz: select([["50", fmtNum(50, 0, "Hz")], ["60", fmtNum(60, 0, "Hz")]], x ? String(x.nominal_hz) : "50", { name: "nominal_hz" }),
      vt: input({ name: "vt_ratio", type: "number", step: "any", min: 0.000001, inputMode: "decimal", value: x ? x.vt_ratio : "" }),
      ct: input({ name: "ct_ratio", type: "number", step: "any", min: 0.000001, inputMode: "decimal", value: x ? x.ct_ratio : "" }),
      udin: input({ name: "declared_voltage", type: "number", step: "any", min: 0, inputMode: "decimal", value: x && x.declared_voltage !== null ? x.declared_voltage : "" }),
    };
    const body = [
      x ? null : field(t("adm_f_id"), f.id, t("adm_f_id_hint")),
      field(t("adm_f_name"), f.name),
      el("div", { className: "adm-row" }, field(t("adm_f_lat"), f.lat), field(t("adm_f_lon"), f.lon)),
      el("p", { className: "note adm-hint", textContent: t("adm_f_loc_hint") }),
      field(t("adm_f_hz"), f.hz),
      el("div", { className: "adm-row" }, field(t("adm_f_vt"), f.vt, t("adm_f_ratio_hint")), field(t("adm_f_ct"), f.ct, t("adm_f_ratio_hint"))),
      field(t("adm_f_udin"), f.udin, t("adm_f_udin_hint")),
      x ? el("p", { className: "note adm-hint", textContent: t("adm_f_next_login") }) : null,
    ];
    const read = () => {
      const out = {};
      const nums = { lat: f.lat, lon: f.lon, vt_ratio: f.vt, ct_ratio: f.ct, declared_voltage: f.udin };
      const v = {};
      for (const [k, inp] of Object.entries(nums)) {
        v[k] = numberOf(inp);
        if (v[k].bad) { inp.focus(); return { error: t("adm_bad_number", { field: inp.labels[0]?.textContent || k }) }; }
      }
      if (!x) out.id = f.id.value.trim();
      const name = f.name.value.trim();
      if (x ? name !== x.name : name) out.name = name;
      if (v.lat.empty !== v.lon.empty) { (v.lat.empty ? f.lat : f.lon).focus(); return { error: t("adm_loc_both") }; }
      const loc = v.lat.empty ? null : { lat: v.lat.value, lon: v.lon.value };
      if (x ? JSON.stringify(loc) !== JSON.stringify(x.location ? { lat: x.location.lat, lon: x.location.lon } : null) : loc) out.location = loc;
      const hz = Number(f.hz.value);
      if (x ? hz !== x.nominal_hz : hz !== 50) out.nominal_hz = hz;
      for (const k of ["vt_ratio", "ct_ratio"]) {
        if (v[k].empty) { if (x && x[k] !== 1) out[k] = 1; continue; } // empty: not provisioned (1)
        if (!x || v[k].value !== x[k]) out[k] = v[k].value;
      }
      const udin = v.declared_voltage.empty ? null : v.declared_voltage.value;
      if (x ? udin !== x.declared_voltage : udin !== null) out.declared_voltage = udin;
      if (x && !Object.keys(out).length) return { error: t("adm_nothing_changed") };
      return { body: out };
    };
    return { body, read, first: x ? f.name : f.id };
  }

  addBtn.addEventListener("click", async () => {
    const form = termForm(null);
    const made = await formDialog(ctx, {
      title: t("adm_term_add"), submit: t("adm_term_add_submit"), body: form.body, focus: () => form.first,
      onSubmit: async () => {
        const b = form.read();
        if (b.error) return b;
        return answer(await api("/api/v1/terminals", { method: "POST", json: b.body }), 201);
      },
    });
    if (!made) return;
    say(ctx, t("adm_term_added", { id: made.id }));
    const loaded = load(); // the secret first: it is shown whatever the list does
    await showOnce(ctx, { title: t("adm_secret_title", { id: made.id }), label: t("adm_secret_label"), value: made.secret, hint: t("adm_secret_hint", { id: made.id }) });
    await loaded;
    rowOf.get(made.id)?.querySelector(".adm-edit")?.focus();
  });

  async function edit(x) {
    const form = termForm(x);
    const changed = await formDialog(ctx, {
      title: t("adm_term_edit", { id: x.id }), submit: t("adm_save"), body: form.body, focus: () => form.first,
      onSubmit: async () => {
        const b = form.read();
        if (b.error) return b;
        return answer(await api(`/api/v1/terminals/${enc(x.id)}`, { method: "PATCH", json: b.body }), 200);
      },
    });
    if (!changed) return;
    say(ctx, t("adm_term_saved", { id: x.id }));
    await load(`tr[data-id="${CSS.escape(x.id)}"] .adm-edit`);
  }

  async function rotate(x) {
    const r = await confirmDialog(ctx, {
      title: t("adm_rotate_title", { id: x.id }), text: t("adm_rotate_text", { id: x.id, name: x.name || x.id }), submit: t("adm_rotate"),
      run: async () => answer(await api(`/api/v1/terminals/${enc(x.id)}/secret`, { method: "POST" }), 200),
    });
    if (!r) return;
    say(ctx, t("adm_rotated", { id: x.id }));
    await showOnce(ctx, { title: t("adm_secret_title", { id: x.id }), label: t("adm_secret_label"), value: r.secret, hint: t("adm_secret_hint", { id: x.id }) });
    rowOf.get(x.id)?.querySelector(".adm-rotate")?.focus();
  }

  async function remove(x) {
    const r = await confirmDialog(ctx, {
      title: t("adm_remove_title", { id: x.id }), text: t("adm_remove_text", { id: x.id, name: x.name || x.id }), submit: t("adm_remove_submit"),
      run: async () => answer(await api(`/api/v1/terminals/${enc(x.id)}`, { method: "DELETE" }), 200),
    });
    if (!r) return;
    say(ctx, t("adm_removed", { id: x.id }));
    await load();
    addBtn.focus();
  }

  await load();
}

// ---- users ------------------------------------------------------------------------------------
async function showUsers(box, ctx) {
  const me = currentUser();
  const name = input({ name: "name", required: true, maxLength: 64, spellcheck: false, autocapitalize: "none" });
  const role = select(ROLES.map((r) => [r, roleName(r)]), "viewer", { name: "role" });
  const pw = input({ name: "password", type: "password", autocomplete: "new-password", maxLength: 1024 });
  const err = el("div", { className: "adm-err" });
  const submit = el("button", { type: "submit", className: "primary", textContent: t("adm_user_add") });
  const form = el("form", { className: "adm-form card", id: "adm-user-form", noValidate: true, "aria-labelledby": "adm-user-form-h" },
    el("h3", { id: "adm-user-form-h", textContent: t("adm_user_add_title") }),
    el("div", { className: "adm-row" }, field(t("adm_f_user"), name, t("adm_f_user_hint")), field(t("adm_f_role"), role),
      field(t("adm_f_password"), pw, t("adm_f_password_hint"))),
    el("div", { className: "adm-buttons" }, submit), err);
  const list = el("div", { className: "adm-list" }, loading());
  box.append(form, list);

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    err.replaceChildren();
    const body = { name: name.value.trim(), role: role.value };
    if (pw.value) body.password = pw.value;
    submit.disabled = true;
    const r = await api("/api/v1/users", { method: "POST", json: body });
    submit.disabled = false;
    if (ctx.gone) return;
    if (r.status !== 201) { err.replaceChildren(errorBox(apiError(r))); return; }
    say(ctx, t("adm_user_added", { name: r.body.name, role: roleName(r.body.role) }));
    name.value = ""; pw.value = "";
    await load();
    if (r.body.password) await showOnce(ctx, { title: t("adm_pw_title", { name: r.body.name }), label: t("adm_pw_label"), value: r.body.password });
    name.focus();
  });

  async function load(focusSel) {
    const r = await api("/api/v1/users");
    if (ctx.gone) return;
    if (r.status !== 200) { list.replaceChildren(errorBox(apiError(r))); return; }
    const users = r.body.users;
    if (!users.length) { list.replaceChildren(emptyBox(t("adm_user_empty"))); return; }
    const rows = users.map((u) => el("tr", { "data-name": u.name },
      el("th", { scope: "row" }, u.name, me && u.name === me.user ? el("span", { className: "adm-you", textContent: " " + t("adm_you") }) : null),
      td(roleName(u.role), "adm-role"),
      el("td", { className: "wide" }, when(u.created)),
      el("td", { className: "wide" }, when(u.updated)),
      el("td", { className: "adm-actions" },
        el("button", { type: "button", className: "adm-role-btn", textContent: t("adm_role_change"), "aria-label": t("adm_role_change_of", { name: u.name }), onclick: () => changeRole(u) }),
        el("button", { type: "button", className: "adm-pw-btn", textContent: t("adm_pw_set"), "aria-label": t("adm_pw_set_of", { name: u.name }), onclick: () => setPassword(u) }),
        el("button", { type: "button", className: "adm-remove danger", textContent: t("adm_remove"), "aria-label": t("adm_remove_of", { id: u.name }), onclick: () => remove(u) }))));
    list.replaceChildren(
      el("p", { className: "note", textContent: t("adm_user_count", { n: users.length }) }),
      table(t("adm_tab_users"), [[t("adm_col_user")], [t("adm_col_role")], [t("adm_col_created"), "wide"], [t("adm_col_updated"), "wide"], [t("adm_col_actions")]], rows, "adm-users"));
    if (focusSel) list.querySelector(focusSel)?.focus();
  }
  const rowSel = (u, cls) => `tr[data-name="${CSS.escape(u.name)}"] ${cls}`;

  async function changeRole(u) {
    const s = select(ROLES.map((r) => [r, roleName(r)]), u.role, { name: "role" });
    const done = await formDialog(ctx, {
      title: t("adm_role_title", { name: u.name }), submit: t("adm_save"), focus: () => s,
      body: [field(t("adm_f_role"), s), el("p", { className: "note", textContent: t("adm_role_hint") })],
      onSubmit: async () => {
        if (s.value === u.role) return { error: t("adm_nothing_changed") };
        return answer(await api(`/api/v1/users/${enc(u.name)}`, { method: "PATCH", json: { role: s.value } }), 200);
      },
    });
    if (!done) return;
    say(ctx, t("adm_role_changed", { name: u.name, role: roleName(done.role) }));
    if (me && u.name === me.user && done.role !== "admin") { go(href.fleet()); location.reload(); return; } // no longer an admin
    await load(rowSel(u, ".adm-role-btn"));
  }

  async function setPassword(u) {
    const a = input({ type: "password", autocomplete: "new-password", maxLength: 1024 });
    const b = input({ type: "password", autocomplete: "new-password", maxLength: 1024 });
    const done = await formDialog(ctx, {
      title: t("adm_pw_set_title", { name: u.name }), submit: t("adm_save"), focus: () => a,
      body: [field(t("adm_f_new_password"), a, t("adm_f_new_password_hint")), field(t("adm_f_repeat_password"), b)],
      onSubmit: async () => {
        if (a.value !== b.value) { b.focus(); return { error: t("adm_pw_mismatch") }; }
        return answer(await api(`/api/v1/users/${enc(u.name)}`, { method: "PATCH", json: { password: a.value } }), 200);
      },
    });
    if (!done) return;
    say(ctx, t("adm_pw_changed", { name: u.name }));
    await load(rowSel(u, ".adm-pw-btn"));
  }

  async function remove(u) {
    const r = await confirmDialog(ctx, {
      title: t("adm_user_remove_title", { name: u.name }), text: t("adm_user_remove_text", { name: u.name, role: roleName(u.role) }), submit: t("adm_remove_submit"),
      run: async () => answer(await api(`/api/v1/users/${enc(u.name)}`, { method: "DELETE" }), 200),
    });
    if (!r) return;
    say(ctx, t("adm_user_removed", { name: u.name }));
    await load();
    name.focus();
  }

  await load();
}

// ---- API tokens -------------------------------------------------------------------------------
async function showTokens(box, ctx, route) {
  const me = currentUser();
  const filterUser = route.query.get("user") || "";
  const ur = await api("/api/v1/users");
  if (ctx.gone) return;
  const users = ur.status === 200 ? ur.body.users.map((u) => u.name) : [];
  const owner = select(users.map((u) => [u, u]), me ? me.user : users[0], { name: "user" });
  const label = input({ name: "name", maxLength: 64 });
  const days = input({ name: "expires_days", type: "number", min: 1, max: 3650, step: 1, inputMode: "numeric" });
  const err = el("div", { className: "adm-err" });
  const submit = el("button", { type: "submit", className: "primary", textContent: t("adm_token_create") });
  const form = el("form", { className: "adm-form card", id: "adm-token-form", noValidate: true, "aria-labelledby": "adm-token-form-h" },
    el("h3", { id: "adm-token-form-h", textContent: t("adm_token_create_title") }),
    el("div", { className: "adm-row" }, field(t("adm_f_owner"), owner, t("adm_f_owner_hint")), field(t("adm_f_label"), label),
      field(t("adm_f_days"), days, t("adm_f_days_hint"))),
    el("div", { className: "adm-buttons" }, submit), err);
  const filter = select([["", t("adm_all_users")], ...users.map((u) => [u, u])], filterUser, { id: "adm-token-filter" });
  filter.addEventListener("change", () => go(href.admin("tokens") + (filter.value ? "?user=" + enc(filter.value) : "")));
  const list = el("div", { className: "adm-list" }, loading());
  box.append(ur.status === 200 ? form : errorBox(apiError(ur)),
    el("div", { className: "filters" }, el("label", { for: "adm-token-filter", textContent: t("adm_show_tokens_of") }), filter), list);

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    err.replaceChildren();
    const body = { user: owner.value };
    if (label.value.trim()) body.name = label.value.trim();
    const d = numberOf(days);
    if (d.bad || (!d.empty && !Number.isInteger(d.value))) { err.replaceChildren(errorBox(t("adm_bad_days"))); days.focus(); return; }
    if (!d.empty) body.expires_days = d.value;
    submit.disabled = true;
    const r = await api("/api/v1/tokens", { method: "POST", json: body });
    submit.disabled = false;
    if (ctx.gone) return;
    if (r.status !== 201) { err.replaceChildren(errorBox(apiError(r))); return; }
    say(ctx, t("adm_token_created", { id: r.body.id, user: r.body.user }));
    label.value = ""; days.value = "";
    await load();
    await showOnce(ctx, { title: t("adm_token_title", { user: r.body.user }), label: t("adm_token_label"), value: r.body.token, hint: t("adm_token_hint") });
    label.focus();
  });

  async function load() {
    const r = await api("/api/v1/tokens" + (filterUser ? "?user=" + enc(filterUser) : ""));
    if (ctx.gone) return;
    if (r.status !== 200) { list.replaceChildren(errorBox(apiError(r))); return; }
    const toks = r.body.tokens;
    if (!toks.length) { list.replaceChildren(emptyBox(t("adm_token_empty"))); return; }
    const now = Date.now();
    const rows = toks.map((k) => {
      const expired = k.expires && Date.parse(k.expires) <= now;
      const state = k.revoked ? el("span", { className: "off" }, t("adm_token_revoked"), " ", timeEl(k.revoked))
        : expired ? el("span", { className: "off", textContent: t("adm_token_expired") })
        : el("span", { className: "on", textContent: t("adm_token_active") });
      return el("tr", { "data-id": k.id },
        el("th", { scope: "row" }, el("code", { textContent: k.id })),
        td(k.user), td(k.name || t("none"), "adm-label"),
        el("td", { className: "wide" }, when(k.created)),
        el("td", {}, when(k.expires, t("adm_never"))),
        el("td", { className: "wide" }, when(k.last_used, t("adm_never_used"))),
        el("td", { className: "adm-token-state" }, state),
        el("td", { className: "adm-actions" }, k.revoked ? null :
          el("button", { type: "button", className: "adm-revoke danger", textContent: t("adm_revoke"), "aria-label": t("adm_revoke_of", { id: k.id }), onclick: () => revoke(k) })));
    });
    list.replaceChildren(
      el("p", { className: "note", textContent: t("adm_token_count", { n: toks.length }) }),
      table(t("adm_tab_tokens"), [[t("adm_col_token")], [t("adm_col_user")], [t("adm_col_label")], [t("adm_col_created"), "wide"],
        [t("adm_col_expires")], [t("adm_col_used"), "wide"], [t("adm_col_state")], [t("adm_col_actions")]], rows, "adm-tokens"));
  }

  async function revoke(k) {
    const r = await confirmDialog(ctx, {
      title: t("adm_revoke_title", { id: k.id }), text: t("adm_revoke_text", { id: k.id, user: k.user, name: k.name || t("none") }), submit: t("adm_revoke"),
      run: async () => answer(await api(`/api/v1/tokens/${enc(k.id)}`, { method: "DELETE" }), 200),
    });
    if (!r) return;
    say(ctx, t("adm_token_revoked_msg", { id: k.id }));
    await load();
    filter.focus();
  }

  await load();
}

// ---- audit trail ------------------------------------------------------------------------------
const ACTIONS = ["login", "logout", "request", "command.", "command.create", "command.cancel", "event.ack", "terminal.", "terminal.add",
  "terminal.change", "terminal.remove", "terminal.secret", "user.", "user.add", "user.role", "user.passwd", "user.remove",
  "token.", "token.create", "token.revoke"];
const auditPages = new Map(); // filter (the query without before) -> the befores of the pages seen before this one
const pad = (n) => String(n).padStart(2, "0");
/** "YYYY-MM-DDTHH:MM:SS" in local time, for <input type=datetime-local>, from an ISO time. */
function localInput(iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return "";
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

async function showAudit(box, ctx, route) {
  const q = route.query;
  const ur = await api("/api/v1/users");
  if (ctx.gone) return;
  const user = input({ name: "user", value: q.get("user") || "", maxLength: 64, spellcheck: false, autocapitalize: "none" });
  user.setAttribute("list", "adm-users-dl");
  const action = input({ name: "action", value: q.get("action") || "", maxLength: 39, spellcheck: false, autocapitalize: "none" });
  action.setAttribute("list", "adm-actions-dl");
  const outcome = select([["", t("adm_any")], ["ok", t("adm_out_ok")], ["failed", t("adm_out_failed")], ["denied", t("adm_out_denied")]], q.get("outcome") || "", { name: "outcome" });
  const from = input({ name: "from", type: "datetime-local", step: 1, value: q.get("from") ? localInput(q.get("from")) : "" });
  const to = input({ name: "to", type: "datetime-local", step: 1, value: q.get("to") ? localInput(q.get("to")) : "" });
  const limits = ["25", "100", "500"];
  const ql = q.get("limit");
  if (ql && /^[0-9]{1,4}$/.test(ql) && !limits.includes(ql)) limits.unshift(ql); // a shared URL may carry any limit
  const limit = select(limits.map((n) => [n, n]), ql && limits.includes(ql) ? ql : "100", { name: "limit" });
  const err = el("div", { className: "adm-err" });
  const form = el("form", { className: "adm-form card", id: "adm-audit-form", noValidate: true, "aria-labelledby": "adm-audit-form-h" },
    el("h3", { id: "adm-audit-form-h", textContent: t("adm_audit_filters") }),
    el("div", { className: "adm-row" },
      field(t("adm_f_user"), user), field(t("adm_f_action"), action, t("adm_f_action_hint")), field(t("adm_f_outcome"), outcome),
      field(t("adm_f_from"), from, t("adm_f_local_time")), field(t("adm_f_to"), to, t("adm_f_local_time")), field(t("adm_f_limit"), limit)),
    el("datalist", { id: "adm-users-dl" }, ...(ur.status === 200 ? ur.body.users : []).map((u) => el("option", { value: u.name }))),
    el("datalist", { id: "adm-actions-dl" }, ...ACTIONS.map((a) => el("option", { value: a }))),
    el("div", { className: "adm-buttons" },
      el("a", { href: href.admin("audit"), className: "adm-clear", textContent: t("adm_clear_filters") }),
      el("button", { type: "submit", className: "primary", textContent: t("adm_apply") })), err);
  const list = el("div", { className: "adm-list", id: "adm-audit-list", tabIndex: -1 }, loading());
  box.append(form, list);

  // the filters as the URL has them (for sharing), without the page key
  const fq = new URLSearchParams();
  for (const k of ["user", "action", "outcome", "from", "to", "limit"]) if (q.get(k)) fq.set(k, q.get(k));
  const fkey = fq.toString();
  const before = q.get("before") || "";
  const urlOf = (b) => { const p = new URLSearchParams(fq); if (b) p.set("before", b); const s = p.toString(); return href.admin("audit") + (s ? "?" + s : ""); };

  form.addEventListener("submit", (e) => {
    e.preventDefault();
    err.replaceChildren();
    const p = new URLSearchParams();
    if (user.value.trim()) p.set("user", user.value.trim());
    if (action.value.trim()) p.set("action", action.value.trim());
    if (outcome.value) p.set("outcome", outcome.value);
    for (const [k, inp] of [["from", from], ["to", to]]) {
      if (!inp.value) continue;
      const d = new Date(inp.value); // datetime-local: the user's local time
      if (Number.isNaN(d.getTime())) { err.replaceChildren(errorBox(t("adm_bad_time"))); inp.focus(); return; }
      p.set(k, d.toISOString());
    }
    if (limit.value !== "100") p.set("limit", limit.value);
    const s = p.toString();
    auditPages.delete(s);
    focusList = true;
    const h = href.admin("audit") + (s ? "?" + s : "");
    if (location.hash === h) load(); else go(h); // the same filters: read again (new entries may have come)
  });

  async function load() {
    list.replaceChildren(loading());
    const p = new URLSearchParams(fq);
    if (before) p.set("before", before);
    const r = await api("/api/v1/audit" + (p.toString() ? "?" + p : ""));
    if (ctx.gone) return;
    if (r.status !== 200) { list.replaceChildren(errorBox(apiError(r))); return; }
    const rows = r.body.audit.map((a) => el("tr", { "data-id": a.id, className: "adm-out-" + a.outcome },
      el("td", {}, timeEl(a.time)),
      td(a.user ?? t("adm_local_user"), "adm-a-user"),
      td(a.remote, "wide"),
      el("td", { className: "adm-a-action" }, el("code", { textContent: a.action })),
      td(a.target || t("none"), "adm-a-target"),
      td(({ ok: t("adm_out_ok"), failed: t("adm_out_failed"), denied: t("adm_out_denied") })[a.outcome] || a.outcome, "adm-a-outcome"),
      td(a.detail || t("none"), "adm-a-detail")));
    const stack = auditPages.get(fkey) || [];
    const pager = el("div", { className: "adm-pager" },
      before ? el("a", { href: urlOf(""), className: "adm-newest", textContent: t("adm_newest") }) : null,
      before && stack.length ? el("a", { href: urlOf(stack[stack.length - 1]), className: "adm-newer", textContent: t("adm_newer"),
        onclick: () => { stack.pop(); focusList = true; } }) : null,
      r.body.next_before ? el("a", { href: urlOf(String(r.body.next_before)), className: "adm-older", textContent: t("adm_older"),
        onclick: () => { stack.push(before); auditPages.set(fkey, stack); focusList = true; } }) : null);
    list.replaceChildren(
      rows.length ? el("p", { className: "note", textContent: before ? t("adm_audit_count_page", { n: rows.length }) : t("adm_audit_count", { n: rows.length }) }) : null,
      rows.length ? table(t("adm_tab_audit"), [[t("adm_col_time")], [t("adm_col_user")], [t("adm_col_remote"), "wide"], [t("adm_col_action")],
        [t("adm_col_target")], [t("adm_col_outcome")], [t("adm_col_detail")]], rows, "adm-audit")
        : emptyBox(fkey || before ? t("adm_audit_none_match") : t("adm_audit_empty")),
      pager);
    if (focusList) { focusList = false; list.focus(); }
  }
  await load();
}
let focusList = false; // after a filter or page change, the results get the focus (not the top of the page)
