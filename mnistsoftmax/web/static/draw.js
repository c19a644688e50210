// Drawing arrays the server computed on canvases; nothing here computes the model's numbers.
import { element } from "./common.js";

// Draws a 2-D array pixel for pixel; colour(value) gives [r, g, b].
function paint(canvas, rows, colour) {
  const h = rows.length, w = rows[0].length;
  canvas.width = w;
  canvas.height = h;
  const ctx = canvas.getContext("2d");
  const image = ctx.createImageData(w, h);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = 4 * (y * w + x);
      image.data.set([...colour(rows[y][x]), 255], i);
    }
  }
  ctx.putImageData(image, 0, 0);
}

// rows: grey levels 0-255 (light ink on black).
export function grayImage(canvas, rows) {
  paint(canvas, rows, (v) => [v, v, v]);
}

// base64 of uint8 images (K, side, side), 128 = 0 (the probes' weights records, the lab's gradient)
// -> K arrays of rows in [-1, 1].
export function decodeImages(base64, side) {
  const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
  const size = side * side, images = [];
  for (let k = 0; k < bytes.length / size; k++) {
    const rows = [];
    for (let r = 0; r < side; r++) {
      rows.push(Array.from(bytes.subarray(k * size + r * side, k * size + (r + 1) * side), (b) => (b - 128) / 127));
    }
    images.push(rows);
  }
  return images;
}

// rows: weights in [-1, 1]: red positive, blue negative, white zero.
export function weightImage(canvas, rows) {
  paint(canvas, rows, (value) => {
    const v = Math.max(-1, Math.min(1, value));
    const fade = Math.round(255 * (1 - Math.abs(v)));
    return [v > 0 ? 255 : fade, fade, v < 0 ? 255 : fade];
  });
}


// Ten horizontal bars of probabilities (fractions); testids gives each number's data-testid
// (`prefix` and the class: prob-3), `before` a second, faint bar per class (the same quantity
// before a change). Every part carries data-class, for the class chosen anywhere on the page.
export function probabilityBars(container, probabilities, classNames,
  { testids = false, highlight = -1, prefix = "prob-", before = null } = {}) {
  container.replaceChildren();
  probabilities.forEach((p, c) => {
    const percent = 100 * p;
    const name = element("span", { class: c === highlight ? "top" : "", "data-class": c }, classNames[c]);
    const bar = element("div", { class: "bar", "data-class": c });
    if (before) bar.append(element("div", { class: "before", style: `width: ${(100 * before[c]).toFixed(2)}%` }));
    bar.append(element("div", { style: `width: ${percent.toFixed(2)}%` }));
    const num = element("span", { class: "num", "data-class": c });
    // The text is the percentage shown; data-value keeps the probability itself, unrounded.
    const attributes = testids ? { "data-testid": `${prefix}${c}`, "data-value": String(p) } : {};
    if (before) num.append(`${(100 * before[c]).toFixed(2)}% → `); // both at one precision, each with its unit
    const value = element("span", attributes, percent.toFixed(2));
    num.append(value, "%");
    container.append(name, bar, num);
  });
}

// The class chosen anywhere (a click on anything that carries data-class): marked in every view.
let chosen = null;

export function markChosen() {
  for (const e of document.querySelectorAll("[data-class], [data-i]")) {
    const own = e.dataset.class ?? null;
    const cell = e.dataset.i !== undefined && (e.dataset.i === String(chosen) || e.dataset.j === String(chosen));
    e.classList.toggle("chosen", chosen !== null && (own === String(chosen) || cell));
  }
}

export function wireChoosing() {
  document.addEventListener("click", (event) => {
    const target = event.target.closest && event.target.closest("[data-class]");
    if (!target || target.closest("input, select, button")) return;
    chosen = chosen === Number(target.dataset.class) ? null : Number(target.dataset.class);
    markChosen();
  });
}

// A loss for reading: 4 decimals from 1 up, else 4 significant digits (exponent below 1e-4).
export function number(v) {
  const a = Math.abs(v);
  if (a >= 1 || v === 0) return v.toFixed(4);
  return a >= 1e-4 ? v.toPrecision(4) : v.toExponential(3);
}
