// The Feed console: a page over the same HTTP API (and API keys) as every other client.
// Routes (in the URL's fragment):
//   #/                                  models, and live request and event rates
//   #/models/NAME[?version=N]           versions, status log, metrics, curves, heads
//   #/models/NAME/playground?query=…&params={…}&limit=10&explain=1&run=1
"use strict";

const view = document.getElementById("view");
const keyForm = document.getElementById("key-form");
const keyInput = document.getElementById("key");
let timers = [];

keyForm.addEventListener("submit", (e) => {
  e.preventDefault();
  sessionStorage.setItem("feed-key", keyInput.value.trim());
  route();
});

class ApiError extends Error {
  constructor(status, body) {
    super(body && body.error ? body.error : `HTTP ${status}`);
    this.status = status;
    this.body = body || {};
  }
}

/** A call to the API with the key of this tab, if one was given. */
async function api(method, path, body) {
  const headers = {};
  const key = sessionStorage.getItem("feed-key");
  if (key) headers["Authorization"] = `Bearer ${key}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const resp = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await resp.text();
  let parsed = text;
  if ((resp.headers.get("content-type") || "").includes("json")) parsed = text ? JSON.parse(text) : null;
  if (!resp.ok) {
    if (resp.status === 401 || resp.status === 403) keyForm.hidden = false;
    throw new ApiError(resp.status, typeof parsed === "object" ? parsed : { error: text });
  }
  return parsed;
}

/** An element: el("td", {class: "num"}, "1.0", child, …). */
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

function table(id, headers, rows, numeric) {
  const num = new Set(numeric || []);
  return el("table", { id },
    el("thead", {}, el("tr", {}, headers.map((h, i) => el("th", { class: num.has(i) ? "num" : null }, h)))),
    el("tbody", {}, rows.map((r) => el("tr", {}, r.map((c, i) => el("td", { class: num.has(i) ? "num" : null }, c))))));
}

const fmt = (x, d = 4) => (x === null || x === undefined || Number.isNaN(x) ? "–" : Number(x).toFixed(d));
const when = (t) => (t ? new Date(t).toLocaleString() : "");
const status = (s) => el("span", { class: `status ${s}` }, s);
const enc = encodeURIComponent;

function failure(e) {
  const loc = e.body && e.body.location ? e.body.location.rendered : null;
  return el("div", { class: "error", id: "error" },
    `${e.status ? e.status + " " : ""}${e.message}`, e.body && e.body.hint ? `\nhint: ${e.body.hint}` : null,
    loc ? `\n${loc}` : null);
}

function route() {
  timers.forEach(clearInterval);
  timers = [];
  const hash = location.hash.replace(/^#/, "") || "/";
  const [path, query] = hash.split("?");
  const params = new URLSearchParams(query || "");
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  let page;
  if (parts.length === 0) page = models();
  else if (parts[0] === "models" && parts.length === 2) page = model(parts[1], params);
  else if (parts[0] === "models" && parts[2] === "playground") page = playground(parts[1], params);
  else page = Promise.resolve(el("p", {}, "No such page. ", el("a", { href: "#/" }, "Models")));
  page.then((node) => view.replaceChildren(node), (e) => view.replaceChildren(failure(e)));
}
window.addEventListener("hashchange", route);

// ---- models and live rates ----

async function models() {
  const list = await api("GET", "/models");
  const rates = el("div", { id: "rates", class: "card" }, el("p", { class: "muted" }, "Reading /metrics…"));
  sampleRates(rates);
  timers.push(setInterval(() => sampleRates(rates), 5000));
  return el("section", {},
    el("h1", {}, "Models"),
    list.length === 0
      ? el("p", { class: "muted" }, "No model yet: run feedctl create-model --file model.yaml")
      : table("models", ["model", "active version", "newest", "status", ""], list.map((m) => [
          el("a", { href: `#/models/${enc(m.name)}` }, m.name),
          m.active_version ?? "–", m.latest_version ?? "–",
          m.latest_status ? status(m.latest_status) : "",
          el("a", { href: `#/models/${enc(m.name)}/playground` }, "playground"),
        ]), [1, 2]),
    el("h2", {}, "Live rates"), rates);
}

