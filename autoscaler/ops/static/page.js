// compose-autoscaler's live page. /events (server-sent events) sends every service's state
// first, then after each round only the services whose state changed and the new events
// (ops/stream.py); if the stream cannot be held the page polls /status instead. The overview
// lists every service, those in trouble first; a click opens its card, whose chart and
// decisions are asked for while it is open (/history, /status?service=). Everything shown is
// set as text (never as markup), so names and reasons cannot inject anything.
"use strict";

const query = new URLSearchParams(location.search);
const token = query.get("token");
const withToken = (path, params = {}) => {
  const search = new URLSearchParams(params);
  if (token) search.set("token", token);
  const text = search.toString();
  return text ? `${path}?${text}` : path;
};
const EVENTS = 100; // events the list keeps, newest first
const states = new Map(); // service -> its latest state
const events = []; // newest last
let polling = null;
let open = null; // the service whose card is open
let header = {};

function connect() {
  const stream = new EventSource(withToken("events"));
  stream.onmessage = (message) => {
    // The stream's bytes, as they arrive ("data: ", the JSON, which is ASCII, and a blank line):
    // what a test weighs a round by.
    const body = document.body.dataset;
    body.streamed = String(Number(body.streamed || 0) + message.data.length + 8);
    receive(JSON.parse(message.data));
  };
  stream.onerror = () => {
    if (stream.readyState === EventSource.CLOSED && polling === null) {
      polling = setInterval(poll, 2000);
    }
  };
}

async function poll() {
  try {
    const response = await fetch(withToken("status"), { cache: "no-store" });
    if (response.ok) receive({ ...(await response.json()), full: true });
  } catch (error) {
    setText(document.getElementById("updated"), `cannot reach the autoscaler: ${error}`);
  }
}

