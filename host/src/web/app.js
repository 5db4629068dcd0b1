// The vidhook workspace: sign-in, the template editor with a live preview, the live render list
// and the cost view. Plain DOM, no framework, no network but this host's /api/v1 and /media.
// Everything the server sends is put on the page as text (textContent), never as HTML.
"use strict";

const API = "/api/v1";
const $ = (id) => document.getElementById(id);
const state = { session: null, sources: [], renders: new Map(), stream: null, after: null };

// ---- talking to the API -------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

/** A call to /api/v1; writes carry the CSRF header the server asks of cookie sessions. */
async function api(path, options = {}) {
  const headers = { "x-vidhook-csrf": "1" };
  if (options.body !== undefined) headers["content-type"] = "application/json";
  const response = await fetch(API + path, {
    method: options.method || "GET",
    headers,
    credentials: "same-origin",
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
    signal: options.signal,
  });
  if (response.status === 204) return null;
  const text = await response.text();
  const data = text ? JSON.parse(text) : null;
  if (!response.ok) {
    if (response.status === 401 && path !== "/session") sessionEnded();
    if (response.status === 403) await recheckRole();
    throw new ApiError(response.status, data || {});
  }
  return data;
}

/** The session is gone (signed out elsewhere, token revoked or expired): say so, start over. */
function sessionEnded() {
  showSignIn("Your session has ended (the token was revoked, or it expired). Sign in again.");
}

/** A 403: the token's role may have changed since the page was built; rebuild it if so. */
async function recheckRole() {
  try {
    const session = await api("/session");
    if (state.session && session.role !== state.session.role) {
      await signedIn(session);
      toast(`Your role is now ${session.role}: the page shows what it allows.`, "error");
    }
  } catch (error) {
    if (error.status === 401) sessionEnded();
  }
}

/** A message that screen readers announce and that goes away by itself. */
function toast(text, kind = "ok") {
  const item = el("div", { class: `toast ${kind}`, role: kind === "error" ? "alert" : "status" }, text);
  $("toasts").append(item);
  setTimeout(() => item.remove(), kind === "error" ? 10_000 : 5_000);
}

function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (value !== false && value !== null && value !== undefined) node.setAttribute(key, value);
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined) node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

const canEdit = () => state.session && state.session.role !== "viewer";
const money = (credits, costs) => `$${(credits * costs.usd_per_credit).toFixed(2)}`;

// ---- pages ----------------------------------------------------------------------------------

