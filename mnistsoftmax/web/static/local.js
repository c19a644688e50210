// The page's engine: every answer the draw page shows, computed in the browser from a checkpoint's
// weights (export.page_model's document: inside an exported file, or from GET /api/model on a
// served page): what POST /api/predict answers (explain.explain, lab.lab, the timeline, the
// stages), the same fields and the same math. The model is its layers as models.py describes them
// (["affine", W, b], [activation]), so nothing here asks which kind it is.
// Shapes: D = 784 inputs, K a layer's outputs, C classes.
import { DIGIT_TYPE } from "./common.js";
import { ImageError, mnistStages, readGray, resize } from "./preprocess.js";


// The twin of activations.py: each activation's function, and its slope dA/dH read off its output A.
export const ACTIVATIONS = {
  relu: { forward: (h) => Math.max(h, 0), slope: (a) => (a > 0 ? 1 : 0) },
  tanh: { forward: Math.tanh, slope: (a) => 1 - a * a },
  "leaky-relu": { forward: (h) => (h > 0 ? h : 0.01 * h), slope: (a) => (a > 0 ? 1 : 0.01) },
};
const isActivation = (op) => Object.hasOwn(ACTIVATIONS, op);

function bytesOf(base64) {
  return Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
}

function float16(bits) {
  const sign = bits & 0x8000 ? -1 : 1, exponent = (bits >> 10) & 0x1f, fraction = bits & 0x3ff;
  if (exponent === 0) return sign * fraction * 2 ** -24;
  if (exponent === 31) return fraction ? NaN : sign * Infinity;
  return sign * (1 + fraction / 1024) * 2 ** (exponent - 15);
}

// {name: {shape, dtype, data (base64, little-endian)}} -> {name: {shape, data: Float64Array}}
function parameters(stored) {
  const out = {};
  for (const [name, { shape, dtype, data }] of Object.entries(stored)) {
    const bytes = bytesOf(data), view = new DataView(bytes.buffer);
    const values = dtype === "float16"
      ? Float64Array.from({ length: bytes.length / 2 }, (_, i) => float16(view.getUint16(2 * i, true)))
      : Float64Array.from({ length: bytes.length / 4 }, (_, i) => view.getFloat32(4 * i, true));
    out[name] = { shape, data: values };
  }
  return out;
}

// Snapshot `index`'s parameters, decoded on first use (Float32Array: float16 values fit exactly);
// the last is the checkpoint's own weights, as the server answers.
let float16Table = null;
function snapshotReader(snapshots, trained) {
  let stacks = null;
  const cache = new Map();
  return (index) => {
    if (index === snapshots.steps.length - 1) return trained;
    if (!cache.has(index)) {
      const table = float16Table = float16Table || Float64Array.from({ length: 65536 }, (_, bits) => float16(bits));
      stacks = stacks || Object.fromEntries(Object.entries(snapshots.parameters).map(([name, { shape, dtype, data }]) => {
        const bytes = bytesOf(data);
        return [name, { shape: shape.slice(1), dtype, view: new DataView(bytes.buffer) }];
      }));
      const params = {};
      for (const [name, { shape, dtype, view }] of Object.entries(stacks)) {
        const size = shape.reduce((a, b) => a * b, 1), offset = index * size;
        const data = dtype === "float16"
          ? Float32Array.from({ length: size }, (_, i) => table[view.getUint16(2 * (offset + i), true)])
          : Float32Array.from({ length: size }, (_, i) => view.getFloat32(4 * (offset + i), true));
        params[name] = { shape, data };
      }
      cache.set(index, params);
    }
    return cache.get(index);
  };
}

// ---- forward and backward, layer by layer --------------------------------------------------

// A digit as the first layer takes it: its D pixels p (0-255, most of them 0) and its standardised
// inputs x = scale p + shift (the checkpoint's normalisation), `values`.
function standardise(pixels, { mean, std }) {
  return { pixels, scale: 1 / (255 * std), shift: -mean / std,
    values: Float64Array.from(pixels, (v) => v / (255 * std) - mean / std) };
}

