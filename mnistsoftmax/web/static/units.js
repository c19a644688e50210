// View 5: for an mlp, how many units of its last hidden layer fire, and those pushing the predicted
// class most, each with the picture of what it responds to.
import { element } from "./common.js";
import { decodeImages, weightImage } from "./draw.js";

export function showUnits(result, classNames) {
  const view = document.getElementById("units-view");
  view.hidden = !result.hidden;
  if (!result.hidden) return;
  const { active, total, units, layer, hidden_layers: depth, activation, fires } = result.hidden;
  const which = depth > 1 ? `units of hidden layer ${layer} (the last of ${depth})` : "hidden units";
  const pictures = depth > 1
    ? "each with its weights carried down to the pixels through the layers below, as this digit sets them"
    : "with their first-layer weights";
  document.getElementById("units-summary").textContent =
    `${active} of ${total} ${which} fire (${activation} ${fires}). The ${units.length} that push ` +
    `“${classNames[result.digit]}” most, by activation × outgoing weight, ${pictures} ` +
    `(red: a brighter pixel there excites the unit, blue: inhibits it):`;
  const container = document.getElementById("units");
  const images = decodeImages(result.hidden.images, result.hidden.side);
  container.replaceChildren(...units.map((u, i) => {
    const figure = element("div", { class: "unit" });
    const canvas = element("canvas");
    weightImage(canvas, images[i]);
    figure.append(canvas, element("div", {}, `unit ${u.unit}`),
      element("div", { class: "muted" }, `${u.activation.toFixed(2)} × ${u.weight.toFixed(2)} = ${u.push.toFixed(2)}`));
    return figure;
  }));
}