function showPage(name) {
  for (const page of document.querySelectorAll(".page")) page.hidden = page.id !== `page-${name}`;
  const section = name === "render" ? "renders" : name;
  for (const link of document.querySelectorAll("#nav a")) {
    if (link.dataset.page === section) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

/** Forgets everything the last session's page showed, so nothing of its rights outlives it. */
function resetWorkspace() {
  if (state.stream) state.stream.close();
  state.stream = null;
  state.renders.clear();
  state.after = null;
  $("renders").replaceChildren();
  $("live").textContent = "";
  editor.loaded = false;
  editor.saved = "";
  $("tpl-body").value = "";
  $("tpl-versions").replaceChildren();
  $("tpl-diff").textContent = "";
  $("tpl-saved").textContent = "";
  $("lex-rows").replaceChildren();
  $("preview").replaceChildren();
  $("e-source").replaceChildren();
  $("e-result").textContent = "";
  costsCache = null;
}

function showSignIn(message = "") {
  state.session = null;
  resetWorkspace();
  $("nav").hidden = true;
  $("sign-out").hidden = true;
  $("who").textContent = "";
  delete document.body.dataset.role;
  showPage("sign-in");
  $("sign-in-error").textContent = message;
  $("token").focus();
}

async function route() {
  if (!state.session) return showSignIn();
  const page = (location.hash.replace(/^#\//, "") || "templates").split("?")[0];
  const [top, id] = page.split("/");
  const name = id && top === "renders" ? "render" : ["templates", "renders", "costs"].includes(page) ? page : "templates";
  showPage(name);
  // Where a screen reader and the keyboard continue: the new page's heading.
  const heading = document.querySelector(`#page-${name} h1`);
  heading.setAttribute("tabindex", "-1");
  heading.focus();
  if (name === "templates") await openTemplates();
  if (name === "renders") await openRenders();
  if (name === "costs") await openCosts();
  if (name === "render") await openRender(decodeURIComponent(id));
}

async function signedIn(session) {
  // Built again from this session: controls match its role, nothing of an earlier one stays.
  resetWorkspace();
  state.session = session;
  $("nav").hidden = false;
  $("sign-out").hidden = false;
  $("who").textContent = `${session.name} (${session.role})`;
  document.body.dataset.role = session.role;
  state.sources = await api("/sources");
  await route();
}

$("sign-in-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  $("sign-in-error").textContent = "";
  try {
    const session = await api("/session", { method: "POST", body: { token: $("token").value } });
    $("token").value = "";
    await signedIn(session);
  } catch (error) {
    $("sign-in-error").textContent = error.message;
  }
});

$("sign-out").addEventListener("click", async () => {
  if (draftChanged() && !confirm("Sign out and discard your unsaved template changes?")) return;
  await api("/session", { method: "DELETE" });
  showSignIn();
});

// ---- the template editor --------------------------------------------------------------------

const editor = { loaded: false, timer: null, inflight: null, version: 0, saved: "", name: "", errorLine: null };

/** The text differs from the saved version (a viewer's text never counts: it cannot be saved). */
const draftChanged = () => canEdit() && editor.loaded && $("tpl-body").value !== editor.saved;

function showDraftState() {
  $("tpl-saved").textContent = draftChanged() ? "unsaved changes" : "";
}

/** Handlebars as coloured spans: comments, block open/close/else, and plain expressions. */
function highlight(text) {
  const out = document.createDocumentFragment();
  const pattern = /\{\{!--[\s\S]*?--\}\}|\{\{![\s\S]*?\}\}|\{\{\{?[\s\S]*?\}?\}\}/g;
  let last = 0;
  for (const match of text.matchAll(pattern)) {
    out.append(text.slice(last, match.index));
    const token = match[0];
    const kind = token.startsWith("{{!") ? "hb-comment"
      : /^\{\{\s*[#/^]|^\{\{\s*else/.test(token) ? "hb-block" : "hb-expr";
    out.append(el("span", { class: kind }, token));
    last = match.index + token.length;
  }
  out.append(text.slice(last) + "\n");
  return out;
}

/** The highlighted copy under the textarea, with the line of the last error marked. */
function paintEditor() {
  const text = $("tpl-body").value;
  const line = editor.errorLine;
  if (!line) {
    $("tpl-highlight").replaceChildren(highlight(text));
  } else {
    const lines = text.split("\n");
    const before = lines.slice(0, line - 1).join("\n");
    const bad = lines[line - 1] ?? "";
    const after = lines.slice(line).join("\n");
    const marked = el("mark", { class: "line-error", "data-line": String(line) }, bad || " ");
    const out = document.createDocumentFragment();
    if (line > 1) out.append(before, "\n");
    out.append(marked);
    out.append(lines.length > line ? highlight(`\n${after}`) : "\n");
    $("tpl-highlight").replaceChildren(out);
  }
  $("tpl-highlight").scrollTop = $("tpl-body").scrollTop;
}

/** A template error: where it is (marked in the editor), and the preview shown as out of date. */
function showTemplateError(error) {
  const where = error.problem && error.problem.location;
  const here = where && where.template === $("tpl-name").value;
  const place = where ? `${here ? "" : `In template "${where.template}", `}line ${where.line}, column ${where.column}: ` : "";
  const text = `${place}${error.message}`;
  $("tpl-error").textContent = text.charAt(0).toUpperCase() + text.slice(1);
  $("tpl-body").setAttribute("aria-invalid", "true");
  editor.errorLine = here ? where.line : null;
  paintEditor();
  $("preview").classList.add("stale");
  $("preview-state").textContent = $("preview").childElementCount
    ? "out of date: this is the last preview that worked; fix the error to update it"
    : "no preview until the error is fixed";
}

function clearTemplateError() {
  $("tpl-error").textContent = "";
  $("tpl-body").removeAttribute("aria-invalid");
  $("preview").classList.remove("stale");
  if (editor.errorLine) {
    editor.errorLine = null;
    paintEditor();
  }
}

async function openTemplates() {
  const edit = canEdit();
  $("tpl-save").disabled = !edit;
  $("tpl-synth").disabled = !edit;
  $("tpl-body").readOnly = !edit;
  $("tpl-note").disabled = !edit;
  $("tpl-role-note").hidden = edit;
  for (const id of ["tpl-save", "tpl-synth"]) {
    if (edit) $(id).removeAttribute("aria-describedby");
    else $(id).setAttribute("aria-describedby", "tpl-role-note");
  }
  if (editor.loaded) return;
  editor.loaded = true;
  $("tpl-source").replaceChildren(...state.sources.map((s) => el("option", { value: s.name }, s.name)));
  const templates = await api("/templates");
  $("tpl-name").replaceChildren(...templates.map((t) => el("option", { value: t.name }, t.name)));
  // The narration is what editors change most; start there.
  if (templates.some((t) => t.name === "script")) $("tpl-name").value = "script";
  await loadEvents();
  await loadTemplate();
  await loadLexicon();
}

// ---- the pronunciation lexicon of the selected source ----------------------------------------

async function loadLexicon() {
  const source = $("tpl-source").value;
  if (!source) return;
  const entries = await api(`/sources/${encodeURIComponent(source)}/lexicon`);
  const edit = canEdit();
  $("lex-source").textContent = source;
  $("lex-rows").replaceChildren(...entries.map((e) => el("tr", {},
    el("td", {}, e.locale || "every locale"), el("td", {}, e.term), el("td", {}, e.spoken), el("td", {}, e.updated_by || ""),
    el("td", {}, el("button", { type: "button", class: "link", disabled: !edit, "aria-label": `Remove ${e.term}`,
      "aria-describedby": edit ? null : "tpl-role-note", onclick: () => removeTerm(source, e) }, "remove")))));
  $("lex-empty").hidden = entries.length > 0;
  for (const control of $("lex-form").querySelectorAll("input, button")) control.disabled = !edit;
}

async function removeTerm(source, entry) {
  const query = new URLSearchParams({ term: entry.term, locale: entry.locale });
  try {
    await api(`/sources/${encodeURIComponent(source)}/lexicon?${query}`, { method: "DELETE" });
    toast(`"${entry.term}" is read as written again`);
  } catch (error) {
    toast(`Not removed: ${error.message}`, "error");
  }
  await loadLexicon();
}

$("lex-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const source = $("tpl-source").value;
  const body = { term: $("lex-term").value.trim(), spoken: $("lex-spoken").value.trim(), locale: $("lex-locale").value.trim() };
  $("lex-error").textContent = "";
  try {
    await api(`/sources/${encodeURIComponent(source)}/lexicon`, { method: "PUT", body });
    toast(`"${body.term}" is now said "${body.spoken}" in ${source}'s narrations`);
    $("lex-term").value = "";
    $("lex-spoken").value = "";
    $("lex-locale").value = "";
    await loadLexicon();
  } catch (error) {
    $("lex-error").textContent = error.message;
  }
});

async function loadEvents() {
  const source = $("tpl-source").value;
  const events = source ? await api(`/sources/${encodeURIComponent(source)}/events`) : [];
  $("tpl-event").replaceChildren(
    ...events.map((e) => el("option", { value: e.id }, `${e.title || e.entry} (${e.locale || "-"})`)),
    el("option", { value: "" }, "Pasted content…"),
  );
  $("tpl-pasted").hidden = events.length > 0;
}

async function loadTemplate() {
  const name = $("tpl-name").value;
  editor.name = name;
  const versions = await api(`/templates/${encodeURIComponent(name)}/versions`);
  const latest = versions[0];
  editor.version = latest.version;
  editor.saved = latest.body;
  $("tpl-body").value = latest.body;
  editor.errorLine = null;
  showDraftState();
  $("tpl-version").textContent = `v${latest.version}`;
  showVersions(versions);
  paintEditor();
  await runPreview(false);
}

function showVersions(versions) {
  $("tpl-diff").textContent = "";
  $("tpl-versions").replaceChildren(...versions.map((v) => el("li", { "data-version": String(v.version) },
    `v${v.version} · ${v.author ? `by ${v.author} · ` : ""}`, when(v.created_at),
    v.restored_from ? ` · restores v${v.restored_from}` : "",
    v.note ? el("q", { class: "version-note" }, v.note) : "", " ",
    v.version === editor.version ? "(current)" : [
      el("button", { type: "button", class: "link", onclick: () => showDiff(v.version) }, "diff"),
      " ",
      el("button", { type: "button", class: "link", disabled: !canEdit(), "aria-describedby": canEdit() ? null : "tpl-role-note",
        onclick: () => rollback(v.version) }, "roll back"),
    ])));
}

async function showDiff(from) {
  const name = encodeURIComponent($("tpl-name").value);
  const lines = await api(`/templates/${name}/diff?from=${from}&to=${editor.version}`);
  $("tpl-diff").replaceChildren(...lines.map((l) =>
    el("span", { class: l.op === "+" ? "add" : l.op === "-" ? "del" : "" }, `${l.op} ${l.text}\n`)));
}

async function rollback(version) {
  if (draftChanged() && !confirm("Roll back and discard your unsaved changes?")) return;
  const name = encodeURIComponent($("tpl-name").value);
  try {
    const saved = await api(`/templates/${name}/rollback`, { method: "POST", body: { version, note: $("tpl-note").value } });
    $("tpl-note").value = "";
    await loadTemplate();
    toast(`Rolled back to v${version}: saved as v${saved.version}`);
  } catch (error) {
    toast(`Roll back failed: ${error.message}`, "error");
  }
}

function previewRequest(synthesize) {
  const request = { source: $("tpl-source").value, template: $("tpl-name").value, body: $("tpl-body").value, synthesize };
  if ($("tpl-event").value) request.event_id = $("tpl-event").value;
  else {
    try { request.content = JSON.parse($("tpl-pasted").value); } catch (error) { throw new Error(`Pasted content is not JSON: ${error.message}`); }
  }
  return request;
}

function durationBar(video) {
  const seconds = video.synthesized_seconds ?? video.estimated_seconds;
  const over = seconds > video.limit_seconds;
  const percent = Math.min(100, (seconds / video.limit_seconds) * 100);
  const label = `${seconds.toFixed(1)} s ${video.synthesized_seconds == null ? "estimated" : "measured"} of ${video.limit_seconds} s at ${video.resolution}`;
  return el("div", { class: "duration" },
    el("div", { class: `bar${over ? " over" : ""}`, role: "meter", "aria-valuemin": "0",
      "aria-valuemax": String(video.limit_seconds), "aria-valuenow": seconds.toFixed(1), "aria-label": "Narration length" },
      el("span", { style: null, "data-percent": percent.toFixed(0) })),
    el("p", { class: over ? "error" : "muted", "data-testid": "duration" }, over ? `${label}: too long` : label));
}

function sizeBars() {
  // Inline styles are refused by the page's policy; widths are set through the CSSOM instead.
  for (const span of document.querySelectorAll(".bar > span")) span.style.width = `${span.dataset.percent}%`;
}

async function runPreview(synthesize) {
  if (editor.inflight) editor.inflight.abort();
  const controller = new AbortController();
  editor.inflight = controller;
  $("preview-pane").setAttribute("aria-busy", "true");
  $("preview-state").textContent = synthesize ? "synthesising…" : "updating…";
  try {
    const preview = await api("/preview", { method: "POST", body: previewRequest(synthesize), signal: controller.signal });
    clearTemplateError();
    const parts = preview.skipped ? [el("p", { class: "muted" }, `Skipped by a plugin: ${preview.skipped}`)]
      : preview.videos.map((v) => el("article", { class: "card video-plan" },
        el("h3", {}, `${v.key || "video"} · ${v.language}`),
        durationBar(v),
        el("h4", {}, "Script"), el("p", { class: "script", "data-testid": "script" }, v.script),
        v.shortened ? el("p", { class: "note", "data-testid": "cut" },
          `Not all of the text is spoken: the narration keeps ${v.shortened.kept} of its ${v.shortened.given} words (cut to fit the limit, or left out by the template).`) : null,
        el("h4", {}, "Scene prompt"), el("p", { class: "prompt", "data-testid": "prompt" }, v.prompt)));
    $("preview").replaceChildren(...parts);
    sizeBars();
    $("preview-state").textContent = "";
  } catch (error) {
    if (error.name === "AbortError") return;
    showTemplateError(error);
  } finally {
    if (editor.inflight === controller) {
      editor.inflight = null;
      $("preview-pane").setAttribute("aria-busy", "false");
    }
  }
}

$("tpl-body").addEventListener("input", () => {
  paintEditor();
  showDraftState();
  clearTimeout(editor.timer);
  editor.timer = setTimeout(() => runPreview(false), 250);
});
$("tpl-body").addEventListener("scroll", () => { $("tpl-highlight").scrollTop = $("tpl-body").scrollTop; });
$("tpl-pasted").addEventListener("input", () => { clearTimeout(editor.timer); editor.timer = setTimeout(() => runPreview(false), 250); });
$("tpl-source").addEventListener("change", async () => { await loadEvents(); await loadLexicon(); await runPreview(false); });
$("tpl-name").addEventListener("change", () => {
  if (draftChanged() && !confirm(`Discard your unsaved changes to "${editor.name}"?`)) {
    $("tpl-name").value = editor.name;
    return;
  }
  loadTemplate();
});
window.addEventListener("beforeunload", (event) => {
  if (draftChanged()) event.preventDefault();
});
$("tpl-event").addEventListener("change", () => { $("tpl-pasted").hidden = $("tpl-event").value !== ""; runPreview(false); });
$("tpl-synth").addEventListener("click", () => runPreview(true));
$("tpl-save").addEventListener("click", async () => {
  const name = encodeURIComponent($("tpl-name").value);
  try {
    const saved = await api(`/templates/${name}/versions`, { method: "POST", body: { body: $("tpl-body").value, note: $("tpl-note").value } });
    $("tpl-note").value = "";
    await loadTemplate();
    $("tpl-saved").textContent = `Saved as v${saved.version}`;
    toast(`Saved "${saved.name}" as v${saved.version}: live for the next render`);
  } catch (error) {
    if (error.status === 422) showTemplateError(error);
    else toast(`Not saved: ${error.message}`, "error");
  }
});

// ---- renders, live --------------------------------------------------------------------------

const STEPS = ["plan", "speak", "check", "submit", "await", "keep", "write_back", "done"];
let costsCache = null;

function stepper(render) {
  const at = STEPS.indexOf(render.state === "submitting" || render.state === "reconciling" ? "submit" : render.state);
  return el("ol", { class: "steps", "aria-label": "Steps" }, ...STEPS.map((step, i) =>
    el("li", { class: at < 0 ? "" : i < at || render.state === "done" ? "past" : i === at ? "now" : "" }, step.replace("_", " "))));
}

/** "3 min ago" (with the exact time as the element's title). */
function when(ms) {
  const seconds = Math.round((Date.now() - ms) / 1000);
  const text = seconds < 60 ? "just now" : seconds < 3600 ? `${Math.floor(seconds / 60)} min ago`
    : seconds < 86400 ? `${Math.floor(seconds / 3600)} h ago` : new Date(ms).toLocaleDateString();
  return el("time", { datetime: new Date(ms).toISOString(), title: new Date(ms).toLocaleString() }, text);
}

const seconds = (ms) => (ms < 1000 ? `${ms} ms` : ms < 120_000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms / 60_000)} min`);

/** The player: the poster until played, captions as a track; loads nothing until asked. */
function player(render, label) {
  const src = render.video_url || render.preview_url;
  if (!src) return null;
  const lang = (render.key || "").includes("-") ? render.key : "en";
  return el("video", { controls: "", preload: render.poster_url ? "none" : "metadata", src, poster: render.poster_url, "aria-label": label },
    render.captions_url ? el("track", { kind: "captions", src: render.captions_url, srclang: lang, label: "Captions", default: "" }) : null);
}

function renderItem(render) {
  const editorRole = canEdit();
  const item = el("li", { class: `card render state-${render.state}`, id: `render-${render.id}`, "data-state": render.state },
    el("div", { class: "render-head" },
      el("a", { class: "title", href: `#/renders/${encodeURIComponent(render.id)}` }, render.title || render.entry),
      el("span", { class: "badge", "data-testid": "state" }, render.state.replace(/_/g, " ")),
      el("span", { class: "muted" }, `${render.credits} credits${costsCache ? ` · ${money(render.credits, costsCache)}` : ""}`)),
    el("p", { class: "muted meta" }, `${render.source} / ${render.entry} · `, when(render.created_at),
      render.finished_at ? ` · took ${seconds(render.finished_at - render.created_at)}` : ""),
    stepper(render),
    // A skipped render is not an error: a plugin, a person or a cancellation ended it on purpose.
    render.error ? el("p", { class: render.state === "skipped" ? "muted" : "error" },
      render.state === "skipped" ? `Skipped: ${render.error}` : `${render.error_category || "error"}: ${render.error}`) : null,
    render.shortened ? el("p", { class: "muted", "data-testid": "shortened" },
      `Shortened: the narration keeps ${render.shortened.kept} of the text's ${render.shortened.given} words.`) : null,
    player(render, `Video for ${render.title || render.entry}`),
    render.state === "awaiting_approval" && render.narration ? el("details", { class: "narration" },
      el("summary", {}, "Narration"), el("p", { class: "script", "data-testid": "narration" }, render.narration)) : null,
    render.state === "awaiting_approval" ? el("p", { class: "muted cost", "data-testid": "approval-cost" }, "Cost: estimating…") : null,
    render.state === "awaiting_approval" ? el("div", { class: "actions" },
      el("button", { type: "button", disabled: !editorRole, "aria-describedby": editorRole ? null : "r-role-note",
        onclick: () => decide([render.id], "approve") }, "Approve and pay"),
      el("button", { type: "button", class: "secondary", disabled: !editorRole, "aria-describedby": editorRole ? null : "r-role-note",
        onclick: () => decide([render.id], "reject") }, "Reject")) : null,
    el("details", { class: "timeline-box", ontoggle: (event) => event.target.open && loadTimeline(render.id, event.target) },
      el("summary", {}, "Timeline and provenance"), el("div", { class: "timeline" })));
  if (render.state === "awaiting_approval") showApprovalCost(render, item);
  return item;
}

/** What approving would pay (the same figures as `vidhook estimate`): credits and dollars, and
 * the budget left today. */
async function estimateVideos(source, videos) {
  const { estimate } = await api(`/estimate?source=${encodeURIComponent(source)}&videos=${videos}`);
  return estimate;
}

function costWords(e) {
  const paid = `${e.paid_credits} credits ($${e.paid_dollars.toFixed(2)} at the ${e.pack} pack)`;
  const cost = e.credits === e.paid_credits ? paid : `nothing on the ${e.provider} provider (OmniHuman would charge ${paid})`;
  const budget = e.budget_left == null ? "no daily budget"
    : `budget left today: ${e.budget_left} credits${e.held_back_by_budget ? `, which would hold back ${e.held_back_by_budget}` : ""}`;
  return `${cost}; ${budget}`;
}

async function showApprovalCost(render, item) {
  try {
    const e = await estimateVideos(render.source, 1);
    const line = item.querySelector("[data-testid=approval-cost]");
    if (line) line.textContent = `Approving pays ${costWords(e)}.`;
  } catch (error) {
    // The card still works; the dialog asks again before anything is paid.
  }
}

async function loadTimeline(id, details) {
  const detail = await api(`/renders/${encodeURIComponent(id)}`);
  details.querySelector(".timeline").replaceChildren(...timeline(detail));
}

/** Each step with how long it took, then what made the render, as labelled fields. */
function timeline(detail) {
  const steps = el("ol", { class: "step-list" }, ...detail.steps.map((s) => el("li", {},
    el("code", {}, s.step), ` ${s.outcome} · `, el("span", { "data-testid": "step-duration" }, seconds(s.finished_at - s.started_at)),
    s.detail ? ` · ${s.detail}` : "")));
  const p = detail.render.provenance_json ? JSON.parse(detail.render.provenance_json) : {};
  const field = (label, ...value) => [el("dt", {}, label), el("dd", {}, ...value)];
  const plugins = (p.plugins || []).map((run) => el("li", {},
    `${run.plugin} (${String(run.digest || "").slice(0, 12)}…)`,
    run.usage ? ` · ${Object.entries(run.usage).map(([k, v]) => `${k} ${v}`).join(", ")}` : ""));
  const templates = Object.entries(p.templates || {}).map(([name, version]) => `${name} ${version ? `v${version}` : "(draft)"}`);
  const kept = Object.entries(p.bundle || {}).filter(([, v]) => typeof v === "string").map(([k, v]) => el("li", {}, `${k}: ${v}`));
  const c = p.content || {};
  const provenance = el("dl", { class: "provenance" },
    c.id ? field("Content", `${c.source} / ${c.id}`, c.revision ? `, revision ${c.revision}` : "", c.locale ? `, ${c.locale}` : "") : [],
    plugins.length ? field("Plugins", el("ul", {}, ...plugins)) : [],
    templates.length ? field("Templates", templates.join(", ")) : [],
    p.wit ? field("Plugin contract", p.wit) : [],
    kept.length ? field("Kept files", el("ul", {}, ...kept)) : []);
  return [el("h3", {}, "Steps"), steps, el("h3", {}, "Made by"), provenance];
}

/** A render's own page (`#/renders/ID`): the player, the narration, the steps and provenance. */
async function openRender(id) {
  const box = $("render-detail");
  box.replaceChildren(el("p", { class: "muted" }, "Loading…"));
  try {
    const detail = await api(`/renders/${encodeURIComponent(id)}`);
    const r = detail.summary;
    state.renders.set(r.id, r);
    $("render-title").textContent = r.title || r.entry;
    box.replaceChildren(...[
      el("p", { class: "meta" }, el("span", { class: "badge" }, r.state.replace(/_/g, " ")), ` ${r.source} / ${r.entry} · `, when(r.created_at),
        r.finished_at ? ` · took ${seconds(r.finished_at - r.created_at)}` : "", ` · ${r.credits} credits`),
      /^https?:\/\//.test(r.entry_url || "") ? el("p", {}, el("a", { href: r.entry_url, rel: "noopener noreferrer", target: "_blank", "data-testid": "entry-link" }, "Open the entry in its CMS")) : null,
      r.error ? el("p", { class: r.state === "skipped" ? "muted" : "error" }, r.error) : null,
      player(r, `Video for ${r.title || r.entry}`),
      r.narration ? el("section", {}, el("h2", {}, "Narration"), el("p", { class: "script", "data-testid": "narration" }, r.narration)) : null,
      ...timeline(detail)].filter(Boolean));
  } catch (error) {
    box.replaceChildren(el("p", { class: "error" }, error.status === 404 ? "There is no such render." : error.message));
  }
}

/** Asks in a dialog, with what it costs, and takes a note: the note, or null if cancelled. */
function askDecision(title, summary, go) {
  const dialog = $("decide");
  $("decide-title").textContent = title;
  $("decide-summary").textContent = summary;
  $("decide-note").value = "";
  $("decide-go").textContent = go;
  dialog.returnValue = "";
  dialog.showModal();
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "go" ? $("decide-note").value : null), { once: true });
  });
}

