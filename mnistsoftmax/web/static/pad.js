// The drawing pad: mouse, touch and pen through pointer events, dark ink on white paper, and
// image files dropped on it. It hands out what to classify as an image file (a PNG of the pad).
import { DIGIT_TYPE } from "./common.js";

export class Pad {
  constructor(canvas, { onChange, onFile }) {
    this.canvas = canvas;
    this.ctx = canvas.getContext("2d");
    this.onChange = onChange;
    this.drawing = false;
    this.clear(false);
    canvas.addEventListener("pointerdown", (e) => this.down(e));
    canvas.addEventListener("pointermove", (e) => this.move(e));
    for (const type of ["pointerup", "pointercancel", "pointerleave"]) canvas.addEventListener(type, () => this.up());
    canvas.addEventListener("dragover", (e) => { e.preventDefault(); canvas.classList.add("dragover"); });
    canvas.addEventListener("dragleave", () => canvas.classList.remove("dragover"));
    canvas.addEventListener("drop", (e) => {
      e.preventDefault();
      canvas.classList.remove("dragover");
      const file = e.dataTransfer.files[0];
      if (file) onFile(file);
    });
  }

  clear(notify = true) {
    this.ctx.fillStyle = "#fff";
    this.ctx.fillRect(0, 0, this.canvas.width, this.canvas.height);
    this.empty = true;
    if (notify) this.onChange();
  }

  point(e) {
    const r = this.canvas.getBoundingClientRect();
    return [(e.clientX - r.left) * this.canvas.width / r.width, (e.clientY - r.top) * this.canvas.height / r.height];
  }

  down(e) {
    this.canvas.setPointerCapture(e.pointerId);
    this.drawing = true;
    this.last = this.point(e);
    // A press is a dot of ink (a line of length 0 draws nothing), so a click leaves a mark and
    // what is sent is never the blank pad.
    const ctx = this.ctx;
    ctx.fillStyle = "#000";
    ctx.beginPath();
    ctx.arc(...this.last, this.width(e) / 2, 0, 2 * Math.PI);
    ctx.fill();
    this.empty = false;
    this.onChange(true);
  }

  width(e) {
    // A pen's pressure thickens the stroke a little; a mouse reports 0.5.
    return 18 * (0.75 + 0.5 * (e.pressure || 0.5));
  }

  move(e) {
    if (!this.drawing) return;
    const p = this.point(e);
    this.stroke(p, e);
    this.last = p;
  }

  up() {
    if (!this.drawing) return;
    this.drawing = false;
    this.onChange();
  }

  stroke(p, e) {
    const ctx = this.ctx;
    ctx.lineWidth = this.width(e);
    ctx.lineCap = ctx.lineJoin = "round";
    ctx.strokeStyle = "#000";
    ctx.beginPath();
    ctx.moveTo(...this.last);
    ctx.lineTo(...p);
    ctx.stroke();
    this.empty = false;
    this.onChange(true);
  }

  // The pad as a PNG file (a Promise of a Blob), or null while it is empty.
  image() {
    if (this.empty) return Promise.resolve(null);
    return new Promise((resolve) => this.canvas.toBlob(resolve, "image/png"));
  }

  showFile(file) {
    // Shows an uploaded image on the pad, fitted, so that the page keeps one picture of the input.
    if (file.type === DIGIT_TYPE) { this.showDigit(file); return; }
    const url = URL.createObjectURL(file);
    const img = new Image();
    img.onload = () => {
      this.clear(false);
      const s = Math.min(this.canvas.width / img.width, this.canvas.height / img.height);
      const w = img.width * s, h = img.height * s;
      this.ctx.drawImage(img, (this.canvas.width - w) / 2, (this.canvas.height - h) / 2, w, h);
      this.empty = true; // what is classified is the file itself, not this picture of it
      URL.revokeObjectURL(url);
    };
    img.src = url;
  }

  async showDigit(file) {
    // A digit in MNIST's form (light ink on black), drawn as ink on the pad's paper.
    const bytes = new Uint8Array(await file.arrayBuffer()), cell = this.canvas.width / 28;
    this.clear(false);
    for (let i = 0; i < 28 * 28; i++) {
      const v = 255 - bytes[i];
      this.ctx.fillStyle = `rgb(${v},${v},${v})`;
      this.ctx.fillRect((i % 28) * cell, Math.floor(i / 28) * cell, cell + 0.5, cell + 0.5);
    }
    this.empty = true; // what is classified is the digit itself, not this picture of it
  }
}
