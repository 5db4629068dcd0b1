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
    if (response.status === 401 && path !== "/session") showSignIn();
    throw new ApiError(response.status, data || {});
  }
  return data;
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
  for (const link of document.querySelectorAll("#nav a")) {
    if (link.dataset.page === name) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

function showSignIn() {
  state.session = null;
  $("nav").hidden = true;
  $("sign-out").hidden = true;
  $("who").textContent = "";
  showPage("sign-in");
  $("token").focus();
}

async function route() {
  if (!state.session) return showSignIn();
  const page = (location.hash.replace(/^#\//, "") || "templates").split("?")[0];
  const name = ["templates", "renders", "costs"].includes(page) ? page : "templates";
  showPage(name);
  if (name === "templates") await openTemplates();
  if (name === "renders") await openRenders();
  if (name === "costs") await openCosts();
}

async function signedIn(session) {
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
  await api("/session", { method: "DELETE" });
  if (state.stream) state.stream.close();
  state.stream = null;
  showSignIn();
});

// ---- the template editor --------------------------------------------------------------------

const editor = { loaded: false, timer: null, inflight: null, version: 0, saved: "" };

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

function paintEditor() {
  $("tpl-highlight").replaceChildren(highlight($("tpl-body").value));
  $("tpl-highlight").scrollTop = $("tpl-body").scrollTop;
}

async function openTemplates() {
  $("tpl-save").disabled = !canEdit();
  $("tpl-synth").disabled = !canEdit();
  if (!canEdit()) $("tpl-save").title = "Viewers cannot save templates";
  if (editor.loaded) return;
  editor.loaded = true;
  $("tpl-source").replaceChildren(...state.sources.map((s) => el("option", { value: s.name }, s.name)));
  const templates = await api("/templates");
  $("tpl-name").replaceChildren(...templates.map((t) => el("option", { value: t.name }, t.name)));
  // The narration is what editors change most; start there.
  if (templates.some((t) => t.name === "script")) $("tpl-name").value = "script";
  await loadEvents();
  await loadTemplate();
}

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
  const versions = await api(`/templates/${encodeURIComponent(name)}/versions`);
  const latest = versions[0];
  editor.version = latest.version;
  editor.saved = latest.body;
  $("tpl-body").value = latest.body;
  $("tpl-version").textContent = `v${latest.version}`;
  showVersions(versions);
  paintEditor();
  await runPreview(false);
}

function showVersions(versions) {
  $("tpl-diff").textContent = "";
  $("tpl-versions").replaceChildren(...versions.map((v) => el("li", {},
    `v${v.version} · ${new Date(v.created_at).toLocaleString()} `,
    v.version === editor.version ? "(current)" : [
      el("button", { type: "button", class: "link", onclick: () => showDiff(v.version) }, "diff"),
      " ",
      el("button", { type: "button", class: "link", disabled: !canEdit(), onclick: () => rollback(v.version) }, "roll back"),
    ])));
}

async function showDiff(from) {
  const name = encodeURIComponent($("tpl-name").value);
  const lines = await api(`/templates/${name}/diff?from=${from}&to=${editor.version}`);
  $("tpl-diff").replaceChildren(...lines.map((l) =>
    el("span", { class: l.op === "+" ? "add" : l.op === "-" ? "del" : "" }, `${l.op} ${l.text}\n`)));
}

async function rollback(version) {
  const name = encodeURIComponent($("tpl-name").value);
  const saved = await api(`/templates/${name}/rollback`, { method: "POST", body: { version } });
  $("tpl-saved").textContent = `Rolled back: saved as v${saved.version}`;
  await loadTemplate();
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
    $("tpl-error").textContent = "";
    $("tpl-body").removeAttribute("aria-invalid");
    const parts = preview.skipped ? [el("p", { class: "muted" }, `Skipped by a plugin: ${preview.skipped}`)]
      : preview.videos.map((v) => el("article", { class: "card video-plan" },
        el("h3", {}, `${v.key || "video"} · ${v.language}`),
        durationBar(v),
        el("h4", {}, "Script"), el("p", { class: "script", "data-testid": "script" }, v.script),
        el("h4", {}, "Scene prompt"), el("p", { class: "prompt", "data-testid": "prompt" }, v.prompt)));
    $("preview").replaceChildren(...parts);
    sizeBars();
    $("preview-state").textContent = "";
  } catch (error) {
    if (error.name === "AbortError") return;
    const where = error.problem && error.problem.location;
    $("tpl-error").textContent = where ? `Line ${where.line}, column ${where.column}: ${error.message}` : error.message;
    $("tpl-body").setAttribute("aria-invalid", "true");
    $("preview-state").textContent = "error";
  } finally {
    if (editor.inflight === controller) {
      editor.inflight = null;
      $("preview-pane").setAttribute("aria-busy", "false");
    }
  }
}