/** Approves or rejects `ids` (one card, or every awaiting render shown) after one confirmation. */
async function decide(ids, action) {
  const renders = ids.map((id) => state.renders.get(id)).filter(Boolean);
  const what = renders.length === 1 ? `${renders[0].source} / ${renders[0].entry}` : `${renders.length} renders`;
  let summary = "Nothing is paid; the render ends as skipped.";
  if (action === "approve") {
    const bySource = new Map();
    for (const r of renders) bySource.set(r.source, (bySource.get(r.source) || 0) + 1);
    try {
      const estimates = await Promise.all([...bySource].map(([source, n]) => estimateVideos(source, n)));
      const credits = estimates.reduce((sum, e) => sum + e.credits, 0);
      const dollars = estimates.reduce((sum, e) => sum + e.dollars, 0);
      summary = `This pays ${credits} credits ($${dollars.toFixed(2)}) in all: ${estimates.map((e) => `${e.source}: ${costWords(e)}`).join(". ")}.`;
    } catch (error) {
      summary = `The cost could not be estimated (${error.message}); each video is 960 credits at OmniHuman's price.`;
    }
  }
  const title = action === "approve" ? `Approve and pay for ${what}?` : `Reject ${what}?`;
  const note = await askDecision(title, summary, action === "approve" ? "Approve and pay" : "Reject");
  if (note === null) return;
  let done = 0;
  for (const r of renders) {
    try {
      await api(`/renders/${encodeURIComponent(r.id)}/${action}`, { method: "POST", body: { note } });
      done += 1;
    } catch (error) {
      toast(`Could not ${action} ${r.source} / ${r.entry}: ${error.message}`, "error");
    }
  }
  if (done) {
    const verb = action === "approve" ? "Approved" : "Rejected";
    const then = action === "approve" ? "the paid generation goes ahead" : "nothing is paid";
    toast(`${verb} ${renders.length === 1 ? what : `${done} of ${renders.length} renders`}: ${then}`);
  }
}