// x W for a standardised digit: scale (p W) + shift (1^T W), the sum running over the pixels with
// ink only (a digit's background is 0 in p, not in x); W's column sums 1^T W are kept per weights.
const columnSums = new WeakMap();
function inkProduct(out, W, { pixels, scale, shift }) {
  const [D, K] = W.shape;
  let sums = columnSums.get(W);
  if (!sums) {
    sums = new Float64Array(K);
    for (let d = 0; d < D; d++) for (let k = 0, row = d * K; k < K; k++) sums[k] += W.data[row + k];
    columnSums.set(W, sums);
  }
  const ink = new Float64Array(K);
  for (let d = 0; d < D; d++) {
    const p = pixels[d];
    if (p === 0) continue;
    for (let k = 0, row = d * K; k < K; k++) ink[k] += p * W.data[row + k];
  }
  for (let k = 0; k < K; k++) out[k] += scale * ink[k] + shift * sums[k];
}

// input: a standardised digit (standardise) or x (D) -> every layer's input, and the logits z (C).
function forward(layers, params, input) {
  const inputs = [];
  let a = input.values ?? input;
  layers.forEach(([op, weight, bias], i) => {
    inputs.push(a);
    if (isActivation(op)) {
      a = a.map(ACTIVATIONS[op].forward);
      return;
    }
    const W = params[weight], [D, K] = W.shape, b = params[bias].data;
    const out = Float64Array.from(b); // z = a @ W + b   (K,)
    if (i === 0 && input.pixels) {
      inkProduct(out, W, input);
    } else {
      for (let d = 0; d < D; d++) {
        const ad = a[d];
        if (ad === 0) continue;
        for (let k = 0, row = d * K; k < K; k++) out[k] += ad * W.data[row + k];
      }
    }
    a = out;
  });
  return { inputs, z: a };
}

// dz (C) -> the gradient of every parameter, the layers in reverse order of the forward.
function backward(layers, params, inputs, dz) {
  const grads = {};
  let g = dz;
  for (let i = layers.length - 1; i >= 0; i--) {
    const [op, weight, bias] = layers[i];
    if (isActivation(op)) {
      const out = inputs[i + 1], slope = ACTIVATIONS[op].slope;
      g = g.map((v, j) => v * slope(out[j]));
      continue;
    }
    const a = inputs[i];
    const W = params[weight], [D, K] = W.shape;
    const dW = new Float64Array(D * K), da = new Float64Array(D);
    for (let d = 0; d < D; d++) { // dW = a^T g  (D, K); da = g W^T  (D,)
      let s = 0;
      for (let k = 0, row = d * K; k < K; k++) { dW[row + k] = a[d] * g[k]; s += g[k] * W.data[row + k]; }
      da[d] = s;
    }
    grads[weight] = { shape: W.shape, data: dW };
    grads[bias] = { shape: params[bias].shape, data: Float64Array.from(g) };
    g = da;
  }
  return grads;
}

// ---- explain.softmax_steps and the views' numbers ------------------------------------------

function softmaxSteps(z, label) {
  const max = Math.max(...z);
  const shifted = Array.from(z, (v) => v - max), exp = shifted.map(Math.exp);
  const sum = exp.reduce((s, v) => s + v, 0);
  const steps = {
    logits: Array.from(z), max_logit: max, shifted, exp_shifted: exp, exp_sum: sum,
    probabilities: exp.map((v) => v / sum), log_softmax: shifted.map((v) => v - Math.log(sum)),
    digit: shifted.indexOf(0),
  };
  if (label !== null) {
    steps.label = label;
    steps.loss = -steps.log_softmax[label];
    steps.gradient = steps.probabilities.map((p, c) => p - (c === label ? 1 : 0));
  }
  return steps;
}

// analysis.top_units: indices of the `count` largest scores, largest first, ties by index.
function topUnits(scores, count) {
  return Array.from(scores.keys()).sort((i, j) => scores[j] - scores[i] || i - j).slice(0, count);
}