function receive(message) {
  if (message.full) states.clear();
  for (const name of message.gone || []) states.delete(name);
  for (const [name, service] of Object.entries(message.services || {})) {
    states.set(name, service.state);
  }
  for (const event of message.events || []) events.push(event);
  events.splice(0, Math.max(0, events.length - EVENTS));
  header = message;
  health(message);
  overview();
  eventList();
  if (open !== null) card(open, Object.hasOwn(message.services || {}, open));
  // How many messages were shown: what a test counts rounds by.
  document.body.dataset.messages = String(Number(document.body.dataset.messages || 0) + 1);
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

function health(status) {
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
}

// -- the overview ------------------------------------------------------------------------------

const TONES = { holding: "ok", scaling: "info", repairing: "warn", backoff: "bad",
                paused: "warn", stopped: "warn", idle: "info", error: "bad" };

// How much a service needs a look: an error first, then a backoff, then one saturated at its
// max, then a finding (a replica taking no load) or a repair; the rest by name.
function trouble(state) {
  if (state.phase === "error" || state.error) return 4;
  if (state.phase === "backoff") return 3;
  if (state.bound === "max") return 2;
  if (state.finding || state.phase === "repairing") return 1;
  return 0;
}

function shown(name, state) {
  const wanted = document.getElementById("filter").value.trim().toLowerCase();
  // A service with an error is never filtered out.
  return !wanted || name.toLowerCase().includes(wanted) || trouble(state) === 4;
}

// The measure the service scales on, against its target: its metric (a replica's share), else
// CPU, else memory. ratio 1 is at the target.
function load(state) {
  const targets = state.targets || {};
  if (targets.metric !== undefined && typeof state.metric_value === "number") {
    const target = targets.metric * Math.max(state.replicas, 1);
    return { ratio: state.metric_value / target,
             text: `${round(state.metric_value)} of ${round(target)}` };
  }
  for (const [field, label] of [["cpu", "CPU"], ["memory", "memory"]]) {
    if (targets[field] !== undefined && typeof state[field] === "number") {
      return { ratio: state[field] / targets[field],
               text: `${label} ${state[field].toFixed(0)} % of ${targets[field]} %` };
    }
  }
  return null;
}

function round(value) {
  return Math.abs(value) >= 100 ? value.toFixed(0) : String(Math.round(value * 10) / 10);
}

function ago(seconds) {
  const elapsed = Math.max(0, Date.now() / 1000 - seconds);
  if (elapsed < 60) return `${elapsed.toFixed(0)} s ago`;
  if (elapsed < 3600) return `${Math.floor(elapsed / 60)} min ago`;
  return `${Math.floor(elapsed / 3600)} h ago`;
}

function overview() {
  const body = document.querySelector("#overview tbody");
  const rows = new Map([...body.rows].map((row) => [row.dataset.service, row]));
  for (const [name, row] of rows) {
    if (!states.has(name)) row.remove();
  }
  const names = [...states.keys()]
    .sort((a, b) => trouble(states.get(b)) - trouble(states.get(a)) || a.localeCompare(b));
  let visible = 0;
  let troubled = 0;
  names.forEach((name, place) => {
    const state = states.get(name);
    let row = rows.get(name);
    if (row === undefined) {
      row = document.getElementById("row").content.firstElementChild.cloneNode(true);
      row.dataset.service = name;
      row.querySelector(".open").addEventListener("click", () => choose(name));
    }
    // Moved only when out of place: a row in place keeps its focus and its hover.
    if (body.rows[place] !== row) body.insertBefore(row, body.rows[place] || null);
    fill(row, name, state);
    row.hidden = !shown(name, state);
    visible += row.hidden ? 0 : 1;
    troubled += trouble(state) > 0 ? 1 : 0;
  });
  document.getElementById("overview").hidden = names.length === 0;
  document.getElementById("empty").hidden = names.length > 0;
  const hiddenCount = names.length - visible;
  setText(document.getElementById("summary"),
          `${names.length} service${names.length === 1 ? "" : "s"}` +
          (troubled ? `, ${troubled} in trouble` : "") +
          (hiddenCount ? `; ${hiddenCount} filtered out` : ""));
}

function fill(row, name, state) {
  row.dataset.replicas = String(state.replicas);
  row.dataset.trouble = String(trouble(state));
  row.classList.toggle("chosen", name === open);
  setText(row.querySelector(".open"), name);
  const note = row.querySelector(".note");
  const words = state.error || state.finding || (state.bound === "max" ? "at its max" : "");
  setText(note, words);
  note.className = `note ${state.error ? "error" : state.finding ? "finding" : "muted"}`;
  const phase = state.dry_run ? `${state.phase} (dry run)` : state.phase;
  const held = state.control && state.control.action === "hold" ? ` · held at ${state.control.replicas}` : "";
  pill(row.querySelector(".phase"), phase + held, held ? "warn" : TONES[state.phase] || "info");
  const dash = (v) => (v === null || v === undefined ? "–" : String(v));
  setText(row.querySelector(".counts-cell"),
          `${dash(state.replicas)} / ${dash(state.desired)} / ${dash(state.max)}`);
  const measured = load(state);
  const fillBar = row.querySelector(".fill");
  // The bar's full width is twice the target: its middle is the target.
  fillBar.style.width = measured ? `${Math.min(measured.ratio, 2) * 50}%` : "0";
  fillBar.classList.toggle("over", measured !== null && measured.ratio > 1);
  setText(row.querySelector(".load-text"), measured ? measured.text : "");
  setText(row.querySelector(".col-action"), state.last_action
    ? `${state.last_action.replace("_", " ")}, ${ago(state.last_action_at)}` : "–");
}

document.getElementById("filter").addEventListener("input", overview);

// -- the events list ----------------------------------------------------------------------------

function eventList() {
  const list = document.getElementById("events");
  const newest = events.filter((e) => {
    const name = (e.Actor && e.Actor.ID) || "";
    return !states.has(name) || shown(name, states.get(name));
  }).slice(-EVENTS).reverse();
  const key = newest.map((e) => e.seq).join(",");
  if (list.dataset.key === key) return;
  list.dataset.key = key;
  list.replaceChildren(...newest.map(eventItem));
  list.closest("section").hidden = newest.length === 0;
}

function eventItem(e) {
  const item = document.createElement("li");
  item.className = `event event-${e.Action}`;
  const when = document.createElement("span");
  when.className = "when";
  when.textContent = new Date(e.timeNano / 1e6).toLocaleTimeString();
  const who = document.createElement("span");
  who.className = "who";
  who.textContent = e.Actor.ID;
  const what = document.createElement("span");
  what.className = "what";
  what.textContent = window.charts.describe(e);
  item.append(when, " ", who, " ", what);
  return item;
}

// -- a service's card -------------------------------------------------------------------------

function choose(name) {
  open = name;
  history.replaceState(null, "", `#${encodeURIComponent(name)}`);
  for (const row of document.querySelectorAll("#overview tbody tr")) {
    row.classList.toggle("chosen", row.dataset.service === name);
  }
  const box = document.getElementById("card");
  box.dataset.service = name;
  window.charts.reset(box);
  card(name, true);
  box.scrollIntoView({ block: "nearest" });
}

document.querySelector("#card .close").addEventListener("click", () => {
  open = null;
  history.replaceState(null, "", location.pathname + location.search);
  document.getElementById("card").hidden = true;
  overview();
});

function card(name, changed) {
  const box = document.getElementById("card");
  const state = states.get(name);
  box.hidden = state === undefined;
  if (state === undefined) return;
  setText(box.querySelector(".name"), name);
  const phase = state.dry_run ? `${state.phase} (dry run)` : state.phase;
  pill(box.querySelector(".phase"), phase, TONES[state.phase] || "info");
  box.dataset.replicas = String(state.replicas);
  for (const field of ["replicas", "desired", "min", "max"]) {
    const value = state[field];
    setText(box.querySelector(`.${field}`), value === null || value === undefined ? "–" : String(value));
  }
  for (const field of ["error", "finding", "schedule"]) {
    const node = box.querySelector(`.${field}`);
    node.hidden = !state[field];
    setText(node, state[field] || "");
  }
  const control = box.querySelector(".control");
  control.hidden = !state.control;
  setText(control, state.control ? controlWords(state.control) : "");
  // An error is shown once, as the error.
  setText(box.querySelector(".reason"), state.reason === state.error ? "" : state.reason || "");
  setText(box.querySelector(".now"), now(state));
  window.charts.follow(box, name, state, withToken);
  if (changed) decisions(box, name);
}

// An operator's pause or hold (autoscaler pause / hold, POST /controls), as the card says it.
function controlWords(c) {
  const what = c.action === "hold" ? `held at ${c.replicas}` : "paused";
  const until = c.until ? ` until ${new Date(c.until * 1000).toLocaleTimeString()}` : " until resumed";
  return `${what} by ${c.who}${c.why ? ` (${c.why})` : ""}${until}`;
}

function now(state) {
  const parts = [];
  if (typeof state.cpu === "number") parts.push(`CPU ${state.cpu.toFixed(1)} %`);
  if (typeof state.memory === "number") parts.push(`memory ${state.memory.toFixed(1)} %`);
  if (state.metric) {
    parts.push(`${state.metric} ${typeof state.metric_value === "number" ? round(state.metric_value) : "–"}`);
  }
  if (typeof state.startup === "number") parts.push(`start-up ${state.startup.toFixed(1)} s`);
  if (typeof state.received === "number") {
    const { bytes } = window.charts;
    parts.push(`network ${bytes(state.received)}/s in, ${bytes(state.sent || 0)}/s out`);
  }
  return parts.join(" · ");
}


async function decisions(box, name) {
  let found;
  try {
    const response = await fetch(withToken("status", { service: name }), { cache: "no-store" });
    if (!response.ok) return;
    found = (await response.json()).services[name];
  } catch (error) {
    return;
  }
  if (open !== name || found === undefined) return;
  const list = box.querySelector(".timeline ol");
  const newest = found.decisions.slice(-20).reverse();
  list.closest("details").hidden = newest.length === 0;
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

if (location.hash.length > 1) open = decodeURIComponent(location.hash.slice(1));
if (open !== null) document.getElementById("card").dataset.service = open;
connect();
