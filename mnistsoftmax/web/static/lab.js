// The lab's views (7-12 as views.js numbers them): the articles' further steps for this digit. The server computes every
// number from the model (explain.explain's `lab`); this module draws them, and computes only what
// the user moves by hand: the temperature and the logit playground.
import { $, element, fillTable, svg, viewNumber } from "./common.js";
import { decodeImages, markChosen, probabilityBars, weightImage } from "./draw.js";

// the articles' worked examples; [3, 4, 1] is the classic one of the lesson (0.259, 0.705, 0.035)
const PRESETS = { "[3, 4, 1]": [3, 4, 1], "[1, 2, 3]": [1, 2, 3], "[1, 2, 5]": [1, 2, 5] };

const fmt = (v) => (Math.abs(v) >= 1e-3 || v === 0 ? v.toFixed(4) : v.toExponential(2));

// softmax, log-softmax by the max shift (as the library): what the playground and T compute.
export function softmax(z) {
  const m = Math.max(...z);
  const e = z.map((v) => Math.exp(v - m));
  const s = e.reduce((a, b) => a + b, 0);
  return { p: e.map((v) => v / s), logp: z.map((v) => v - m - Math.log(s)) };
}

let current = null; // the last answer, for the views moved by hand
let playLabel; // the playground's label: the digit's, or a preset's own
let fromPreset = false; // whether the playground holds a preset (its label then stays its own)
let playedFrom = null; // the logits the playground was last reset from: another answer of them keeps its edits
let jacobianCell = [0, 0]; // the Jacobian's cell the keyboard is on: the grid's one Tab stop

// The answer the lab's views draw, kept for the views moved by hand (called before any of them).
export function setLab(result, names, checkpoint) {
  current = { result, names, checkpoint };
}

export function showLab(result, names, checkpoint) {
  setLab(result, names, checkpoint);
  showCurves(result, names);
  showTemperature();
  showPlaygroundFor(result);
  showJacobian(result, names);
  showHinge(result, names);
  showStep(result, names);
}

// A new digit, snapshot or checkpoint resets the playground; another answer for the same logits
// (the step's learning rate, the label) keeps what the learner set there.
export function showPlaygroundFor(result) {
  const key = result.logits.join(",");
  if (key !== playedFrom) {
    playedFrom = key;
    resetPlayground();
  } else {
    if (!fromPreset) playLabel = result.label;
    showPlayground();
  }
}

// ---- 7: the curves (Tam's Figures 5, 6 and 8)
function curve(root, { f, xmin, xmax, ymin, ymax, xlabel, ylabel }, points, { label, untrained } = {}) {
  const W = 300, H = 220, left = 40, right = 10, top = 24, bottom = 34;
  root.replaceChildren();
  const x = (v) => left + ((W - left - right) * (Math.max(xmin, Math.min(xmax, v)) - xmin)) / (xmax - xmin);
  const y = (v) => top + ((H - top - bottom) * (ymax - Math.max(ymin, Math.min(ymax, v)))) / (ymax - ymin);
  const line = [];
  // Samples crowd towards xmin ((k/400)^4 of the range: down to 4e-11 of it), where log p runs off
  // to −∞: the curve reaches the axis's end instead of stopping short of the points near p = 0.
  for (let k = 0; k <= 400; k++) {
    const v = xmin + (xmax - xmin) * (k / 400) ** 4;
    const fv = f(v);
    if (Number.isFinite(fv)) line.push(`${x(v).toFixed(1)},${y(fv).toFixed(1)}`);
  }
  root.append(svg("polyline", { points: line.join(" "), class: "loss" }));
  root.append(svg("text", { x: (W + left) / 2, y: H - 4, class: "tick", "text-anchor": "middle" }, xlabel));
  root.append(svg("text", { x: left, y: 12, class: "tick" }, ylabel));
  for (const v of [xmin, xmax]) {
    root.append(svg("text", { x: x(v), y: H - bottom + 14, class: "tick", "text-anchor": "middle" }, String(v)));
  }
  for (const v of [ymin, ymax]) {
    root.append(svg("text", { x: left - 4, y: y(v) + 4, class: "tick", "text-anchor": "end" }, String(v)));
  }
  // A point beyond the axes is drawn hollow at their edge, and says so.
  const beyond = (px, py) => px < xmin || px > xmax || py < ymin || py > ymax;
  points.forEach(([px, py], c) => {
    const out = beyond(px, py);
    const mark = svg("circle", { cx: x(px), cy: y(py), r: c === label ? 5 : 3,
      class: `${c === label ? "label-point" : "class-point"}${out ? " clipped" : ""}`, "data-class": c, "data-y": py });
    mark.append(svg("title", {}, `class ${c}: (${fmt(px)}, ${fmt(py)})${out ? ", beyond the axis: drawn at its edge" : ""}`));
    root.append(mark);
  });
  if (points.some(([px, py]) => beyond(px, py))) {
    root.append(svg("text", { x: W - right, y: 22, class: "tick", "text-anchor": "end" }, "○ beyond the axis, at its edge"));
  }
  if (untrained) {
    const [ux, uy] = untrained;
    root.append(svg("circle", { cx: x(ux), cy: y(uy), r: 5, class: "untrained-point", "data-testid": "untrained-point",
      "data-y": uy }));
    root.append(svg("text", { x: x(ux) + 7, y: y(uy) - 6, class: "tick" }, "untrained"));
  }
}