// analysis.scaled_images: columns of a (D, K) matrix as 28 x 28 images scaled to [-1, 1].
function scaledImages({ shape: [D, K], data }, units) {
  return units.map((u) => {
    const column = Array.from({ length: D }, (_, d) => data[d * K + u]);
    const scale = Math.max(...column.map(Math.abs)) || 1;
    return Array.from({ length: 28 }, (_, r) => column.slice(28 * r, 28 * r + 28).map((v) => v / scale));
  });
}


// 28 x 28 images in [-1, 1] as the server sends them: uint8, 128 = 0, base64.
function base64Pixels(images) {
  const pixels = new Uint8Array(images.length * 784);
  images.forEach((image, i) => image.flat().forEach((v, p) => { pixels[i * 784 + p] = Math.round(128 + 127 * v); }));
  return btoa(String.fromCharCode(...pixels));
}

// models.Network.unit_pictures: the last hidden layer's units' weights carried down to the pixels,
// through each layer below (W), times its activation's slope as this input sets it: a (D, K) matrix.
function unitPictures(layers, params, inputs, last, units) {
  const top = params[layers[last - 1][1]], [H, K] = top.shape;
  let picture = units.map((u) => Float64Array.from({ length: H }, (_, i) => top.data[i * K + u]));
  for (let i = last - 2; i >= 0; i--) {
    const [op, weight] = layers[i];
    if (isActivation(op)) {
      const out = inputs[i + 1], slope = ACTIVATIONS[op].slope;
      picture = picture.map((v) => v.map((value, k) => value * slope(out[k])));
      continue;
    }
    const W = params[weight], [D, M] = W.shape;
    picture = picture.map((v) => Float64Array.from({ length: D }, (_, d) => {
      let s = 0;
      for (let m = 0; m < M; m++) s += W.data[d * M + m] * v[m];
      return s;
    }));
  }
  const D = picture[0].length, data = new Float64Array(D * units.length);
  picture.forEach((v, k) => v.forEach((value, d) => { data[d * units.length + k] = value; }));
  return { shape: [D, units.length], data };
}

// explain.hidden_units: the last activation's output and the weights after it, for a model that has one.
function hiddenUnits({ layers, fires, constants }, params, inputs, digit) {
  const ops = layers.map(([op]) => op), last = ops.findLastIndex(isActivation);
  if (last < 0) return undefined;
  const a = inputs[last + 1], W = params[layers[last + 1][1]], C = W.shape[1];
  const toward = Array.from(a, (_, j) => W.data[j * C + digit]);
  const push = Array.from(a, (v, j) => v * toward[j]);
  const units = topUnits(push, constants.hidden_shown);
  const images = scaledImages(unitPictures(layers, params, inputs, last, units), units.map((_, k) => k));
  const depth = ops.filter(isActivation).length;
  return {
    layer: depth, hidden_layers: depth, activation: ops[last], fires,
    active: a.filter((v) => v > 0).length, total: a.length, side: 28, images: base64Pixels(images),
    units: units.map((j) => ({ unit: j, activation: a[j], weight: toward[j], push: push[j] })),
  };
}

function jacobian(steps) {
  const S = steps.probabilities;
  const matrix = S.map((si, i) => S.map((sj, j) => si * ((i === j ? 1 : 0) - sj)));
  const result = { matrix };
  if (steps.label !== undefined) {
    const y = steps.label, dLdS = S.map((s, i) => (i === y ? (s > 0 ? -1 / s : -Infinity) : 0));
    result.chain = S.map((_, j) => matrix.reduce((sum, row, i) => sum + row[j] * dLdS[i], 0));
  }
  return result;
}

function hinge(steps, margin) {
  const z = steps.logits, y = steps.label;
  const terms = z.map((v, k) => (k === y ? 0 : Math.max(0, v - z[y] + margin)));
  return { terms, loss: terms.reduce((s, v) => s + v, 0),
    violating: terms.flatMap((v, k) => (v > 0 ? [k] : [])), margin };
}

