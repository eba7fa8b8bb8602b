// The open card's charts, drawn with uPlot (vendor/uplot, MIT): replicas, desired and max as
// step lines with the measure the service scales on against its target, each action marked
// (its reason on hover); and the network's bytes a second. Rows come from /history, the whole
// hour when the card opens, then only the rows after the newest one, a round at a time.
"use strict";

window.charts = (() => {
  let shown = null; // {name, rows, events, plots, pending, observer}

  function css(name) {
    return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  }

  function reset(box) {
    if (shown !== null) {
      for (const plot of shown.plots) plot.destroy();
      if (shown.observer) shown.observer.disconnect();
    }
    shown = null;
    for (const node of box.querySelectorAll(".plot")) node.replaceChildren();
    box.querySelector(".mark").textContent = "";
  }

  async function follow(box, name, state, withToken) {
    if (shown !== null && shown.name !== name) reset(box);
    if (shown === null) shown = { name, rows: null, events: new Map(), plots: [], pending: false };
    const mine = shown;
    if (mine.pending || typeof uPlot === "undefined") return;
    mine.pending = true;
    try {
      const params = { service: name };
      const times = mine.rows ? mine.rows.time : [];
      if (times.length) params.since = String(times[times.length - 1]);
      const response = await fetch(withToken("history", params), { cache: "no-store" });
      if (!response.ok) return;
      const found = await response.json();
      if (shown !== mine) return;
      add(mine, found);
      draw(box, mine, state);
    } catch (error) {
      // The next round asks again.
    } finally {
      mine.pending = false;
    }
  }

  function add(mine, found) {
    for (const e of found.events) mine.events.set(e.seq, e);
    if (mine.rows === null) {
      mine.rows = found.rows;
    } else {
      const rows = mine.rows;
      const first = found.rows.time[0];
      const last = rows.time[rows.time.length - 1];
      // A row that took the place of the newest one (an action's end in the same round).
      const replaced = first !== undefined && first - last < found.interval / 2 ? 1 : 0;
      for (const column of Object.keys(rows)) {
        rows[column].splice(rows[column].length - replaced, replaced, ...found.rows[column]);
      }
    }
    // The hour, no more.
    const rows = mine.rows;
    const newest = rows.time[rows.time.length - 1];
    const drop = rows.time.findIndex((t) => t >= newest - found.span);
    if (drop > 0) for (const column of Object.keys(rows)) rows[column].splice(0, drop);
    const oldest = rows.time[0];
    for (const [seq, e] of mine.events) if (e.timeNano / 1e9 < oldest - found.interval) mine.events.delete(seq);
    mine.interval = found.interval;
  }

  // What the service scales on: its metric against its target for the replicas it had (a
  // replica's share times the count), or CPU, or memory, against a flat target.
  function measure(rows, state) {
    const targets = state.targets || {};
    if (targets.metric !== undefined) {
      return { label: state.metric || "metric", unit: "",
               values: rows.metric, target: rows.replicas.map((r) => (r === null ? null : targets.metric * Math.max(r, 1))) };
    }
    for (const [field, label] of [["cpu", "CPU"], ["memory", "memory"]]) {
      if (targets[field] !== undefined || rows[field].some((v) => v !== null)) {
        const target = targets[field];
        return { label, unit: " %", values: rows[field],
                 target: rows.time.map(() => (target === undefined ? null : target)) };
      }
    }
    return null;
  }

  function draw(box, mine, state) {
    const rows = mine.rows;
    if (rows.time.length === 0) return;
    const scale = measure(rows, state);
    setMeasure(box, scale);
    const stepped = uPlot.paths.stepped({ align: 1 });
    const data = [rows.time, rows.replicas, rows.desired, rows.max,
                  scale ? scale.values : rows.time.map(() => null),
                  scale ? scale.target : rows.time.map(() => null)];
    const network = [rows.time, rows.received, rows.sent];
    if (mine.plots.length === 0) {
      const plot = box.querySelector('[data-chart="replicas"] .plot');
      const net = box.querySelector('[data-chart="network"] .plot');
      const width = Math.max(plot.clientWidth, 200);
      mine.plots.push(new uPlot(lines(replicaOptions(width, scale, stepped, mine, box)), data, plot));
      mine.plots.push(new uPlot(lines(networkOptions(width)), network, net));
      mine.observer = new ResizeObserver(() => {
        const w = Math.max(plot.clientWidth, 200);
        for (const p of mine.plots) p.setSize({ width: w, height: p.height });
      });
      mine.observer.observe(plot);
    } else {
      mine.plots[0].setData(data);
      mine.plots[1].setData(network);
    }
    box.querySelector('[data-chart="network"]').hidden =
      !rows.received.some((v) => v !== null) && !rows.sent.some((v) => v !== null);
  }

  // Lines without a dot at every row: an hour is hundreds of them.
  function lines(options) {
    for (const series of options.series.slice(1)) series.points = { show: false };
    return options;
  }

  function setMeasure(box, scale) {
    const node = box.querySelector(".measure");
    const text = scale ? scale.label : "the load";
    if (node.textContent !== text) node.textContent = text;
  }

  function replicaOptions(width, scale, stepped, mine, box) {
    const line = css("--info");
    return {
      width, height: 170,
      scales: { x: { time: true }, count: { range: (u, lo, hi) => [0, Math.max(1, hi) + 1] } },
      axes: [
        { stroke: css("--muted"), grid: { stroke: css("--line") } },
        { scale: "count", stroke: css("--muted"), grid: { stroke: css("--line") },
          incrs: [1, 2, 5, 10, 20, 50, 100], values: (u, v) => v.map(String) },
        { scale: "measure", side: 1, stroke: css("--muted"), grid: { show: false } },
      ],
      series: [
        { value: (u, t) => (t === null ? "–" : new Date(t * 1000).toLocaleTimeString()) },
        { label: "replicas", scale: "count", stroke: line, width: 2, paths: stepped },
        { label: "desired", scale: "count", stroke: css("--warn"), width: 1, dash: [6, 4], paths: stepped },
        { label: "max", scale: "count", stroke: css("--muted"), width: 1, dash: [2, 3], paths: stepped },
        { label: scale ? scale.label : "load", scale: "measure", stroke: css("--ok"), width: 1.5,
          value: (u, v) => (v === null ? "–" : `${Math.round(v * 10) / 10}${scale ? scale.unit : ""}`) },
        { label: "target", scale: "measure", stroke: css("--target"), width: 1, dash: [4, 3],
          paths: stepped },
      ],
      hooks: {
        draw: [(u) => marks(u, mine)],
        setCursor: [(u) => hover(u, mine, box)],
      },
    };
  }

  function networkOptions(width) {
    const rate = (u, v) => (v === null ? "–" : `${bytes(v)}/s`);
    return {
      width, height: 110,
      scales: { x: { time: true }, y: { range: (u, lo, hi) => [0, Math.max(hi, 1) * 1.1] } },
      axes: [
        { stroke: css("--muted"), grid: { stroke: css("--line") } },
        { stroke: css("--muted"), grid: { stroke: css("--line") }, size: 60,
          values: (u, v) => v.map((x) => bytes(x)) },
      ],
      series: [
        { value: (u, t) => (t === null ? "–" : new Date(t * 1000).toLocaleTimeString()) },
        { label: "received", stroke: css("--info"), width: 1.5, value: rate },
        { label: "sent", stroke: css("--ok"), width: 1.5, value: rate },
      ],
    };
  }

  const MARK_TONES = { scale_up: "--info", scale_down: "--muted", error: "--bad",
                       sleep: "--muted", wake: "--info" };

  function marks(u, mine) {
    const ctx = u.ctx;
    const { top, height } = u.bbox;
    ctx.save();
    ctx.lineWidth = 2 * devicePixelRatio;
    for (const e of mine.events.values()) {
      const x = u.valToPos(e.timeNano / 1e9, "x", true);
      if (x < u.bbox.left || x > u.bbox.left + u.bbox.width) continue;
      ctx.strokeStyle = css(MARK_TONES[e.Action] || "--warn");
      ctx.beginPath();
      ctx.moveTo(x, top);
      ctx.lineTo(x, top + height);
      ctx.stroke();
    }
    ctx.restore();
  }

  function hover(u, mine, box) {
    const node = box.querySelector(".mark");
    const left = u.cursor.left;
    let nearest = null;
    let distance = 8; // CSS pixels: how close the cursor must come to a mark
    if (left !== undefined && left >= 0) {
      for (const e of mine.events.values()) {
        const d = Math.abs(u.valToPos(e.timeNano / 1e9, "x") - left);
        if (d <= distance) {
          nearest = e;
          distance = d;
        }
      }
    }
    const text = nearest === null ? "" : `${new Date(nearest.timeNano / 1e6).toLocaleTimeString()} ${describe(nearest)}`;
    if (node.textContent !== text) node.textContent = text;
  }

  // An event in words, as the events list and the chart's marks say it.
  function describe(e) {
    const counts = e.from !== undefined && e.to !== undefined ? ` ${e.from} → ${e.to}` : "";
    const why = e.reason || e.message || "";
    return `${e.Action.replace("_", " ")}${counts}${why ? `: ${why}` : ""}`;
  }

  function bytes(value) {
    for (const [size, unit] of [[1e9, "GB"], [1e6, "MB"], [1e3, "kB"]]) {
      if (value >= size) return `${(value / size).toFixed(1)} ${unit}`;
    }
    return `${value.toFixed(0)} B`;
  }

  // Where each mark is drawn, in the page's coordinates: what a pointer moves to for its reason.
  function positions() {
    if (shown === null || shown.plots.length === 0) return [];
    const plot = shown.plots[0];
    const box = plot.over.getBoundingClientRect();
    return [...shown.events.values()].map((e) => ({
      action: e.Action, x: box.left + plot.valToPos(e.timeNano / 1e9, "x"), y: box.top + box.height / 2,
    })).filter((p) => p.x >= box.left && p.x <= box.right);
  }

  return { reset, follow, describe, bytes, positions };
})();
