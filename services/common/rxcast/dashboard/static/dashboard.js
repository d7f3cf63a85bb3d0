// The dashboard page: tabs, tables and Plotly charts fed by /api/* and kept
// live by the /api/events server-sent event stream.
"use strict";

const state = { store: "", medication: "", category: "", last: {} };

function $(id) { return document.getElementById(id); }

function text(value) {
  if (value === null || value === undefined || value === "") return "–";
  if (typeof value === "number") return Number.isInteger(value) ? String(value) : value.toFixed(3);
  if (Array.isArray(value)) return value.join(", ");
  return String(value);
}

function table(element, header, rows) {
  const head = "<tr>" + header.map(h => `<th>${h}</th>`).join("") + "</tr>";
  const body = rows.map(r => "<tr>" + r.map(cell => {
    if (cell && cell.html !== undefined) return `<td class="${cell.cls || ""}">${cell.html}</td>`;
    const cls = typeof cell === "number" ? "num" : "";
    return `<td class="${cls}">${escapeHtml(text(cell))}</td>`;
  }).join("") + "</tr>").join("");
  element.innerHTML = head + body;
}

function escapeHtml(s) {
  return String(s).replace(/[&<>"']/g, c => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
}

function showError(element, payload) {
  element.innerHTML = `<tr><td class="error">${escapeHtml(payload.error)}</td></tr>`;
}

const layout = (title, extra) => Object.assign({
  title: { text: title, font: { size: 14 } }, margin: { l: 60, r: 20, t: 40, b: 40 },
  legend: { orientation: "h" }, hovermode: "closest",
}, extra || {});

// -- Forecasts --------------------------------------------------------------

function options(select, values, chosen, allLabel) {
  const head = allLabel === undefined ? "" : `<option value="">${allLabel}</option>`;
  select.innerHTML = head + values.map(v => `<option ${v === chosen ? "selected" : ""}>${escapeHtml(v)}</option>`).join("");
}

async function loadForecasts() {
  const query = new URLSearchParams({ store: state.store, medication: state.medication, category: state.category });
  const answer = await fetch("/api/forecasts?" + query);
  const chart = await answer.json();
  if (chart.error) { $("forecast-note").textContent = chart.error; }
  if (!chart.store_id) return;
  state.store = chart.store_id;
  options($("store"), chart.stores, chart.store_id);
  options($("category"), chart.categories, state.category, "all");
  options($("medication"), chart.medications, state.medication, "all");
  $("forecast-note").textContent = `region ${text(chart.region)} · newest data ${text(chart.data_day)}`;
  drawForecasts(chart);
}

function series(points, name, color, dash) {
  return {
    x: points.map(p => p.day), y: points.map(p => p.forecast), name, mode: "lines+markers",
    line: { color, dash: dash || "solid", shape: dash ? "hv" : "linear" }, marker: { size: 5 },
    customdata: points.map(p => [text(p.versions), text(p.flags)]),
    hovertemplate: `${name}: %{y:.1f}<br>model v%{customdata[0]}<br>flags: %{customdata[1]}<extra></extra>`,
  };
}

function drawForecasts(chart) {
  const all = chart.online.concat(chart.batch);
  const actuals = new Map();
  all.filter(p => p.actual !== null).forEach(p => actuals.set(p.day, p.actual));
  const flagged = all.filter(p => p.flags.length);
  const traces = [
    series(chart.online, "online forecast", "#1f6feb"),
    series(chart.batch, "batch forecast", "#d97706", "dot"),
    { x: [...actuals.keys()], y: [...actuals.values()], name: "actual", mode: "markers",
      marker: { color: "#111", size: 7, symbol: "diamond" } },
    { x: flagged.map(p => p.day), y: flagged.map(p => p.forecast), name: "flagged", mode: "markers",
      marker: { color: "#c62828", size: 10, symbol: "x" }, text: flagged.map(p => p.flags.join(", ")),
      hovertemplate: "%{text}<extra></extra>" },
  ];
  const what = chart.medication || (chart.category ? `category ${chart.category}` : "all medications");
  Plotly.react("forecast-chart", traces, layout(`Store ${chart.store_id}: ${what}, demand over the horizon`,
    { yaxis: { title: "units" } }));
}

// -- Drift ------------------------------------------------------------------

function drawDrift(page) {
  if (page.error) { showError($("incidents"), page); return; }
  state.incidents = page.incidents;
  table($("incidents"), ["incident", "kind", "status", "severity", "model", "features", "since (data)", "windows", "acknowledged", ""],
    page.incidents.map(i => [
      { html: `<a href="#" class="incident-link" data-id="${escapeHtml(i.incident_id)}">${escapeHtml(i.incident_id)}</a>` },
      i.kind, i.status, i.severity, i.model_version, i.features, i.opened_data_time, i.windows.length,
      i.acknowledged_by ? `${i.acknowledged_by} ${text(i.acknowledged)}` : "",
      i.status === "open" && !i.acknowledged_by
        ? { html: `<button class="action acknowledge" data-id="${escapeHtml(i.incident_id)}">acknowledge</button>` } : "",
    ]));
  document.querySelectorAll("a.incident-link").forEach(a => a.onclick = e => { e.preventDefault(); showIncident(a.dataset.id); });
  document.querySelectorAll("button.acknowledge").forEach(b => b.onclick = () => acknowledge(b.dataset.id));
  if (state.incident) showIncident(state.incident);
  const reports = page.reports.slice().reverse();
  Plotly.react("drift-chart", [
    { x: reports.map(r => r.window[1]), y: reports.map(r => r.features.length), type: "bar", name: "drifted features",
      marker: { color: "#d97706" } },
    { x: page.incidents.map(i => i.opened_data_time), y: page.incidents.map(() => 0), mode: "markers", name: "incidents opened",
      marker: { color: "#c62828", size: 12, symbol: "triangle-up" },
      text: page.incidents.map(i => `${i.incident_id} ${i.kind}: ${i.features.join(", ")}`), hovertemplate: "%{text}<extra></extra>" },
  ], layout("Drift: features out of their reference per window, and incidents", { yaxis: { title: "features" } }));
  drawErrors(page.errors);
}

// The MAE estimated from each window's inputs before any actual, its band,
// and the MAE measured once the actuals arrived, per day.
function drawErrors(errors) {
  const estimated = errors.estimated, measured = errors.measured;
  $("error-note").textContent = errors.measured_error ? `measured error unavailable: ${errors.measured_error}` : "";
  Plotly.react("error-chart", [
    { x: estimated.map(e => e.day), y: estimated.map(e => e.upper), name: "band (upper bound)", mode: "lines",
      line: { color: "#8b95a7", dash: "dash", shape: "hv" }, fill: "tozeroy", fillcolor: "rgba(139,149,167,0.12)",
      hovertemplate: "band up to %{y:.2f}<extra></extra>" },
    { x: estimated.map(e => e.day), y: estimated.map(e => e.estimated_mae), name: "estimated MAE (per window)",
      mode: "markers", marker: { color: "#d97706", size: 7 },
      customdata: estimated.map(e => [e.window_id, e.model_version, e.rows]),
      hovertemplate: "estimated %{y:.2f}<br>%{customdata[0]}, model v%{customdata[1]}, %{customdata[2]} rows<extra></extra>" },
    { x: measured.map(m => m.day), y: measured.map(m => m.online), name: "measured MAE, online (per day)",
      mode: "lines+markers", line: { color: "#1f6feb" }, customdata: measured.map(m => m.rows),
      hovertemplate: "measured %{y:.2f} on %{customdata} rows<extra></extra>" },
    { x: measured.map(m => m.day), y: measured.map(m => m.batch), name: "measured MAE, batch (per day)",
      mode: "lines+markers", line: { color: "#6b7280", dash: "dot" }, customdata: measured.map(m => m.rows),
      hovertemplate: "measured %{y:.2f} on %{customdata} rows<extra></extra>" },
  ], layout("Error: estimated from the inputs before the actuals, and measured once they arrived",
    { yaxis: { title: "MAE (units)", rangemode: "tozero" } }));
}

function showIncident(id) {
  const incident = (state.incidents || []).find(i => i.incident_id === id);
  if (!incident) return;
  state.incident = id;
  $("incident-title").textContent = `${incident.incident_id}: ${incident.kind}, ${incident.status}`;
  $("incident-reason").textContent = incident.reason + (incident.resolution ? ` Resolved: ${incident.resolution}` : "");
  const charts = $("evidence-charts");
  charts.innerHTML = "";
  const signals = [];
  Object.entries(incident.evidence || {}).forEach(([feature, evidence], n) => {
    (evidence.signals || []).forEach(s => signals.push([feature, s.name, s.value, s.threshold, s.adjusted_p_value, s.fired ? "fired" : ""]));
    const histogram = evidence.histogram;
    if (!histogram) return;
    const div = document.createElement("div");
    div.className = "chart evidence";
    div.id = `evidence-${n}`;
    charts.appendChild(div);
    const labels = histogram.categories || histogram.reference.map((_, k) => binLabel(histogram.bin_edges, k));
    Plotly.react(div, [
      { x: labels, y: histogram.reference, type: "bar", name: "reference", marker: { color: "#8b95a7" } },
      { x: labels, y: histogram.current, type: "bar", name: "current", marker: { color: "#1f6feb" } },
    ], layout(`${feature}: share of values, reference against the newest window`, { barmode: "group", yaxis: { tickformat: ".0%" } }));
  });
  table($("incident-signals"), ["feature", "signal", "value", "threshold", "adjusted p", ""], signals);
}

function binLabel(edges, k) {
  const fmt = v => Math.abs(v) >= 100 ? v.toFixed(0) : v.toPrecision(3);
  if (k === 0) return `≤ ${fmt(edges[0])}`;
  if (k >= edges.length) return `> ${fmt(edges[edges.length - 1])}`;
  return `${fmt(edges[k - 1])} – ${fmt(edges[k])}`;
}

// Operator actions carry the operator's own bearer token: the services, not the
// dashboard, decide who may act. It is kept for this tab only.
const tokenInput = $("operator-token");
tokenInput.value = sessionStorage.getItem("rxcast-operator-token") || "";
tokenInput.onchange = () => sessionStorage.setItem("rxcast-operator-token", tokenInput.value.trim());

function actionHeaders() {
  const token = tokenInput.value.trim();
  return token ? { "Content-Type": "application/json", "Authorization": `Bearer ${token}` }
               : { "Content-Type": "application/json" };
}

async function acknowledge(id) {
  const note = window.prompt(`Acknowledge ${id}: a note for the record`, "looking into it");
  if (note === null) return;
  const answer = await fetch(`/api/incidents/${encodeURIComponent(id)}/acknowledge`, { method: "POST",
    headers: actionHeaders(), body: JSON.stringify({ by: "dashboard", note }) });
  const body = await answer.json();
  if (body.error) window.alert(`Acknowledge refused: ${body.error}`);
}

// -- Models -----------------------------------------------------------------

function drawModels(page) {
  if (page.error) { showError($("versions"), page); return; }
  table($("policies"), ["alias", "cadence", "data day", "fitted through", "newest job", "progress", "why trained",
    "why not promoted", "next run", "pending triggers"],
    (page.policies || []).map(p => {
      const job = p.last_job;
      const progress = job ? `${job.state} ${job.rounds_done}/${job.rounds_total} rounds` +
        (job.version ? ` → v${job.version}${job.promoted ? " (promoted)" : ""}` : "") : "";
      return [p.alias, p.cadence, p.data_day, p.fitted_through, job ? job.job_id : "", progress, p.why_trained,
        p.why_not_promoted, p.next_run_at, p.pending_triggers];
    }));
  table($("aliases"), ["alias", "version", ""], Object.entries(page.aliases).map(([alias, version]) => [alias, version,
    version ? { html: `<button class="action rollback" data-alias="${escapeHtml(alias)}">roll back</button>` } : ""]));
  table($("versions"), ["version", "created", "fitted on", "aliases", "MAE", "champion MAE", "baseline MAE", "holdout", "reason"],
    page.versions.map(v => [v.version, v.created, v.window.join(" → "), v.aliases,
      v.evaluation.model && v.evaluation.model.mae, v.evaluation.champion && v.evaluation.champion.mae,
      v.evaluation.baseline && v.evaluation.baseline.mae, v.evaluation.holdout.join(" → "), v.reason]));
  const byAlias = {};
  page.history.forEach(c => (byAlias[c.alias] = byAlias[c.alias] || []).push(c));
  const traces = Object.entries(byAlias).map(([alias, changes]) => ({
    x: changes.map(c => c.time), y: changes.map(c => c.to), name: alias, mode: "lines+markers", line: { shape: "hv" },
    text: changes.map(c => `${c.kind}: ${c.reason}`), hovertemplate: `${alias} → v%{y}<br>%{text}<extra></extra>`,
  }));
  Plotly.react("alias-chart", traces, layout("Which version each alias served, over time", { yaxis: { title: "version", dtick: 1 } }));
  document.querySelectorAll("button.rollback").forEach(b => b.onclick = () => rollback(b.dataset.alias));
}

async function rollback(alias) {
  if (!window.confirm(`Roll ${alias} back to the version it served before?`)) return;
  const answer = await fetch("/api/rollback", { method: "POST", headers: actionHeaders(),
    body: JSON.stringify({ alias, reason: "rolled back from the dashboard" }) });
  const body = await answer.json();
  window.alert(body.error ? `Rollback refused: ${body.error}` : `${alias}: v${body.from} → v${body.to}`);
}

// -- Online against batch, Health -----------------------------------------------

function drawComparison(page) {
  if (page.error) { showError($("comparison"), page); return; }
  const rows = [["MAE (same rows)", "mae"], ["rows compared", "rows"], ["model version", "model_version"],
    ["model fitted through", "model_fitted_through"], ["model age (days)", "model_age_days"],
    ["forecast age (days)", "forecast_age_days"], ["latency p50 (ms, ≤)", "latency_p50_ms"],
    ["latency p99 (ms, ≤)", "latency_p99_ms"], ["CPU seconds", "cpu_seconds"]];
  table($("comparison"), ["", "online", "batch"],
    rows.map(([label, key]) => [label, page.modes.online[key], page.modes.batch[key]]));
}

function drawHealth(page) {
  if (page.error) { showError($("health"), page); return; }
  table($("health"), ["service", "address", "status", "alias", "model", "loaded", "last poll", "queues", "last error"],
    page.services.map(s => [s.service, s.address, { html: escapeHtml(s.status), cls: `status-${s.status}` }, s.alias,
      s.model_version, s.loaded, s.last_poll, { html: queues(s.queues), cls: "queues" },
      s.last_error ? { html: lastError(s.last_error), cls: `last-error level-${escapeHtml(s.last_error.level)}` }
        : (s.error || "")]));
}

function queues(depths) {
  return Object.entries(depths || {}).map(([name, depth]) =>
    `<span class="queue">${escapeHtml(name)}: <b>${escapeHtml(text(depth))}</b></span>`).join("<br>");
}

function lastError(e) {
  const when = e.time ? ` ${e.time.replace("T", " ").replace("Z", "")} UTC` : "";
  return `<span class="level">${escapeHtml(e.level)}${escapeHtml(when)}</span><br>${escapeHtml(e.message)}`;
}

// -- Live updates -------------------------------------------------------------

const draw = { drift: drawDrift, models: drawModels, comparison: drawComparison, health: drawHealth };

function live() {
  const events = new EventSource("/api/events");
  Object.entries(draw).forEach(([name, fn]) => events.addEventListener(name, e => {
    fn(JSON.parse(e.data));
    stamp();
  }));
  events.addEventListener("forecasts", e => {
    if (JSON.parse(e.data).store_id === state.store) loadForecasts().then(stamp);
  });
  events.onerror = () => { $("live").textContent = "reconnecting…"; };
}

function stamp() {
  $("live").textContent = "live · updated " + new Date().toLocaleTimeString();
  $("live").dataset.updates = String(Number($("live").dataset.updates || 0) + 1);
}

function tabs() {
  document.querySelectorAll("nav button").forEach(b => b.onclick = () => {
    document.querySelectorAll("nav button, .page").forEach(e => e.classList.remove("active"));
    b.classList.add("active");
    $("page-" + b.dataset.page).classList.add("active");
    window.dispatchEvent(new Event("resize"));
  });
  $("store").onchange = () => { state.store = $("store").value; state.medication = ""; state.category = ""; loadForecasts(); };
  $("category").onchange = () => { state.category = $("category").value; state.medication = ""; loadForecasts(); };
  $("medication").onchange = () => { state.medication = $("medication").value; loadForecasts(); };
}

tabs();
loadForecasts();
live();