let lastSample = null;

/** Request and event rates per model from two scrapes of /metrics (needs an admin key). */
async function sampleRates(box) {
  let text;
  try {
    text = await api("GET", "/metrics");
  } catch (e) {
    box.replaceChildren(el("p", { class: "muted" }, `Live rates read /metrics, which needs an admin key (${e.message}).`));
    return;
  }
  const now = { t: performance.now(), requests: {}, events: {} };
  for (const line of text.split("\n")) {
    const m = line.match(/^(feed_http_requests_total|feed_live_overlay_events)\{(.*)\} (\S+)$/);
    if (!m) continue;
    const model = (m[2].match(/model="([^"]*)"/) || [])[1] || "(no model)";
    const isEvents = m[1] === "feed_live_overlay_events";
    if (!isEvents && /route="\/metrics"/.test(m[2])) continue;
    const bucket = isEvents ? now.events : now.requests;
    bucket[model] = (bucket[model] || 0) + Number(m[3]);
  }
  const prev = lastSample;
  lastSample = now;
  const names = [...new Set([...Object.keys(now.requests), ...Object.keys(now.events)])].sort();
  const rate = (a, b) => (prev ? fmt((a - (b || 0)) / ((now.t - prev.t) / 1000), 2) : "…");
  box.replaceChildren(names.length === 0 ? el("p", { class: "muted" }, "No traffic yet.") :
    table("rates-table", ["model", "requests/s", "requests", "live events held", "events/s"], names.map((n) => [
      n || "(no model)",
      rate(now.requests[n] || 0, prev && prev.requests[n]),
      now.requests[n] || 0,
      now.events[n] ?? "–",
      now.events[n] === undefined ? "–" : rate(now.events[n], prev && prev.events[n]),
    ]), [1, 2, 3, 4]));
}

// ---- a model ----

async function model(name, params) {
  const version = params.get("version");
  const d = await api("GET", `/models/${enc(name)}${version ? `/versions/${enc(version)}` : "/versions/current"}`);
  const timeline = el("div", { class: "timeline", id: "timeline" }, d.versions.map((v) =>
    el("a", { href: `#/models/${enc(name)}?version=${v.version}`, class: v.version === d.version ? "selected" : null },
      el("div", {}, el("b", {}, `v${v.version} `), status(v.status)),
      el("div", { class: "muted" }, when(v.created_at)),
      el("div", {}, v.message))));
  const page = el("section", {},
    el("h1", {}, name, " ", el("a", { href: `#/models/${enc(name)}/playground`, class: "aside" }, "query playground →")),
    timeline,
    el("h2", {}, `Version ${d.version} `, status(d.status)),
    el("p", {}, d.message, d.primary_policy ? el("span", { class: "muted" }, ` · ranks with ${d.primary_policy}`) : null));
  if (d.metrics) page.append(...metrics(d.metrics));
  page.append(...rollout(d));
  page.append(el("h2", {}, "Status log"),
    table("log", ["time", "status", "message"], d.log.map((l) => [when(l.ts), status(l.status), l.message])));
  if (d.versions.some((v) => ["SCHEDULING", "FETCHING", "TUNING", "TRAINING", "DEPLOYING"].includes(v.status))) {
    timers.push(setInterval(() => { if (!document.hidden) route(); }, 3000));
  }
  return page;
}

