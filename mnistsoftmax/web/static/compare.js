// View 4: the same input through the run's initial weights and through the trained model.
import { element } from "./common.js";
import { number, probabilityBars } from "./draw.js";

function side(container, steps, classNames, label) {
  const bars = element("div", { class: "bars" });
  probabilityBars(bars, steps.probabilities, classNames, { highlight: steps.digit });
  const lines = [`prediction ${classNames[steps.digit]}`];
  if (label !== undefined) lines.push(`loss −ln p(${classNames[label]}) = ${number(steps.loss)}  (ln 10 = 2.3026)`);
  container.replaceChildren(bars, element("p", {}, lines.join(" · ")));
}

export function showCompare(result, classNames) {
  const t = result.timeline, end = !t || t.index === t.steps.length - 1;
  document.getElementById("trained-title").textContent = end ? "trained" : `at step ${t.steps[t.index]} (the timeline's)`;
  side(document.getElementById("trained"), result, classNames, result.label);
  const untrained = document.getElementById("untrained");
  if (result.untrained) side(untrained, result.untrained, classNames, result.label);
  else untrained.replaceChildren(element("p", { class: "muted" }, "this checkpoint has no training configuration"));
}
