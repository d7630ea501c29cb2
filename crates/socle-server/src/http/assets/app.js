// socle's web UI: a single page over the JSON API (no framework, nothing from the network
// but this server). Every text from the API goes into the page as text, never as HTML.
"use strict";

const state = { me: null, csrf: null, timer: null, lastQuery: null, oneTime: null };

// ---- small helpers -------------------------------------------------------------------

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

function svg(tag, attrs, ...children) {
  const el = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, v);
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

class ApiError extends Error {
  constructor(status, message, code) { super(message); this.status = status; this.code = code; }
}

async function api(path, options = {}) {
  const init = { method: options.method || "GET", headers: {}, credentials: "same-origin" };
  if (options.body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(options.body);
  }
  if (init.method !== "GET" && state.csrf) init.headers["X-CSRF-Token"] = state.csrf;
  const resp = await fetch(path, init);
  if (options.raw && resp.ok) return resp;
  const type = resp.headers.get("content-type") || "";
  const data = type.includes("json") ? await resp.json() : await resp.text();
  if (!resp.ok) {
    if (resp.status === 401 && path !== "/api/login") showLogin();
    const code = data && data.code;
    if (code === "password_change_required") showPassword();
    throw new ApiError(resp.status, (data && data.error) || resp.statusText, code);
  }
  return data;
}

function can(role) {
  const order = ["viewer", "analyst", "editor", "admin"];
  return state.me && order.indexOf(state.me.role) >= order.indexOf(role);
}

function ago(iso) {
  if (!iso) return "never";
  const s = (Date.now() - Date.parse(iso)) / 1000;
  if (s < 60) return `${Math.max(0, Math.round(s))} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} d ago`;
}

function duration(ms) {
  if (ms === null || ms === undefined) return "";
  if (ms < 1000) return `${ms} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)} s`;
  return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
}

function num(n) { return n === null || n === undefined ? "–" : Number(n).toLocaleString("en"); }

function badge(stateName) {
  return h("span", { class: `badge st-${stateName}` }, stateName.replace("_", " "));
}

function errorBox(e) {
  return h("p", { class: "error", role: "alert" }, e.message || String(e));
}

function view() { return document.getElementById("view"); }

function render(title, ...content) {
  document.title = `${title} · socle`;
  const v = view();
  v.replaceChildren(...content.flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false));
}