// The version's experiments and the model's shadow (docs/operations.md, Rollout).
function rollout(d) {
  const out = [];
  for (const e of d.experiments) {
    out.push(el("h2", {}, `Experiment ${e.name}`),
      el("p", { class: "muted" }, `splits ${e.applies_to.length ? e.applies_to.join(", ") : "every request"} by a stable hash of the user id`),
      table(`experiment-${e.name}`, ["variant", "share", "answers with"], e.variants.map((v) => [v.name, `${v.share}%`, v.answers]), [1]));
  }
  const s = d.shadow;
  if (s) {
    const ms = (x) => (x == null ? "–" : `≤ ${fmt(x * 1e3, 1)} ms`);
    out.push(el("h2", {}, `Shadow: version ${s.version}${s.active ? "" : " (stopped)"}`),
      table("shadow", ["compared", "against", "overlap@k", "rank correlation", "p50 (ACTIVE)", "p99 (ACTIVE)", "errors", "skipped"], [[
        s.compared, s.against == null ? "–" : `v${s.against}`, fmt(s.overlap), fmt(s.rank_correlation),
        `${ms(s.shadow_p50_seconds)} (${ms(s.active_p50_seconds)})`, `${ms(s.shadow_p99_seconds)} (${ms(s.active_p99_seconds)})`, s.errors, s.skipped,
      ]], [0, 2, 3, 6, 7]));
  }
  return out;
}

function metrics(m) {
  const out = [el("h2", {}, "Metrics"), el("p", { class: "muted" }, m.protocol)];
  const rows = Object.entries(m.policies).map(([n, p]) => [n, p.type, fmt(p.test["ndcg@10"]), fmt(p.test["hr@10"]),
    fmt(p.test["mrr@10"]), fmt(p.test["coverage@10"]), fmt(p.valid["ndcg@10"]), fmt(p.train_seconds, 1)]);
  rows.push(["(popularity reference)", "", fmt(m.reference.test["ndcg@10"]), fmt(m.reference.test["hr@10"]),
    fmt(m.reference.test["mrr@10"]), fmt(m.reference.test["coverage@10"]), fmt(m.reference.valid["ndcg@10"]), ""]);
  out.push(table("metrics", ["policy", "type", "test NDCG@10", "HR@10", "MRR@10", "coverage", "valid NDCG@10", "train s"], rows, [2, 3, 4, 5, 6, 7]));
  const curves = el("div", { class: "grid" });
  for (const [n, p] of Object.entries(m.policies)) {
    if (p.training && p.training.history && p.training.history.length) curves.append(curve(n, p.training));
  }
  if (curves.childElementCount) out.push(el("h2", {}, "Training curves"), curves);
  for (const [n, p] of Object.entries(m.policies)) {
    if (!p.tuning) continue;
    const t = p.tuning;
    const fields = Object.keys(t.trials[0] ? t.trials[0].settings : {});
    const show = (v) => (typeof v === "number" && !Number.isInteger(v) ? v.toPrecision(4) : String(v));
    out.push(el("h2", {}, `Tuning of ${n}`),
      el("p", { class: "muted" }, `${t.method} search on the validation cut by ${t.metric}; trial ${t.best + 1} trained the version`),
      table(`tuning-${n}`, ["trial", ...fields, `valid ${t.metric}`, "seconds"], t.trials.map((x, i) => [
        i === t.best ? el("b", {}, `${i + 1} ✓`) : i + 1, ...fields.map((f) => show(x.settings[f])), fmt(x.valid), fmt(x.seconds, 1),
      ]), [0, fields.length + 1, fields.length + 2]));
  }
  for (const [n, p] of Object.entries(m.policies)) {
    if (!p.ranker) continue;
    out.push(el("h2", {}, `Heads of ${n}`), el("p", { class: "muted" }, p.ranker.protocol),
      table(`heads-${n}`, ["head", "calibration", "AUC", "log loss", "NE", "ECE", "baseline AUC"], p.ranker.heads.map((h) => [
        h.head, h.calibration, fmt(h.test.auc), fmt(h.test.log_loss), fmt(h.test.normalized_entropy), fmt(h.test.ece),
        h.baseline ? fmt(h.baseline.test.auc) : "–"]), [2, 3, 4, 5, 6]),
      el("div", { class: "grid" }, p.ranker.heads.map((h) => reliability(h))));
  }
  return out;
}