export function showCurves(result, names) {
  const c = result.lab.curves;
  const label = result.label;
  curve($("curve-exp"), { f: Math.exp, xmin: -20, xmax: 0, ymin: 0, ymax: 1, xlabel: "z − max z",
    ylabel: "e^(z − max z)" }, c.exp, { label });
  curve($("curve-log"), { f: Math.log, xmin: 0, xmax: 1, ymin: -20, ymax: 0, xlabel: "p", ylabel: "log p" },
    c.log, { label });
  curve($("curve-nll"), { f: (p) => -Math.log(p), xmin: 0, xmax: 1, ymin: 0, ymax: 20, xlabel: "p",
    ylabel: "−log p (the loss)" }, c.nll, { label, untrained: c.untrained_nll });
  curvesText(result, names);
}

// The three curves in words (the label's point, or the answer's) and as a table of every class's.
function curvesText(result, names) {
  const c = result.lab.curves, k = result.label ?? result.digit, p = c.log[k][0];
  const untrained = c.untrained_nll ? `; the untrained net's −log p was ${fmt(c.untrained_nll[1])}, near ln 10` : "";
  $("curves-caption").textContent = `${result.label === undefined || result.label === null ? "The answer" :
    "The label"} ${names[k]}: z − max z = ${fmt(c.exp[k][0])}, e^(z − max z) = ${fmt(c.exp[k][1])}, p = ` +
    `${(100 * p).toFixed(2)} %, log p = ${fmt(c.log[k][1])}, the loss −log p = ${fmt(c.nll[k][1])}${untrained}.`;
  fillTable($("curves-table"), ["class", "z − max z", "e^(z − max z)", "p", "log p", "−log p"],
    c.exp.map(([shift, e], j) => [names[j], fmt(shift), fmt(e), fmt(c.log[j][0]), fmt(c.log[j][1]), fmt(c.nll[j][1])]));
}

// ---- 8: temperature
export function showTemperature() {
  if (!current) return;
  const T = Number($("temperature-input").value);
  $("temperature-slider").setAttribute("aria-valuetext", `T = ${T}`);
  const root = $("t-probs");
  if (!(T > 0) || !Number.isFinite(T)) { root.replaceChildren("T must be a positive number"); return; }
  const { p, logp } = softmax(current.result.logits.map((z) => z / T));
  probabilityBars(root, p, current.names, { testids: true, prefix: "t-prob-", highlight: current.result.digit });
  const entropy = -p.reduce((a, v, c) => a + (v > 0 ? v * logp[c] : 0), 0);
  $("t-entropy").textContent = `entropy ${entropy.toFixed(4)} nats (ln 10 = 2.3026 at T → ∞, 0 at T → 0)`;
  $("t-entropy").dataset.value = String(entropy);
  const fitted = current.checkpoint && current.checkpoint.temperature;
  $("t-fitted").textContent = fitted ? `this checkpoint's fitted T = ${fitted.toFixed(3)} (fitted to the trained ` +
    "weights, on the validation split)" : "";
  markChosen();
}

