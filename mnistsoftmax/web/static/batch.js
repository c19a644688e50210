// A batch through the net: the first ten MNIST test digits of each class under the weights of the
// timeline's snapshot, the box plots of their logits and of their softmax per true class (as /train
// draws its probes), from an untrained net's every class near 0 and 10 % to a trained one's right
// class far above the rest and near 100 %. The batch's numbers come from the page's engine.
import { $, element } from "./common.js";
import { boxPlots } from "./charts.js";
import { number as num } from "./draw.js";

const median = (values) => {
  const s = [...values].sort((a, b) => a - b), m = (s.length - 1) / 2;
  return (s[Math.floor(m)] + s[Math.ceil(m)]) / 2;
};

// The medians the caption states: the right class's and the others', of the logits and the softmax.
export function batchMedians(batch) {
  const { classes } = batch, take = (stats, right) => classes.flatMap((c, row) =>
    stats.median[row].filter((_, out) => (out === c) === right));
  return {
    rightLogit: median(take(batch.boxes.logits, true)), otherLogit: median(take(batch.boxes.logits, false)),
    rightP: median(take(batch.boxes.softmax, true)), otherP: median(take(batch.boxes.softmax, false)),
  };
}

export function showBatch(result, names) {
  const view = $("batch-view"), batch = result.batch;
  $("batch-note").hidden = Boolean(batch);
  $("batch-charts").hidden = !batch;
  if (!batch) return;
  const { logits, softmax } = batch.boxes;
  const all = ["min", "max"].flatMap((k) => logits[k].flat());
  const low = Math.min(-1, ...all), high = Math.max(1, ...all);
  boxPlots($("batch-logits"), logits, batch.classes, names, { low, high, format: (v) => v.toFixed(0) });
  boxPlots($("batch-softmax"), softmax, batch.classes, names, { low: 0, high: 1, format: (v) => v.toFixed(1) });
  const m = batchMedians(batch), when = batch.step === null ? "the trained weights" : `step ${batch.step}`;
  const caption = `Under ${when}, over the ${batch.k * batch.classes.length} test digits: the right class's ` +
    `median logit ${num(m.rightLogit)}, the other classes' ${num(m.otherLogit)}; the right class's median ` +
    `probability ${(100 * m.rightP).toFixed(1)} %, the others' ${(100 * m.otherP).toFixed(2)} %. ` +
    `Mean loss ${num(batch.loss)} (ln 10 = 2.303 for a uniform guess), ${(100 * batch.accuracy).toFixed(0)} % right.`;
  const said = $("batch-caption");
  said.textContent = caption;
  Object.assign(said.dataset, { rightLogit: m.rightLogit, otherLogit: m.otherLogit, rightP: m.rightP,
    otherP: m.otherP, loss: batch.loss, step: batch.step ?? "" });
  view.dataset.step = batch.step ?? "";
  // The data as a table: each true class's median logit and probability of its own class.
  const rows = batch.classes.map((c, row) => element("tr", {}, ""));
  batch.classes.forEach((c, row) => rows[row].append(element("th", { scope: "row" }, names[c]),
    element("td", {}, num(logits.median[row][c])), element("td", {}, num(softmax.median[row][c])),
    element("td", {}, num(Math.max(...logits.median[row].filter((_, out) => out !== c))))));
  $("batch-table").querySelector("tbody").replaceChildren(...rows);
}
