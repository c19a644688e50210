// View 5: for an mlp, how many hidden units fire, and those pushing the predicted class most.
import { element } from "./common.js";
import { weightImage } from "./draw.js";

export function showUnits(result, classNames) {
  const view = document.getElementById("units-view");
  view.hidden = !result.hidden;
  if (!result.hidden) return;
  const { active, total, units } = result.hidden;
  document.getElementById("units-summary").textContent =
    `${active} of ${total} hidden units fire (ReLU output > 0). The ${units.length} that push ` +
    `“${classNames[result.digit]}” most, by activation × outgoing weight, with their first-layer weights ` +
    `(red: ink there excites the unit, blue: inhibits it):`;
  const container = document.getElementById("units");
  container.replaceChildren(...units.map((u) => {
    const figure = element("div", { class: "unit" });
    const canvas = element("canvas");
    weightImage(canvas, u.weights);
    figure.append(canvas, element("div", {}, `unit ${u.unit}`),
      element("div", { class: "muted" }, `${u.activation.toFixed(2)} × ${u.weight.toFixed(2)} = ${u.push.toFixed(2)}`));
    return figure;
  }));
}