// lab.training_step: this digit's gradient, the first layer's as images, and one SGD step.
// forwarded: forward(params, x), which the answer has computed already.
function trainingStep({ layers, unit_caption: caption, constants }, params, x, { inputs, z }, label, lr) {
  const before = softmaxSteps(z, label);
  const grads = backward(layers, params, inputs, before.gradient); // dz = softmax - onehot (one image: N = 1)
  const first = grads[layers[0][1]], [D, K] = first.shape;
  const norms = Array.from({ length: K }, (_, k) => {
    let s = 0;
    for (let d = 0; d < D; d++) s += first.data[d * K + k] ** 2;
    return Math.sqrt(s);
  });
  const shown = topUnits(norms, constants.gradient_images);
  const stepped = {};
  for (const [name, p] of Object.entries(params)) {
    stepped[name] = { shape: p.shape, data: p.data.map((v, i) => v - lr * grads[name].data[i]) };
  }
  const after = softmaxSteps(forward(layers, stepped, x).z, label);
  return {
    lr, loss_before: before.loss, loss_after: after.loss, probabilities_after: after.probabilities,
    gradient: { caption, units: shown, norms: shown.map((k) => norms[k]), side: 28,
      images: base64Pixels(scaledImages(first, shown)) },
  };
}

function lab(model, params, x, forwarded, steps, lr) {
  const p = steps.probabilities, logp = steps.log_softmax;
  const curves = {
    exp: steps.shifted.map((v, c) => [v, steps.exp_shifted[c]]),
    log: p.map((v, c) => [v, logp[c]]),
    nll: p.map((v, c) => [v, -logp[c]]),
  };
  if (steps.untrained && steps.label !== undefined) {
    curves.untrained_nll = [steps.untrained.probabilities[steps.label], -steps.untrained.log_softmax[steps.label]];
  }
  const result = { curves, jacobian: jacobian(steps) };
  if (steps.label !== undefined) {
    result.hinge = hinge(steps, model.constants.margin);
    result.step = trainingStep(model, params, x, forwarded, steps.label, lr);
  }
  return result;
}

// draw_routes._timeline: this digit under every snapshot, for the label or, without one, for the
// trained net's answer (the last snapshot's). Each snapshot's softmax is kept for the last digit: a
// slider move or a new label changes nothing of it.
function timelineOf(layers, snapshots, snapshotParams) {
  let seen = { key: null, each: null };
  return (x, digit, label, index) => {
    const last = snapshots.steps.length - 1, key = digit.join(",");
    if (seen.key !== key) {
      seen = { key, each: snapshots.steps.map((_, i) => softmaxSteps(forward(layers, snapshotParams(i), x).z, null)) };
    }
    const { each } = seen, shown = label === null ? each[last].digit : label;
    return {
      steps: snapshots.steps, index: index === null ? last : index, label: shown,
      label_from: label === null ? "prediction" : "label", loss: each.map((s) => -s.log_softmax[shown]),
      probability: each.map((s) => s.probabilities[shown]), predicted: each.map((s) => s.digit),
      train_loss: snapshots.train_loss, train_loss_smoothing: snapshots.smoothing ?? 0,
    };
  };
}

// ---- the answers --------------------------------------------------------------------------

function rows({ w, h, data }, scale = 1) {
  return Array.from({ length: h }, (_, y) => Array.from(data.subarray(y * w, (y + 1) * w), (v) => Math.round(v * scale)));
}

// predict's preprocessing of an image, kept for the last image's bytes: a move of the timeline's
// slider or a new label sends the same image again.
let preprocessed = { bytes: null, stages: null };

