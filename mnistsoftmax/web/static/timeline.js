// The timeline: the slider over the run's snapshots (every view shows this digit under the weights
// of the snapshot chosen) and this digit's loss against step, the run's mean training loss faint
// behind it. The numbers are the answer's `timeline` (the server's, or local.js's in an exported
// page); this module draws them and reports the slider's moves.
import { $, fillTable, svg } from "./common.js";
import { number } from "./draw.js";

const LN10 = Math.log(10), PLAY_MS = 450;
let onMove = () => {}, playing = null;

// Where a step sits on the x axis: step 0 at the left edge, then log(step) from 1 to the last.
function scale(last, left, width) {
  const gap = 18, span = Math.log(Math.max(last, 2));
  return (s) => (s <= 0 ? left : left + gap + ((width - gap) * Math.log(s)) / span);
}

function describe(t) {
  const step = t.steps[t.index], last = t.steps.length - 1;
  if (t.index === 0) return "step 0 · untrained: the initial weights";
  if (t.index === last) return `step ${step} · trained: the end of the run`;
  return `step ${step} of ${t.steps[last]} · after ${step} update${step === 1 ? "" : "s"}`;
}

// What the slider says to a screen reader, in the page's words (not its index).
function valueText(t) {
  const step = t.steps[t.index], last = t.steps[t.steps.length - 1];
  const where = t.index === 0 ? ", untrained" : t.index === t.steps.length - 1 ? ", trained" : "";
  return `step ${step} of ${last}${where}`;
}

function chart(root, t, names) {
  // As wide as the card lets it be, so that its text keeps its size on a phone.
  const W = Math.round(Math.max(320, Math.min(760, root.getBoundingClientRect().width || 640)));
  const narrow = W < 560, H = narrow ? 250 : 230, left = 44, right = 12, top = narrow ? 46 : 30, bottom = 34;
  root.setAttribute("viewBox", `0 0 ${W} ${H}`);
  const x = scale(t.steps[t.steps.length - 1], left, W - left - right);
  const losses = [...t.loss, ...t.train_loss.map(([, l]) => l)];
  const ymax = Math.max(LN10 * 1.15, ...losses.filter(Number.isFinite).map((l) => Math.min(l, 12)));
  const y = (v) => top + ((H - top - bottom) * (ymax - Math.min(v, ymax))) / ymax;
  root.replaceChildren();
  for (let p = 1; p <= t.steps[t.steps.length - 1]; p *= 10) {
    root.append(svg("line", { x1: x(p), x2: x(p), y1: top, y2: H - bottom, class: "grid" }));
    root.append(svg("text", { x: x(p), y: H - bottom + 13, class: "tick", "text-anchor": "middle" }, String(p)));
  }
  root.append(svg("text", { x: x(0), y: H - bottom + 13, class: "tick", "text-anchor": "middle" }, "0"));
  root.append(svg("text", { x: (W + left) / 2, y: H - 4, class: "tick", "text-anchor": "middle" },
    "step (log scale; step 0 at the left edge)"));
  for (const v of [0, 1, 2]) {
    root.append(svg("text", { x: left - 6, y: y(v) + 4, class: "tick", "text-anchor": "end" }, String(v)));
  }
  root.append(svg("text", { x: 4, y: 12, class: "tick" }, `loss −ln p(${names[t.label]})`));
  const [lx, ly] = narrow ? [4, 28] : [left + 120, 12]; // the legend: beside the axis's name, or below it
  root.append(svg("line", { x1: lx, x2: lx + 20, y1: ly - 4, y2: ly - 4, class: "loss" }));
  root.append(svg("text", { x: lx + 24, y: ly, class: "tick" }, "this digit"));
  root.append(svg("line", { x1: lx + 90, x2: lx + 110, y1: ly - 4, y2: ly - 4, class: "train-mean" }));
  root.append(svg("text", { x: lx + 114, y: ly, class: "tick" }, trainLossName(t)));
  root.append(svg("line", { x1: left, x2: W - right, y1: y(LN10), y2: y(LN10), class: "ln10" }));
  root.append(svg("text", { x: W - right, y: y(LN10) - 4, class: "tick", "text-anchor": "end" },
    "ln 10 = 2.30: a uniform guess"));
  const path = (pairs) => pairs.map(([s, l]) => `${x(s).toFixed(1)},${y(l).toFixed(1)}`).join(" ");
  if (t.train_loss.length) {
    root.append(svg("polyline", { points: path(t.train_loss.filter(([s]) => s >= 1)), class: "train-mean" }));
  }
  root.append(svg("polyline", { points: path(t.steps.map((s, i) => [s, t.loss[i]])), class: "loss" }));
  t.steps.forEach((s, i) => {
    const dot = svg("circle", { cx: x(s), cy: y(t.loss[i]), r: i === t.index ? 5 : 2.5,
      class: i === t.index ? "label-point" : "class-point", "data-testid": `timeline-loss-${i}`,
      "data-value": String(t.loss[i]) });
    dot.append(svg("title", {}, `step ${s}: loss ${number(t.loss[i])}, p(${names[t.label]}) ` +
      `${(100 * t.probability[i]).toFixed(1)} %, predicted ${names[t.predicted[i]]}`));
    root.append(dot);
  });
  const at = t.steps[t.index];
  root.append(svg("line", { x1: x(at), x2: x(at), y1: top, y2: H - bottom, class: "marker",
    "data-testid": "timeline-marker" }));
  // A click on the chart moves to the nearest snapshot.
  root.onclick = (event) => {
    const box = root.getBoundingClientRect(), px = ((event.clientX - box.left) * W) / box.width;
    const nearest = t.steps.reduce((best, s, i) => (Math.abs(x(s) - px) < Math.abs(x(t.steps[best]) - px) ? i : best), 0);
    move(nearest);
  };
}

