// SVG charts of a run's records: the loss per step, and box plots per true class.
import { fillTable, svg } from "./common.js";
import { number as num } from "./draw.js";
import { median } from "./preprocess.js";

const LN10 = Math.log(10);


// The loss from the step records: one circle per point, each with data-step; the validation
// loss of each epoch as squares; the ln 10 line, where an untrained net starts.
export function lossChart(root, { steps, epochs, totalSteps, scale = null }) {
  const W = 640, H = 260, left = 44, right = 12, top = 12, bottom = 30;
  root.replaceChildren();
  // `scale` ({maxStep, maxLoss}) draws two runs side by side on the same axes.
  const maxStep = scale ? scale.maxStep : Math.max(totalSteps || 0, ...steps.map((s) => s.step), 1);
  const maxLoss = scale ? scale.maxLoss : Math.max(2.6, ...steps.slice(0, 5).map((s) => s.loss));
  // A logarithmic step axis (of 1 + step, so step 0 is drawn), as plot's curves.png: the first
  // fall from ln 10 takes a few dozen steps, and would be a vertical line at the left otherwise.
  const x = (step) => left + ((W - left - right) * Math.log1p(step)) / Math.log1p(maxStep);
  const y = (loss) => top + (H - top - bottom) * (1 - Math.min(loss, maxLoss) / maxLoss);
  for (let v = 0; v <= maxLoss; v += 0.5) {
    root.append(svg("line", { x1: left, x2: W - right, y1: y(v), y2: y(v), class: "grid" }));
    root.append(svg("text", { x: left - 6, y: y(v) + 4, class: "tick", "text-anchor": "end" }, v.toFixed(1)));
  }
  root.append(svg("line", { x1: left, x2: W - right, y1: y(LN10), y2: y(LN10), class: "ln10" }));
  root.append(svg("text", { x: W - right - 4, y: y(LN10) - 4, class: "tick", "text-anchor": "end" },
    "ln 10 = 2.303: every class at 10 %"));
  let labelled = -Infinity;
  for (const e of epochs) {
    root.append(svg("line", { x1: x(e.step), x2: x(e.step), y1: top, y2: H - bottom, class: "epoch" }));
    if (x(e.step) - labelled < 56) continue; // labels that would overlap are left out
    labelled = x(e.step);
    root.append(svg("text", { x: x(e.step) - 3, y: H - bottom - 4, class: "tick", "text-anchor": "end" },
      `epoch ${e.epoch}`));
  }
  root.append(svg("text", { x: (W + left) / 2, y: H - 6, class: "tick", "text-anchor": "middle" },
    "step (logarithmic)"));
  const endLabel = String(maxStep);
  for (const step of [0, 1, 10, 100, 1000, 10000, 100000].filter((v) => v <= maxStep)) {
    if (x(maxStep) - x(step) < 8 * endLabel.length) continue; // it would overprint the end's label
    root.append(svg("text", { x: x(step), y: H - bottom + 14, class: "tick", "text-anchor": "middle" }, String(step)));
  }
  root.append(svg("text", { x: W - right, y: H - bottom + 14, class: "tick", "text-anchor": "end" }, endLabel));
  // The first steps are recorded one by one, the rest as means of log_every steps: two series, not
  // one line (the first mean, the start's 2.3 included, would read as the loss rising again).
  const single = steps.filter((s) => (s.steps ?? 1) === 1), windows = steps.filter((s) => (s.steps ?? 1) > 1);
  for (const [series, cls] of [[single, "loss"], [windows, "window"]]) {
    if (!series.length) continue;
    const points = series.map((s) => `${x(s.step).toFixed(1)},${y(s.loss).toFixed(1)}`).join(" ");
    root.append(svg("polyline", { points, class: cls }));
  }
  for (const s of steps) {
    const dot = svg("circle", { cx: x(s.step), cy: y(s.loss), r: 1.8, "data-step": s.step,
      class: (s.steps ?? 1) > 1 ? "window-point" : "loss-point" });
    const what = (s.steps ?? 1) > 1 ? `mean of the ${s.steps} steps up to ${s.step}` : `step ${s.step}`;
    dot.append(svg("title", {}, `${what}: loss ${s.loss.toFixed(4)}`));
    root.append(dot);
  }
  const validation = epochs.filter((e) => e.val_loss !== undefined);
  for (const e of validation) {
    root.append(svg("rect", { x: x(e.step) - 3, y: y(e.val_loss) - 3, width: 6, height: 6, class: "val-point" }));
  }
  const legend = [["loss-point", "loss of each step"], ["window-point", `mean loss of ${windows[0]?.steps ?? "n"} steps`]];
  if (validation.length) legend.push(["val-point", "validation loss, each epoch"]);
  // Below the ln 10 line and its label, where the curve has already fallen away.
  const legendTop = y(LN10) + 30;
  legend.forEach(([cls, text], k) => {
    root.append(svg("rect", { x: W - right - 190, y: legendTop + 14 * k - 7, width: 8, height: 8, class: cls }));
    root.append(svg("text", { x: W - right - 178, y: legendTop + 14 * k, class: "tick" }, text));
  });
}

