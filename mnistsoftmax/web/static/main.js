// The page: wires the pad and the upload to the API and hands each answer to the views.
import { initialDigit, listCheckpoints, predict } from "./api.js";
import { $, showError } from "./common.js";
import { markChosen, number, probabilityBars, wireChoosing } from "./draw.js";
import { Pad } from "./pad.js";
import { playedProbabilities, wireLab } from "./lab.js";
import { showLesson, wireLesson } from "./lesson.js";
import { wireDerivations } from "./derivations.js";
import { renderAll } from "./tex.js";
import { showReliability } from "./reliability.js";
import { prepareTimeline, wireTimeline } from "./timeline.js";
import { drawViews, numberViews } from "./views.js";
import { setDecayFromRun, wireDecay } from "./decay.js";
import { fillSecond, wireSecond } from "./second.js";
import { EXAMPLES } from "./examples.js";

let checkpoints = [];
let source = null; // what to classify: () => Promise<Blob | null>
let inFlight = false, again = false;
let picking = 0; // picked test digits whose image is still being made: busy until the last is asked
let snapshot = null; // the timeline's index; null: the checkpoint's own (trained) weights

function classNames() {
  const entry = checkpoints.find((c) => c.name === $("checkpoint").value);
  return entry ? entry.class_names : [...Array(10).keys()].map(String);
}

function checkpoint() {
  return checkpoints.find((c) => c.name === $("checkpoint").value);
}

let lastResult = null; // the answer shown, drawn again when the type size changes

function show(result) {
  lastResult = result;
  const names = classNames();
  $("prediction").textContent = names[result.digit];
  // The temperature was fitted to the trained weights: an earlier snapshot's answer has none.
  $("calibrated-switch").hidden = result.calibrated === undefined;
  // Temperature scaling changes the confidences, never the digit.
  const shown = $("calibrated").checked && result.calibrated ? result.calibrated : result.probabilities;
  probabilityBars($("probabilities"), shown, names, { testids: true, highlight: result.digit });
  $("loss").textContent = result.loss === undefined ? "–" : number(result.loss);
  drawViews(result, names, checkpoint());
  showLesson(result, names);
  const t = result.timeline;
  $("reliability-snapshot").hidden = !t || t.index === t.steps.length - 1;
  markChosen();
}

function reset() {
  $("prediction").textContent = "–";
  $("loss").textContent = "–";
  probabilityBars($("probabilities"), Array(10).fill(0), classNames(), { testids: true });
}

// One request at a time; a change made meanwhile is sent when the answer comes (latest wins).
// body[data-busy] and body[data-answers] let automation wait for the page to settle.
async function update() {
  document.body.dataset.busy = "true";
  if (inFlight) { again = true; return; }
  inFlight = true;
  try {
    const image = source ? await source() : null;
    if (!image) { reset(); showError(""); return; }
    const result = await predict(image, { checkpoint: $("checkpoint").value, label: $("label").value,
      lr: $("step-lr").value, snapshot });
    showError("");
    const drawn = performance.now();
    show(result);
    // How long the views take to draw an answer (scripts/bench_lab.py reads it).
    document.body.dataset.renderMs = String(performance.now() - drawn);
    document.body.dataset.answers = String(Number(document.body.dataset.answers || 0) + 1);
  } catch (err) {
    showError(err.message);
  } finally {
    inFlight = false;
    if (again) { again = false; update(); } else if (!picking) document.body.dataset.busy = "false";
  }
}

function useFile(file) {
  source = () => Promise.resolve(file);
  pad.showFile(file);
  update();
}

const pad = new Pad($("pad"), {
  onChange: () => { source = () => pad.image(); update(); },
  onFile: useFile,
});
$("clear").addEventListener("click", () => { $("upload").value = ""; pad.clear(); });
$("upload").addEventListener("change", (e) => { if (e.target.files[0]) useFile(e.target.files[0]); });
$("pick-digit").addEventListener("change", async (e) => {
  if (e.target.value === "") return;
  const example = EXAMPLES[Number(e.target.value)];
  $("label").value = String(example.label); // its true class is known: the loss follows it
  picking++;
  document.body.dataset.busy = "true";
  try {
    useFile(await examplePNG(example));
  } finally {
    picking--;
  }
});

