// The derivations the classic softmax write-ups walk through, each with this digit's numbers (the
// answer's logits, probabilities and hidden activations; nothing here calls the model):
//   view 3   e^z beside e^(z − max z): the overflow the shift avoids, for logits scaled up by hand
//   view 10  the softmax Jacobian by the quotient rule, its two cases i = j and i ≠ j
//   view 12  the output layer's own Jacobian (T × NT, mostly zeros) and the chain rule that
//            collapses to (S_i − δ_iy)·a_j, the weight gradient
//   view 13  cross entropy against a soft target (label smoothing's, or the playground's softmax)
import { $, element, viewNumber } from "./common.js";
import { playedProbabilities } from "./lab.js";
import { num, tex } from "./tex.js";

const FLOAT32_MAX = 3.4028234663852886e38;

// The class the derivations follow: the label if one is chosen, else the predicted class; and the
// other class with the largest probability.
function pair(result) {
  const i = result.label ?? result.digit;
  const others = result.probabilities.map((p, c) => [p, c]).filter(([, c]) => c !== i);
  return [i, others.reduce((a, b) => (b[0] > a[0] ? b : a))[1]];
}

function line(parent, source, display = true) {
  parent.append(tex(source, display));
}

// A paragraph of text and inline formulas: each part a string, or [TeX source].
function sentence(parent, ...parts) {
  const p = element("p");
  for (const part of parts) p.append(Array.isArray(part) ? tex(part[0]) : part);
  parent.append(p);
  return p;
}

// ---- view 3: why max z is subtracted
export function showOverflow(result, names) {
  const root = $("overflow");
  const k = Number($("overflow-scale").value);
  $("overflow-scale-value").textContent = `× ${k}`;
  $("overflow-scale").setAttribute("aria-valuetext", `logits × ${k}`);
  const z = result.logits.map((v) => k * v), m = Math.max(...z);
  // The model computes in float32: e^z above 3.4 × 10^38 (z > 88.72) is infinite there.
  const raw = z.map((v) => { const e = Math.exp(v); return e > FLOAT32_MAX ? Infinity : Math.fround(e); });
  const rawSum = raw.reduce((a, b) => a + b, 0), shifted = z.map((v) => Math.fround(Math.exp(v - m)));
  const shiftedSum = shifted.reduce((a, b) => a + b, 0);
  const table = element("table", { "data-testid": "overflow-table" });
  const head = element("tr");
  for (const h of ["class", "z", "e^z (float32)", "e^z / Σ", "e^(z − max z) (float32)", "e^(z − max z) / Σ′"]) {
    head.append(element("th", {}, h));
  }
  table.append(head);
  z.forEach((v, c) => {
    const row = element("tr", { "data-class": c });
    const unshifted = raw[c] / rawSum;
    for (const [text, value] of [[names[c]], [v.toFixed(2)], [fmt(raw[c]), raw[c]], [fmt(unshifted), unshifted],
      [fmt(shifted[c]), shifted[c]], [fmt(shifted[c] / shiftedSum), shifted[c] / shiftedSum]]) {
      row.append(element("td", value === undefined ? {} : { "data-value": String(value) }, text));
    }
    table.append(row);
  });
  const overflowed = raw.some((v) => v === Infinity);
  const say = element("p", { "data-testid": "overflow-verdict" });
  say.append(overflowed
    ? `At × ${k} the largest logit is ${m.toFixed(1)}: e^z overflows float32 (its largest number is 3.4 × 10^38, ` +
      "e^88.72), the sum is infinite and ∞ / ∞ is NaN, not a probability. Shifted by max z every exponent is at " +
      "most e^0 = 1: the same softmax, no overflow."
    : `At × ${k} the largest logit is ${m.toFixed(2)}: e^z fits float32 (it overflows above z = 88.72), and both ` +
      "columns give the same probabilities. Scale the logits up to see the unshifted one fail.");
  root.replaceChildren(table, say);
}

function fmt(v) {
  if (!Number.isFinite(v)) return Number.isNaN(v) ? "NaN" : "∞";
  if (v === 0) return "0";
  return Math.abs(v) >= 1e-3 && Math.abs(v) < 1e5 ? v.toFixed(4) : v.toExponential(2);
}