function setActive(name) {
  for (const a of document.querySelectorAll("#nav a")) {
    if (a.dataset.view === name) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
}

// ---- sign-in -------------------------------------------------------------------------

function showLogin() {
  state.me = null;
  document.getElementById("nav").hidden = true;
  document.getElementById("search-form").hidden = true;
  document.getElementById("who").replaceChildren();
  view().replaceChildren();
  document.getElementById("password").hidden = true;
  document.getElementById("login").hidden = false;
  document.getElementById("login-user").focus();
}

async function signIn(ev) {
  ev.preventDefault();
  const out = document.getElementById("login-error");
  out.textContent = "";
  try {
    const r = await api("/api/login", {
      method: "POST",
      body: {
        username: document.getElementById("login-user").value,
        password: document.getElementById("login-password").value,
      },
    });
    state.csrf = r.csrf_token;
    // Kept in memory only until the new password is set (the API asks for it).
    state.oneTime = r.must_change_password ? document.getElementById("login-password").value : null;
    document.getElementById("login-password").value = "";
    await start();
  } catch (e) {
    out.textContent = e.message;
  }
}

// A session opened with a one-time password: nothing else until a new one is set.
function showPassword() {
  clearInterval(state.timer);
  state.timer = null;
  document.getElementById("nav").hidden = true;
  document.getElementById("search-form").hidden = true;
  document.getElementById("login").hidden = true;
  view().replaceChildren();
  // After a reload the one-time password is not in memory: ask for it.
  const ask = state.oneTime === null;
  document.getElementById("password-current").hidden = !ask;
  document.getElementById("password-current").required = ask;
  document.getElementById("password-current-label").hidden = !ask;
  document.getElementById("password").hidden = false;
  document.getElementById(ask ? "password-current" : "password-new").focus();
}

async function setPassword(ev) {
  ev.preventDefault();
  const out = document.getElementById("password-error");
  out.textContent = "";
  const fresh = document.getElementById("password-new").value;
  if (fresh !== document.getElementById("password-again").value) {
    out.textContent = "The two new passwords differ.";
    return;
  }
  try {
    await api("/api/password", {
      method: "POST",
      body: { current: state.oneTime ?? document.getElementById("password-current").value, new: fresh },
    });
    state.oneTime = null;
    for (const id of ["password-current", "password-new", "password-again"]) document.getElementById(id).value = "";
    document.getElementById("password").hidden = true;
    await start();
  } catch (e) {
    out.textContent = e.message;
  }
}

async function signOut() {
  try { await api("/api/logout", { method: "POST" }); } catch (e) { /* signed out anyway */ }
  state.csrf = null;
  state.oneTime = null;
  document.getElementById("password").hidden = true;
  showLogin();
}

async function start() {
  try {
    state.me = await api("/api/me");
  } catch (e) {
    showLogin();
    return;
  }
  if (state.me.csrf_token) state.csrf = state.me.csrf_token;
  document.getElementById("login").hidden = true;
  const signOutButton = h("button", { type: "button", id: "sign-out", onclick: signOut }, "Sign out");
  if (state.me.must_change_password && state.me.via === "session") {
    document.getElementById("who").replaceChildren(h("span", {}, state.me.user), signOutButton);
    showPassword();
    return;
  }
  document.getElementById("nav").hidden = false;
  document.getElementById("search-form").hidden = false;
  document.getElementById("who").replaceChildren(
    h("span", {}, `${state.me.user} · ${state.me.role} · ${state.me.project}`),
    signOutButton,
  );
  route();
}

// ---- router --------------------------------------------------------------------------

function route() {
  if (!state.me) return;
  clearInterval(state.timer);
  state.timer = null;
  const hash = location.hash.replace(/^#/, "") || "/pipelines";
  const [path, query] = hash.split("?");
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  const params = new URLSearchParams(query || "");
  const go = {
    pipelines: () => pipelinesView(),
    runs: () => runView(parts[1]),
    catalog: () => catalogView(),
    tables: () => tableView(parts[1], parts[2]),
    sql: () => sqlView(),
    search: () => searchView(params.get("q") || ""),
  }[parts[0]];
  setActive(parts[0] === "runs" ? "pipelines" : parts[0] === "tables" ? "catalog" : parts[0]);
  (go || (() => render("Not found", h("h1", {}, "No such page"))))().catch((e) =>
    render("Error", errorBox(e)));
  document.getElementById("main").focus({ preventScroll: true });
}

// ---- pipelines: the grid -------------------------------------------------------------

async function pipelinesView() {
  if (!can("analyst")) {
    render("Pipelines", h("h1", {}, "Pipelines"),
      h("p", {}, "Pipelines and runs need the analyst role. The catalog is open to you."));
    return;
  }
  const list = await api("/api/pipelines");
  const sections = [];
  for (const p of list) {
    const detail = await api(`/api/pipelines/${encodeURIComponent(p.name)}?runs=25`);
    sections.push(pipelineSection(detail));
  }
  render("Pipelines", h("h1", {}, "Pipelines"),
    list.length ? sections : h("p", {}, "No pipelines yet: add one under pipelines/."));
  const running = list.some((p) => (p.recent_runs || []).some((r) => r.state === "running" || r.state === "queued"));
  if (running) state.timer = setInterval(() => { if (location.hash.startsWith("#/pipelines") || !location.hash) route(); }, 2000);
}

function pipelineSection(p) {
  const runs = p.runs || [];
  // Tasks in dependency order (by depth, then name), as the grid reads top to bottom.
  const deps = new Map(p.tasks.map((t) => [t.name, t.depends_on || []]));
  const depth = new Map();
  const depthOf = (n, seen = new Set()) => {
    if (depth.has(n)) return depth.get(n);
    if (seen.has(n)) return 0;
    seen.add(n);
    const d = Math.max(-1, ...(deps.get(n) || []).map((x) => depthOf(x, seen))) + 1;
    depth.set(n, d);
    return d;
  };
  const taskNames = p.tasks.map((t) => t.name).sort((a, b) => depthOf(a) - depthOf(b) || a.localeCompare(b));
  const head = h("tr", {}, h("th", { scope: "col" }, "task"),
    runs.map((r) => h("th", { scope: "col", class: "run-head" },
      h("a", { href: `#/runs/${encodeURIComponent(r.run_id)}`, title: `${r.run_id} · ${r.state}`, "aria-label": `run ${r.run_id}, ${r.state}` },
        h("span", { class: `cell st-${r.state}` }, "")))));
  const rows = taskNames.map((name) => h("tr", {},
    h("th", { scope: "row" }, name),
    runs.map((r) => {
      const t = (r.tasks || []).find((x) => x.task === name);
      const st = t ? t.state : "none";
      return h("td", {},
        h("a", { href: `#/runs/${encodeURIComponent(r.run_id)}`, class: `cell st-${st}`, "data-state": st,
          title: `${name} · ${st}${t && t.duration_ms !== null ? " · " + duration(t.duration_ms) : ""} · ${r.logical_date}`,
          "aria-label": `${name} in run ${r.run_id}: ${st}` }, ""));
    })));
  const actions = [];
  if (can("editor")) {
    const date = h("input", { type: "date", id: `date-${p.name}`, "aria-label": `logical date for ${p.name} (empty: latest interval)` });
    const out = h("span", { class: "note", role: "status" });
    actions.push(h("form", { class: "trigger", onsubmit: async (ev) => {
      ev.preventDefault();
      out.textContent = "starting…";
      try {
        const r = await api(`/api/pipelines/${encodeURIComponent(p.name)}/trigger`, {
          method: "POST", body: date.value ? { date: date.value } : {},
        });
        location.hash = `#/runs/${encodeURIComponent(r.run_id)}`;
      } catch (e) { out.textContent = e.message; }
    } }, date, h("button", { type: "submit", class: "primary", "data-trigger": p.name }, `Trigger ${p.name}`), out));
  }
  return h("section", { class: "pipeline", "data-pipeline": p.name },
    h("h2", {}, p.name),
    h("p", { class: "note" }, p.description || "",
      p.schedule ? ` · ${p.schedule} (${p.timezone})` : " · no schedule",
      p.next_run ? ` · next ${new Date(p.next_run).toLocaleString()}` : ""),
    actions,
    runs.length
      ? h("div", { class: "scroll" }, h("table", { class: "grid", "aria-label": `runs of ${p.name} by task` },
        h("thead", {}, head), h("tbody", {}, rows)))
      : h("p", {}, "No runs yet."),
    legend());
}

function legend() {
  return h("p", { class: "legend" }, ["success", "running", "failed", "upstream_failed", "up_for_retry", "skipped", "queued"].map((s) =>
    h("span", {}, h("span", { class: `cell st-${s}` }, ""), ` ${s.replace("_", " ")} `)));
}

// ---- one run: Gantt and logs ---------------------------------------------------------

async function runView(runId) {
  const run = await api(`/api/runs/${encodeURIComponent(runId)}`);
  const logs = await api(`/api/runs/${encodeURIComponent(runId)}/logs`);
  const actions = [];
  if (can("editor") && run.state !== "running" && run.state !== "queued" && run.state !== "success") {
    const out = h("span", { class: "note", role: "status" });
    actions.push(h("button", { type: "button", class: "primary", id: "rerun", onclick: async () => {
      out.textContent = "rerunning…";
      try {
        await api(`/api/runs/${encodeURIComponent(runId)}/rerun`, { method: "POST" });
        setTimeout(route, 500);
      } catch (e) { out.textContent = e.message; }
    } }, "Rerun failed tasks"), out);
  }
  render(`Run ${runId}`,
    h("p", {}, h("a", { href: "#/pipelines" }, "← Pipelines")),
    h("h1", {}, run.run_id, " ", h("span", { id: "run-state", "data-state": run.state }, badge(run.state))),
    h("p", { class: "note" }, `${run.pipeline} · logical date ${run.logical_date} · ${run.trigger}`,
      run.started_at ? ` · started ${new Date(run.started_at).toLocaleString()}` : "",
      run.ended_at ? ` · took ${duration(Date.parse(run.ended_at) - Date.parse(run.started_at))}` : ""),
    actions,
    h("h2", {}, "Tasks"),
    gantt(run),
    h("h2", {}, "Logs"),
    logs.length ? logs.map((a) => h("details", { class: "log", open: a.state !== "success" },
      h("summary", {}, `${a.task} · try ${a.try_number} · ${a.state}${a.duration_ms !== null ? " · " + duration(a.duration_ms) : ""}`),
      h("pre", {}, a.log || "(no output)"))) : h("p", {}, "No attempts yet."));
  if (run.state === "running" || run.state === "queued") {
    state.timer = setInterval(() => { if (location.hash.startsWith("#/runs/")) route(); }, 1000);
  }
}

function gantt(run) {
  const tasks = (run.tasks || []).filter((t) => t.started_at);
  if (!tasks.length) return h("p", {}, "No task has started.");
  const t0 = Math.min(...tasks.map((t) => Date.parse(t.started_at)));
  const t1 = Math.max(...tasks.map((t) => t.ended_at ? Date.parse(t.ended_at) : Date.now()));
  const span = Math.max(1, t1 - t0);
  const rowH = 26, labelW = 150, width = 640;
  const chart = svg("svg", { viewBox: `0 0 ${labelW + width + 90} ${tasks.length * rowH + 10}`, class: "gantt", role: "img",
    "aria-label": "task durations" });
  tasks.forEach((t, i) => {
    const start = Date.parse(t.started_at) - t0;
    const end = (t.ended_at ? Date.parse(t.ended_at) : Date.now()) - t0;
    const x = labelW + (start / span) * width;
    const w = Math.max(2, ((end - start) / span) * width);
    chart.append(
      svg("text", { x: 4, y: i * rowH + 18, class: "glabel" }, t.task),
      svg("rect", { x, y: i * rowH + 5, width: w, height: rowH - 8, rx: 3, class: `bar st-${t.state}` },
        svg("title", {}, `${t.task}: ${t.state}, ${duration(t.duration_ms)}`)),
      svg("text", { x: x + w + 4, y: i * rowH + 18, class: "gdur" }, duration(t.duration_ms ?? (end - start))));
  });
  const table = h("table", { class: "data" }, h("thead", {}, h("tr", {}, ["task", "state", "try", "started", "duration", "error"].map((c) => h("th", { scope: "col" }, c)))),
    h("tbody", {}, (run.tasks || []).map((t) => h("tr", { "data-task": t.task, "data-state": t.state },
      h("td", {}, t.task), h("td", {}, badge(t.state)), h("td", {}, t.try_number),
      h("td", {}, t.started_at ? new Date(t.started_at).toLocaleTimeString() : ""),
      h("td", {}, duration(t.duration_ms)), h("td", { class: "err" }, t.error || "")))));
  return h("div", {}, h("div", { class: "scroll" }, chart), h("div", { class: "scroll" }, table));
}

// ---- catalog -------------------------------------------------------------------------

async function catalogView() {
  const [cat, sources] = await Promise.all([api("/api/tables"), api("/api/sources").catch(() => [])]);
  const filter = h("input", { type: "search", id: "table-filter", placeholder: "Filter tables", "aria-label": "Filter tables" });
  const body = h("tbody", {});
  const fill = () => {
    const f = filter.value.toLowerCase();
    body.replaceChildren(...cat.tables.filter((t) => !f || `${t.schema}.${t.name} ${t.description}`.toLowerCase().includes(f)).map((t) => {
      const tests = Object.entries(t.tests || {}).map(([s, n]) => `${n} ${s}`).join(", ");
      return h("tr", {},
        h("td", {}, h("a", { href: `#/tables/${encodeURIComponent(t.schema)}/${encodeURIComponent(t.name)}` }, `${t.schema}.${t.name}`)),
        h("td", {}, t.materialized || t.kind), h("td", { class: "num" }, num(t.rows)),
        h("td", { title: t.last_modified || "" }, t.kind === "table" ? ago(t.last_modified) : ""),
        h("td", {}, tests), h("td", { class: "desc" }, t.description));
    }));
  };
  filter.addEventListener("input", fill);
  fill();
  render("Catalog", h("h1", {}, "Catalog"),
    h("p", { class: "note" }, `${cat.tables.length} tables and views in ${cat.schemas.length} schemas · read ${ago(cat.generated_at)}`),
    filter,
    h("div", { class: "scroll" }, h("table", { class: "data", id: "tables" },
      h("thead", {}, h("tr", {}, ["table", "kind", "rows", "fresh", "tests", "description"].map((c) => h("th", { scope: "col" }, c)))), body)),
    cat.notes && cat.notes.length ? h("details", {}, h("summary", {}, `${cat.notes.length} notes`), h("ul", {}, cat.notes.map((n) => h("li", {}, n)))) : null,
    h("h2", {}, "Sources"),
    sources.length ? h("div", { class: "scroll" }, h("table", { class: "data" },
      h("thead", {}, h("tr", {}, ["source", "stream", "table", "last load", "rows", "status"].map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, sources.flatMap((s) => s.streams.map((st) => h("tr", {},
        h("td", {}, `${s.name} (${s.kind})`), h("td", {}, st.name), h("td", {}, st.table),
        h("td", {}, st.last_extraction ? ago(st.last_extraction.ended_at) : "never"),
        h("td", { class: "num" }, st.last_extraction ? num(st.last_extraction.rows_loaded) : ""),
        h("td", {}, st.last_extraction ? badge(st.last_extraction.status) : ""))))))) : h("p", {}, "No sources."));
}

async function tableView(schema, name) {
  const [t, graph] = await Promise.all([
    api(`/api/tables/${encodeURIComponent(schema)}/${encodeURIComponent(name)}`),
    api("/api/lineage"),
  ]);
  const colLineage = h("div", { id: "column-lineage", "aria-live": "polite" });
  const showColumn = (c) => {
    const l = c.lineage;
    colLineage.replaceChildren(h("h3", {}, `Where ${c.name} comes from`),
      !l ? h("p", {}, "No lineage traced for this column.") :
        !l.sources.length ? h("p", {}, `Computed without a column source (${l.transform}).`) :
          h("ul", {}, l.sources.map((s) => {
            const [sc, tb] = s.relation.split(".");
            return h("li", {}, h("a", { href: `#/tables/${encodeURIComponent(sc)}/${encodeURIComponent(tb)}` }, `${s.relation}.${s.column}`), ` (${l.transform})`);
          })));
  };
  const node = t.node;
  render(`${t.schema}.${t.name}`,
    h("p", {}, h("a", { href: "#/catalog" }, "← Catalog")),
    h("h1", {}, `${t.schema}.${t.name}`),
    h("p", {}, t.description || h("em", {}, "No description.")),
    h("dl", { class: "facts" },
      h("dt", {}, "kind"), h("dd", {}, node ? node.materialized : t.kind),
      h("dt", {}, "rows"), h("dd", { id: "row-count" }, num(t.rows)),
      h("dt", {}, "fresh"), h("dd", { title: t.last_modified || "" }, t.kind === "table" ? ago(t.last_modified) : "view"),
      h("dt", {}, "version"), h("dd", {}, t.version ?? "–"),
      node ? [h("dt", {}, "defined in"), h("dd", {}, node.path)] : null),
    h("h2", {}, "Columns"),
    h("div", { class: "scroll" }, h("table", { class: "data", id: "columns" },
      h("thead", {}, h("tr", {}, ["column", "type", "description", "tests", "lineage"].map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, t.columns.map((c) => h("tr", { "data-column": c.name },
        h("td", {}, h("code", {}, c.name)), h("td", {}, c.type), h("td", { class: "desc" }, c.description),
        h("td", {}, (c.tests || []).map((x) => h("span", { class: `badge st-${x.status}`, title: x.message }, x.name))),
        h("td", {}, h("button", { type: "button", class: "link", onclick: () => showColumn(c), "aria-label": `lineage of ${c.name}` }, "trace"))))))),
    colLineage,
    node ? [
      h("h2", {}, "Lineage"),
      lineageGraph(graph, node.id),
      node.tests && node.tests.length ? [h("h2", {}, "Tests"), h("ul", {}, node.tests.map((x) => h("li", {}, badge(x.status), " ", x.name, x.message ? ` · ${x.message}` : "")))] : null,
      node.compiled_sql ? h("details", {}, h("summary", {}, "Compiled SQL"), h("pre", {}, node.compiled_sql)) : null,
    ] : null);
}

function lineageGraph(graph, id) {
  const byId = new Map(graph.nodes.map((n) => [n.id, n]));
  const up = new Map(), down = new Map();
  const walk = (start, next, seen) => {
    const queue = [[start, 0]];
    while (queue.length) {
      const [cur, depth] = queue.shift();
      for (const n of next(cur)) {
        if (!seen.has(n) && depth < 6) { seen.set(n, depth + 1); queue.push([n, depth + 1]); }
      }
    }
  };
  walk(id, (cur) => (byId.get(cur) || {}).depends_on || [], up);
  walk(id, (cur) => graph.nodes.filter((n) => (n.depends_on || []).includes(cur)).map((n) => n.id), down);
  const columns = new Map();
  columns.set(0, [id]);
  for (const [n, d] of up) { if (!columns.has(-d)) columns.set(-d, []); columns.get(-d).push(n); }
  for (const [n, d] of down) { if (!columns.has(d)) columns.set(d, []); columns.get(d).push(n); }
  const keys = [...columns.keys()].sort((a, b) => a - b);
  const boxW = 170, boxH = 28, gapX = 40, gapY = 12;
  const tallest = Math.max(...keys.map((k) => columns.get(k).length));
  const gw = keys.length * (boxW + gapX), gh = tallest * (boxH + gapY) + 10;
  const out = svg("svg", { viewBox: `0 0 ${gw} ${gh}`, width: gw, height: gh, class: "lineage", role: "img", "aria-label": "lineage graph" });
  const pos = new Map();
  keys.forEach((k, ci) => columns.get(k).forEach((n, ri) => pos.set(n, [ci * (boxW + gapX) + 5, ri * (boxH + gapY) + 5])));
  for (const n of pos.keys()) {
    for (const d of (byId.get(n) || {}).depends_on || []) {
      if (!pos.has(d)) continue;
      const [x1, y1] = pos.get(d), [x2, y2] = pos.get(n);
      out.append(svg("path", { d: `M${x1 + boxW} ${y1 + boxH / 2} C${x1 + boxW + gapX / 2} ${y1 + boxH / 2} ${x2 - gapX / 2} ${y2 + boxH / 2} ${x2} ${y2 + boxH / 2}`, class: "edge" }));
    }
  }
  for (const [n, [x, y]] of pos) {
    const node = byId.get(n) || { name: n, kind: "" };
    const rel = node.relation || "";
    const label = node.name.length > 24 ? node.name.slice(0, 23) + "…" : node.name;
    const box = svg("g", { class: `gnode k-${node.kind}${n === id ? " current" : ""}` },
      svg("rect", { x, y, width: boxW, height: boxH, rx: 4 }),
      svg("text", { x: x + 6, y: y + 18 }, label), svg("title", {}, `${node.kind} ${node.name}`));
    if (rel && n !== id) {
      const [sc, tb] = rel.split(".");
      const a = svg("a", { href: `#/tables/${encodeURIComponent(sc)}/${encodeURIComponent(tb)}` });
      a.append(box);
      out.append(a);
    } else out.append(box);
  }
  return h("div", { class: "scroll" }, out);
}

// ---- SQL explorer --------------------------------------------------------------------

async function sqlView() {
  if (!can("analyst")) {
    render("SQL", h("h1", {}, "SQL"), h("p", {}, "Queries need the analyst role."));
    return;
  }
  const editor = h("textarea", { id: "sql-editor", rows: 8, spellcheck: "false", "aria-label": "SQL query" },
    state.lastQuery || "SELECT table_schema, table_name FROM information_schema.tables\nWHERE table_schema <> 'information_schema'\nORDER BY 1, 2");
  const status = h("p", { id: "sql-status", class: "note", role: "status" });
  const results = h("div", { id: "sql-results" });
  const chart = h("div", { id: "sql-chart" });
  let last = null;
  const run = async () => {
    state.lastQuery = editor.value;
    status.textContent = "running…";
    results.replaceChildren();
    chart.replaceChildren();
    try {
      last = await api("/api/query", { method: "POST", body: { sql: editor.value, limit: 1000 } });
      status.textContent = last.message ? last.message
        : `${num(last.row_count)} rows${last.truncated ? (last.truncated_by === "bytes" ? " (cut at the size limit)" : " (cut at the limit)") : ""} in ${last.elapsed_ms} ms${last.error ? `; then it failed: ${last.error}` : ""}`;
      results.replaceChildren(resultTable(last));
      chart.replaceChildren(chartControls(last));
    } catch (e) {
      status.textContent = "";
      results.replaceChildren(errorBox(e));
    }
  };
  const download = async () => {
    try {
      const resp = await api("/api/query?format=csv", { method: "POST", body: { sql: editor.value }, raw: true });
      const blob = await resp.blob();
      const a = h("a", { href: URL.createObjectURL(blob), download: "query.csv" });
      document.body.append(a);
      a.click();
      a.remove();
      status.textContent = "downloaded query.csv";
    } catch (e) { results.replaceChildren(errorBox(e)); }
  };
  editor.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) { ev.preventDefault(); run(); }
  });
  render("SQL", h("h1", {}, "SQL"), editor,
    h("div", { class: "toolbar" },
      h("button", { type: "button", class: "primary", id: "sql-run", onclick: run }, "Run (Ctrl+Enter)"),
      h("button", { type: "button", id: "sql-csv", onclick: download }, "Download CSV"),
      can("editor") ? h("span", { class: "note" }, "Your role may also write (CREATE, INSERT, DROP).") : h("span", { class: "note" }, "Read-only: one SELECT at a time.")),
    status, results, chart);
  editor.focus();
}

function resultTable(r) {
  if (!r.columns.length) return h("p", {}, "No rows.");
  return h("div", { class: "scroll results" }, h("table", { class: "data", id: "result-table" },
    h("thead", {}, h("tr", {}, r.columns.map((c) => h("th", { scope: "col", title: c.type }, c.name)))),
    h("tbody", {}, r.rows.map((row) => h("tr", {}, row.map((v) => h("td", { class: typeof v === "number" ? "num" : "" }, v === null ? "∅" : String(v))))))));
}

function chartControls(r) {
  if (!r.columns.length || !r.rows.length) return h("span", {});
  const numeric = r.columns.map((c, i) => i).filter((i) => r.rows.some((row) => typeof row[i] === "number" || (typeof row[i] === "string" && row[i] !== "" && !isNaN(Number(row[i])))));
  if (!numeric.length) return h("p", { class: "note" }, "No numeric column to chart.");
  const xSel = h("select", { id: "chart-x", "aria-label": "chart: labels column" }, r.columns.map((c, i) => h("option", { value: i }, c.name)));
  const ySel = h("select", { id: "chart-y", "aria-label": "chart: values column" }, numeric.map((i) => h("option", { value: i }, r.columns[i].name)));
  ySel.value = String(numeric.find((i) => i !== 0) ?? numeric[0]);
  const kind = h("select", { id: "chart-kind", "aria-label": "chart kind" }, h("option", { value: "bar" }, "bars"), h("option", { value: "line" }, "line"));
  const area = h("div", { class: "scroll" });
  const draw = () => area.replaceChildren(quickChart(r, Number(xSel.value), Number(ySel.value), kind.value));
  for (const s of [xSel, ySel, kind]) s.addEventListener("change", draw);
  draw();
  return h("section", { "aria-label": "quick chart" }, h("h2", {}, "Quick chart"),
    h("div", { class: "toolbar" }, h("label", {}, "labels ", xSel), h("label", {}, "values ", ySel), h("label", {}, "as ", kind)), area);
}

function quickChart(r, xi, yi, kind) {
  const rows = r.rows.slice(0, 500);
  const ys = rows.map((row) => Number(row[yi]) || 0);
  const max = Math.max(0, ...ys), min = Math.min(0, ...ys);
  const W = 720, H = 260, pad = 40;
  const sx = (i) => pad + (i + 0.5) * ((W - pad - 10) / rows.length);
  const sy = (v) => H - pad - ((v - min) / ((max - min) || 1)) * (H - pad - 10);
  const out = svg("svg", { viewBox: `0 0 ${W} ${H}`, class: "chart", role: "img", "aria-label": `${r.columns[yi].name} by ${r.columns[xi].name}` });
  out.append(svg("line", { x1: pad, y1: sy(0), x2: W - 10, y2: sy(0), class: "axis" }),
    svg("text", { x: 2, y: 14, class: "tick" }, num(max)), svg("text", { x: 2, y: H - pad, class: "tick" }, num(min)));
  const bw = Math.max(1, (W - pad - 10) / rows.length - 2);
  if (kind === "line") {
    out.append(svg("polyline", { points: ys.map((v, i) => `${sx(i)},${sy(v)}`).join(" "), class: "line" }));
  }
  rows.forEach((row, i) => {
    const label = String(row[xi]);
    if (kind === "bar") {
      const y0 = sy(Math.max(0, ys[i])), y1 = sy(Math.min(0, ys[i]));
      out.append(svg("rect", { x: sx(i) - bw / 2, y: y0, width: bw, height: Math.max(1, y1 - y0), class: "barv" }, svg("title", {}, `${label}: ${ys[i]}`)));
    }
    if (rows.length <= 31 || i % Math.ceil(rows.length / 12) === 0) {
      out.append(svg("text", { x: sx(i), y: H - pad + 14, class: "tick", "text-anchor": "middle" }, label.length > 10 ? label.slice(0, 10) : label));
    }
  });
  return out;
}

// ---- search --------------------------------------------------------------------------

async function searchView(q) {
  document.getElementById("search-box").value = q;
  if (!q.trim()) { render("Search", h("h1", {}, "Search"), h("p", {}, "Type in the search box.")); return; }
  const r = await api(`/api/search?q=${encodeURIComponent(q)}`);
  render(`Search: ${q}`, h("h1", {}, `Search: ${q}`),
    h("p", { class: "note" }, `${r.total} matches`),
    h("ul", { class: "hits", id: "search-hits" }, r.hits.map((x) => h("li", {},
      h("a", { href: `#/tables/${encodeURIComponent(x.schema)}/${encodeURIComponent(x.table)}` },
        x.type === "column" ? `${x.schema}.${x.table}.${x.column}` : `${x.schema}.${x.table}`),
      ` · ${x.type}${x.data_type ? " " + x.data_type : ""}`, x.description ? h("span", { class: "desc" }, ` — ${x.description}`) : ""))));
}

// ---- start ---------------------------------------------------------------------------

document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("login-form").addEventListener("submit", signIn);
  document.getElementById("password-form").addEventListener("submit", setPassword);
  document.getElementById("search-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    location.hash = `#/search?q=${encodeURIComponent(document.getElementById("search-box").value)}`;
  });
  window.addEventListener("hashchange", route);
  start();
});