// One panel per true class, one box per output: quartiles, median, whiskers min-max; the true
// class's box highlighted. summaries: {min, q1, median, q3, max}, each [true class][output].
export function boxPlots(root, summaries, classes, classNames, { low, high, format }) {
  root.replaceChildren();
  const W = 150, H = 110, left = 26, top = 14, bottom = 16;
  const width = (W - left - 4) / classNames.length;
  const y = (v) => top + (H - top - bottom) * (1 - (v - low) / (high - low));
  classes.forEach((trueClass, row) => {
    const panel = svg("svg", { viewBox: `0 0 ${W} ${H}`, class: "box-panel", "data-class": trueClass });
    panel.append(svg("text", { x: W / 2, y: 10, class: "tick", "text-anchor": "middle" },
      `true ${classNames[trueClass]}`));
    for (const v of [low, high]) {
      panel.append(svg("text", { x: left - 3, y: y(v) + 3, class: "tick", "text-anchor": "end" }, format(v)));
    }
    panel.append(svg("line", { x1: left, x2: W - 2, y1: y(low), y2: y(low), class: "grid" }));
    classNames.forEach((name, out) => {
      const cx = left + width * (out + 0.5);
      const [mn, q1, med, q3, mx] = ["min", "q1", "median", "q3", "max"].map((k) => summaries[k][row][out]);
      const kind = out === trueClass ? "box true" : "box";
      panel.append(svg("line", { x1: cx, x2: cx, y1: y(mx), y2: y(mn), class: "whisker" }));
      panel.append(svg("rect", { x: cx - width * 0.35, y: y(q3), width: width * 0.7,
        height: Math.max(0.5, y(q1) - y(q3)), class: kind }));
      panel.append(svg("line", { x1: cx - width * 0.35, x2: cx + width * 0.35, y1: y(med), y2: y(med), class: "median" }));
      panel.append(svg("text", { x: cx, y: H - 4, class: "tick", "text-anchor": "middle" }, String(out)));
    });
    root.append(panel);
  });
}

// The correct class's margin z_y - max other z on the probe images as training goes: the median
// as a line, the quartiles as a band; the hinge loss's margin, 1, as a dashed line.
// The axes a run's charts need, and those two runs share (the larger of each).
export function chartScale(runs) {
  const steps = runs.flatMap((r) => r.steps), margins = runs.flatMap((r) => r.probes.filter((p) => p.margin));
  return {
    maxStep: Math.max(1, ...runs.map((r) => r.totalSteps || 0), ...steps.map((s) => s.step)),
    maxLoss: Math.max(2.6, ...runs.flatMap((r) => r.steps.slice(0, 5).map((s) => s.loss))),
    marginStep: Math.max(1, ...margins.map((p) => p.step)),
    low: Math.min(-1, ...margins.map((p) => p.margin.q1)),
    high: Math.max(2, ...margins.map((p) => p.margin.q3)),
  };
}

