// The review page: one item at a time, decisions by key or button, everything kept by the server.
"use strict";
const token = new URLSearchParams(location.search).get("token") || "";
const q = (path) => path + (path.includes("?") ? "&" : "?") + "token=" + encodeURIComponent(token);
let state = null;
let pos = 0;

async function api(path, body) {
  const opts = body === undefined ? {} : {method: "POST", headers: {"Content-Type": "application/json"},
                                          body: JSON.stringify(body)};
  const r = await fetch(q(path), opts);
  if (!r.ok) throw new Error(path + ": " + r.status);
  return r.json();
}

function progressText() {
  const c = state.counts;
  return `${state.reviewed} / ${state.total} reviewed · ${c.positive} positive · ${c.negative} negative · ` +
         `${c.uncertain} uncertain · item ${pos + 1} of ${state.total}`;
}

async function show() {
  document.getElementById("progress").textContent = progressText();
  if (pos >= state.order.length) {
    document.getElementById("meta").textContent = "all items reviewed";
    return;
  }
  const n = state.order[pos];
  const it = await api(`/api/item/${n}`);
  document.getElementById("tag").textContent = it.tag || "(no tag)";
  document.getElementById("score").textContent = it.score === null ? "" : `score ${it.score.toFixed(3)}`;
  const end = it.end === null ? "end" : `${it.end.toFixed(2)} s`;
  document.getElementById("where").textContent = `${it.file} · ${it.start.toFixed(2)} s to ${end}`;
  const lab = document.getElementById("current-label");
  lab.textContent = it.label || "";
  lab.className = it.label || "";
  const img = document.getElementById("spectrogram");
  const missing = document.getElementById("missing");
  const player = document.getElementById("player");
  if (it.missing) {
    img.hidden = true;
    player.removeAttribute("src");
    missing.hidden = false;
    missing.textContent = `audio file missing: ${it.path} (press s to skip)`;
    return;
  }
  missing.hidden = true;
  img.hidden = false;
  img.onerror = () => { missing.hidden = false; missing.textContent = `cannot read ${it.file} (press s to skip)`; };
  img.src = q(`/spectrogram/${n}`);
  player.src = q(`/audio/${n}`);
  player.play().catch(() => {});  // autoplay may be refused until the first key press
}

async function decide(label) {
  if (pos >= state.order.length) return;
  state = await api("/api/decide", {item: state.order[pos], label: label});
  pos = Math.min(pos + 1, state.order.length);
  await show();
  summary();
}

async function undo() {
  const r = await api("/api/undo", {});
  state = r;
  if (r.undone !== null) pos = state.order.indexOf(r.undone);
  await show();
  summary();
}

async function move(step) {
  pos = Math.max(0, Math.min(state.order.length, pos + step));
  await show();
}

async function summary() {
  const s = await api("/api/summary");
  const el = document.getElementById("estimate");
  if (s.estimate) {
    const e = s.estimate;
    el.textContent = `about ${e.total} true of ${e.items} items (95% CI ${e.low} to ${e.high}), from ${e.reviewed} reviewed`;
  } else {
    el.textContent = s.order === "stratified" ? "review some items" :
      "an estimate of the total needs --order stratified";
  }
  const cv = document.getElementById("curve");
  const g = cv.getContext("2d");
  g.clearRect(0, 0, cv.width, cv.height);
  g.fillStyle = "#555";
  g.fillText("precision against score", 8, 14);
  if (!s.precision_curve) return;
  const xs = s.precision_curve.score, ys = s.precision_curve.precision;
  const x0 = xs[0], x1 = xs[xs.length - 1] || x0 + 1;
  g.strokeStyle = "#3b6ea8";
  g.beginPath();
  xs.forEach((x, i) => {
    const px = 30 + (cv.width - 40) * (x - x0) / Math.max(1e-9, x1 - x0);
    const py = cv.height - 20 - (cv.height - 40) * ys[i];
    if (i === 0) g.moveTo(px, py); else g.lineTo(px, py);
  });
  g.stroke();
  g.fillText(x0.toFixed(2), 26, cv.height - 6);
  g.fillText(x1.toFixed(2), cv.width - 36, cv.height - 6);
}

// one action at a time, in the order pressed: a fast "y y y" decides three items, never one item three times
let queue = Promise.resolve();
const enqueue = (fn) => { queue = queue.then(fn).catch((e) => { document.getElementById("progress").textContent = String(e); }); };

document.addEventListener("keydown", (ev) => {
  if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
  const keys = {y: () => decide("positive"), n: () => decide("negative"), u: () => decide("uncertain"),
                s: () => move(1), z: () => undo(), ArrowLeft: () => move(-1), ArrowRight: () => move(1)};
  if (keys[ev.key]) { ev.preventDefault(); enqueue(keys[ev.key]); }
});
document.querySelectorAll("button[data-label]").forEach((b) =>
  b.addEventListener("click", () => enqueue(() => decide(b.dataset.label))));
document.getElementById("skip").addEventListener("click", () => enqueue(() => move(1)));
document.getElementById("undo").addEventListener("click", () => enqueue(() => undo()));
document.getElementById("prev").addEventListener("click", () => enqueue(() => move(-1)));
document.getElementById("next").addEventListener("click", () => enqueue(() => move(1)));

enqueue(async () => {
  state = await api("/api/state");
  pos = state.current;
  await show();
  summary();
});