/** "Approve all shown": every render awaiting approval that the filtered list shows. */
function showBulkApprove() {
  const waiting = [...state.renders.values()].filter((r) => r.state === "awaiting_approval" && $(`render-${r.id}`));
  const button = $("r-approve-all");
  button.hidden = waiting.length < 2;
  button.disabled = !canEdit();
  button.textContent = `Approve all ${waiting.length} shown`;
  button.onclick = () => decide(waiting.map((r) => r.id), "approve");
}

function upsert(render) {
  const filterState = $("r-state").value;
  const filterSource = $("r-source").value;
  state.renders.set(render.id, render);
  const existing = $(`render-${render.id}`);
  const matches = (!filterState || render.state === filterState) && (!filterSource || render.source === filterSource);
  if (!matches) {
    if (existing) existing.remove();
  } else {
    const fresh = renderItem(render);
    if (existing) {
      // Keep what the person is looking at: an open timeline, a playing video.
      const oldVideo = existing.querySelector("video");
      const newVideo = fresh.querySelector("video");
      if (oldVideo && newVideo && oldVideo.getAttribute("src") === newVideo.getAttribute("src")) {
        // The same video, perhaps playing: keep it, with the poster and captions kept since.
        if (newVideo.poster) oldVideo.poster = newVideo.poster;
        const track = newVideo.querySelector("track");
        if (track && !oldVideo.querySelector("track")) oldVideo.append(track);
        newVideo.replaceWith(oldVideo);
      }
      const timeline = existing.querySelector("details.timeline-box");
      if (timeline.open) fresh.querySelector("details.timeline-box").replaceWith(timeline);
      existing.replaceWith(fresh);
    } else {
      $("renders").prepend(fresh);
    }
  }
  $("renders-empty").hidden = $("renders").childElementCount > 0;
  showBulkApprove();
}

