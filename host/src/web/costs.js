// The workspace's Costs page: spending per day, the budget, and what N events would cost. Loaded after app.js.
"use strict";

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

