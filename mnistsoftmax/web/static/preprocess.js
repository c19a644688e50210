// predict's preprocessing in the browser, for the exported page (no server): an image file ->
// every stage of images.mnist_stages, the same numbers (tests compare both on the same files).
// Images are {w, h, data} row-major; Pillow's resampling is reproduced as Pillow computes it
// (Resample.c: the same coefficients, horizontal pass then vertical, float32 or 8-bit fixed point
// in between), numpy's percentiles and medians as numpy interpolates them.

export const MAX_PIXELS = 50_000_000;
const WORKING_SIDE = 2048, FIELD = 28, BOX = 20;
const INK_THRESHOLD = 0.25, MIN_CONTRAST = 0.08, CLEAN_BORDER = 0.02, PAPER_QUANTILE = 25, PAPER_BLOCKS = 8;

export class ImageError extends Error {}

// ---- Pillow's resampling ------------------------------------------------------------------

const FILTERS = {
  box: { support: 0.5, f: (x) => (x > -0.5 && x <= 0.5 ? 1.0 : 0.0) },
  bilinear: { support: 1.0, f: (x) => { x = Math.abs(x); return x < 1.0 ? 1.0 - x : 0.0; } },
  lanczos: { support: 3.0, f: (x) => (-3.0 <= x && x < 3.0 ? sinc(x) * sinc(x / 3) : 0.0) },
};

function sinc(x) {
  if (x === 0.0) return 1.0;
  x *= Math.PI;
  return Math.sin(x) / x;
}

// precompute_coeffs: for each output pixel, its first input pixel, how many, and their weights.
function coefficients(inSize, outSize, filter) {
  const scale = inSize / outSize;
  const filterscale = Math.max(scale, 1.0);
  const support = filter.support * filterscale;
  const ksize = Math.ceil(support) * 2 + 1;
  const bounds = new Int32Array(outSize * 2), kk = new Float64Array(outSize * ksize);
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale, ss = 1.0 / filterscale;
    const xmin = Math.max(0, Math.trunc(center - support + 0.5));
    const xmax = Math.min(inSize, Math.trunc(center + support + 0.5)) - xmin;
    let ww = 0.0;
    for (let x = 0; x < xmax; x++) {
      const w = filter.f((x + xmin - center + 0.5) * ss);
      kk[xx * ksize + x] = w;
      ww += w;
    }
    if (ww !== 0.0) for (let x = 0; x < xmax; x++) kk[xx * ksize + x] /= ww;
    bounds[2 * xx] = xmin;
    bounds[2 * xx + 1] = xmax;
  }
  return { bounds, kk, ksize };
}

const PRECISION_BITS = 22;

function fixedPoint(kk) {
  return Float64Array.from(kk, (k) => Math.trunc(k < 0 ? -0.5 + k * (1 << PRECISION_BITS) : 0.5 + k * (1 << PRECISION_BITS)));
}

function clip8(ss) {
  return Math.min(255, Math.max(0, Math.floor(ss / (1 << PRECISION_BITS))));
}

// One pass along rows (horizontal) or columns: float32 ("F" images) or 8-bit fixed point ("L").
function pass(image, outSize, filter, horizontal, eightBit) {
  const { w, h, data } = image;
  const { bounds, kk: weights, ksize } = coefficients(horizontal ? w : h, outSize, filter);
  const kk = eightBit ? fixedPoint(weights) : weights;
  const ow = horizontal ? outSize : w, oh = horizontal ? h : outSize;
  const out = eightBit ? new Uint8ClampedArray(ow * oh) : new Float32Array(ow * oh);
  const step = horizontal ? 1 : w;
  for (let yy = 0; yy < oh; yy++) {
    for (let xx = 0; xx < ow; xx++) {
      const o = horizontal ? xx : yy;
      const first = bounds[2 * o], count = bounds[2 * o + 1];
      let at = horizontal ? yy * w + first : first * w + xx;
      let ss = eightBit ? 1 << (PRECISION_BITS - 1) : 0.0;
      for (let i = 0; i < count; i++, at += step) ss += data[at] * kk[o * ksize + i];
      out[yy * ow + xx] = eightBit ? clip8(ss) : ss;
    }
  }
  return { w: ow, h: oh, data: out };
}

// Image.resize(size, filter) of an "F" (float32) or "L" (uint8) image.
export function resize(image, width, height, filterName, eightBit = false) {
  const filter = FILTERS[filterName];
  let out = image;
  if (width !== image.w) out = pass(out, width, filter, true, eightBit);
  if (height !== image.h) out = pass(out, height, filter, false, eightBit);
  return out;
}

