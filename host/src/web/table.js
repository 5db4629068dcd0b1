// The Renders page as a table: every render the filters show, sortable by each column, with a
// poster thumbnail. Built from the same renders the cards show (state.renders), so the live
// stream keeps it current. Loaded after renders.js.
"use strict";

/** The sort: a column and its direction. */
const sorting = { column: "when", ascending: false };

/** Each sortable column: its heading and the value rows are ordered by. */
const COLUMNS = {
  title: { label: "Title", key: (r) => (r.title || r.entry).toLowerCase() },
  source: { label: "Source", key: (r) => r.source },
  state: { label: "State", key: (r) => r.state },
  when: { label: "When", key: (r) => r.created_at },
  took: { label: "Took", key: (r) => (tookMs(r) ?? -1) },
  cost: { label: "Cost", key: (r) => r.credits },
};

/** How long a render that ended took, in ms (none while it runs or awaits approval). */
const tookMs = (r) => (r.finished_at && ENDED.includes(r.state) ? r.finished_at - r.created_at : null);

const tableView = () => $("r-view").value === "table";

/** The shown renders, as rows in the chosen order. */
function refreshTable() {
  $("renders").hidden = tableView();
  $("r-table").hidden = !tableView();
  if (!tableView()) return;
  const filterState = $("r-state").value;
  const filterSource = $("r-source").value;
  const shown = [...state.renders.values()].filter((r) =>
    (!filterState || r.state === filterState) && (!filterSource || r.source === filterSource));
  const key = COLUMNS[sorting.column].key;
  shown.sort((a, b) => {
    const [x, y] = [key(a), key(b)];
    const order = x < y ? -1 : x > y ? 1 : 0;
    return sorting.ascending ? order : -order;
  });
  $("r-rows").replaceChildren(...shown.map(tableRow));
  for (const th of $("r-table").querySelectorAll("th[data-column]")) {
    const sorted = th.dataset.column === sorting.column;
    if (sorted) th.setAttribute("aria-sort", sorting.ascending ? "ascending" : "descending");
    else th.removeAttribute("aria-sort");
  }
}

function tableRow(r) {
  const took = tookMs(r);
  return el("tr", { "data-state": r.state, "data-id": r.id },
    el("td", {}, r.poster_url ? el("img", { class: "thumb", src: r.poster_url, alt: "", loading: "lazy", width: "64", height: "36" })
      : el("span", { class: "thumb none", "aria-hidden": "true" })),
    el("td", {}, el("a", { href: `#/renders/${encodeURIComponent(r.id)}` }, r.title || r.entry)),
    el("td", {}, r.source),
    el("td", {}, el("span", { class: `badge state-${r.state}` }, r.state.replace(/_/g, " "))),
    el("td", {}, when(r.created_at)),
    el("td", {}, took == null ? el("span", { class: "muted" }, "not ended") : seconds(took)),
    el("td", { class: "number" }, `${r.credits} credits${costsCache ? ` · ${money(r.credits, costsCache)}` : ""}`));
}

/** The table's headings: each a button that sorts by it (again: the other way). */
function buildTableHead() {
  $("r-head").replaceChildren(el("th", { scope: "col" }, el("span", { class: "sr-only" }, "Poster")),
    ...Object.entries(COLUMNS).map(([column, { label }]) => el("th", { scope: "col", "data-column": column },
      el("button", { type: "button", class: "link sort", onclick: () => sortBy(column) }, label))));
}

function sortBy(column) {
  sorting.ascending = sorting.column === column ? !sorting.ascending : column !== "when";
  sorting.column = column;
  refreshTable();
}

$("r-view").addEventListener("change", () => {
  localStorage.setItem("vidhook.rendersView", $("r-view").value);
  refreshTable();
});
$("r-view").value = localStorage.getItem("vidhook.rendersView") === "table" ? "table" : "cards";
buildTableHead();