async function stagesOf(image) {
  const bytes = new Uint8Array(await image.arrayBuffer()), last = preprocessed.bytes;
  if (last && last.length === bytes.length && last.every((b, i) => b === bytes[i])) return preprocessed.stages;
  let stages;
  if (image.type === DIGIT_TYPE && bytes.length === 28 * 28) {
    const ink = { w: 28, h: 28, data: Float32Array.from(bytes, (v) => v / 255) };
    stages = { digit: bytes, ink, crop: [0, 0, 28, 28], box: ink };
    preprocessed = { bytes, stages };
    return stages;
  }
  try {
    stages = mnistStages(await readGray(image), "the image");
  } catch (err) {
    throw err instanceof ImageError ? new Error(err.message) : err;
  }
  preprocessed = { bytes, stages };
  return stages;
}

// The digit the page opens with and its label ({image: Blob or null, label}), or null.
function initialDigit(embedded) {
  const first = embedded.initial;
  if (!first) return null;
  const image = first.pixels !== undefined ? new Blob([bytesOf(first.pixels)], { type: DIGIT_TYPE })
    : first.file !== undefined ? new Blob([bytesOf(first.file)], { type: first.type }) : null;
  return { image, label: first.label };
}

// image: a Blob (a drawing or a file) -> the answer POST /api/predict gives for it.
async function predict(engine, image, { label, lr, snapshot }) {
  const { embedded, trained, untrained, snapshots, snapshotParams, timeline } = engine;
  const C = embedded.entry.class_names.length;
  const y = label === "" || label === null || label === undefined ? null : Number(label);
  if (y !== null && !(Number.isInteger(y) && y >= 0 && y < C)) throw new Error(`label must be a class number from 0 to ${C - 1}`);
  const { default_lr: defaultLr, preview_side: previewSide } = embedded.constants;
  const rate = lr === "" || lr === undefined || lr === null ? defaultLr : Number(lr);
  if (!(rate > 0 && rate <= 100)) throw new Error(`lr must be a number in (0, 100], not ${lr}`);
  const index = snapshot === null || snapshot === undefined || snapshot === "" ? null : Number(snapshot);
  if (index !== null && !snapshots) throw new Error(`this page has no snapshots: ${embedded.entry.snapshots_note}`);
  if (index !== null && !(Number.isInteger(index) && index >= 0 && index < snapshots.steps.length)) {
    throw new Error(`snapshot must be an index from 0 to ${snapshots.steps.length - 1}, not ${snapshot}`);
  }
  const params = index === null ? trained : snapshotParams(index);
  const stages = await stagesOf(image);
  const x = standardise(stages.digit, embedded.normalization);
  const forwarded = forward(embedded.layers, params, x), { inputs, z } = forwarded;
  const result = softmaxSteps(z, y);
  const hidden = hiddenUnits(embedded, params, inputs, result.digit);
  if (hidden) result.hidden = hidden;
  if (untrained) result.untrained = softmaxSteps(forward(embedded.layers, untrained, x).z, y);
  const T = embedded.entry.temperature, atEnd = index === null || params === trained;
  if (T !== null && T !== undefined && atEnd) { // fitted to the trained weights only
    result.temperature = T;
    result.calibrated = softmaxSteps(z.map((v) => v / T), y).probabilities;
  }
  result.lab = lab(embedded, params, x, forwarded, result, rate);
  if (snapshots) result.timeline = timeline(x, stages.digit, y, index);
  else result.timeline_note = embedded.entry.snapshots_note;
  const { w, h } = stages.ink, [top, left, bottom, right] = stages.crop;
  const ink = { w, h, data: Uint8ClampedArray.from(stages.ink.data, (v) => Math.round(v * 255)) };
  const scale = Math.min(1, previewSide / Math.max(w, h));
  const preview = scale < 1 ? resize(ink, Math.max(1, Math.round(w * scale)), Math.max(1, Math.round(h * scale)), "box", true) : ink;
  Object.assign(result, {
    checkpoint: embedded.entry.name,
    preprocessed: rows({ w: 28, h: 28, data: stages.digit }),
    stages: { ink: rows(preview), crop: [top / h, left / w, bottom / h, right / w], box: rows(stages.box, 255) },
  });
  return result;
}

