// The page's views, in the order the page shows them: the one list from which the numbers of their
// headings, the "go to" menu, references such as "(view 9)", a lesson's steps and the drawing of
// an answer all come. A view is one entry here (its section's id, its name in the menu, whether it
// is numbered, what draws it) and the module that draws it; index.html holds its section.
import { $, VIEW_NUMBERS, viewNumber } from "./common.js";
import { showBatch } from "./batch.js";
import { showCompare } from "./compare.js";
import { showDecay } from "./decay.js";
import { setDerivations, showLayerJacobian, showOverflow, showQuotientRule, showSoftTarget } from "./derivations.js";
import { setLab, showCurves, showHinge, showJacobian, showPlaygroundFor, showStep, showTemperature } from "./lab.js";
import { showMath } from "./mathview.js";
import { showSecond } from "./second.js";
import { showStages } from "./stages.js";
import { showTimeline } from "./timeline.js";
import { showUnits } from "./units.js";

// draw({ result, names, checkpoint }) draws an answer; views without one are drawn elsewhere (the
// pad, the prediction by main.js; calibration when a checkpoint is chosen).
export const VIEWS = [
  { id: "input-view", name: "your digit", numbered: true },
  { id: "timeline-view", name: "through training", numbered: false, draw: (a) => showTimeline(a.result, a.names) },
  { id: "stages-view", name: "into MNIST's form", numbered: true, draw: (a) => showStages(a.result) },
  { id: "math-view", name: "logits to loss", numbered: true,
    draw: (a) => { showMath($("math-table"), a.result, a.names); showOverflow(a.result, a.names); } },
  { id: "compare-view", name: "untrained, trained", numbered: true, draw: (a) => showCompare(a.result, a.names) },
  { id: "batch-view", name: "a batch", numbered: true, draw: (a) => showBatch(a.result, a.names) },
  { id: "units-view", name: "hidden units", numbered: true, draw: (a) => showUnits(a.result, a.names) },
  { id: "reliability-view", name: "calibration", numbered: true },
  { id: "curves-view", name: "the curves", numbered: true, draw: (a) => showCurves(a.result, a.names) },
  { id: "temperature-view", name: "temperature", numbered: true, draw: () => showTemperature() },
  { id: "playground-view", name: "playground", numbered: true, draw: (a) => showPlaygroundFor(a.result) },
  { id: "jacobian-view", name: "Jacobian", numbered: true,
    draw: (a) => { showQuotientRule(a.result, a.names); showJacobian(a.result, a.names); } },
  { id: "hinge-view", name: "hinge", numbered: true, draw: (a) => showHinge(a.result, a.names) },
  { id: "decay-view", name: "weight decay", numbered: true,
    draw: (a) => showDecay(a.result, a.checkpoint) },
  { id: "step-view", name: "one SGD step", numbered: true,
    draw: (a) => { showStep(a.result, a.names); showLayerJacobian(a.result, a.names, a.checkpoint); } },
  { id: "soft-view", name: "soft targets", numbered: true,
    draw: (a) => showSoftTarget(a.result, a.names, a.checkpoint) },
  { id: "second-view", name: "another checkpoint", numbered: true, draw: (a) => showSecond(a.result, a.names) },
];

// The number of each numbered view, 1 first, by its section's id.
VIEWS.filter((v) => v.numbered).forEach((v, i) => VIEW_NUMBERS.set(v.id, i + 1));

// Every view draws an answer, in the page's order (the lab's and the derivations' state first).
export function drawViews(result, names, checkpoint) {
  setLab(result, names, checkpoint);
  setDerivations(result, names, checkpoint);
  for (const view of VIEWS) if (view.draw) view.draw({ result, names, checkpoint });
}

// The page's numbers and menu from the list: each numbered heading's "N · ", each reference to a
// view's number (an element with data-view-number="ID", or a text with {ID} in data-view-text: an
// option holds no elements), and the "go to" menu's options.
export function numberViews(menu) {
  for (const view of VIEWS) {
    const heading = $(view.id) && $(view.id).querySelector("h2 .view-number");
    if (heading) heading.textContent = view.numbered ? `${viewNumber(view.id)} · ` : "";
  }
  for (const ref of document.querySelectorAll("[data-view-number]")) ref.textContent = String(viewNumber(ref.dataset.viewNumber));
  for (const ref of document.querySelectorAll("[data-view-text]")) {
    ref.textContent = ref.dataset.viewText.replace(/\{([a-z-]+)\}/g, (_, id) => String(viewNumber(id)));
  }
  for (const view of VIEWS) {
    const option = document.createElement("option");
    option.value = view.id;
    option.textContent = view.numbered ? `${viewNumber(view.id)} · ${view.name}` : view.name;
    menu.append(option);
  }
}