// ---- numpy's statistics -------------------------------------------------------------------

function lerp(a, b, t) {
  const d = b - a;
  return t >= 0.5 ? b - d * (1 - t) : a + d * t;
}

// np.percentile(values, q), interpolating between neighbours as numpy does, of values sorted ascending.
function percentileSorted(sorted, q) {
  const virtual = (sorted.length - 1) * (q / 100);
  const below = Math.floor(virtual), above = Math.min(below + 1, sorted.length - 1);
  return lerp(sorted[below], sorted[above], virtual - below);
}

export function percentile(values, q) {
  return percentileSorted(Float64Array.from(values).sort(), q);
}

export function median(values) {
  const s = Float64Array.from(values).sort(), n = s.length;
  return n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

function roundHalfEven(x) {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

// ---- reading an image file ----------------------------------------------------------------

// Whether Pillow would read this file with transparency (it then lays it over paper): a PNG says
// so in its header; a GIF's or WebP's is only known once decoded (null: the pixels will say).
function declaredAlpha(bytes) {
  if ([0x89, 0x50, 0x4e, 0x47].every((b, i) => bytes[i] === b)) {
    const colourType = bytes[25];
    if (colourType === 4 || colourType === 6) return true;
    for (let at = 8; at + 8 <= bytes.length;) { // chunks: a tRNS before the image data
      const length = (bytes[at] << 24 | bytes[at + 1] << 16 | bytes[at + 2] << 8 | bytes[at + 3]) >>> 0;
      const type = String.fromCharCode(...bytes.subarray(at + 4, at + 8));
      if (type === "tRNS") return true;
      if (type === "IDAT") return false;
      at += 12 + length;
    }
    return false;
  }
  const gif = String.fromCharCode(...bytes.subarray(0, 3)) === "GIF";
  const webp = String.fromCharCode(...bytes.subarray(8, 12)) === "WEBP";
  return gif || webp ? null : false;
}

// Pillow's thumbnail size for WORKING_SIDE (preserve_aspect_ratio), or null when it fits.
function thumbnailSize(w, h) {
  if (w <= WORKING_SIDE && h <= WORKING_SIDE) return null;
  const aspect = w / h;
  const nearest = (n, key) => Math.max(key(Math.floor(n)) <= key(Math.ceil(n)) ? Math.floor(n) : Math.ceil(n), 1);
  if (1 >= aspect) return [nearest(WORKING_SIDE * aspect, (n) => Math.abs(aspect - n / WORKING_SIDE)), WORKING_SIDE];
  return [WORKING_SIDE, nearest(WORKING_SIDE / aspect, (n) => (n === 0 ? 0 : Math.abs(aspect - WORKING_SIDE / n)))];
}

// An image file (Blob) -> grey levels in [0, 1] as images.read_grayscale gives them.
export async function readGray(blob, name = "the uploaded image") {
  const bytes = new Uint8Array(await blob.arrayBuffer());
  if (!bytes.length) throw new ImageError(`${name}: empty input, not an image`);
  let bitmap;
  try {
    bitmap = await createImageBitmap(blob, { colorSpaceConversion: "none", premultiplyAlpha: "none" });
  } catch {
    const text = String.fromCharCode(...bytes.subarray(0, 12));
    const known = /^(\x89PNG|\xff\xd8\xff|GIF8|BM|RIFF....WEBP)/.test(text);
    throw new ImageError(known ? `${name}: damaged or truncated image`
      : `${name}: not an image this browser can read (PNG, JPEG, BMP, GIF, WebP, ...)`);
  }
  const { width: w, height: h } = bitmap;
  if (w * h > MAX_PIXELS) {
    throw new ImageError(`${name}: ${w}x${h} = ${(w * h).toLocaleString("en")} pixels is above the limit of ` +
      `${MAX_PIXELS.toLocaleString("en")} (refused as a possible decompression bomb)`);
  }
  const canvas = new OffscreenCanvas(w, h);
  const ctx = canvas.getContext("2d", { colorSpace: "srgb" });
  ctx.drawImage(bitmap, 0, 0);
  const rgba = ctx.getImageData(0, 0, w, h).data;
  const alpha = declaredAlpha(bytes) ?? rgba.some((v, i) => i % 4 === 3 && v < 255);
  return alpha ? grayWithAlpha(rgba, w, h) : grayOpaque(rgba, w, h);
}

function grayOpaque(rgba, w, h) {
  let image = { w, h, data: new Uint8ClampedArray(w * h) };
  for (let i = 0; i < w * h; i++) { // Pillow's RGB -> L: ITU-R 601 luma in fixed point
    image.data[i] = (rgba[4 * i] * 19595 + rgba[4 * i + 1] * 38470 + rgba[4 * i + 2] * 7471 + 0x8000) >>> 16;
  }
  const size = thumbnailSize(w, h); // a large photo shrunk while it is 8-bit, by a box filter
  if (size) image = resize(image, size[0], size[1], "box", true);
  return { w: image.w, h: image.h, data: Float64Array.from(image.data, (v) => v / 255.0) };
}

function grayWithAlpha(rgba, w, h) {
  let image = { w, h, data: rgba };
  const size = thumbnailSize(w, h);
  if (size) { // each channel by the box filter (Pillow weighs colour by alpha here: a small difference)
    const channels = [0, 1, 2, 3].map((c) => resize({ w, h, data: Uint8ClampedArray.from({ length: w * h },
      (_, i) => rgba[4 * i + c]) }, size[0], size[1], "box", true).data);
    image = { w: size[0], h: size[1], data: new Uint8ClampedArray(size[0] * size[1] * 4) };
    channels.forEach((values, c) => values.forEach((v, i) => { image.data[4 * i + c] = v; }));
  }
  const n = image.w * image.h, gray = new Float64Array(n), alpha = new Float64Array(n);
  let opaqueSum = 0, opaqueCount = 0;
  for (let i = 0; i < n; i++) {
    const d = image.data;
    gray[i] = (d[4 * i] / 255.0) * 0.299 + (d[4 * i + 1] / 255.0) * 0.587 + (d[4 * i + 2] / 255.0) * 0.114;
    alpha[i] = d[4 * i + 3] / 255.0;
    if (alpha[i] > 0.5) { opaqueSum += gray[i]; opaqueCount++; }
  }
  // Paper is the opposite of the ink: dark strokes on transparency are laid on white, light on black.
  const paper = !opaqueCount || opaqueSum / opaqueCount < 0.5 ? 1.0 : 0.0;
  return { w: image.w, h: image.h, data: gray.map((g, i) => alpha[i] * g + (1 - alpha[i]) * paper) };
}

// ---- images.mnist_stages ------------------------------------------------------------------

function border({ w, h, data }) {
  const values = [];
  for (let x = 0; x < w; x++) values.push(data[x]);
  for (let x = 0; x < w; x++) values.push(data[(h - 1) * w + x]);
  for (let y = 0; y < h; y++) values.push(data[y * w]);
  for (let y = 0; y < h; y++) values.push(data[y * w + w - 1]);
  return values;
}

// np.pad(a, ((0, -h % b), (0, -w % b)), mode="edge") read at (y, x)
const edge = ({ w, h, data }, y, x) => data[Math.min(y, h - 1) * w + Math.min(x, w - 1)];

// images._paper_surface: the paper's level under the ink, from a coarse grid's low quantile.
function paperSurface(ink) {
  const { w, h } = ink;
  const b = Math.max(1, Math.ceil(Math.max(h, w) / PAPER_BLOCKS));
  const ny = Math.ceil(h / b), nx = Math.ceil(w / b);
  const levels = new Float64Array(ny * nx), block = new Float64Array(b * b);
  for (let by = 0; by < ny; by++) {
    for (let bx = 0; bx < nx; bx++) {
      for (let i = 0; i < b; i++) for (let j = 0; j < b; j++) block[i * b + j] = edge(ink, by * b + i, bx * b + j);
      levels[by * nx + bx] = percentileSorted(Float64Array.from(block).sort(), PAPER_QUANTILE);
    }
  }
  const lowest = new Float32Array(ny * nx); // the smallest of each block's 3 x 3 neighbourhood
  for (let y = 0; y < ny; y++) {
    for (let x = 0; x < nx; x++) {
      let m = Infinity;
      for (let i = -1; i <= 1; i++) {
        for (let j = -1; j <= 1; j++) {
          m = Math.min(m, levels[Math.min(Math.max(y + i, 0), ny - 1) * nx + Math.min(Math.max(x + j, 0), nx - 1)]);
        }
      }
      lowest[y * nx + x] = m;
    }
  }
  const surface = resize({ w: nx, h: ny, data: lowest }, nx * b, ny * b, "bilinear");
  const out = new Float64Array(w * h);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) out[y * w + x] = surface.data[y * surface.w + x];
  return out;
}

// images._without_paper: a photo's shading, printed lines and noise taken out; a flat border: unchanged.
function withoutPaper(ink) {
  const { w, h } = ink;
  const edges = Float64Array.from(border(ink)).sort();
  if (percentileSorted(edges, 90) - percentileSorted(edges, 10) < CLEAN_BORDER) return ink;
  const surface = paperSurface(ink);
  const flat = ink.data.map((v, i) => v - surface[i]);
  const row = new Float64Array(w);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) row[x] = flat[y * w + x];
    const low = percentileSorted(row.slice().sort(), PAPER_QUANTILE);
    for (let x = 0; x < w; x++) flat[y * w + x] -= low;
  }
  const column = new Float64Array(h);
  for (let x = 0; x < w; x++) {
    for (let y = 0; y < h; y++) column[y] = flat[y * w + x];
    const low = percentileSorted(column.slice().sort(), PAPER_QUANTILE);
    for (let y = 0; y < h; y++) flat[y * w + x] -= low;
  }
  const padded = { w, h, data: flat };
  const mean = new Float64Array(w * h); // a 3 x 3 mean, the edge repeated, summed in numpy's order
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      let s = 0;
      for (let i = 0; i < 3; i++) {
        for (let j = 0; j < 3; j++) s += edge(padded, Math.max(y + i - 1, 0), Math.max(x + j - 1, 0));
      }
      mean[y * w + x] = s / 9;
    }
  }
  const centre = median(mean);
  const sigma = 1.4826 * median(mean.map((v) => Math.abs(v - centre)));
  return { w, h, data: mean.map((v) => Math.max(v - 3 * sigma, 0.0)) };
}