// probes.Probe._summaries, unrounded: values (N, C) of a batch grouped by true class, k of each ->
// {min, q1, median, q3, max}, each [true class][output], np.quantile's linear interpolation.
export function boxSummaries(values, classes, k) {
  const C = values[0].length, stats = { min: [], q1: [], median: [], q3: [], max: [] };
  const names = Object.keys(stats);
  classes.forEach((_, row) => {
    const rows = values.slice(row * k, (row + 1) * k);
    names.forEach((name) => stats[name].push([]));
    for (let out = 0; out < C; out++) {
      const sorted = rows.map((v) => v[out]).sort((a, b) => a - b);
      [0, 0.25, 0.5, 0.75, 1].forEach((q, i) => {
        const position = q * (k - 1), low = Math.floor(position), high = Math.min(low + 1, k - 1), f = position - low;
        stats[names[i]][row].push(sorted[low] * (1 - f) + sorted[high] * f);
      });
    }
  });
  return stats;
}

// A batch of digits (N x 784 bytes in MNIST's form, grouped by class, k of each) under snapshot
// `index` (null: the trained weights): its logits' and softmax's box plots per true class, its
// mean loss and accuracy (probes.Probe.record's numbers). Kept per snapshot: the batch is fixed.
function batchOf(state) {
  const cache = new Map();
  return (pixels, classes, k, index) => {
    const key = index === null || index === undefined ? "trained" : index;
    if (!cache.has(key)) {
      const { embedded, trained, snapshotParams } = state;
      const params = key === "trained" ? trained : snapshotParams(key);
      const D = 784, N = classes.length * k;
      const logits = Array.from({ length: N }, (_, n) => Array.from(
        forward(embedded.layers, params, standardise(pixels.subarray(n * D, (n + 1) * D), embedded.normalization)).z));
      const steps = logits.map((z) => softmaxSteps(z, null));
      const labelOf = (n) => classes[Math.floor(n / k)];
      cache.set(key, {
        classes, k, logits, step: index === null || index === undefined || !state.snapshots ? null
          : state.snapshots.steps[index],
        boxes: { logits: boxSummaries(logits, classes, k),
          softmax: boxSummaries(steps.map((s) => s.probabilities), classes, k) },
        loss: steps.reduce((sum, s, n) => sum - s.log_softmax[labelOf(n)], 0) / N,
        accuracy: steps.filter((s, n) => s.digit === labelOf(n)).length / N,
      });
    }
    return cache.get(key);
  };
}

// The squared weights sum_W W^2 (weights, not biases: what weight decay's term adds up) of the
// trained weights and of every snapshot: ({at: trained, through: [per snapshot]}).
function squaredWeights({ embedded, trained, snapshots, snapshotParams }) {
  const weights = embedded.layers.filter(([op]) => op === "affine").map(([, W]) => W);
  const sum = (params) => weights.reduce((s, W) => s + params[W].data.reduce((t, v) => t + v * v, 0), 0);
  return { trained: sum(trained), through: snapshots ? snapshots.steps.map((_, i) => sum(snapshotParams(i))) : null };
}

// One checkpoint's engine from its document: its list entry, the digit it opens with, and its answers.
export function engine(embedded) {
  const trained = parameters(embedded.parameters);
  const untrained = embedded.untrained ? parameters(embedded.untrained) : null;
  const snapshots = embedded.snapshots; // {steps, parameters: stacked (S, ...) float16, train_loss} or null
  const snapshotParams = snapshots ? snapshotReader(snapshots, trained) : null;
  const timeline = snapshots ? timelineOf(embedded.layers, snapshots, snapshotParams) : null;
  const state = { embedded, trained, untrained, snapshots, snapshotParams, timeline };
  const batch = batchOf(state);
  let squared = null;
  return {
    entry: embedded.entry,
    initialDigit: () => initialDigit(embedded),
    predict: (image, options) => predict(state, image, options),
    batch,
    squaredWeights: () => (squared = squared || squaredWeights(state)),
  };
}
