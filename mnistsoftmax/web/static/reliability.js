// View 6: the checkpoint's reliability diagram on the test set (computed at the end of its
// training and stored in it): per bin of the top probability, accuracy against confidence; the
// diagonal is a calibrated model. Before and after temperature scaling when it has a temperature.
import { $, fillTable, svg } from "./common.js";


export function showReliability(checkpoint) {
  const r = checkpoint && checkpoint.reliability;
  $("reliability-view").hidden = !r;
  if (!r) return;
  const root = $("reliability");
  root.replaceChildren();
  const W = 360, H = 300, left = 40, right = 10, top = 10, bottom = 36;
  const x = (v) => left + (W - left - right) * v;
  const y = (v) => top + (H - top - bottom) * (1 - v);
  for (const v of [0, 0.5, 1]) {
    root.append(svg("text", { x: left - 6, y: y(v) + 4, class: "tick", "text-anchor": "end" }, v.toFixed(1)));
    root.append(svg("text", { x: x(v), y: H - bottom + 14, class: "tick", "text-anchor": "middle" }, v.toFixed(1)));
  }
  root.append(svg("line", { x1: x(0), y1: y(0), x2: x(1), y2: y(1), class: "ln10" }));
  root.append(svg("text", { x: (W + left) / 2, y: H - 6, class: "tick", "text-anchor": "middle" },
    "confidence (top probability), 15 bins"));
  const curves = [["softmax(z)", r, "loss"]];
  if (r.calibrated) curves.push([`softmax(z / T), T = ${checkpoint.temperature.toFixed(3)}`, r.calibrated, "val"]);

  curves.forEach(([name, c, cls], k) => {
    const points = c.accuracy.map((a, i) => [c.confidence[i], a]).filter(([conf, a]) => conf !== null && a !== null);
    root.append(svg("polyline", { points: points.map(([cf, a]) => `${x(cf)},${y(a)}`).join(" "), class: cls }));
    for (const [cf, a] of points) root.append(svg("circle", { cx: x(cf), cy: y(a), r: 3, class: `${cls}-point` }));
    root.append(svg("rect", { x: left + 6, y: top + 8 + 14 * k, width: 12, height: 4, class: `${cls}-point` }));
    root.append(svg("text", { x: left + 22, y: top + 14 + 14 * k, class: "tick" }, `${name}: ECE ${c.ece.toFixed(4)}`));
  });
  root.dataset.ece = String(r.ece);
  const pct = (v) => (v === null ? "–" : `${(100 * v).toFixed(1)} %`);
  const total = r.count.reduce((a, n) => a + n, 0), topBin = r.count.findLastIndex((n) => n > 0);
  $("reliability-caption").textContent = `Over the ${total.toLocaleString("en")} test images in ${r.bins} bins, the ` +
    `expected calibration error (the gap between confidence and accuracy, weighted by the bins' images) is ` +
    `${r.ece.toFixed(4)}` + (r.calibrated ? `, ${r.calibrated.ece.toFixed(4)} with T = ${checkpoint.temperature.toFixed(3)}` : "") +
    (topBin >= 0 ? `; the top bin holds ${r.count[topBin].toLocaleString("en")} images, confidence ` +
      `${pct(r.confidence[topBin])}, accuracy ${pct(r.accuracy[topBin])}.` : ".");
  const headers = ["bin", "images", "confidence", "accuracy", ...(r.calibrated ? ["confidence with T", "accuracy with T"] : [])];
  fillTable($("reliability-table"), headers, r.count.map((n, i) => [i + 1, n, pct(r.confidence[i]), pct(r.accuracy[i]),
    ...(r.calibrated ? [pct(r.calibrated.confidence[i]), pct(r.calibrated.accuracy[i])] : [])]));
}
