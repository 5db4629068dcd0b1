// The fields a template can use, as the source's plugins gave them for the selected content (the
// preview's `fields`): listed under the editor, and offered as completions after "{{". Loaded
// after templates.js.
"use strict";

/** At most this many completions are offered at once. */
const MAX_COMPLETIONS = 8;
const completion = { open: false, options: [], active: 0, start: 0 };

/** The list under the editor; `null` (the chain did not render this template for the content)
 * keeps the last list, marked as such. */
function showFields(fields) {
  if (fields) editor.fields = fields;
  $("fields-note").hidden = Boolean(fields);
  $("fields-note").textContent = fields ? "" : "The plugins did not render this template for this content: the list is from the last preview that did.";
  $("fields-count").textContent = `(${editor.fields.length})`;
  $("fields-list").replaceChildren(...editor.fields.map((f) => el("li", {},
    el("button", { type: "button", class: "link", disabled: !canEdit(), "aria-describedby": canEdit() ? null : "tpl-role-note",
      onclick: () => insertField(f.path) }, f.path),
    f.within ? el("span", { class: "muted" }, ` inside {{#each ${f.within}}}`) : null,
    el("span", { class: "muted field-example" }, ` ${f.example}`))));
}

/** Puts `{{path}}` at the caret (what clicking a listed field does). */
function insertField(path) {
  const body = $("tpl-body");
  const at = body.selectionStart;
  body.setRangeText(`{{${path}}}`, at, body.selectionEnd, "end");
  body.focus();
  body.dispatchEvent(new Event("input"));
}

/** The field name being typed after "{{" (or "{{#each ", "{{#if "…), if the caret is in one. */
function typedField() {
  const body = $("tpl-body");
  if (body.selectionStart !== body.selectionEnd) return null;
  const before = body.value.slice(0, body.selectionStart);
  const match = /\{\{\{?(?:[#^]?(?:each|if|unless|with)\s+|else\s+if\s+)?\s*([\w.]*)$/.exec(before);
  return match ? { typed: match[1], start: body.selectionStart - match[1].length } : null;
}

function closeCompletion() {
  completion.open = false;
  $("tpl-complete").hidden = true;
  $("tpl-body").removeAttribute("aria-activedescendant");
}

/** Offers the fields that start with what is typed (case aside), after "{{". */
function offerCompletion() {
  const typing = typedField();
  if (!typing || !canEdit()) return closeCompletion();
  const typed = typing.typed.toLowerCase();
  const options = editor.fields.filter((f) => f.path.toLowerCase().startsWith(typed) && f.path !== typing.typed).slice(0, MAX_COMPLETIONS);
  if (!options.length) return closeCompletion();
  Object.assign(completion, { open: true, options, active: 0, start: typing.start });
  $("tpl-complete").replaceChildren(...options.map((f, i) => el("li", { role: "option", id: `complete-${i}`,
    onmousedown: (event) => { event.preventDefault(); completion.active = i; acceptCompletion(); } },
    f.path, el("span", { class: "muted" }, ` ${f.example}`))));
  $("tpl-complete").hidden = false;
  markActive();
}

function markActive() {
  for (const [i, option] of [...$("tpl-complete").children].entries()) option.setAttribute("aria-selected", String(i === completion.active));
  $("tpl-body").setAttribute("aria-activedescendant", `complete-${completion.active}`);
}

/** Replaces what was typed with the chosen field, closing the braces if they are not yet. */
function acceptCompletion() {
  const body = $("tpl-body");
  const path = completion.options[completion.active].path;
  const closed = body.value.slice(body.selectionStart).startsWith("}}");
  body.setRangeText(closed ? path : `${path}}}`, completion.start, body.selectionStart, "end");
  closeCompletion();
  body.dispatchEvent(new Event("input"));
}

$("tpl-body").addEventListener("input", offerCompletion);
$("tpl-body").addEventListener("blur", closeCompletion);
$("tpl-body").addEventListener("keydown", (event) => {
  if (!completion.open) return;
  const moves = { ArrowDown: 1, ArrowUp: -1 };
  if (event.key in moves) {
    event.preventDefault();
    const n = completion.options.length;
    completion.active = (completion.active + moves[event.key] + n) % n;
    markActive();
  } else if (event.key === "Enter" || event.key === "Tab") {
    event.preventDefault();
    acceptCompletion();
  } else if (event.key === "Escape") {
    event.preventDefault();
    closeCompletion();
  }
});