// ---- 9: the logit playground: each logit a slider and a number, the bars and the loss following
function resetPlayground(values, label) {
  if (!current) return;
  const z = values || current.result.logits;
  playLabel = values ? label : current.result.label;
  fromPreset = Boolean(values);
  const low = Math.min(-10, Math.floor(Math.min(...z)) - 2), high = Math.max(10, Math.ceil(Math.max(...z)) + 2);
  const root = $("logits-play");
  root.replaceChildren();
  z.forEach((v, c) => {
    const slider = element("input", { type: "range", min: String(low), max: String(high), step: "0.01",
      "data-testid": `logit-range-${c}`, "aria-label": `z${c}, dragged` });
    const input = element("input", { type: "number", step: "0.1", "data-testid": `logit-${c}`, "aria-label": `z${c}` });
    // Four decimals shown; every digit kept until edited: the playground starts from the model's own numbers.
    input.value = String(Number(v.toFixed(4)));
    input.dataset.exact = String(v);
    slider.value = String(v);
    const said = () => slider.setAttribute("aria-valuetext", `z${c} = ${Number(slider.value).toFixed(2)}`);
    said();
    slider.addEventListener("input", () => { input.value = slider.value; delete input.dataset.exact; said(); showPlayground(); });
    input.addEventListener("input", () => { slider.value = input.value; delete input.dataset.exact; said(); showPlayground(); });
    const row = element("div", { class: "play-row" });
    row.append(element("span", { "data-class": c }, `z${current.names[c] === String(c) ? c : ` ${current.names[c]}`}`),
      slider, input);
    root.append(row);
  });
  showPlayground();
}

// softmax of the playground's logits (null when one is not a number): a target for view 13.
export function playedProbabilities() {
  const z = playedLogits();
  return z ? softmax(z).p : null;
}

// The playground's logits as typed (null when one is not a number).
function playedLogits() {
  const z = [...$("logits-play").querySelectorAll("input[type=number]")]
    .map((i) => Number(i.dataset.exact !== undefined ? i.dataset.exact : i.value));
  return z.length && z.every(Number.isFinite) ? z : null;
}

function showPlayground() {
  const z = playedLogits();
  const root = $("play-probs");
  if (!z) { root.replaceChildren("every logit must be a number"); return; }
  const { p, logp } = softmax(z);
  const label = playLabel;
  probabilityBars(root, p, current.names, { testids: true, prefix: "play-prob-", highlight: z.indexOf(Math.max(...z)) });
  $("play-numbers").replaceChildren(...p.map((v, c) => element("div", { "data-class": c },
    `${current.names[c]}: p ${(100 * v).toFixed(2)} %, log p ${fmt(logp[c])}` +
    (label === undefined ? "" : `, gradient ${fmt(v - (c === label ? 1 : 0))}`))));
  const whose = label === current.result.label ? "" : ` (the preset's label: class ${current.names[label]}, its largest ` +
    "logit, as in the articles)";
  $("play-loss").textContent = label === undefined ? "choose a true label (in the bar at the top) for the loss"
    : `loss −log p(${label}) = ${fmt(-logp[label])}${whose}`;
  if ($("jacobian-source").value === "playground") showJacobian(current.result, current.names);
  markChosen();
}

// ---- 10: the Jacobian, of this digit's softmax or of the playground's
function playgroundJacobian() {
  const z = playedLogits();
  if (!z) return null;
  const { p } = softmax(z), y = playLabel;
  const matrix = p.map((si, i) => p.map((sj, j) => si * ((i === j ? 1 : 0) - sj)));
  if (y === undefined) return { matrix };
  // (Jᵀ ∂L/∂S)_j with ∂L/∂S = −1/S_y at y, 0 elsewhere: the same sum as lab.softmax_jacobian_chain.
  const chain = p.map((_, j) => matrix[y][j] * (-1 / p[y]));
  return { matrix, chain, gradient: p.map((v, c) => v - (c === y ? 1 : 0)), label: y };
}

