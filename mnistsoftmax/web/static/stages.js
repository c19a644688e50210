// View 2: the preprocessing, step by step, as the server's images.mnist_stages took it.
import { grayImage } from "./draw.js";

export function showStages(result) {
  const { ink, crop, box } = result.stages;
  const inkCanvas = document.getElementById("stage-ink");
  grayImage(inkCanvas, ink);
  const ctx = inkCanvas.getContext("2d");
  const [top, left, bottom, right] = crop;
  const w = inkCanvas.width, h = inkCanvas.height;
  ctx.strokeStyle = "#ff5252";
  ctx.lineWidth = Math.max(1, w / 140);
  ctx.strokeRect(left * w, top * h, (right - left) * w, (bottom - top) * h);

  const rows = ink.slice(Math.floor(top * h), Math.ceil(bottom * h)).map(
    (row) => row.slice(Math.floor(left * w), Math.ceil(right * w)));
  if (rows.length && rows[0].length) grayImage(document.getElementById("stage-crop"), rows);
  grayImage(document.getElementById("stage-box"), box);
  grayImage(document.getElementById("stage-input"), result.preprocessed);
}