// ---- view 10: the Jacobian by the quotient rule
export function showQuotientRule(result, names) {
  const root = $("quotient-rule");
  const [i, j] = pair(result), S = result.probabilities, e = result.exp_shifted, sum = result.exp_sum;
  root.replaceChildren();
  sentence(root, "With ", ["S_i = e^{z_i} / \\Sigma"], " and ", ["\\Sigma = \\sum_k e^{z_k}"], ", the quotient rule gives:");
  line(root, "\\frac{\\partial S_i}{\\partial z_j} = \\frac{\\delta_{ij}\\, e^{z_i}\\,\\Sigma - e^{z_i}\\, e^{z_j}}" +
    "{\\Sigma^2} = S_i\\,(\\delta_{ij} - S_j)");
  sentence(root, `Its two cases, for this digit's class ${names[i]} and the runner-up ${names[j]} (every `,
    ["e^{z}"], " shifted by max z, which changes no ratio):");
  const same = S[i] * (1 - S[i]), cross = -S[i] * S[j];
  // Six digits for a probability and the sum: a confident digit's S is 0.99997, not "1".
  line(root, `i = j:\\quad \\frac{\\partial S_{${i}}}{\\partial z_{${i}}} = S_{${i}}(1 - S_{${i}}) = ` +
    `${num(S[i], 6)} \\times ${num(1 - S[i])} = ${num(same)}`);
  line(root, `i \\ne j:\\quad \\frac{\\partial S_{${i}}}{\\partial z_{${j}}} = -S_{${i}} S_{${j}} = ` +
    `-${num(S[i], 6)} \\times ${num(S[j])} = ${num(cross)}`);
  line(root, `\\text{where } S_{${i}} = \\frac{e^{z_{${i}} - \\max z}}{\\Sigma} = \\frac{${num(e[i])}}{${num(sum, 7)}},` +
    `\\quad S_{${j}} = \\frac{${num(e[j])}}{${num(sum, 7)}}`);
  root.dataset.same = String(same);
  root.dataset.cross = String(cross);
}

// ---- view 12: the output layer's Jacobian and the chain rule
export function showLayerJacobian(result, names, checkpoint) {
  const root = $("layer-jacobian");
  root.replaceChildren();
  const T = result.logits.length, y = result.label;
  // The output layer's input a: the last hidden layer's activations, or for softmax regression the pixels.
  const hidden = result.hidden;
  let N, j, a, what;
  if (hidden) {
    N = hidden.total;
    ({ unit: j, activation: a } = hidden.units[0]);
    what = [`a is the last hidden layer's ${N} activations; `, [`a_{${j}} = ${num(a)}`], ` is unit ${j}'s, the one ` +
      `pushing ${names[result.digit]} most (view ${viewNumber("units-view")}).`];
  } else {
    const n = checkpoint && checkpoint.normalization;
    if (!n) return;
    const pixels = result.preprocessed.flat();
    N = pixels.length;
    j = pixels.indexOf(Math.max(...pixels));
    a = pixels[j] / (255 * n.std) - n.mean / n.std;
    what = [`a is the ${N} standardised pixels; `, [`a_{${j}} = ${num(a)}`], ` is pixel ${j}, of the most ink.`];
  }
  sentence(root, "The output layer is ", ["z = g(W) = a W + b"], ". Its Jacobian, each logit against every weight, is a ",
    ["T \\times NT"], ` matrix: ${T} × ${(N * T).toLocaleString("en")} = ${(T * N * T).toLocaleString("en")} entries, ` +
    `of which only ${(N * T).toLocaleString("en")} (1 in ${T}) are not zero, since `, ["z_i"],
    " depends only on W's column i:");
  line(root, "\\frac{\\partial z_i}{\\partial W_{jk}} = a_j\\,\\delta_{ik}");
  drawLayerJacobian(root, result, T, N);
  sentence(root, "The chain rule multiplies it with the softmax's and the loss's derivatives, ", ["D_S \\cdot D_g"],
    "; of each sum one term is left:");
  line(root, "\\frac{\\partial L}{\\partial W_{ji}} = \\sum_k \\frac{\\partial L}{\\partial z_k}" +
    "\\frac{\\partial z_k}{\\partial W_{ji}} = (S_i - \\delta_{iy})\\, a_j");
  sentence(root, ...what);
  if (y === undefined) {
    root.append(element("p", { class: "muted" }, "Choose a true label for the numbers."));
    return;
  }
  const [, other] = pair(result), S = result.probabilities;
  const own = (S[y] - 1) * a, runner = S[other] * a;
  line(root, `\\frac{\\partial L}{\\partial W_{${j},${y}}} = (S_{${y}} - 1)\\, a_{${j}} = (${num(S[y], 6)} - 1) ` +
    `\\times ${num(a)} = ${num(own)}`);
  line(root, `\\frac{\\partial L}{\\partial W_{${j},${other}}} = S_{${other}}\\, a_{${j}} = ${num(S[other])} ` +
    `\\times ${num(a)} = ${num(runner)}`);
  sentence(root, "The images above are the first layer's gradient, of the same form ", ["x_j\\, \\delta_k"],
    ": for softmax regression ", ["\\delta = S - \\text{onehot}(y)"], " itself, in a deeper net ", ["\\delta"],
    " carried back through the layers above.").className = "muted";
  root.dataset.own = String(own);
  root.dataset.runner = String(runner);
}

