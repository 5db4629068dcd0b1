// The vidhook workspace's core: the API client, page helpers, sign-in and routing. Each page has
// its own script (templates.js, renders.js, costs.js); start.js starts it all. Plain DOM, no
// framework, no network but this host's /api/v1 and /media. Everything the server sends is put
// on the page as text (textContent), never as HTML.
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

/** A call to /api/v1; writes carry the CSRF header the server asks of cookie sessions. With
 * `raw`, a successful answer is returned as the fetch Response. */
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
  // A body that is not JSON (the narration's audio) is the caller's to read.
  if (options.raw && response.ok) return response;
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
  $("r-rows").replaceChildren();
  $("live").textContent = "";
  editor.loaded = false;
  editor.stored = "";
  editor.draft = null;
  editor.fields = [];
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
  if (unsaved() && !confirm("Sign out and discard your unsaved template changes?")) return;
  await api("/session", { method: "DELETE" });
  showSignIn();
});

