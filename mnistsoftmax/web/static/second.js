// The same digit under a second checkpoint, side by side with the first at the same step of its own
// run: its probabilities as bars (compare-prob-K, data-value the probability, as prob-K are for the
// first). At the end of the timeline the second's trained weights answer, as `predict` would.
import { predict } from "./api.js";
import { $ } from "./common.js";
import { probabilityBars } from "./draw.js";

let image = () => Promise.resolve(null); // the digit shown, as the first checkpoint's request sends it
let others = []; // the checkpoints there are to compare with
let asked = 0; // answers asked for: a later one wins

export function wireSecond(currentImage, redraw) {
  image = currentImage;
  $("compare-checkpoint").addEventListener("change", redraw);
}

// The picker: every checkpoint but the one shown; the view hidden where there is no other.
export function fillSecond(checkpoints, shown) {
  others = checkpoints.filter((c) => c.name !== shown);
  const picker = $("compare-checkpoint"), chosen = picker.value;
  picker.replaceChildren(new Option("none", ""));
  for (const c of others) picker.append(new Option(`${c.name} (${c.description})`, c.name));
  picker.value = others.some((c) => c.name === chosen) ? chosen : "";
  $("second-view").hidden = !others.length;
}

// The second's snapshot for the first's step: at the first's end its own end (null: its trained
// weights), else its last snapshot at or before that step.
function snapshotFor(result, second) {
  const t = result.timeline;
  if (!t || t.index === t.steps.length - 1 || !second.snapshots) return null;
  const step = t.steps[t.index];
  let k = 0;
  second.snapshots.forEach((s, i) => { if (s <= step) k = i; });
  return k === second.snapshots.length - 1 ? null : k;
}

export async function showSecond(result, names) {
  const name = $("compare-checkpoint").value, second = others.find((c) => c.name === name);
  const ticket = ++asked;
  if (!second) {
    $("second-probs").replaceChildren();
    $("second-note").textContent = others.length ? "Choose a second checkpoint to see this digit under both." : "";
    return;
  }
  const digit = await image();
  if (!digit) return;
  const snapshot = snapshotFor(result, second);
  try {
    const other = await predict(digit, { checkpoint: name, label: result.label ?? "", snapshot });
    if (ticket !== asked) return;
    probabilityBars($("second-probs"), other.probabilities, names, { testids: true, prefix: "compare-prob-",
      highlight: other.digit });
    const where = snapshot === null ? "its trained weights" : `its snapshot at step ${second.snapshots[snapshot]}`;
    const loss = other.loss === undefined ? "" : `, loss −ln p = ${other.loss.toPrecision(4)}`;
    $("second-note").textContent = `${name} (${second.description}), ${where}: ${names[other.digit]} with ` +
      `p = ${(100 * other.probabilities[other.digit]).toFixed(2)} %${loss}.`;
  } catch (err) {
    $("second-note").textContent = `${name} cannot answer: ${err.message}`;
  } finally {
    if (ticket === asked) document.body.dataset.compared = String(Number(document.body.dataset.compared || 0) + 1);
  }
}