const W = 360, H = 200, PAD = 34;

function svg(title, ...children) {
  const s = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  s.setAttribute("width", W); s.setAttribute("height", H); s.setAttribute("role", "img");
  s.setAttribute("aria-label", title);
  s.innerHTML = children.join("");
  return s;
}

/** A polyline of (x, y) points in a [x0, x1] × [y0, y1] box. */
function line(points, [x0, x1], [y0, y1], color, dash) {
  const sx = (x) => PAD + ((x - x0) / (x1 - x0 || 1)) * (W - 2 * PAD);
  const sy = (y) => H - PAD + -((y - y0) / (y1 - y0 || 1)) * (H - 2 * PAD);
  const d = points.map(([x, y]) => `${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join(" ");
  return `<polyline fill="none" stroke="${color}" stroke-width="2" ${dash ? 'stroke-dasharray="4 3"' : ""} points="${d}"/>` +
    points.map(([x, y]) => `<circle cx="${sx(x).toFixed(1)}" cy="${sy(y).toFixed(1)}" r="2.5" fill="${color}"/>`).join("");
}

function axes(xLabel, yLabel, [x0, x1], [y0, y1]) {
  return `<line x1="${PAD}" y1="${H - PAD}" x2="${W - PAD}" y2="${H - PAD}" stroke="#9ca3af"/>` +
    `<line x1="${PAD}" y1="${PAD}" x2="${PAD}" y2="${H - PAD}" stroke="#9ca3af"/>` +
    `<text x="${W / 2}" y="${H - 8}" text-anchor="middle">${xLabel}</text>` +
    `<text x="${PAD - 4}" y="${PAD - 6}">${yLabel}</text>` +
    `<text x="${PAD}" y="${H - PAD + 14}" text-anchor="middle">${x0}</text>` +
    `<text x="${W - PAD}" y="${H - PAD + 14}" text-anchor="middle">${x1}</text>` +
    `<text x="${PAD - 4}" y="${H - PAD}" text-anchor="end">${fmt(y0, 2)}</text>` +
    `<text x="${PAD - 4}" y="${PAD + 4}" text-anchor="end">${fmt(y1, 2)}</text>`;
}

function extent(values) {
  const v = values.filter((x) => x !== null && x !== undefined && Number.isFinite(x));
  return v.length ? [Math.min(...v), Math.max(...v)] : [0, 1];
}

/** Loss (and the validation figure, on its own scale) per epoch. */
function curve(name, t) {
  const h = t.history;
  const xs = [1, Math.max(h.length, 2)];
  const loss = extent(h.map((p) => p.loss));
  const parts = [axes("epoch", "loss", xs, loss), line(h.map((p) => [p.epoch, p.loss]), xs, loss, "#2563eb")];
  const valid = h.filter((p) => p.valid !== null && p.valid !== undefined);
  if (valid.length) parts.push(line(valid.map((p) => [p.epoch, p.valid]), xs, extent(valid.map((p) => p.valid)), "#b45309", true));
  return el("div", { class: "card curve" },
    el("b", {}, name), el("span", { class: "muted" }, ` · kept epoch ${t.best_epoch} of ${t.epochs} · ${t.device}`),
    svg(`${name} training curve`, ...parts),
    el("div", { class: "muted" }, "— training loss", valid.length ? `  - - validation ${t.validation} (own scale)` : ""));
}

/** Mean prediction against observed rate per bin, on the diagonal when calibrated. */
function reliability(h) {
  const pts = h.test.reliability.map(([p, o]) => [p, o]);
  const hi = Math.max(0.05, ...pts.flat());
  const box = [0, Number(hi.toFixed(2))];
  return el("div", { class: "card reliability" }, el("b", {}, `${h.head}`),
    el("span", { class: "muted" }, ` · ECE ${fmt(h.test.ece)}`),
    svg(`${h.head} reliability diagram`, axes("predicted", "observed", box, box),
      line([[0, 0], [box[1], box[1]]], box, box, "#9ca3af", true), line(pts, box, box, "#15803d")));
}

// ---- the playground ----

async function playground(name, params) {
  const form = {
    query: el("textarea", { id: "query", rows: 4, spellcheck: "false" },
      params.get("query") || "SELECT * FROM popular(limit = 100) WHERE NOT seen($user_id) LIMIT 10"),
    params: el("textarea", { id: "params", rows: 2, spellcheck: "false" }, params.get("params") || '{"user_id": ""}'),
    limit: el("input", { id: "limit", type: "number", min: 1, value: params.get("limit") || "" }),
    explain: el("input", { id: "explain", type: "checkbox", checked: params.get("explain") !== "0" }),
  };
  const out = el("div", { id: "outcome" });
  const run = async () => {
    let p;
    try {
      p = JSON.parse(form.params.value || "{}");
    } catch (e) {
      out.replaceChildren(el("div", { class: "error", id: "error" }, `parameters are not a JSON object: ${e.message}`));
      return;
    }
    const body = { query: form.query.value, params: p, return_metadata: true, explain: form.explain.checked };
    if (form.limit.value) body.limit = Number(form.limit.value);
    out.replaceChildren(el("p", { class: "muted" }, "Running…"));
    const started = performance.now();
    try {
      const r = await api("POST", `/models/${enc(name)}/query`, body);
      out.replaceChildren(...answer(r, performance.now() - started));
    } catch (e) {
      out.replaceChildren(failure(e));
    }
  };
  const page = el("section", {},
    el("h1", {}, el("a", { href: `#/models/${enc(name)}` }, name), " · query playground"),
    el("div", {}, el("label", {}, "FeedQL"), form.query),
    el("div", {}, el("label", {}, "Parameters (JSON)"), form.params),
    el("div", { class: "row" }, el("label", {}, "limit ", form.limit), el("label", {}, form.explain, " explain"),
      el("button", { id: "run", onclick: run }, "Run"),
      el("span", { class: "muted" }, "FeedQL reference: spec/feedql.md")),
    out);
  if (params.get("run") === "1") run();
  return page;
}