// The T x NT matrix itself, for a window of its columns: of each block k (the weights W_{jk} into
// logit k) the shown inputs j (the hidden units of the units view, or the pixels of the most ink),
// a_j in row k and 0 in every other row. Red a_j > 0, blue < 0, grey a structural zero.
function drawLayerJacobian(root, result, T, N) {
  const shown = result.hidden
    ? result.hidden.units.map((u) => ({ j: u.unit, a: u.activation }))
    : (() => {
      const pixels = result.preprocessed.flat();
      return [...pixels.keys()].sort((i, k) => pixels[k] - pixels[i] || i - k).slice(0, 8)
        .map((j) => ({ j, a: pixels[j] / 255 }));
    })();
  const M = shown.length, cols = T * M, scale = Math.max(...shown.map((s) => Math.abs(s.a))) || 1;
  const canvas = element("canvas", { width: cols, height: T, "data-testid": "layer-jacobian-matrix",
    role: "img", "data-rows": T, "data-cols": cols,
    "data-nonzero": T * shown.filter((s) => s.a !== 0).length });
  canvas.style.aspectRatio = `${cols} / ${T}`;
  const context = canvas.getContext("2d"), image = context.createImageData(cols, T);
  for (let i = 0; i < T; i++) {
    for (let k = 0; k < T; k++) {
      for (let m = 0; m < M; m++) {
        const at = 4 * (i * cols + k * M + m), v = i === k ? shown[m].a / scale : null;
        const fade = v === null ? 0 : Math.round(255 * (1 - Math.min(1, Math.abs(v))));
        const rgb = v === null ? [226, 226, 226] : [v > 0 ? 255 : fade, fade, v < 0 ? 255 : fade];
        image.data.set([...rgb, 255], at);
      }
    }
  }
  context.putImageData(image, 0, 0);
  const nonzero = shown.filter((s) => s.a !== 0).length;
  const what = result.hidden ? `the ${M} hidden units of view ${viewNumber("units-view")}` : `the ${M} pixels of the most ink`;
  canvas.setAttribute("aria-label", `The output layer's Jacobian ∂z/∂W, ${T} rows, for ${what} in each of its ${T} ` +
    `blocks: only the diagonal blocks hold numbers, every other cell is 0.`);
  const figure = element("figure", { class: "layer-jacobian" });
  figure.append(canvas, element("figcaption", { class: "muted" },
    `∂z/∂W for ${what} in each of the ${T} blocks of W's columns (${T} × ${cols} of its ${T} × ` +
    `${(N * T).toLocaleString("en")} entries): row k holds a_j only in block k, the weights into logit k; the ` +
    `grey cells are the zeros, ${T * cols - T * nonzero} of the ${T * cols} shown.`));
  root.append(figure);
}

