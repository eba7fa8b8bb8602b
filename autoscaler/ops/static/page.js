// compose-autoscaler's live page: /events (server-sent events) pushes the /status document after
// every round; if the stream cannot be held the page polls /status instead. Everything shown is
// set as text (never as markup), so names and reasons cannot inject anything.
"use strict";

const query = new URLSearchParams(location.search);
const token = query.get("token");
const withToken = (path) => (token ? `${path}?token=${encodeURIComponent(token)}` : path);
const HISTORY = 600; // seconds of CPU and memory kept per service for the charts
const seen = new Map(); // service -> [{t, cpu, memory, target}]
let polling = null;

function connect() {
  const events = new EventSource(withToken("events"));
  events.onmessage = (message) => render(JSON.parse(message.data));
  events.onerror = () => {
    if (events.readyState === EventSource.CLOSED && polling === null) {
      polling = setInterval(poll, 2000);
    }
  };
}

async function poll() {
  try {
    const response = await fetch(withToken("status"), { cache: "no-store" });
    if (response.ok) render(await response.json());
  } catch (error) {
    setText(document.getElementById("updated"), `cannot reach the autoscaler: ${error}`);
  }
}

function setText(node, text) {
  if (node.textContent !== text) node.textContent = text;
}

const TONE_CLASSES = ["ok", "warn", "bad", "info"];

function pill(node, text, tone) {
  setText(node, text);
  node.classList.remove(...TONE_CLASSES.filter((t) => t !== tone));
  node.classList.add(tone);
}

function render(status) {
  pill(document.getElementById("engine"), status.ready ? "engine ready" : "engine view stale",
       status.ready ? "ok" : "bad");
  // An instance that cannot take the lease says why (what the engine refused): it never acts.
  pill(document.getElementById("lease"),
       status.leading ? "acting (lease held)"
         : status.standing_by ? `standing by: ${status.standing_by}` : "standing by",
       status.leading ? "ok" : status.standing_by ? "bad" : "warn");
  const mqtt = status.mqtt || {};
  const queued = mqtt.pending ? `, ${mqtt.pending} waiting` : "";
  const dropped = mqtt.dropped ? `, ${mqtt.dropped} dropped` : "";
  pill(document.getElementById("mqtt"),
       `MQTT ${mqtt.connected ? "connected" : "away"}${queued}${dropped}`,
       mqtt.connected ? "ok" : "warn");
  document.getElementById("mode").hidden = !status.dry_run;
  const swarm = document.getElementById("swarm");
  swarm.hidden = !status.swarm;
  if (status.swarm) {
    const silent = Object.values(status.swarm.silent || {});
    const nodes = Object.keys(status.swarm.nodes || {}).length;
    const acting = status.swarm.leading ? "acting" : "standing by";
    pill(swarm, silent.length
      ? `swarm: ${acting}; agent silent on ${silent.join(", ")}`
      : `swarm: ${acting}, tasks on ${nodes} node${nodes === 1 ? "" : "s"}`,
      silent.length ? "warn" : status.swarm.leading ? "ok" : "warn");
  }
  setText(document.getElementById("updated"), `updated ${new Date().toLocaleTimeString()}`);

  const names = Object.keys(status.services || {}).sort();
  document.getElementById("empty").hidden = names.length > 0;
  const main = document.getElementById("services");
  for (const card of main.querySelectorAll(".card")) {
    if (!names.includes(card.dataset.service)) card.remove();
  }
  for (const name of names) {
    let card = main.querySelector(`.card[data-service="${CSS.escape(name)}"]`);
    if (card === null) {
      card = document.getElementById("card").content.firstElementChild.cloneNode(true);
      card.dataset.service = name;
      const id = `service-${name.replace(/[^A-Za-z0-9_-]/g, "-")}`;
      card.querySelector(".name").id = id;
      card.setAttribute("aria-labelledby", id);
      main.appendChild(card);
    }
    update(card, name, status.services[name]);
  }
}

const TONES = { holding: "ok", scaling: "info", repairing: "warn", backoff: "bad",
                paused: "warn", stopped: "warn", idle: "info", error: "bad" };

function update(card, name, service) {
  const state = service.state;
  setText(card.querySelector(".name"), name);
  const phase = state.dry_run ? `${state.phase} (dry run)` : state.phase;
  pill(card.querySelector(".phase"), phase, TONES[state.phase] || "info");
  card.dataset.replicas = String(state.replicas);
  for (const field of ["replicas", "desired", "min", "max"]) {
    const value = state[field];
    setText(card.querySelector(`.${field}`), value === null || value === undefined ? "–" : String(value));
  }
  const error = card.querySelector(".error");
  error.hidden = !state.error;
  setText(error, state.error || "");
  const finding = card.querySelector(".finding");
  finding.hidden = !state.finding;
  setText(finding, state.finding || "");
  // A schedule window in force sets the min and max shown above: say which.
  const schedule = card.querySelector(".schedule");
  schedule.hidden = !state.schedule;
  setText(schedule, state.schedule || "");
  // An error is shown once, as the error.
  setText(card.querySelector(".reason"), state.reason === state.error ? "" : state.reason || "");
  remember(name, service);
  charts(card.querySelector(".charts"), name, state);
  timeline(card.querySelector(".timeline ol"), service.decisions || []);
}