// Grey levels {w, h, data} in [0, 1] -> {ink, crop, box, digit} as images.mnist_stages gives them.
export function mnistStages(gray, name = "the image") {
  let { w, h, data } = gray;
  let paper = median(border(gray));
  if (paper > 0.5) { data = data.map((v) => 1.0 - v); paper = 1.0 - paper; }
  let ink = withoutPaper({ w, h, data: data.map((v) => v - paper) });
  let top = -Infinity;
  for (const v of ink.data) top = Math.max(top, v);
  if (top < MIN_CONTRAST) throw new ImageError(`${name}: no ink found: the image is blank (contrast ${top.toFixed(3)} of 1)`);
  ink = { w, h, data: ink.data.map((v) => Math.min(Math.max(v / top, 0.0), 1.0)) };
  let y0 = h, y1 = -1, x0 = w, x1 = -1;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      if (ink.data[y * w + x] > INK_THRESHOLD) { y0 = Math.min(y0, y); y1 = y; x0 = Math.min(x0, x); x1 = Math.max(x1, x); }
    }
  }
  const crop = [y0, x0, y1 + 1, x1 + 1];
  const ch = y1 + 1 - y0, cw = x1 + 1 - x0;
  const cropped = { w: cw, h: ch, data: new Float32Array(cw * ch) };
  for (let y = 0; y < ch; y++) for (let x = 0; x < cw; x++) cropped.data[y * cw + x] = ink.data[(y + y0) * w + x + x0];
  const scale = BOX / Math.max(ch, cw);
  const size = [Math.max(1, roundHalfEven(cw * scale)), Math.max(1, roundHalfEven(ch * scale))];
  const small = resize(cropped, size[0], size[1], "lanczos");
  const box = Float32Array.from(small.data, (v) => Math.min(Math.max(v, 0.0), 1.0));

  let mass = 0, my = 0, mx = 0;
  for (let y = 0; y < small.h; y++) {
    for (let x = 0; x < small.w; x++) { const v = box[y * small.w + x]; mass += v; my += v * y; mx += v * x; }
  }
  if (!(mass > 0)) throw new ImageError(`${name}: no ink found: the marks vanish at MNIST's size`);
  const topY = roundHalfEven(FIELD / 2 - my / mass), leftX = roundHalfEven(FIELD / 2 - mx / mass);
  const digit = new Uint8Array(FIELD * FIELD);
  for (let y = Math.max(topY, 0); y < Math.min(topY + small.h, FIELD); y++) {
    for (let x = Math.max(leftX, 0); x < Math.min(leftX + small.w, FIELD); x++) {
      digit[y * FIELD + x] = roundHalfEven(box[(y - topY) * small.w + (x - leftX)] * 255);
    }
  }
  return { ink, crop, box: { w: small.w, h: small.h, data: box }, digit };
}
