// The workspace's Renders page and a render's own page: the live list, approvals, the timeline. Loaded after app.js.
"use strict";

// ---- renders, live --------------------------------------------------------------------------

const STEPS = ["plan", "speak", "check", "submit", "await", "keep", "write_back", "done"];
/** States a render ends in: only these have taken a time (a preview awaiting approval has not). */
const ENDED = ["done", "failed", "skipped", "dry_run", "writeback_failed", "needs_attention"];
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
      render.finished_at && ENDED.includes(render.state) ? ` · took ${seconds(render.finished_at - render.created_at)}` : ""),
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
  const host = p.provider ? `${p.provider.name} (${p.provider.kind || p.provider.name}, ${p.provider.model})` : detail.render.provider;
  const moves = (p.failovers || []).map((f) => el("li", {}, `${f.from} → ${f.to}: ${f.reason}`));
  const provenance = el("dl", { class: "provenance" },
    host ? field("Video host", host) : [],
    moves.length ? field("Failovers", el("ul", {}, ...moves)) : [],
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
    const parts = [
      el("p", { class: "meta" }, el("span", { class: "badge" }, r.state.replace(/_/g, " ")), ` ${r.source} / ${r.entry} · `, when(r.created_at),
        r.finished_at && ENDED.includes(r.state) ? ` · took ${seconds(r.finished_at - r.created_at)}` : "", ` · ${r.credits} credits`),
      /^https?:\/\//.test(r.entry_url || "") ? el("p", {}, el("a", { href: r.entry_url, rel: "noopener noreferrer", target: "_blank", "data-testid": "entry-link" }, "Open the entry in its CMS")) : null,
      r.error ? el("p", { class: r.state === "skipped" ? "muted" : "error" }, r.error) : null,
      player(r, `Video for ${r.title || r.entry}`),
      r.narration ? el("section", {}, el("h2", {}, "Narration"), el("p", { class: "script", "data-testid": "narration" }, r.narration)) : null,
      await captionsSection(r.id),
      ...timeline(detail)].filter(Boolean);
    // The heading and the page change together, once everything is fetched: a page titled for
    // this render never shows another's body or "Loading…".
    $("render-title").textContent = r.title || r.entry;
    box.replaceChildren(...parts);
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
  refreshTable();
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
  refreshTable();
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