// Beside the slider: this digit's loss against step in small (the same log axis), the step shown marked.
function spark(root, t) {
  const W = 160, H = 30, pad = 3, last = t.steps[t.steps.length - 1];
  const x = scale(last, pad, W - 2 * pad), top = Math.max(LN10, ...t.loss.filter(Number.isFinite).map((l) => Math.min(l, 12)));
  const y = (v) => pad + ((H - 2 * pad) * (top - Math.min(v, top))) / top;
  root.replaceChildren(
    svg("line", { x1: pad, x2: W - pad, y1: y(LN10), y2: y(LN10), class: "ln10" }),
    svg("polyline", { points: t.steps.map((s, i) => `${x(s).toFixed(1)},${y(t.loss[i]).toFixed(1)}`).join(" "),
      class: "loss" }),
    svg("circle", { cx: x(t.steps[t.index]), cy: y(t.loss[t.index]), r: 3, class: "label-point" }),
  );
  root.append(svg("title", {}, `this digit's loss: ${number(t.loss[t.index])} at step ${t.steps[t.index]}`));
}

function move(index) {
  $("timeline").value = String(index);
  onMove(index);
}

export function stopPlaying() {
  if (playing) clearInterval(playing);
  playing = null;
  $("timeline-play").textContent = "▶ play";
}

function play() {
  if (playing) { stopPlaying(); return; }
  const slider = $("timeline");
  if (Number(slider.value) >= Number(slider.max)) move(0);
  $("timeline-play").textContent = "❚❚ pause";
  playing = setInterval(() => {
    const next = Number(slider.value) + 1;
    if (next > Number(slider.max)) { stopPlaying(); return; }
    move(next);
  }, PLAY_MS);
}