function answer(r, ms) {
  const columns = [...new Set(r.results.flatMap((i) => Object.keys(i.metadata || {})))].filter((c) => c !== "item_id");
  const parts = [
    el("p", { class: "muted", id: "summary" }, `${r.results.length} of ${r.eligible} eligible items · version ${r.version} · ${fmt(ms, 1)} ms round trip`),
    table("results", ["#", "item", "score", ...columns], r.results.map((i, n) => [
      n + 1, i.id, fmt(i.score), ...columns.map((c) => (i.metadata && i.metadata[c] !== null ? String(i.metadata[c]) : "")),
    ]), [0, 2]),
  ];
  if (r.explanation) {
    const e = r.explanation;
    parts.push(el("h2", {}, "Explain: stages"),
      table("explain", ["stage", "items in", "items out", "ms"], e.stages.map((s) => [s.stage, s.input, s.output, fmt(s.micros / 1000, 3)]), [1, 2, 3]),
      el("h2", {}, "Explain: items"),
      table("explain-items", ["item", "found by (score, rank)", "policy scores", "value model", "before reorder", "score"], e.items.map((i) => [
        i.id + (i.explored ? " (explored)" : ""),
        i.found_by.map((f) => `${f.retriever} (${fmt(f.score, 3)}, #${f.rank})`).join(", "),
        Object.entries(i.policy_scores).map(([k, v]) => `${k} ${fmt(v, 3)}`).join(", "),
        Object.entries(i.value_model).map(([k, v]) => `${k} ${fmt(v, 3)}`).join(", "),
        i.position_before_reorder === null ? "" : `#${i.position_before_reorder} (${fmt(i.score_before_reorder, 3)})`,
        fmt(i.score),
      ]), [5]));
  }
  return parts;
}

route();