// An MNIST test digit as a user's file would be: 280 x 280, dark ink on white, a PNG.
async function examplePNG(example) {
  const bytes = Uint8Array.from(atob(example.pixels), (c) => c.charCodeAt(0));
  const small = document.createElement("canvas");
  small.width = small.height = 28;
  const image = small.getContext("2d").createImageData(28, 28);
  bytes.forEach((v, i) => { image.data.set([255 - v, 255 - v, 255 - v, 255], 4 * i); });
  small.getContext("2d").putImageData(image, 0, 0);
  const big = document.createElement("canvas");
  big.width = big.height = 280;
  big.getContext("2d").drawImage(small, 0, 0, 280, 280);
  const blob = await new Promise((resolve) => big.toBlob(resolve, "image/png"));
  return new File([blob], `mnist-test-${example.index}.png`, { type: "image/png" });
}
$("label").addEventListener("change", update);
numberViews($("toc"));
$("toc").addEventListener("change", (e) => {
  const target = e.target.value && $(e.target.value);
  if (target && !target.hidden) target.scrollIntoView({ behavior: "smooth", block: "start" });
  e.target.value = "";
});
$("calibrated").addEventListener("change", update);
wireLab(update);
// "go to" scrolls a view's heading to just below the sticky bar, whose height changes as it wraps
// (128 px at 390 px wide): its height, kept in --bar for the sections' scroll-margin-top.
const bar = document.querySelector(".controls");
if (bar && window.ResizeObserver) {
  new ResizeObserver(() => document.documentElement.style.setProperty("--bar", `${bar.offsetHeight}px`)).observe(bar);
}
wireDerivations();
wireDecay();
wireChoosing();
wireLesson((c) => { const p = playedProbabilities(); return p ? p[c] : 0; });
wireLargeType();
renderAll();
wireTimeline((index) => { snapshot = index; update(); });
wireSecond(() => (source ? source() : Promise.resolve(null)), update);
$("checkpoint").addEventListener("change", () => {
  snapshot = null;
  describeCheckpoint();
  fillLabels();
  update();
});

// Projector mode: large type and one view a screen, kept across reloads (a page opened from disk
// or in a notebook's frame may have no storage: it then lasts until the page is closed).
function wireLargeType() {
  const KEY = "mnistsoftmax-large-type";
  const set = (on) => {
    document.body.classList.toggle("large-type", on);
    $("large-type").setAttribute("aria-pressed", String(on));
    try { localStorage.setItem(KEY, on ? "1" : "0"); } catch { /* no storage here */ }
  };
  let stored = null;
  try { stored = localStorage.getItem(KEY); } catch { /* no storage here */ }
  set(stored === "1");
  $("large-type").addEventListener("click", () => {
    set(!document.body.classList.contains("large-type"));
    // The charts that size themselves to their card draw again at the new size.
    if (lastResult) show(lastResult);
  });
}

function describeCheckpoint() {
  const c = checkpoint();
  fillSecond(checkpoints, $("checkpoint").value);
  showReliability(c);
  prepareTimeline(c);
  setDecayFromRun(c);
  if (!c) return;
  $("calibrated-switch").hidden = c.temperature === null || c.temperature === undefined;
  $("temperature").textContent = $("calibrated-switch").hidden ? "" : `T = ${c.temperature.toFixed(3)}`;
  $("outputs-note").hidden = c.outputs === "probabilities";
  $("outputs-note").textContent = `Trained with the ${c.loss} loss, this model gives ${c.outputs}: the bars are ` +
    "their softmax, which training never made probabilities.";
  const acc = c.accuracy === null || c.accuracy === undefined ? "" : `, test accuracy ${(100 * c.accuracy).toFixed(2)} %`;
  $("checkpoint-info").textContent = `${c.description}, ${c.dataset}${acc}`;
}

function fillLabels() {
  const picker = $("label"), chosen = picker.value;
  picker.replaceChildren(new Option("none", ""));
  classNames().forEach((name, c) => picker.append(new Option(name, String(c))));
  picker.value = chosen;
}

async function start() {
  try {
    checkpoints = await listCheckpoints();
  } catch (err) {
    showError(`cannot list the checkpoints: ${err.message}`);
    return;
  }
  if (!checkpoints.length) showError("No checkpoint yet: train one on the training view (watch it learn), then come back.");
  for (const c of checkpoints) $("checkpoint").append(new Option(c.name, c.name));
  describeCheckpoint();
  fillLabels();
  reset();
  const first = await initialDigit();
  if (first) {
    if (first.label !== null && first.label !== undefined) $("label").value = String(first.label);
    if (first.image) useFile(first.image);
  }
  document.body.dataset.ready = "true";
}
start();