// Before any answer, from the checkpoint's summary: the bar is shown (or hidden) before the first
// stroke, so that nothing moves the pad under a pen. The slider starts at the last snapshot.
export function prepareTimeline(checkpoint) {
  const steps = checkpoint && checkpoint.snapshots;
  stopPlaying();
  $("timeline-bar").hidden = !steps;
  $("timeline-chart").hidden = true;
  $("timeline-summary").textContent = !checkpoint ? "" : steps
    ? "Draw a digit: its loss under every snapshot of the run appears here."
    : `No timeline: ${checkpoint.snapshots_note}.`;
  $("timeline-spark").replaceChildren();
  if (!steps) return;
  $("timeline").max = String(steps.length - 1);
  $("timeline").value = String(steps.length - 1);
  $("timeline-step").textContent = describe({ steps, index: steps.length - 1 });
  $("timeline-step").dataset.value = String(steps[steps.length - 1]);
}

// The answer's timeline, or the reason there is none (result.timeline_note).
export function showTimeline(result, names) {
  const t = result.timeline;
  $("timeline-bar").hidden = !t;
  $("timeline-chart").hidden = !t;
  if (!t) {
    stopPlaying();
    $("timeline-caption").textContent = "";
    $("timeline-table").replaceChildren();
    $("timeline-summary").textContent = result.timeline_note ? `No timeline: ${result.timeline_note}.` : "";
    return;
  }
  const slider = $("timeline");
  slider.max = String(t.steps.length - 1);
  slider.value = String(t.index);
  slider.setAttribute("aria-valuetext", valueText(t));
  const step = $("timeline-step");
  step.textContent = describe(t);
  step.dataset.value = String(t.steps[t.index]);
  const whose = t.label_from === "label" ? `the label ${names[t.label]}`
    : `${names[t.label]}, the trained net's answer (choose the true label to follow it instead)`;
  $("timeline-summary").textContent = `This digit's loss −ln p for ${whose} under each of the run's ` +
    `${t.steps.length} snapshots: ${number(t.loss[0])} at step 0 (ln 10 = 2.3026 is a uniform guess's), ` +
    (t.index > 0 && t.index < t.steps.length - 1 ? `${number(t.loss[t.index])} at step ${t.steps[t.index]}, ` : "") +
    `${number(t.loss[t.loss.length - 1])} at the end (step ${t.steps[t.steps.length - 1]}). ` +
    `Faint behind it: ${trainLossName(t)}${smoothingNote(t, names.length)}. Drag the slider (or click the chart): every view below ` +
    "shows this digit under the weights of that step." + (t.note ? ` (${t.note}.)` : "");
  chart($("timeline-chart"), t, names);
  spark($("timeline-spark"), t);
  chartText(t, names);
}

// The chart in words and as a table: what it shows in this digit's numbers, for a screen reader,
// a printout and anyone who wants the figures themselves.
function chartText(t, names) {
  const last = t.steps.length - 1, middle = Math.round(last / 2);
  const at = (i) => `${number(t.loss[i])} at step ${t.steps[i]}`;
  $("timeline-caption").textContent = `The loss −ln p(${names[t.label]}) of this digit: ${at(0)} (ln 10 = 2.303, ` +
    `a uniform guess), ${at(middle)}, ${at(last)}; the step shown is ${t.steps[t.index]}.`;
  fillTable($("timeline-table"), ["step", `p(${names[t.label]})`, `loss −ln p(${names[t.label]})`, "predicted"],
    t.steps.map((step, i) => [step, `${(100 * t.probability[i]).toFixed(2)} %`, number(t.loss[i]), names[t.predicted[i]]]));
}

// A run trained with label smoothing records the smoothed loss, which stops above 0: say so.
function trainLossName(t) {
  return t.train_loss_smoothing ? `the run's mean training loss (smoothed, e = ${t.train_loss_smoothing})`
    : "the run's mean training loss";
}

function smoothingNote(t, classes) {
  const e = t.train_loss_smoothing;
  return e ? ", measured against targets of " +
    `${number(1 - e + e / classes)} on the label (label smoothing), so ` +
    "it stops above 0 where this digit's plain −ln p does not" : "";
}

export function wireTimeline(moved) {
  onMove = moved;
  $("timeline").addEventListener("input", (e) => { stopPlaying(); onMove(Number(e.target.value)); });
  $("timeline-play").addEventListener("click", play);
}