export function showJacobian(result, names) {
  const fromPlay = $("jacobian-source").value === "playground" ? playgroundJacobian() : null;
  const { matrix: J, chain } = fromPlay || result.lab.jacobian;
  const gradient = fromPlay ? fromPlay.gradient : result.gradient;
  const root = $("jacobian");
  root.replaceChildren();
  const scale = Math.max(...J.flat().map(Math.abs)) || 1;
  const said = (i, j) => `∂S${i}/∂z${j} = ${fmt(J[i][j])}` + (i === j ? `: S${i}(1 − S${i})` : `: −S${i}·S${j}`);
  // One Tab stop (the W3C grid pattern): the cell last visited takes focus, arrows move within.
  root.setAttribute("role", "grid");
  root.setAttribute("aria-label", "the softmax Jacobian: row i is S_i, column j is z_j; arrow keys move between cells");
  const [ai, aj] = jacobianCell.map((k) => Math.min(k, J.length - 1));
  // Row i is S_i, column j is z_j; the corner is empty, the first row and column name them. Rows are
  // display: contents, so the cells stay the CSS grid's.
  const head = element("div", { role: "row", class: "jrow" });
  head.append(element("div", { class: "jhead", role: "columnheader" }, "S\\z"), ...names.map((_, j) => element("div",
    { class: "jhead", "data-class": j, role: "columnheader" }, `z${j}`)));
  root.append(head);
  J.forEach((row, i) => {
    const line = element("div", { role: "row", class: "jrow" });
    line.append(element("div", { class: "jhead", "data-class": i, role: "rowheader" }, `S${i}`));
    row.forEach((v, j) => {
      const a = Math.min(1, Math.abs(v) / scale);
      const meaning = i === j ? `how S${i} moves with its own logit` : `how S${i} moves with z${j}`;
      const cell = element("div", { class: "jcell", "data-i": i, "data-j": j, "data-value": String(v),
        title: said(i, j), role: "gridcell", "aria-label": `${said(i, j)}, ${meaning}`,
        tabindex: i === ai && j === aj ? "0" : "-1" });
      cell.style.background = v >= 0 ? `rgba(200, 40, 40, ${a})` : `rgba(40, 80, 200, ${a})`;
      // Hover, tap or focus: the cell's value in the line below (a phone has no hover).
      const show = () => { $("jacobian-cell").textContent = said(i, j); };
      cell.addEventListener("mouseenter", show);
      cell.addEventListener("click", show);
      cell.addEventListener("focus", () => { jacobianCell = [i, j]; show(); });
      line.append(cell);
    });
    root.append(line);
  });
  const y = fromPlay ? (fromPlay.label ?? 0) : (result.label ?? result.digit);
  $("jacobian-cell").textContent = `${said(y, y)} (hover or tap a cell for its value)`;
  $("jacobian-scale-low").textContent = `−${fmt(scale)}`;
  $("jacobian-scale-high").textContent = `+${fmt(scale)}`;
  const out = $("jacobian-chain");
  out.replaceChildren();
  if (!chain) { out.textContent = "Choose a true label (in the bar at the top): the chain rule needs ∂L/∂S."; return; }
  chain.forEach((v, k) => out.append(element("div", { "data-testid": `chain-${k}`, "data-value": String(v),
    "data-class": k }, `${names[k]}: (Jᵀ ∂L/∂S)${k} = ${fmt(v)};  S${k} − onehot${k} = ${fmt(gradient[k])}`)));
}

// Arrow keys between the Jacobian's cells, Home and End to a row's ends, Ctrl+Home and Ctrl+End
// to the corners: the W3C grid pattern's keys.
function moveInJacobian(e) {
  const n = $("jacobian").querySelectorAll("[data-j]").length ** 0.5;
  let [i, j] = jacobianCell;
  const moves = { ArrowUp: [-1, 0], ArrowDown: [1, 0], ArrowLeft: [0, -1], ArrowRight: [0, 1] };
  if (moves[e.key]) [i, j] = [i + moves[e.key][0], j + moves[e.key][1]];
  else if (e.key === "Home") [i, j] = e.ctrlKey ? [0, 0] : [i, 0];
  else if (e.key === "End") [i, j] = e.ctrlKey ? [n - 1, n - 1] : [i, n - 1];
  else return;
  e.preventDefault();
  [i, j] = [Math.max(0, Math.min(n - 1, i)), Math.max(0, Math.min(n - 1, j))];
  const from = $("jacobian").querySelector('[tabindex="0"]');
  const to = $("jacobian").querySelector(`[data-i="${i}"][data-j="${j}"]`);
  if (from) from.tabIndex = -1;
  to.tabIndex = 0;
  to.focus();
}