async function loadRenders(more) {
  const query = new URLSearchParams({ limit: "25" });
  if ($("r-state").value) query.set("state", $("r-state").value);
  if ($("r-source").value) query.set("source", $("r-source").value);
  if (more && state.after) query.set("after", state.after);
  const page = await api(`/renders?${query}`);
  if (!more) $("renders").replaceChildren();
  for (const render of page.items) {
    state.renders.set(render.id, render);
    $("renders").append(renderItem(render));
  }
  state.after = page.next;
  $("r-more").hidden = !page.next;
  $("renders-empty").hidden = $("renders").childElementCount > 0;
  showBulkApprove();
}

async function openRenders() {
  if ($("r-source").options.length === 1) {
    $("r-source").append(...state.sources.map((s) => el("option", { value: s.name }, s.name)));
  }
  try { costsCache = await api("/costs?days=1"); } catch { costsCache = null; }
  const since = Date.now() - 2000;
  await loadRenders(false);
  if (!state.stream) {
    state.stream = new EventSource(`${API}/renders/stream?since=${since}`, { withCredentials: true });
    state.stream.addEventListener("render", (event) => upsert(JSON.parse(event.data)));
    state.stream.addEventListener("open", () => { $("live").textContent = "live"; });
    state.stream.addEventListener("error", streamTrouble);
  }
}