export function marginChart(root, probes, scale = null) {
  const W = 640, H = 200, left = 44, right = 12, top = 12, bottom = 30;
  root.replaceChildren();
  const withMargin = probes.filter((p) => p.margin);
  if (!withMargin.length) return;
  const maxStep = scale ? scale.marginStep : Math.max(1, ...withMargin.map((p) => p.step));
  const low = scale ? scale.low : Math.min(-1, ...withMargin.map((p) => p.margin.q1));
  const high = scale ? scale.high : Math.max(2, ...withMargin.map((p) => p.margin.q3));
  const x = (step) => left + ((W - left - right) * Math.log1p(step)) / Math.log1p(maxStep);
  const y = (m) => top + (H - top - bottom) * (1 - (m - low) / (high - low));
  for (const v of [low, 0, 1, high]) {
    root.append(svg("text", { x: left - 6, y: y(v) + 4, class: "tick", "text-anchor": "end" }, v.toFixed(1)));
  }
  root.append(svg("line", { x1: left, x2: W - right, y1: y(1), y2: y(1), class: "ln10" }));
  root.append(svg("text", { x: W - right - 4, y: y(1) - 4, class: "tick", "text-anchor": "end" },
    "margin 1: where the hinge stops pushing"));
  const band = [...withMargin.map((p) => `${x(p.step)},${y(p.margin.q3)}`),
    ...withMargin.slice().reverse().map((p) => `${x(p.step)},${y(p.margin.q1)}`)].join(" ");
  root.append(svg("polygon", { points: band, class: "band" }));
  const line = withMargin.map((p) => `${x(p.step).toFixed(1)},${y(p.margin.median).toFixed(1)}`).join(" ");
  root.append(svg("polyline", { points: line, class: "loss", "data-testid": "margin-line" }));
  root.append(svg("text", { x: (W + left) / 2, y: H - 6, class: "tick", "text-anchor": "middle" },
    "step (logarithmic); median and quartiles of the probe images' margins"));
}

// Box plots per true class in numbers: the median, over the true classes, of the right class's
// median logit and probability and of the other outputs' ({classes, logits, softmax} as boxPlots
// takes them, each {min, q1, median, q3, max}[true class][output]).
export function boxMedians({ classes, logits, softmax }) {
  const take = (stats, right) => classes.flatMap((c, row) => stats.median[row].filter((_, out) => (out === c) === right));
  return {
    rightLogit: median(take(logits, true)), otherLogit: median(take(logits, false)),
    rightP: median(take(softmax, true)), otherP: median(take(softmax, false)),
  };
}

// The same in words, and as a table: each true class's median logit and probability of its own
// class, and the largest median logit of another.
export function boxText(caption, table, boxes, classNames, when) {
  const m = boxMedians(boxes);
  caption.textContent = `${when}: the right class's median logit ${num(m.rightLogit)}, the other classes' ` +
    `${num(m.otherLogit)}; the right class's median probability ${(100 * m.rightP).toFixed(1)} %, the others' ` +
    `${(100 * m.otherP).toFixed(2)} %.`;
  Object.assign(caption.dataset, { rightLogit: m.rightLogit, otherLogit: m.otherLogit, rightP: m.rightP,
    otherP: m.otherP });
  fillTable(table, ["true class", "median z of its class", "median p of its class", "largest median z of another"],
    boxes.classes.map((c, row) => [classNames[c], num(boxes.logits.median[row][c]), num(boxes.softmax.median[row][c]),
      num(Math.max(...boxes.logits.median[row].filter((_, out) => out !== c)))]));
  return m;
}

// A loss chart in words: its first and last records, and the epochs' validation losses.
export function lossText(caption, steps, epochs) {
  if (!steps.length) { caption.textContent = ""; return; }
  const first = steps[0], last = steps[steps.length - 1];
  const val = epochs.filter((e) => e.val_loss !== undefined);
  caption.textContent = `The training loss: ${num(first.loss)} at step ${first.step} (ln 10 = 2.303, every class ` +
    `at 10 %), ${num(last.loss)} at step ${last.step}` + (val.length ? `; the validation loss ${val.map((e) =>
    `${num(e.val_loss)} after epoch ${e.epoch}`).join(", ")}.` : ".");
}

// A margin chart in words: the median margin at the first and the last probe.
export function marginText(caption, probes) {
  const withMargin = probes.filter((p) => p.margin);
  if (!withMargin.length) { caption.textContent = ""; return; }
  const first = withMargin[0], last = withMargin[withMargin.length - 1];
  caption.textContent = `The median margin z_y − max other z over the probe images: ${num(first.margin.median)} at ` +
    `step ${first.step}, ${num(last.margin.median)} at step ${last.step} (the hinge stops pushing at 1).`;
}