// ---- 11: hinge beside cross entropy: each z_k on a line against z_y − 1, and the numbers
function hingePicture(root, z, y, terms, gradient, names) {
  const W = 560, rowH = 20, top = 30, left = 34, right = 150, H = top + rowH * z.length + 24;
  root.setAttribute("viewBox", `0 0 ${W} ${H}`);
  root.replaceChildren();
  const lo = Math.min(...z, z[y] - 1) - 0.5, hi = Math.max(...z, z[y]) + 0.5;
  const x = (v) => left + ((W - left - right) * (v - lo)) / (hi - lo);
  const margin = z[y] - 1;
  root.append(svg("line", { x1: x(margin), x2: x(margin), y1: top - 12, y2: top + rowH * z.length, class: "margin-line" }));
  root.append(svg("text", { x: x(margin), y: top - 16, class: "tick", "text-anchor": "middle" }, `z${y} − 1 = ${fmt(margin)}`));
  root.append(svg("text", { x: W - right + 8, y: top - 16, class: "tick" }, "term · CE gradient"));
  z.forEach((v, k) => {
    const cy = top + rowH * k + rowH / 2, row = svg("g", { "data-class": k });
    row.append(svg("line", { x1: left, x2: W - right, y1: cy, y2: cy, class: "axis" }));
    row.append(svg("text", { x: left - 6, y: cy + 4, class: "tick", "text-anchor": "end" }, names[k]));
    const violating = k !== y && terms[k] > 0;
    if (violating) row.append(svg("line", { x1: x(margin), x2: x(v), y1: cy, y2: cy, class: "violation" }));
    const dot = svg("circle", { cx: x(v), cy, r: k === y ? 6 : 4, "data-class": k,
      class: k === y ? "label-point" : violating ? "violating-point" : "satisfied" });
    dot.append(svg("title", {}, k === y ? `z${k} = ${fmt(v)}: the label` : `z${k} = ${fmt(v)}: term ${fmt(terms[k])}`));
    row.append(dot);
    const said = k === y ? "label" : violating ? fmt(terms[k]) : "0 (met)";
    row.append(svg("text", { x: W - right + 8, y: cy + 4, class: "tick" }, `${said} · ${fmt(gradient[k])}`));
    root.append(row);
  });
  root.append(svg("text", { x: (left + W - right) / 2, y: H - 8, class: "tick", "text-anchor": "middle" }, "logit z"));
}

export function showHinge(result, names) {
  const root = $("hinge-terms");
  root.replaceChildren();
  const h = result.lab.hinge;
  // Without a label there is nothing to draw: no empty box, the note says what to do.
  $("hinge-picture").style.display = h ? "" : "none";
  if (!h) {
    $("hinge-picture").replaceChildren();
    $("hinge-caption").textContent = "";
    root.textContent = "Choose a true label (in the bar at the top): the hinge compares every score with the label's.";
    $("hinge-note").textContent = root.textContent;
    return;
  }
  const y = result.label;
  hingePicture($("hinge-picture"), result.logits, y, h.terms, result.gradient, names);
  h.terms.forEach((v, k) => root.append(element("div", { "data-testid": `hinge-${k}`, "data-value": String(v),
    "data-class": k, class: v > 0 ? "violating" : k === y ? "muted" : "" }, k === y
    // The label's own term would be max(0, z_y - z_y + 1) = 1 for every input: the sum leaves it out.
    ? `${names[k]}: the label, left out of the sum (its own term would always be max(0, z${k} − z${k} + 1) = 1)` +
      `   cross entropy's gradient ${fmt(result.gradient[k])}`
    : `${names[k]}: max(0, z${k} − z${y} + 1) = ${fmt(v)}   cross entropy's gradient ${fmt(result.gradient[k])}`)));
  $("hinge-loss").textContent = fmt(h.loss);
  $("hinge-loss").dataset.value = String(h.loss);
  $("hinge-note").textContent = h.violating.length
    ? `violating the margin: ${h.violating.map((k) => names[k]).join(", ")}; cross entropy's loss ${fmt(result.loss)}`
    : `every margin met: the hinge is satisfied (0) and pushes no more; cross entropy's loss is still ${fmt(result.loss)}`;
  const z = result.logits, others = z.map((v, k) => k).filter((k) => k !== y);
  const closest = others.reduce((a, k) => (z[k] > z[a] ? k : a), others[0]);
  $("hinge-caption").textContent = `z${names[y]} = ${fmt(z[y])}, the label's, sets the dashed line at ` +
    `${fmt(z[y] - 1)}; the closest other class, ${names[closest]}, has z = ${fmt(z[closest])}, ` +
    (z[closest] > z[y] - 1 ? `${fmt(z[closest] - z[y] + 1)} past the line: ` : `${fmt(z[y] - 1 - z[closest])} short of it: `) +
    `${h.violating.length} of the ${others.length} other classes violate the margin, the hinge loss is ${fmt(h.loss)}.`;
}

