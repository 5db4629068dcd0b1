// The workspace's Templates page: the editor with its live preview, versions, and the source's pronunciation lexicon. Loaded after app.js (its helpers).
"use strict";

// ---- the template editor --------------------------------------------------------------------

// `stored`: the text kept on the server (the draft if there is one, else the live version).
const editor = { loaded: false, timer: null, inflight: null, version: 0, stored: "", draft: null, name: "",
  errorLine: null, templates: [], fields: [], videos: [] };

/** The text differs from what is stored (a viewer's text never counts: it cannot be saved). */
const unsaved = () => canEdit() && editor.loaded && $("tpl-body").value !== editor.stored;

/** Whether the text is unsaved, and whether a draft (not live) is what the editor holds. */
function showDraftState() {
  $("tpl-saved").textContent = unsaved() ? "unsaved changes" : "";
  const draft = editor.draft;
  $("tpl-discard").hidden = !draft;
  $("tpl-draft-state").replaceChildren(...(draft ? [
    el("strong", {}, "Draft, not live. "),
    `Saved by ${draft.author || "someone"} `, when(draft.saved_at),
    `; renders use v${editor.version}. `,
    draft.based_on < editor.version ? `It was written against v${draft.based_on}; v${editor.version} was published since. ` : "",
    "Publish it to make it live.",
  ] : [`Live: v${editor.version}. Changes you save as a draft stay off renders until published.`]));
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
  const controls = ["tpl-save", "tpl-draft", "tpl-discard", "tpl-synth"];
  for (const id of controls) $(id).disabled = !edit;
  $("tpl-body").readOnly = !edit;
  $("tpl-note").disabled = !edit;
  $("tpl-role-note").hidden = edit;
  for (const id of controls) {
    if (edit) $(id).removeAttribute("aria-describedby");
    else $(id).setAttribute("aria-describedby", "tpl-role-note");
  }
  if (editor.loaded) return;
  editor.loaded = true;
  $("tpl-source").replaceChildren(...state.sources.map((s) => el("option", { value: s.name }, s.name)));
  editor.templates = (await api("/templates")).map((t) => t.name);
  showTemplateChoices();
  // The narration is what editors change most; start there.
  if (editor.templates.includes("script")) $("tpl-name").value = "script";
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

/** The templates the selected source can use ("digest" only where a digest is scheduled), and
 * a word that templates are shared: a saved version is live for every source's next render. */
function showTemplateChoices() {
  const source = state.sources.find((s) => s.name === $("tpl-source").value);
  const current = $("tpl-name").value;
  const names = editor.templates.filter((name) => name !== "digest" || (source && source.digest));
  $("tpl-name").replaceChildren(...names.map((name) => el("option", { value: name }, name)));
  if (names.includes(current)) $("tpl-name").value = current;
  $("tpl-scope").textContent = state.sources.length > 1
    ? `Templates are shared: a saved version is used by the next render of every source (${state.sources.length} sources).`
    : "A saved version is used by the next render.";
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

/** The template's live version and its draft, if any: the editor opens the draft. */
async function loadTemplate() {
  const name = $("tpl-name").value;
  editor.name = name;
  const [versions, drafts] = await Promise.all([api(`/templates/${encodeURIComponent(name)}/versions`), api("/templates/drafts")]);
  const latest = versions[0];
  editor.version = latest.version;
  editor.draft = drafts.find((d) => d.name === name) || null;
  editor.stored = editor.draft ? editor.draft.body : latest.body;
  $("tpl-body").value = editor.stored;
  if (editor.draft && !$("tpl-note").value) $("tpl-note").value = editor.draft.note;
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
  if (unsaved() && !confirm("Roll back and discard your unsaved changes?")) return;
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
    editor.videos = preview.videos;
    showFields(preview.fields);
    const parts = preview.skipped ? [el("p", { class: "muted" }, `Skipped by a plugin: ${preview.skipped}`)]
      : preview.videos.map((v) => el("article", { class: "card video-plan" },
        el("h3", {}, `${v.key || "video"} · ${v.language}`),
        durationBar(v),
        el("div", { class: "listen-box" },
          el("p", { class: "muted", "data-testid": "speech-cost" }, speechWords(v.speech)),
          el("div", { class: "actions" },
            el("button", { type: "button", class: "secondary listen", disabled: !canEdit(),
              "aria-describedby": canEdit() ? null : "tpl-role-note",
              onclick: (event) => listen(v, event.target.closest("article")) }, "Listen to the narration"),
            el("span", { class: "muted listen-state", "aria-live": "polite" }))),
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
$("tpl-source").addEventListener("change", async () => {
  const before = $("tpl-name").value;
  showTemplateChoices();
  if ($("tpl-name").value !== before) await loadTemplate();
  await loadEvents();
  await loadLexicon();
  await runPreview(false);
});
$("tpl-name").addEventListener("change", () => {
  if (unsaved() && !confirm(`Discard your unsaved changes to "${editor.name}"?`)) {
    $("tpl-name").value = editor.name;
    return;
  }
  loadTemplate();
});
window.addEventListener("beforeunload", (event) => {
  if (unsaved()) event.preventDefault();
});
$("tpl-event").addEventListener("change", () => { $("tpl-pasted").hidden = $("tpl-event").value !== ""; runPreview(false); });
$("tpl-synth").addEventListener("click", async () => {
  if (await speechAllowed(editor.videos, "Measuring")) runPreview(true);
});

/** Publishes the text as a new version: live for the next render (a draft with this text is
 * removed by the server). */
$("tpl-save").addEventListener("click", async () => {
  const name = encodeURIComponent($("tpl-name").value);
  try {
    const saved = await api(`/templates/${name}/versions`, { method: "POST", body: { body: $("tpl-body").value, note: $("tpl-note").value } });
    $("tpl-note").value = "";
    await loadTemplate();
    $("tpl-saved").textContent = `Published as v${saved.version}`;
    toast(`Published "${saved.name}" as v${saved.version}: live for the next render`);
  } catch (error) {
    if (error.status === 422) showTemplateError(error);
    else toast(`Not published: ${error.message}`, "error");
  }
});

/** Keeps the text as the template's draft: saved, not live. */
$("tpl-draft").addEventListener("click", async () => {
  const name = $("tpl-name").value;
  try {
    editor.draft = await api(`/templates/${encodeURIComponent(name)}/draft`, { method: "PUT", body: { body: $("tpl-body").value, note: $("tpl-note").value } });
    editor.stored = editor.draft.body;
    showDraftState();
    toast(`Draft of "${name}" saved: not live; renders still use v${editor.version}`);
  } catch (error) {
    toast(`Draft not saved: ${error.message}`, "error");
  }
});

$("tpl-discard").addEventListener("click", async () => {
  const name = $("tpl-name").value;
  if (!confirm(`Discard the draft of "${name}"? The editor goes back to the live v${editor.version}.`)) return;
  try {
    await api(`/templates/${encodeURIComponent(name)}/draft`, { method: "DELETE" });
    $("tpl-note").value = "";
    await loadTemplate();
    toast(`Draft of "${name}" discarded`);
  } catch (error) {
    toast(`Draft not discarded: ${error.message}`, "error");
  }
});

// ---- listening to the narration -------------------------------------------------------------

const usd = (cents) => `$${(cents / 100).toFixed(cents < 100 ? 4 : 2)}`;

/** What synthesising a video's narration costs, in words. */
function speechWords(cost) {
  if (!cost.hosted) return `Spoken by ${cost.engine}, the local engine: listening costs nothing.`;
  const price = cost.cents == null ? "billed per character at your account's price" : `about ${usd(cost.cents)}`;
  return `Spoken by ${cost.engine}, a hosted engine: ${cost.characters.toLocaleString()} characters, ${price}, each time you listen or measure.`;
}

/** Before a hosted engine is paid: asks, with the price. True: go ahead. */
async function speechAllowed(videos, doing) {
  const hosted = videos.filter((v) => v.speech.hosted);
  if (!hosted.length) return true;
  const characters = hosted.reduce((sum, v) => sum + v.speech.characters, 0);
  const priced = hosted.every((v) => v.speech.cents != null);
  const cents = hosted.reduce((sum, v) => sum + (v.speech.cents || 0), 0);
  const engines = [...new Set(hosted.map((v) => v.speech.engine))].join(", ");
  return confirm(`${doing} sends ${characters.toLocaleString()} characters to ${engines} (hosted), which bills for them: `
    + `${priced ? `about ${usd(cents)}` : "at your account's price per character"}. Go ahead?`);
}

/** Synthesises one video's narration (as the speak step would) and plays it in its card. */
async function listen(video, card) {
  if (!(await speechAllowed([video], "Listening"))) return;
  const button = card.querySelector("button.listen");
  const status = card.querySelector(".listen-state");
  button.disabled = true;
  status.textContent = "synthesising…";
  try {
    const response = await api("/preview/narration", { method: "POST", body: { ...previewRequest(false), video: video.key }, raw: true });
    const seconds = response.headers.get("x-narration-seconds");
    const audio = card.querySelector("audio") || card.querySelector(".listen-box").appendChild(el("audio", { controls: "", "aria-label": `Narration of ${video.key || "the video"}` }));
    if (audio.src) URL.revokeObjectURL(audio.src);
    audio.src = URL.createObjectURL(await response.blob());
    status.textContent = `${seconds} s as synthesised`;
    audio.play().catch(() => {});
  } catch (error) {
    status.textContent = "";
    toast(`Could not synthesise the narration: ${error.message}`, "error");
  } finally {
    button.disabled = !canEdit();
  }
}
