// The editors' workspace in Debian's headless Chromium, driven by playwright-core over CDP.
// tests/workspace.rs starts vidhook and runs this with BASE (the host), EDITOR and VIEWER tokens,
// SECRET (the sources' Standard Webhooks secret), SHOTS (where the screenshots go), REVOKABLE (an
// editor token) and REVOKE (the command line, as JSON, that revokes it).
// Exits non-zero with the failed step's message; each step logs one line.
import { chromium } from "playwright-core";
import { createHmac } from "node:crypto";
import { mkdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { execFileSync } from "node:child_process";

const { BASE, EDITOR, VIEWER, SECRET, SHOTS, REVOKABLE, REVOKE } = process.env;
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
mkdirSync(SHOTS, { recursive: true });
const step = (text) => console.log(`step: ${text}`);
const AXE = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");

function check(condition, message) {
  if (!condition) throw new Error(message);
}

/** A signed Standard Webhooks publish, as a CMS sends it. */
async function publish(source, id, title) {
  const body = JSON.stringify({
    type: "content.published", timestamp: new Date().toISOString(),
    data: { id, title, body_html: `<p>${title} is published today. It has a short body.</p>`, locale: "en-US", revision: 1,
            url: `https://cms.example.com/posts/${id}` },
  });
  const msgId = `msg_${id}`;
  const timestamp = Math.floor(Date.now() / 1000).toString();
  const key = Buffer.from(SECRET.replace(/^whsec_/, ""), "base64");
  const signature = createHmac("sha256", key).update(`${msgId}.${timestamp}.${body}`).digest("base64");
  const response = await fetch(`${BASE}/hooks/${source}`, {
    method: "POST", body,
    headers: { "content-type": "application/json", "webhook-id": msgId, "webhook-timestamp": timestamp, "webhook-signature": `v1,${signature}` },
  });
  check(response.status === 202, `publish ${id}: ${response.status} ${await response.text()}`);
}

/** No horizontal scrolling at the page's width. */
async function fits(page, label) {
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  check(overflow <= 0, `${label}: ${overflow}px of horizontal scrolling`);
}

/** axe-core's rules (WCAG 2.x A and AA) on the page as it is: no violation. The page runs in a
 * context that bypasses the page's CSP only so that axe's script can be added. */
async function accessible(page, label) {
  await page.addScriptTag({ content: AXE });
  const violations = await page.evaluate(async () => {
    const result = await window.axe.run(document, { runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"] } });
    return result.violations.map((v) => `${v.id} (${v.impact}): ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`);
  });
  check(violations.length === 0, `${label}: axe reports ${violations.join("; ")}`);
}

/** WCAG's contrast ratio of two computed CSS colours ("rgb(r, g, b)"). */
function contrast(a, b) {
  const luminance = (css) => {
    const [r, g, b] = css.match(/[\d.]+/g).slice(0, 3).map((v) => {
      const c = Number(v) / 255;
      return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x);
  return (hi + 0.05) / (lo + 0.05);
}

async function shot(page, name) {
  await page.screenshot({ path: `${SHOTS}/${name}.png`, fullPage: true });
}

/** Waits until a render of `entry` is in the list in `state`, without reloading the page. */
async function renderIn(page, entry, state, timeout = 90_000) {
  const item = page.locator(`li.render[data-state="${state}"]`, { hasText: `/ ${entry}` });
  await item.first().waitFor({ timeout });
  return item.first();
}

async function videoPlays(item, label) {
  const video = item.locator("video");
  await video.waitFor();
  const ready = await video.evaluate(async (element) => {
    element.muted = true;
    await element.play().catch(() => {});
    const started = Date.now();
    while (element.readyState < 2 && Date.now() - started < 20_000) await new Promise((r) => setTimeout(r, 100));
    return { readyState: element.readyState, error: element.error && element.error.message, src: element.currentSrc };
  });
  check(ready.readyState >= 2, `${label}: the video did not load: ${JSON.stringify(ready)}`);
}

const browser = await chromium.launch({
  executablePath: CHROMIUM,
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
         "--autoplay-policy=no-user-gesture-required"],
});
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  const problems = [];
  page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
  // Answers the steps provoke on purpose (401: the session check before sign-in; 422: the
  // strict-mode error) are not problems; anything else the console reports is.
  const expected = /Failed to load resource: .* status of (401|422) /;
  page.on("console", (message) => {
    if (message.type() === "error" && !expected.test(message.text())) problems.push(`console: ${message.text()}`);
  });

  step("sign in with an editor token, by keyboard");
  await page.goto(BASE);
  await page.locator("#token").waitFor();
  await shot(page, "1-sign-in");
  await page.locator("#token").focus();
  await page.keyboard.type(EDITOR);
  await page.keyboard.press("Enter");
  await page.locator("#who", { hasText: "(editor)" }).waitFor();
  const cookies = await context.cookies();
  const session = cookies.find((c) => c.name === "vidhook_session");
  check(session && session.httpOnly && session.sameSite === "Strict", `session cookie: ${JSON.stringify(session)}`);
  check(await page.evaluate(() => document.cookie) === "", "page scripts cannot read the session");

  step("focus is visible on the dark header: the ring's contrast with it is at least 3:1");
  await page.locator("#nav a").first().focus();
  await page.keyboard.press("Shift+Tab");
  await page.keyboard.press("Tab");
  const ring = await page.evaluate(() => {
    const focused = document.activeElement;
    const style = getComputedStyle(focused);
    return { visible: focused.matches(":focus-visible"), in: focused.closest("header") !== null, color: style.outlineColor,
      style: style.outlineStyle, width: parseFloat(style.outlineWidth), header: getComputedStyle(document.querySelector("header.top")).backgroundColor };
  });
  const ratio = contrast(ring.color, ring.header);
  console.log(`focus ring on the header: ${ring.color} on ${ring.header}, ${ratio.toFixed(2)}:1, ${ring.width}px ${ring.style}`);
  check(ring.visible && ring.in && ring.style !== "none" && ring.width >= 2 && ratio >= 3, `focus ring: ${JSON.stringify(ring)}, ${ratio.toFixed(2)}:1`);

  step("the template list fits the source, and says templates are shared");
  const names = await page.locator("#tpl-name option").evaluateAll((options) => options.map((o) => o.value));
  check(!names.includes("digest"), `"digest" is not offered for a source without a digest: ${names}`);
  check((await page.locator("#tpl-scope").textContent()).includes("every source"), "the scope is said");

  step("edit a template and watch the preview follow");
  const script = page.getByTestId("script").first();
  await script.waitFor();
  const before = await script.textContent();
  const body = page.locator("#tpl-body");
  await body.click();
  await page.keyboard.press("Control+A");
  await page.keyboard.type("Breaking news: {{title}}. {{body}}");
  await page.waitForFunction(() => document.querySelector("[data-testid=script]")?.textContent.startsWith("Breaking news:"));
  check((await script.textContent()) !== before, "the preview changed");
  check(await page.locator("#tpl-highlight .hb-expr").count() >= 2, "{{…}} are highlighted");
  check(!(await page.locator(".bar.over").count()), "a short script fits");
  await fits(page, "templates at 1280px");
  await shot(page, "2-templates");

  step("the fields the plugins give this template are listed, and offered after {{");
  await page.locator("#tpl-fields summary").click();
  await page.locator("#fields-list button", { hasText: "title" }).first().waitFor();
  const listed = await page.locator("#fields-list button").allTextContents();
  check(listed.includes("title") && listed.includes("body"), `the fields are listed: ${listed}`);
  await body.click();
  await page.keyboard.press("Control+End");
  await page.keyboard.type(" {{ti");
  await page.locator("#tpl-complete li", { hasText: "title" }).first().waitFor();
  check(await body.getAttribute("aria-activedescendant") === "complete-0", "the first completion is the active one");
  await shot(page, "2b-templates-fields");
  await page.keyboard.press("Enter");
  check((await body.inputValue()).endsWith("{{title}}"), `completed and closed: ${await body.inputValue()}`);
  check(await page.locator("#tpl-complete").isHidden(), "the list closes once a field is chosen");
  await page.waitForFunction(() => /A sample article\s*$/.test(document.querySelector("[data-testid=script]")?.textContent || ""));
  await page.locator("#tpl-fields summary").click();

  step("listen to the narration: the local engine is free, and it plays");
  check((await page.getByTestId("speech-cost").first().textContent()).includes("costs nothing"), "the local engine's price is said");
  await page.getByRole("button", { name: "Listen to the narration" }).first().click();
  const audio = page.locator(".listen-box audio").first();
  await audio.waitFor({ timeout: 30_000 });
  const heard = await audio.evaluate(async (element) => {
    const started = Date.now();
    while (!(element.duration > 0) && Date.now() - started < 20_000) await new Promise((r) => setTimeout(r, 100));
    return { duration: element.duration, src: element.src, error: element.error && element.error.message };
  });
  check(heard.duration > 1 && heard.src.startsWith("blob:"), `the narration plays: ${JSON.stringify(heard)}`);
  check((await page.locator(".listen-state").first().textContent()).includes("s as synthesised"), "its measured length is said");

  step("a hosted engine's price is said before it is spent; declining sends nothing");
  await page.locator("#tpl-source").selectOption("hosted");
  const price = page.getByTestId("speech-cost").filter({ hasText: "hosted engine" }).first();
  await price.waitFor();
  check(/characters, about \$[\d.]+/.test(await price.textContent()), `the price: ${await price.textContent()}`);
  let priced = "";
  page.once("dialog", (dialog) => { priced = dialog.message(); dialog.dismiss(); });
  await page.getByRole("button", { name: "Listen to the narration" }).first().click();
  for (let i = 0; i < 50 && !priced; i++) await page.waitForTimeout(100);
  check(priced.includes("openai") && /\$[\d.]+/.test(priced), `asked first, with the price: "${priced}"`);
  await page.waitForTimeout(500);
  check(await page.locator(".listen-box audio").count() === 0, "nothing was synthesised");

  step("a script past the limit turns the duration bar red");
  // A chain that assumes 400 words a minute fits 300 words into its 51 s; the engine speaks 175.
  await page.locator("#tpl-source").selectOption("paced");
  await body.click();
  await page.keyboard.press("Control+A");
  await page.keyboard.type(`{{title}}. ${"This sentence makes the narration much longer than a minute. ".repeat(30)}`);
  await page.locator(".bar.over").waitFor();
  check((await page.getByTestId("duration").textContent()).includes("too long"), "says too long");
  await shot(page, "3-templates-too-long");

  step("a strict-mode error says where, in plain words; the line is marked and the stale preview greyed");
  await page.keyboard.press("Control+A");
  await page.keyboard.type("{{title}}\n{{nosuchfield}}");
  await page.locator("#tpl-error", { hasText: "Line 2, column 1" }).waitFor();
  const said = await page.locator("#tpl-error").textContent();
  check(said.includes('no field "nosuchfield"') && !said.includes("Some("), `plain words: ${said}`);
  check(await page.locator('#tpl-highlight mark.line-error[data-line="2"]').count() === 1, "line 2 is marked in the editor");
  check(await page.locator("#preview.stale").count() === 1, "the stale preview is greyed out");
  check((await page.locator("#preview-state").textContent()).includes("out of date"), "and labelled out of date");
  await shot(page, "3b-templates-error");

  step("save a version");
  await page.keyboard.press("Control+A");
  await page.keyboard.type("{{title}}. {{body}}");
  await page.locator("#tpl-error:empty").waitFor();
  check(await page.locator("#preview.stale").count() === 0, "a fixed template's preview is current again");
  await page.locator("#tpl-note").fill("Title first, then the body");
  await page.locator("#tpl-save").click();
  await page.locator("#tpl-saved", { hasText: "Published as v2" }).waitFor();
  await page.locator(".toast", { hasText: "as v2" }).waitFor();
  await page.locator("#tpl-history summary").click();
  const v2 = page.locator('#tpl-versions li[data-version="2"]');
  check((await v2.textContent()).includes("by editor-") && (await v2.textContent()).includes("Title first, then the body"),
    `the version says who and why: ${await v2.textContent()}`);
  await page.locator('#tpl-versions li[data-version="1"]').getByRole("button", { name: "roll back" }).click();
  await page.locator(".toast", { hasText: "Rolled back to v1" }).waitFor();
  check((await page.locator('#tpl-versions li[data-version="3"]').textContent()).includes("restores v1"), "a rollback is recorded as one");
  await page.locator('#tpl-versions li[data-version="2"]').getByRole("button", { name: "roll back" }).click();
  await page.locator(".toast", { hasText: "Rolled back to v2" }).waitFor();
  await page.locator("#tpl-history summary").click();

  step("an unsaved draft is not discarded without asking; the saved text again is not 'unsaved'");
  await body.click();
  await page.keyboard.press("Control+A");
  await page.keyboard.type("{{title}}. {{body}} A draft.");
  await page.locator("#tpl-saved", { hasText: "unsaved changes" }).waitFor();
  await page.keyboard.press("Control+A");
  await page.keyboard.type("{{title}}. {{body}}");
  check(await page.locator("#tpl-saved").textContent() === "", "the saved text is not an unsaved change");
  await page.keyboard.type(" A draft.");
  const current = await page.locator("#tpl-name").inputValue();
  const other = await page.locator("#tpl-name option").evaluateAll((options, now) => options.map((o) => o.value).find((v) => v !== now), current);
  let asked = "";
  page.once("dialog", (dialog) => { asked = dialog.message(); dialog.dismiss(); });
  await page.locator("#tpl-name").selectOption(other);
  await page.waitForFunction((now) => document.querySelector("#tpl-name").value === now, current);
  check(asked.includes("unsaved"), `asked before discarding: "${asked}"`);
  check((await body.inputValue()).endsWith("A draft."), "the draft is kept");
  await body.click();
  await page.keyboard.press("Control+A");
  await page.keyboard.type("{{title}}. {{body}}");

  step("edit the source's pronunciation lexicon in the page");
  await page.locator("#lexicon summary").click();
  await page.locator("#lex-term").fill("vidhook");
  await page.locator("#lex-spoken").fill("vid hook");
  await page.getByRole("button", { name: "Add or replace" }).click();
  const row = page.locator("#lex-rows tr", { hasText: "vid hook" });
  await row.waitFor();
  await page.locator(".toast", { hasText: "is now said" }).waitFor();
  await page.locator("#lex-term").fill("x");
  await page.locator("#lex-spoken").fill("y");
  await page.locator("#lex-locale").fill("not a locale!");
  await page.getByRole("button", { name: "Add or replace" }).click();
  await page.locator("#lex-error:not(:empty)").waitFor();
  await row.getByRole("button", { name: "Remove vidhook" }).click();
  await row.waitFor({ state: "detached" });
  await page.locator("#lex-locale").fill("");

  step("a draft is saved without going live, is what the editor opens after a reload, then is published");
  const template = await page.locator("#tpl-name").inputValue();
  const versionsOf = () => page.evaluate((name) => fetch(`/api/v1/templates/${name}/versions`).then((r) => r.json()), template);
  const liveBefore = (await versionsOf())[0].version;
  await body.click();
  await page.keyboard.press("Control+A");
  await page.keyboard.type("{{title}}. A draft that is not live yet. {{body}}");
  await page.waitForFunction(() => document.querySelector("[data-testid=script]")?.textContent.includes("A draft that is not live yet"));
  await page.locator("#tpl-note").fill("Trying a new opening");
  await page.locator("#tpl-draft").click();
  await page.locator(".toast", { hasText: "saved: not live" }).waitFor();
  check((await page.locator("#tpl-draft-state").textContent()).includes("not live"), "the page says the draft is not live");
  check(await page.locator("#tpl-saved").textContent() === "", "a saved draft is not an unsaved change");
  check((await versionsOf())[0].version === liveBefore, "saving a draft made no version");
  await shot(page, "2c-templates-draft");
  await page.reload();
  await page.locator("#tpl-draft-state", { hasText: "not live" }).waitFor();
  check((await body.inputValue()).includes("A draft that is not live yet"), "after a reload the editor opens the draft");
  await page.locator("#tpl-save").click();
  await page.locator(".toast", { hasText: `as v${liveBefore + 1}` }).waitFor();
  check((await page.locator("#tpl-draft-state").textContent()).startsWith("Live: v"), "a published draft is no longer a draft");
  const drafts = await page.evaluate(() => fetch("/api/v1/templates/drafts").then((r) => r.json()));
  check(drafts.length === 0, `no draft is left: ${JSON.stringify(drafts)}`);

  step("publish a sample event and watch its render reach done without reloading");
  await page.locator("#nav a[data-page=renders]").click();
  await page.locator("#live", { hasText: "live" }).waitFor();
  const loads = await page.evaluate(() => performance.getEntriesByType("navigation").length);
  await publish("blog", "browser-1", "A browser test article");
  const done = await renderIn(page, "browser-1", "done");
  check(await page.evaluate(() => performance.getEntriesByType("navigation").length) === loads, "no reload");
  await videoPlays(done, "the finished video");
  await fits(page, "renders at 1280px");
  await shot(page, "4-renders-done");

  step("a render at a glance: its title, when, poster and captions; its own page with step durations and labelled provenance");
  const title = done.getByRole("link", { name: "A browser test article" });
  check(await title.count() === 1, "the card is titled by the entry's title");
  check(await done.locator("time").count() === 1, "and says when");
  check(await done.locator("video[poster]").count() === 1, "the player shows a poster");
  check(await done.locator("video track[kind=captions]").count() === 1, "and has a captions track");
  await title.click();
  await page.locator("#render-title", { hasText: "A browser test article" }).waitFor();
  check(await page.evaluate(() => location.hash.startsWith("#/renders/")), "at its own URL");
  check(await page.getByTestId("step-duration").count() >= 5, "each step with its duration");
  check((await page.locator("#render-detail dl.provenance").textContent()).includes("Plugins"), "provenance as labelled fields");
  check((await page.getByTestId("entry-link").getAttribute("href")) === "https://cms.example.com/posts/browser-1", "a link to the entry in its CMS");
  check((await page.getByTestId("narration").textContent()).includes("A browser test article"), "the narration");
  check(!(await page.locator("#render-detail").textContent()).includes("null"), "no empty value shows as 'null'");
  await shot(page, "4b-render-page");

  step("correct a caption on the render's page: the standard is enforced in words, a good edit is saved");
  const firstCue = page.locator('#captions-form tr[data-cue="0"] .cue-text');
  await firstCue.waitFor();
  const original = await firstCue.inputValue();
  check(original.includes("A browser test article"), `the first cue: ${original}`);
  await firstCue.fill("one\ntwo\nthree");
  await page.getByRole("button", { name: "Save captions" }).click();
  await page.locator("#captions-error", { hasText: "has 3 lines" }).waitFor();
  await page.locator('#captions-form tr[data-cue="0"] .cue-text').fill(original.replace("A browser test article", "A Browser Test Article"));
  await page.locator("#captions-note").fill("title case");
  await page.getByRole("button", { name: "Save captions" }).click();
  await page.locator(".toast", { hasText: "Captions saved as correction v1" }).waitFor();
  await page.locator("#captions-form details summary", { hasText: "Corrections (1)" }).waitFor();
  const vtt = await page.evaluate((url) => fetch(url).then((r) => r.text()), await page.locator("#render-detail video track").getAttribute("src"));
  check(vtt.includes("A Browser Test Article"), `the captions file says the correction: ${vtt}`);
  await shot(page, "4d-render-captions");
  await page.goBack();
  await page.locator("#page-renders:not([hidden])").waitFor();

  step("approve a gated render after watching its preview");
  await publish("gated", "browser-2", "An article that needs approval");
  const waiting = await renderIn(page, "browser-2", "awaiting_approval");
  await videoPlays(waiting, "the $0 preview");
  await shot(page, "5-renders-awaiting-approval");
  await waiting.locator("[data-testid=approval-cost]", { hasText: "budget left today" }).waitFor();
  check((await waiting.getByTestId("narration").textContent()).includes("An article that needs approval"), "the card shows the narration");
  await waiting.getByRole("button", { name: "Approve and pay" }).click();
  const dialog = page.locator("#decide");
  await dialog.waitFor();
  const asking = await page.locator("#decide-summary").textContent();
  check(asking.includes("credits") && asking.includes("budget left today"), `the confirmation shows cost and budget: ${asking}`);
  await shot(page, "5b-approve-confirmation");
  await page.locator("#decide-note").fill("Checked the preview");
  await dialog.getByRole("button", { name: "Approve and pay" }).click();
  await page.locator(".toast", { hasText: "Approved" }).waitFor();
  await renderIn(page, "browser-2", "done");
  await shot(page, "6-renders-approved-done");

  step("approve every render a filter shows, after one confirmation with the total");
  await publish("gated", "browser-3", "A third article");
  await publish("gated", "browser-4", "A fourth article");
  await page.locator("#r-state").selectOption("awaiting_approval");
  await renderIn(page, "browser-3", "awaiting_approval");
  await renderIn(page, "browser-4", "awaiting_approval");
  await page.locator("#r-approve-all", { hasText: "Approve all 2 shown" }).click();
  await dialog.waitFor();
  check((await page.locator("#decide-summary").textContent()).includes("in all"), "one confirmation with the total");
  await dialog.getByRole("button", { name: "Approve and pay" }).click();
  await page.locator(".toast", { hasText: "Approved 2 of 2 renders" }).waitFor();
  await page.locator("#renders-empty").waitFor();
  await page.locator("#r-state").selectOption("");
  await renderIn(page, "browser-3", "done");
  await renderIn(page, "browser-4", "done");

  step("renders as a table: poster thumbnails, sortable by each column, filtered like the cards");
  await page.locator("#r-view").selectOption("table");
  await page.locator("#r-table").waitFor();
  const titles = () => page.locator("#r-rows tr td:nth-child(2)").allTextContents();
  check((await titles()).length >= 4, `every render is a row: ${await titles()}`);
  check(await page.locator("#r-rows img.thumb").count() >= 1, "with poster thumbnails");
  const sortButton = page.getByRole("button", { name: "Title", exact: true });
  await sortButton.click();
  const ascending = await titles();
  const lower = (t) => t.toLowerCase();
  const sorted = [...ascending].sort((a, b) => (lower(a) < lower(b) ? -1 : lower(a) > lower(b) ? 1 : 0));
  check(JSON.stringify(ascending) === JSON.stringify(sorted), `sorted by title: ${ascending}`);
  check(await page.locator('th[data-column="title"]').getAttribute("aria-sort") === "ascending", "aria-sort says how");
  await sortButton.click();
  check(JSON.stringify(await titles()) === JSON.stringify([...ascending].reverse()), "and the other way on a second click");
  await page.locator("#r-state").selectOption("done");
  await page.waitForFunction(() => [...document.querySelectorAll("#r-rows tr")].every((r) => r.dataset.state === "done"));
  check((await titles()).length >= 4, "the done renders stay");
  await fits(page, "the renders table at 1280px");
  await shot(page, "4c-renders-table");
  await page.locator("#r-state").selectOption("");
  await page.locator("#r-view").selectOption("cards");

  step("costs: a chart of credits per day and the budget left");
  await page.locator("#nav a[data-page=costs]").click();
  await page.locator("#c-chart rect").first().waitFor({ state: "attached" });
  check(await page.locator("#c-chart rect").count() === 30, "30 days of bars");
  check((await page.locator("#c-left").textContent()).includes("credits"), "budget left is shown");
  await page.locator("#e-events").fill("10");
  await page.getByRole("button", { name: "Estimate" }).click();
  await page.locator("#e-result", { hasText: "videos" }).waitFor();
  const shown = await page.locator("#e-result").textContent();
  const source = await page.locator("#e-source").inputValue();
  const api = await page.evaluate((s) => fetch(`/api/v1/estimate?source=${s}&events=10`).then((r) => r.json()), source);
  check(shown.startsWith(`${api.estimate.videos} videos`) && shown.includes(`${api.estimate.paid_credits} credits`),
    `the workspace's estimate is the API's (${shown})`);
  await fits(page, "costs at 1280px");
  await shot(page, "7-costs");

  step("200 % zoom (a 640 px wide viewport at twice the pixels): still no horizontal scrolling");
  const zoomed = await browser.newContext({ viewport: { width: 640, height: 450 }, deviceScaleFactor: 2, storageState: await context.storageState() });
  const big = await zoomed.newPage();
  for (const name of ["templates", "renders", "costs"]) {
    await big.goto(`${BASE}/#/${name}`);
    await big.locator(`#page-${name}:not([hidden])`).waitFor();
    await big.waitForTimeout(500);
    await fits(big, `${name} at 200 %`);
    await shot(big, `8-zoom-200-${name}`);
  }
  await zoomed.close();

  step("a 390 × 844 phone: no sideways scrolling, chart labels readable, focus on each page's heading");
  const phoneContext = await browser.newContext({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 3, isMobile: true, hasTouch: true, storageState: await context.storageState() });
  const phone = await phoneContext.newPage();
  for (const name of ["templates", "renders", "costs"]) {
    await phone.goto(`${BASE}/#/${name}`);
    await phone.locator(`#page-${name}:not([hidden])`).waitFor();
    await phone.waitForTimeout(500);
    await fits(phone, `${name} on a phone`);
    const focused = await phone.evaluate(() => document.activeElement && document.activeElement.tagName);
    check(focused === "H1", `${name}: focus is on the page's heading, not ${focused}`);
    await shot(phone, `10-phone-${name}`);
  }
  const label = await phone.locator("#c-chart .limit-label, #c-chart .empty-note").first()
    .evaluate((e) => e.getBoundingClientRect().height);
  check(label >= 11, `chart labels are readable on a phone (${label.toFixed(1)} px tall)`);
  await phone.goto(`${BASE}/#/renders`);
  const link = phone.locator("#renders a.title").first();
  await link.waitFor();
  await phone.locator("#r-view").selectOption("table");
  await phone.locator("#r-rows tr").first().waitFor();
  await fits(phone, "the renders table on a phone");
  await shot(phone, "10-phone-renders-table");
  await phone.locator("#r-view").selectOption("cards");
  await link.click();
  await phone.locator("#render-detail dl.provenance").waitFor();
  await fits(phone, "a render's page on a phone");
  await shot(phone, "10-phone-render-page");
  await phoneContext.close();
  const phoneSignIn = await browser.newContext({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 3, isMobile: true, hasTouch: true });
  const signInPhone = await phoneSignIn.newPage();
  await signInPhone.goto(BASE);
  await signInPhone.locator("#token").waitFor();
  await fits(signInPhone, "sign-in on a phone");
  await shot(signInPhone, "10-phone-sign-in");
  await phoneSignIn.close();

  step("axe: no accessibility violation on any screen, at 1280 px and on a phone");
  for (const viewport of [{ width: 1280, height: 900 }, { width: 390, height: 844 }]) {
    const axeContext = await browser.newContext({ viewport, bypassCSP: true, storageState: await context.storageState() });
    const checked = await axeContext.newPage();
    for (const name of ["templates", "renders", "costs"]) {
      await checked.goto(`${BASE}/#/${name}`);
      await checked.locator(`#page-${name}:not([hidden])`).waitFor();
      await checked.waitForTimeout(500);
      await accessible(checked, `${name} at ${viewport.width} px`);
    }
    await checked.goto(`${BASE}/#/renders`);
    await checked.locator("#r-view").selectOption("table");
    await checked.locator("#r-rows tr").first().waitFor();
    await accessible(checked, `the renders table at ${viewport.width} px`);
    await checked.locator("#r-view").selectOption("cards");
    await axeContext.close();
  }
  const signInContext = await browser.newContext({ bypassCSP: true });
  const signIn = await signInContext.newPage();
  await signIn.goto(BASE);
  await signIn.locator("#token").waitFor();
  await accessible(signIn, "sign-in");
  await signInContext.close();

  step("a viewer cannot save a template: the button is disabled and the API answers 403");
  const viewerContext = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const viewerPage = await viewerContext.newPage();
  await viewerPage.goto(BASE);
  await viewerPage.locator("#token").fill(VIEWER);
  await viewerPage.getByRole("button", { name: "Sign in" }).click();
  await viewerPage.locator("#who", { hasText: "(viewer)" }).waitFor();
  await viewerPage.getByTestId("script").first().waitFor();
  check(await viewerPage.locator("#tpl-save").isDisabled(), "the save button is disabled for viewers");
  const status = await viewerPage.evaluate(async () => (await fetch("/api/v1/templates/script/versions", {
    method: "POST", credentials: "same-origin",
    headers: { "content-type": "application/json", "x-vidhook-csrf": "1" },
    body: JSON.stringify({ body: "{{title}}" }),
  })).status);
  check(status === 403, `a viewer's save answered ${status}`);
  await shot(viewerPage, "9-viewer-templates");
  await viewerContext.close();

  step("sign out as the editor and in as a viewer in the same tab: no editor control stays enabled");
  await page.locator("#nav a[data-page=templates]").click();
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.locator("#token").fill(VIEWER);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.locator("#who", { hasText: "(viewer)" }).waitFor();
  await page.getByTestId("script").first().waitFor();
  await page.locator("#tpl-history summary").click();
  const rollbacks = page.locator("#tpl-versions button", { hasText: "roll back" });
  await rollbacks.first().waitFor();
  for (const button of await rollbacks.all()) check(await button.isDisabled(), "roll back is disabled for a viewer");
  check(await page.locator("#tpl-save").isDisabled(), "save is disabled for a viewer");
  check(await body.evaluate((e) => e.readOnly), "a viewer's editor is read-only");
  check(await page.locator("#tpl-draft").isDisabled(), "a viewer cannot save a draft");
  check(await page.getByRole("button", { name: "Listen to the narration" }).first().isDisabled(), "nor listen (a hosted engine bills it)");
  check(await page.locator("#tpl-role-note").isVisible(), "and the page says why");
  check(await page.locator("#lex-form button").isDisabled(), "a viewer cannot change the lexicon");
  check((await page.locator("#token-help").textContent()).includes("--name NAME"), "the sign-in help's command works");

  step("a token revoked mid-session: the page says so and asks to sign in again");
  const revoked = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const revokedPage = await revoked.newPage();
  await revokedPage.goto(`${BASE}/#/renders`);
  await revokedPage.locator("#token").fill(REVOKABLE);
  await revokedPage.getByRole("button", { name: "Sign in" }).click();
  await revokedPage.locator("#live", { hasText: "live" }).waitFor();
  const [command, ...args] = JSON.parse(REVOKE);
  execFileSync(command, args);
  await revokedPage.locator("#sign-in-error", { hasText: "session has ended" }).waitFor({ timeout: 30_000 });
  check(await revokedPage.locator("#page-sign-in").isVisible(), "back at sign-in");
  check(await revokedPage.locator("#renders li").count() === 0, "nothing of the revoked session stays on the page");
  await revoked.close();

  check(problems.length === 0, `the page reported problems:\n${problems.join("\n")}`);
  console.log("browser: all steps passed");
} catch (error) {
  console.error(`browser: FAILED: ${error.stack || error}`);
  process.exitCode = 1;
  // What the page showed when it failed: a screenshot and its messages.
  for (const [i, context] of browser.contexts().entries()) {
    for (const [j, page] of context.pages().entries()) {
      await page.screenshot({ path: `${SHOTS}/failed-${i}-${j}.png`, fullPage: true }).catch(() => {});
      const said = await page.evaluate(() => [...document.querySelectorAll(".error, #preview, #preview-state")]
        .map((e) => `${e.id || e.className}: ${e.textContent}`).join("\n")).catch(() => "");
      console.error(`page ${i}-${j}:\n${said}`);
    }
  }
} finally {
  await browser.close();
}