/** The live stream dropped: if the browser gave up (an answer such as 401), ask whether the
 * session still stands; a revoked token goes to sign-in with a message, else reconnect. */
async function streamTrouble() {
  const stream = state.stream;
  if (!stream || stream.readyState !== EventSource.CLOSED) {
    $("live").textContent = "reconnecting…";
    return;
  }
  $("live").textContent = "disconnected";
  state.stream = null;
  try {
    await api("/session");
  } catch (error) {
    if (error.status === 401) return sessionEnded();
  }
  if (state.session && !$("page-renders").hidden) setTimeout(openRenders, 2000);
}

$("r-state").addEventListener("change", () => loadRenders(false));
$("r-source").addEventListener("change", () => loadRenders(false));
$("r-more").addEventListener("click", () => loadRenders(true));

// ---- costs ----------------------------------------------------------------------------------

const SVG = "http://www.w3.org/2000/svg";

function svg(tag, attributes, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

function chart(costs) {
  const box = $("c-chart");
  box.replaceChildren(box.querySelector("title"));
  const days = costs.days;
  const top = Math.max(costs.daily_limit || 0, ...days.map((d) => d.credits), 1);
  const width = 800 / days.length;
  days.forEach((day, i) => {
    const height = (day.credits / top) * 200;
    const bar = svg("rect", { x: i * width + 1, y: 220 - height, width: Math.max(1, width - 2), height, class: "bar-rect" });
    bar.append(svg("title", {}, `${day.date}: ${day.credits} credits`));
    box.append(bar);
  });
  if (costs.daily_limit) {
    const y = 220 - (costs.daily_limit / top) * 200;
    box.append(svg("line", { x1: 0, x2: 800, y1: y, y2: y, class: "limit" }));
    box.append(svg("text", { x: 4, y: Math.max(16, y - 4), class: "limit-label" }, `daily limit ${costs.daily_limit}`));
  }
  if (days.every((day) => day.credits === 0)) {
    box.append(svg("text", { x: 400, y: 120, class: "empty-note", "text-anchor": "middle" }, "No credits spent in this period"));
  }
  box.append(svg("text", { x: 4, y: 236, class: "axis" }, days[0].date));
  box.append(svg("text", { x: 796, y: 236, class: "axis", "text-anchor": "end" }, days[days.length - 1].date));
}

async function openCosts() {
  if (!$("e-source").options.length) {
    $("e-source").append(...state.sources.map((s) => el("option", { value: s.name }, s.name)));
  }
  const costs = await api(`/costs?days=${$("c-days").value}`);
  $("c-today").textContent = `${costs.spent_today} credits (${money(costs.spent_today, costs)})`;
  $("c-left").textContent = costs.budget_left_today == null ? "no limit" : `${costs.budget_left_today} credits`;
  const period = costs.days.reduce((sum, day) => sum + day.credits, 0);
  $("c-period").textContent = `${period} credits (${money(period, costs)})`;
  chart(costs);
  $("c-sources").replaceChildren(...costs.sources.map((s) => el("tr", {},
    el("th", { scope: "row" }, s.source), el("td", {}, s.spent_today),
    el("td", {}, s.daily_limit ?? "none"), el("td", {}, s.left_today ?? "no limit"))));
}

$("c-days").addEventListener("change", openCosts);

// The same figures as `vidhook estimate --events N --source S` (one function prices both).
async function estimateEvents(event) {
  event.preventDefault();
  const source = $("e-source").value;
  const events = $("e-events").value;
  const out = $("e-result");
  try {
    const { fan_out: fanOut, estimate: e } = await api(`/estimate?source=${encodeURIComponent(source)}&events=${encodeURIComponent(events)}`);
    const paid = `${e.paid_credits} credits, $${e.paid_dollars.toFixed(2)} at the ${e.pack} pack`;
    const cost = e.credits === e.paid_credits ? paid : `0 credits on the ${e.provider} provider (OmniHuman: ${paid})`;
    const perEvent = fanOut.events_seen ? `${fanOut.per_event.toFixed(2)} videos per event, measured on ${fanOut.events_seen} events` : "1 video per event assumed";
    const budget = e.budget_left == null ? "no daily budget" : `budget left today ${e.budget_left} credits, which would hold back ${e.held_back_by_budget} of them`;
    out.textContent = `${e.videos} videos (${perEvent}): ${cost}; ${budget}.`;
  } catch (error) {
    out.textContent = error.message;
  }
}
$("c-estimate").addEventListener("submit", estimateEvents);

// ---- start ----------------------------------------------------------------------------------

window.addEventListener("hashchange", route);
api("/session").then(signedIn, () => showSignIn());