// ---- view 13: cross entropy against a soft target
export function showSoftTarget(result, names, checkpoint) {
  const root = $("soft-target");
  root.replaceChildren();
  const y = result.label, C = result.logits.length, p = result.probabilities, logp = result.log_softmax;
  const source = $("soft-source").value, eps = Number($("soft-epsilon").value);
  $("soft-epsilon-value").textContent = `ε = ${eps.toFixed(2)}`;
  $("soft-epsilon").setAttribute("aria-valuetext", `ε = ${eps.toFixed(2)}`);
  const trained = checkpoint && checkpoint.label_smoothing;
  $("soft-epsilon-run").textContent = trained ? `(this run trained with ε = ${trained})` : "(this run trained on one-hot targets)";
  let q;
  if (source === "playground") {
    q = playedProbabilities();
    if (!q) {
      root.textContent = `Every logit of the playground (view ${viewNumber("playground-view")}) must be a number.`;
      return;
    }
  } else {
    if (y === undefined) { root.textContent = "Choose a true label (in the bar at the top): the target is built on it."; return; }
    q = p.map((_, k) => (k === y ? 1 - eps : 0) + eps / C);
  }
  const ce = -q.reduce((s, qk, k) => s + qk * logp[k], 0);
  const entropy = -q.reduce((s, qk) => s + (qk > 0 ? qk * Math.log(qk) : 0), 0);
  const table = element("table", { "data-testid": "soft-table" });
  const head = element("tr");
  for (const h of ["class", "target q", "p", "−q log p", "gradient p − q", ...(y === undefined ? [] : ["one-hot: p − onehot"])]) {
    head.append(element("th", {}, h));
  }
  table.append(head);
  q.forEach((qk, k) => {
    const row = element("tr", { "data-class": k });
    const cells = [[names[k]], [fmt(qk), qk], [fmt(p[k]), p[k]], [fmt(-qk * logp[k]), -qk * logp[k]],
      [fmt(p[k] - qk), p[k] - qk], ...(y === undefined ? [] : [[fmt(p[k] - (k === y ? 1 : 0))]])];
    for (const [text, value] of cells) row.append(element("td", value === undefined ? {} : { "data-value": String(value) }, text));
    table.append(row);
  });
  const target = source === "playground" ? "q = \\text{the playground's softmax}"
    : `q = (1 - \\varepsilon)\\,\\text{onehot}(${y}) + \\varepsilon / ${C}`;
  line(root, target);
  line(root, "H(q, p) = -\\sum_k q_k \\log p_k, \\qquad \\frac{\\partial H}{\\partial z} = p - q");
  root.append(table);
  const summary = element("p", { "data-testid": "soft-loss", "data-value": String(ce), "data-entropy": String(entropy) });
  summary.append(`Against q the loss is ${fmt(ce)}` + (y === undefined ? "" : `; against the one-hot target −log p(${y}) = ` +
    `${fmt(-logp[y])}`) + `. It is smallest when p = q, and there equals q's entropy H(q) = ${fmt(entropy)}, not 0: ` +
    "a soft target never rewards certainty, and its gradient p − q pulls a too-confident p back.");
  root.append(summary);
}

let last = null; // the answer drawn last, for the controls moved by hand

// The answer the derivations draw, kept for the controls moved by hand (called before any of them).
export function setDerivations(result, names, checkpoint) {
  last = { result, names, checkpoint };
}

export function showDerivations(result, names, checkpoint) {
  setDerivations(result, names, checkpoint);
  showOverflow(result, names);
  showQuotientRule(result, names);
  showLayerJacobian(result, names, checkpoint);
  showSoftTarget(result, names, checkpoint);
}

export function wireDerivations() {
  const again = (show) => () => last && show(last.result, last.names, last.checkpoint);
  $("overflow-scale").addEventListener("input", again(showOverflow));
  for (const id of ["soft-epsilon", "soft-source"]) $(id).addEventListener("input", again(showSoftTarget));
  // The playground's logits as the target: follow them as they move (after the playground has redrawn).
  const follow = () => $("soft-source").value === "playground" && again(showSoftTarget)();
  $("logits-play").addEventListener("input", follow);
  $("play-presets").addEventListener("click", follow);
}