// ---- 12: what training on this digit would change
export function showStep(result, names) {
  const st = result.lab.step;
  const root = $("grad-images");
  root.replaceChildren();
  for (const id of ["step-loss-before", "step-loss-after"]) { $(id).textContent = "–"; delete $(id).dataset.value; }
  stepSentences(current.checkpoint);
  if (!st) {
    $("step-bars").replaceChildren();
    $("step-probs").textContent = "Choose a true label (in the bar at the top): the gradient is of the loss for it.";
    return;
  }
  const g = st.gradient;
  decodeImages(g.images, g.side).forEach((image, k) => {
    const canvas = element("canvas", { "data-testid": `grad-image-${k}` });
    weightImage(canvas, image);
    const figure = element("div", { class: "unit" });
    // In a deeper net the first layer's units are hidden layer 1's, not the last one's of view 5: say so.
    const layer = result.hidden && result.hidden.hidden_layers > 1 ? "layer 1 " : "";
    const what = g.caption === "class" ? `class ${names[g.units[k]]}` : `${layer}${g.caption} ${g.units[k]}`;
    figure.append(canvas, element("div", {}, `${what}: |∇| ${fmt(g.norms[k])}`));
    root.append(figure);
  });
  $("step-loss-before").textContent = fmt(st.loss_before);
  $("step-loss-before").dataset.value = String(st.loss_before);
  $("step-loss-after").textContent = fmt(st.loss_after);
  $("step-loss-after").dataset.value = String(st.loss_after);
  // Before (grey, above) and after (blue) the step, each class.
  probabilityBars($("step-bars"), st.probabilities_after, names, { testids: true, prefix: "step-after-",
    before: result.probabilities, highlight: result.label });
  $("step-probs").textContent = "after the step: " +
    st.probabilities_after.map((p, c) => `${names[c]} ${(100 * p).toFixed(1)} %`).join(", ");
}

// What view 12 says of the inputs and of a training step, with this checkpoint's own numbers.
function stepSentences(checkpoint) {
  const n = checkpoint && checkpoint.normalization;
  $("step-inputs").textContent = !n ? "" : "The inputs are standardised, x = (pixel / 255 − mean) / std: " +
    `a background pixel enters as −mean / std = ${(-n.mean / n.std).toFixed(2)}, not 0, and full ink as ` +
    `${((1 - n.mean) / n.std).toFixed(2)}, so the gradient moves the weights of every pixel, the background's ` +
    "in the opposite direction to the ink's and more weakly.";
  const lr = checkpoint && checkpoint.lr, batch = checkpoint && checkpoint.batch_size;
  $("step-share").textContent = lr && batch
    ? `(in this run's training a digit's share of one step was lr / batch size = ${lr} / ${batch} = ` +
      `${(lr / batch).toPrecision(2)} at the start, before momentum and the schedule)`
    : "";
}

export function wireLab(onLearningRate) {
  $("temperature-input").addEventListener("input", () => {
    const T = Number($("temperature-input").value);
    if (T > 0 && Number.isFinite(T)) $("temperature-slider").value = String(Math.log10(T));
    showTemperature();
  });
  $("temperature-slider").addEventListener("input", () => {
    $("temperature-input").value = (10 ** Number($("temperature-slider").value)).toPrecision(3);
    showTemperature();
  });
  $("jacobian-source").addEventListener("change", () => current && showJacobian(current.result, current.names));
  $("jacobian").addEventListener("keydown", moveInJacobian);
  $("play-reset").addEventListener("click", () => resetPlayground());
  for (const [name, values] of Object.entries(PRESETS)) {
    const button = element("button", { type: "button", "data-testid": `preset-${values.join("-")}` }, name);
    // The articles' three classes; the other seven far below, at e^-50 of them.
    // A preset brings its own label, its largest logit: the drawn digit's would not fit it.
    const largest = values.indexOf(Math.max(...values));
    button.addEventListener("click", () => resetPlayground([...values, ...Array(7).fill(-50)], largest));
    $("play-presets").append(button);
  }
  $("step-lr").addEventListener("change", onLearningRate);
}
