// A render's captions on its own page: each cue's times and text, editable by editors and saved
// as a new version when they meet the standard the server holds them to. Loaded after renders.js.
"use strict";

/** The captions section of a render's page (empty until its narration is synthesised). */
async function captionsSection(id) {
  let captions;
  try {
    captions = await api(`/renders/${encodeURIComponent(id)}/captions`);
  } catch (error) {
    if (error.status === 404) return null;
    throw error;
  }
  const edit = canEdit();
  const s = captions.standard;
  const rows = captions.cues.map((cue, i) => el("tr", { "data-cue": String(i) },
    el("td", {}, String(i + 1)),
    el("td", {}, el("input", { type: "number", step: "0.001", min: "0", value: cue.start.toFixed(3), class: "cue-start",
      "aria-label": `Cue ${i + 1} starts (s)`, readonly: edit ? null : "" })),
    el("td", {}, el("input", { type: "number", step: "0.001", min: "0", value: cue.end.toFixed(3), class: "cue-end",
      "aria-label": `Cue ${i + 1} ends (s)`, readonly: edit ? null : "" })),
    el("td", {}, el("textarea", { rows: "2", class: "cue-text", "aria-label": `Cue ${i + 1} text`, readonly: edit ? null : "" }, cue.text))));
  const versions = captions.versions.map((v) => el("li", {}, `v${v.version} · by ${v.author} · `, when(v.created_at),
    v.note ? el("q", { class: "version-note" }, v.note) : ""));
  const form = el("form", { id: "captions-form", class: "captions" },
    el("p", { class: "help" }, `${captions.cues.length} cues in ${captions.language}, held to Netflix's Timed Text Style Guide: `
      + `at most ${s.lines} lines of ${s.line_chars} characters, ${(s.min_seconds).toFixed(2)} s to ${s.max_seconds} s a cue`
      + `${s.max_cps ? `, at most ${s.max_cps} characters a second` : ""}. A line break in the text is a line break on screen.`),
    el("div", { class: "table-box" }, el("table", { class: "table cues" },
      el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "#"), el("th", { scope: "col" }, "Start (s)"),
        el("th", { scope: "col" }, "End (s)"), el("th", { scope: "col" }, "Text"))),
      el("tbody", {}, ...rows))),
    edit ? el("div", { class: "actions" },
      el("label", { class: "note-field" }, "Note ", el("input", { id: "captions-note", maxlength: "500", placeholder: "what you corrected (optional)" })),
      el("button", { type: "submit" }, "Save captions")) : el("p", { class: "note" }, "Correcting captions needs an editor token."),
    captions.too_fast.length ? el("p", { class: "note", "data-testid": "too-fast" },
      `Faster than viewers read (the speech is this fast; shorter words help): ${captions.too_fast.join("; ")}.`) : null,
    el("p", { id: "captions-error", class: "error", role: "alert" }),
    versions.length ? el("details", {}, el("summary", {}, `Corrections (${versions.length})`), el("ol", { class: "versions" }, ...versions)) : null);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    saveCaptions(id, form);
  });
  return el("section", { "aria-labelledby": "captions-title" }, el("h2", { id: "captions-title" }, "Captions"), form);
}

async function saveCaptions(id, form) {
  const cues = [...form.querySelectorAll("tr[data-cue]")].map((row) => ({
    start: Number(row.querySelector(".cue-start").value),
    end: Number(row.querySelector(".cue-end").value),
    text: row.querySelector(".cue-text").value,
  }));
  $("captions-error").textContent = "";
  try {
    const saved = await api(`/renders/${encodeURIComponent(id)}/captions`, { method: "PUT", body: { cues, note: $("captions-note").value } });
    toast(`Captions saved as correction v${saved.version}: the video's caption files say so`);
    await openRender(id);
  } catch (error) {
    if (error.status === 422) $("captions-error").textContent = error.message;
    else toast(`Captions not saved: ${error.message}`, "error");
  }
}
