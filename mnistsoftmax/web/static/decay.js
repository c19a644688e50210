// Weight decay: the L2 term a run adds to its loss, reg * sum of W^2 over the weights (not the
// biases), and its gradient 2 reg W, which shrinks every weight a little at each step; the sum of
// squares through training, from the snapshots. Its numbers come from the page's engine.
import { $, element, fillTable, svg } from "./common.js";
import { number as num } from "./draw.js";

let shown = null; // { result, checkpoint }: what the reg slider recomputes from

// The slider's reg: 0 at its left end, then 1e-6 to 1e-1 on a log scale (its value is log10(reg * 1e6)),
// to three figures, so that the reg the page says is the one it computes with (the run's 2e-4 sits
// at 2.30, which is 1.995e-4 before the rounding).
function decayOf() {
  const raw = Number($("decay-reg").value);
  return raw > 0 ? Number((10 ** raw / 1e6).toPrecision(3)) : 0;
}

function sayReg(reg) {
  return reg === 0 ? "0" : reg.toExponential(2).replace(/\.?0+e/, "e").replace("e-", "e−");
}

function drawThrough(result, squared) {
  const root = $("decay-chart");
  root.replaceChildren();
  const t = result.timeline;
  if (!squared.through || !t) {
    $("decay-chart-caption").textContent = "This checkpoint kept no snapshots: only its trained weights' ΣW² is known.";
    $("decay-table").replaceChildren();
    return;
  }
  fillTable($("decay-table"), ["step", "ΣW²"], squared.through.map((v, i) => [t.steps[i], num(v)]));
  const W = 560, H = 160, left = 56, right = 10, top = 18, bottom = 26; // room for large type's ticks
  const maxStep = Math.max(1, ...t.steps), high = Math.max(...squared.through) * 1.05, low = 0;
  const x = (step) => left + ((W - left - right) * Math.log1p(step)) / Math.log1p(maxStep);
  const y = (v) => top + (H - top - bottom) * (1 - (v - low) / (high - low));
  for (const v of [low, high / 2, high]) {
    root.append(svg("text", { x: left - 6, y: y(v) + 4, class: "tick", "text-anchor": "end" },
      v === 0 ? "0" : v.toPrecision(3)));
    root.append(svg("line", { x1: left, x2: W - right, y1: y(v), y2: y(v), class: "grid" }));
  }
  const points = squared.through.map((v, i) => `${x(t.steps[i]).toFixed(1)},${y(v).toFixed(1)}`).join(" ");
  root.append(svg("polyline", { points, class: "loss" }));
  squared.through.forEach((v, i) => {
    const dot = svg("circle", { cx: x(t.steps[i]), cy: y(v), r: i === t.index ? 5 : 2,
      class: i === t.index ? "here" : "loss-point", "data-testid": `decay-point-${i}`, "data-value": v });
    dot.append(svg("title", {}, `step ${t.steps[i]}: ΣW² = ${num(v)}`));
    root.append(dot);
  });
  root.append(svg("text", { x: (W + left) / 2, y: H - 6, class: "tick", "text-anchor": "middle" },
    "ΣW² by step (log scale)"));
  $("decay-chart-caption").textContent = `ΣW² was ${num(squared.through[0])} at step 0 and ` +
    `${num(squared.through[squared.through.length - 1])} at step ${t.steps[t.steps.length - 1]}.`;
}

export function showDecay(result, checkpoint) {
  shown = { result, checkpoint };
  const squared = result.squared_weights;
  if (!squared) return;
  const t = result.timeline, at = t ? squared.through[t.index] : squared.trained;
  const reg = decayOf(), run = checkpoint && checkpoint.weight_decay;
  const data = result.loss, term = reg * at, lr = checkpoint && checkpoint.lr;
  $("decay-run").textContent = run ? `This run trained with weight decay ${sayReg(run)} (--weight-decay): ` +
    `its loss was cross entropy + ${sayReg(run)} × ΣW².` : "This run trained without weight decay (--weight-decay 0).";
  $("decay-reg-value").textContent = sayReg(reg);
  $("decay-reg").setAttribute("aria-valuetext", `reg = ${sayReg(reg)}`);
  const where = t ? `at step ${t.steps[t.index]}` : "for the trained weights";
  const parts = [element("span", {}, `ΣW² = `), element("b", { "data-testid": "decay-squared", "data-value": at }, num(at)),
    element("span", {}, ` ${where}; reg × ΣW² = ${sayReg(reg)} × ${num(at)} = `),
    element("b", { "data-testid": "decay-term", "data-value": term }, num(term))];
  if (data !== undefined) {
    parts.push(element("span", {}, `, beside this digit's cross entropy ${num(data)}: total `),
      element("b", { "data-testid": "decay-total", "data-value": data + term }, num(data + term)));
  } else {
    parts.push(element("span", { class: "muted" }, " (choose a label for this digit's loss beside it)"));
  }
  $("decay-loss").replaceChildren(...parts);
  const step = lr || 0.05, shrink = 1 - 2 * step * reg;
  const factor = $("decay-shrink");
  factor.textContent = `Its gradient is 2 × reg × W: a step of lr ${num(step)} first multiplies every weight by ` +
    `1 − 2 × ${num(step)} × ${sayReg(reg)} = ${shrink.toPrecision(6)}, before the loss's own gradient moves it.`;
  factor.dataset.value = String(shrink);
  drawThrough(result, squared);
}

export function wireDecay() {
  $("decay-reg").addEventListener("input", () => shown && showDecay(shown.result, shown.checkpoint));
}

export function setDecayFromRun(checkpoint) {
  const run = checkpoint && checkpoint.weight_decay;
  $("decay-reg").value = run ? String(Math.log10(run * 1e6)) : "0";
}
