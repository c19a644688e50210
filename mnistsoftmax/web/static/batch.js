// A batch through the net: the first ten MNIST test digits of each class under the weights of the
// timeline's snapshot, the box plots of their logits and of their softmax per true class (as /train
// draws its probes), from an untrained net's every class near 0 and 10 % to a trained one's right
// class far above the rest and near 100 %. The batch's numbers come from the page's engine.
import { $ } from "./common.js";
import { boxMedians, boxPlots, boxText } from "./charts.js";
import { number as num } from "./draw.js";

// The batch's boxes as charts.js takes them.
export const boxesOf = (batch) => ({ classes: batch.classes, ...batch.boxes });

export function batchMedians(batch) {
  return boxMedians(boxesOf(batch));
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
  const when = batch.step === null ? "Under the trained weights" : `Under step ${batch.step}`;
  const said = $("batch-caption");
  boxText(said, $("batch-table"), boxesOf(batch), names,
    `${when}, over the ${batch.k * batch.classes.length} test digits`);
  said.textContent += ` Mean loss ${num(batch.loss)} (ln 10 = 2.303 for a uniform guess), ` +
    `${(100 * batch.accuracy).toFixed(0)} % right.`;
  said.dataset.loss = String(batch.loss);
  said.dataset.step = batch.step ?? "";
  view.dataset.step = batch.step ?? "";
}