$("tpl-body").addEventListener("input", () => {
  paintEditor();
  $("tpl-saved").textContent = $("tpl-body").value === editor.saved ? "" : "unsaved changes";
  clearTimeout(editor.timer);
  editor.timer = setTimeout(() => runPreview(false), 250);
});
$("tpl-body").addEventListener("scroll", () => { $("tpl-highlight").scrollTop = $("tpl-body").scrollTop; });
$("tpl-pasted").addEventListener("input", () => { clearTimeout(editor.timer); editor.timer = setTimeout(() => runPreview(false), 250); });
$("tpl-source").addEventListener("change", async () => { await loadEvents(); await runPreview(false); });
$("tpl-name").addEventListener("change", loadTemplate);
$("tpl-event").addEventListener("change", () => { $("tpl-pasted").hidden = $("tpl-event").value !== ""; runPreview(false); });
$("tpl-synth").addEventListener("click", () => runPreview(true));
$("tpl-save").addEventListener("click", async () => {
  const name = encodeURIComponent($("tpl-name").value);
  try {
    const saved = await api(`/templates/${name}/versions`, { method: "POST", body: { body: $("tpl-body").value } });
    $("tpl-saved").textContent = `Saved as v${saved.version}`;
    await loadTemplate();
    $("tpl-saved").textContent = `Saved as v${saved.version}`;
  } catch (error) {
    const where = error.problem && error.problem.location;
    $("tpl-error").textContent = where ? `Line ${where.line}, column ${where.column}: ${error.message}` : error.message;
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

function renderItem(render) {
  const editorRole = canEdit();
  const video = render.video_url || render.preview_url;
  const item = el("li", { class: `card render state-${render.state}`, id: `render-${render.id}`, "data-state": render.state },
    el("div", { class: "render-head" },
      el("strong", {}, `${render.source} / ${render.entry}`),
      el("span", { class: "badge", "data-testid": "state" }, render.state.replace(/_/g, " ")),
      el("span", { class: "muted" }, `${render.credits} credits${costsCache ? ` · ${money(render.credits, costsCache)}` : ""}`)),
    stepper(render),
    render.error ? el("p", { class: "error" }, `${render.error_category || "error"}: ${render.error}`) : null,
    render.shortened ? el("p", { class: "muted", "data-testid": "shortened" },
      `Shortened: the narration keeps ${render.shortened.kept} of the text's ${render.shortened.given} words.`) : null,
    video ? el("video", { controls: "", preload: "metadata", src: video, "aria-label": `Video for ${render.entry}` }) : null,
    render.state === "awaiting_approval" ? el("div", { class: "actions" },
      el("button", { type: "button", disabled: !editorRole, onclick: () => decide(render.id, "approve") }, "Approve and pay"),
      el("button", { type: "button", class: "secondary", disabled: !editorRole, onclick: () => decide(render.id, "reject") }, "Reject")) : null,
    el("details", { ontoggle: (event) => event.target.open && loadTimeline(render.id, event.target) },
      el("summary", {}, "Timeline and provenance"), el("div", { class: "timeline" })));
  return item;
}

async function loadTimeline(id, details) {
  const detail = await api(`/renders/${encodeURIComponent(id)}`);
  const box = details.querySelector(".timeline");
  box.replaceChildren(
    el("ol", {}, ...detail.steps.map((s) => el("li", {},
      el("code", {}, s.step), ` ${s.outcome} · ${new Date(s.finished_at).toLocaleTimeString()} · ${s.detail}`))),
    detail.render.provenance_json ? el("pre", { class: "provenance" }, JSON.stringify(JSON.parse(detail.render.provenance_json), null, 2)) : null);
}

async function decide(id, action) {
  try {
    await api(`/renders/${encodeURIComponent(id)}/${action}`, { method: "POST", body: { note: "from the workspace" } });
  } catch (error) {
    const item = $(`render-${id}`);
    if (item) item.append(el("p", { class: "error", role: "alert" }, `${action}: ${error.message}`));
  }
}

function upsert(render) {
  const filterState = $("r-state").value;
  const filterSource = $("r-source").value;
  state.renders.set(render.id, render);
  const existing = $(`render-${render.id}`);
  const matches = (!filterState || render.state === filterState) && (!filterSource || render.source === filterSource);
  if (!matches) { if (existing) existing.remove(); return; }
  const fresh = renderItem(render);
  if (existing) {
    // Keep what the person is looking at: an open timeline, a playing video.
    const oldVideo = existing.querySelector("video");
    const newVideo = fresh.querySelector("video");
    if (oldVideo && newVideo && oldVideo.getAttribute("src") === newVideo.getAttribute("src")) newVideo.replaceWith(oldVideo);
    if (existing.querySelector("details").open) fresh.querySelector("details").replaceWith(existing.querySelector("details"));
    existing.replaceWith(fresh);
  } else {
    $("renders").prepend(fresh);
  }
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
    state.stream.addEventListener("error", () => { $("live").textContent = "reconnecting…"; });
  }
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
api("/session").then(signedIn, showSignIn);