function remember(name, service) {
  const points = seen.get(name) || [];
  const known = new Set(points.map((p) => p.t));
  for (const d of service.decisions || []) {
    if (!known.has(d.time)) {
      points.push({ t: d.time, cpu: d.metrics.cpu, memory: d.metrics.memory });
    }
  }
  points.sort((a, b) => a.t - b.t);
  const since = Date.now() / 1000 - HISTORY;
  seen.set(name, points.filter((p) => p.t >= since));
}

function charts(box, name, state) {
  const points = seen.get(name) || [];
  const targets = state.targets || {};
  for (const metric of ["cpu", "memory"]) {
    const values = points.filter((p) => typeof p[metric] === "number");
    let figure = box.querySelector(`figure[data-metric="${metric}"]`);
    if (values.length === 0 && targets[metric] === undefined) {
      if (figure) figure.remove();
      continue;
    }
    if (figure === null) {
      figure = document.createElement("figure");
      figure.className = "chart";
      figure.dataset.metric = metric;
      figure.append(document.createElement("figcaption"), svg("svg"));
      box.appendChild(figure);
    }
    const now = state[metric];
    const target = targets[metric];
    const label = metric === "cpu" ? "CPU" : "Memory";
    const caption = `${label} ${now === null || now === undefined ? "–" : now.toFixed(1) + " %"}` +
      (target === undefined ? "" : ` (target ${target} %)`);
    setText(figure.querySelector("figcaption"), caption);
    draw(figure.querySelector("svg"), values.map((p) => [p.t, p[metric]]), target, caption);
  }
}

function svg(tag, attributes = {}) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, value);
  return node;
}

function draw(chart, values, target, caption) {
  const width = 400;
  const height = 64;
  chart.setAttribute("viewBox", `0 0 ${width} ${height}`);
  chart.setAttribute("preserveAspectRatio", "none");
  chart.setAttribute("role", "img");
  chart.setAttribute("aria-label", caption);
  chart.replaceChildren();
  const end = Date.now() / 1000;
  // The span shown grows with what is known, from a minute up to HISTORY.
  const span = Math.min(HISTORY, Math.max(60, values.length ? end - values[0][0] : 0));
  const top = Math.max(100, target || 0, ...values.map(([, v]) => v)) * 1.05;
  const x = (t) => ((t - (end - span)) / span) * width;
  const y = (v) => height - (v / top) * height;
  if (target !== undefined) {
    chart.append(svg("line", { class: "target", x1: 0, x2: width, y1: y(target), y2: y(target) }));
  }
  if (values.length > 0) {
    const path = values.map(([t, v], i) => `${i ? "L" : "M"}${x(t).toFixed(1)},${y(v).toFixed(1)}`);
    chart.append(svg("path", { class: "line", d: path.join(" "), "vector-effect": "non-scaling-stroke" }));
  }
}

function timeline(list, decisions) {
  list.closest("details").hidden = decisions.length === 0;
  const newest = decisions.slice(-20).reverse();
  const key = newest.map((d) => d.time).join(",");
  if (list.dataset.key === key) return;
  list.dataset.key = key;
  list.replaceChildren(...newest.map(entry));
}

function entry(d) {
  const item = document.createElement("li");
  const when = document.createElement("span");
  when.className = "when";
  when.textContent = new Date(d.time * 1000).toLocaleTimeString() + " ";
  const move = document.createElement("span");
  move.className = "move";
  move.textContent = d.to === d.from ? `hold ${d.from}` : `${d.from} → ${d.to}`;
  const reason = document.createElement("div");
  reason.textContent = d.reason + (d.bound ? ` (bound by ${d.bound})` : "");
  const counted = d.samples.filter((s) => s.counted).length;
  const samples = document.createElement("div");
  samples.className = "samples";
  samples.textContent = `samples: ${counted} of ${d.samples.length} counted` +
    d.samples.map((s) => `; ${s.container} ${s.cpu === null ? "–" : s.cpu.toFixed(1) + "%"}` +
      (s.counted ? "" : ` (${s.why_not})`)).join("");
  item.append(when, move, reason, samples);
  return item;
}

connect();
poll();
