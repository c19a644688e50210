// The training view: a form of train's options, the runs of the runs folder, and one run watched
// live through its Server-Sent Events (one metrics record each). Hooks for automation:
// body[data-ready], body[data-run-status] of the watched run, data-testid on fields and buttons.
import { boxPlots, boxText, chartScale, lossChart, lossText, marginChart, marginText } from "./charts.js";
import { $, call, element, showError } from "./common.js";
import { decodeImages, weightImage } from "./draw.js";

// At most one redraw a second, of the views whose records changed: the page shares the machine's
// cores with the training it shows (measured in scripts/bench_watch.py).
const REDRAW_MS = 1000;

let runs = [];
let watched = null; // {id, source: EventSource, records state}
let compared = null; // another run's records, drawn beside the watched one's
let pending = false;
let defaults = {}; // option key -> its default, from /api/train/options: what a run that does not say ran with

// ---- the form, from train's own options (names, defaults, choices)
async function buildForm() {
  const described = await call("GET", "/api/train/options");
  defaults = Object.fromEntries(described.map((o) => [o.key, o.default]));
  const form = $("options");
  const groups = new Map();
  for (const option of described) {
    if (!groups.has(option.group)) {
      const fieldset = element("fieldset", { "data-group": option.group });
      fieldset.append(element("legend", {}, option.group));
      groups.set(option.group, fieldset);
      form.append(fieldset);
    }
    // Each field inside its label: its name is the option's key, its description the option's help.
    const label = element("label", {}, option.key);
    label.append(field(option));
    groups.get(option.group).append(label);
  }
}

// One option's input: a checkbox, a select of its choices, or a text or number field whose
// placeholder is its default.
function field(option) {
  let input;
  if (option.kind === "bool") {
    input = element("input", { type: "checkbox" });
    input.checked = Boolean(option.default);
  } else if (option.kind === "choice") {
    input = element("select");
    for (const c of option.choices) input.append(new Option(c, c));
    if (option.default !== null) input.value = option.default;
  } else {
    const numeric = option.kind === "int" || option.kind === "float";
    input = element("input", { type: numeric ? "number" : "text" });
    if (numeric) input.step = option.kind === "int" ? "1" : "any";
    input.placeholder = option.default === null ? (option.kind === "path" ? "the cache" : "default")
      : String(option.default);
  }
  input.dataset.testid = `opt-${option.key}`;
  input.name = option.key;
  input.title = option.help || "";
  if (option.help) input.setAttribute("aria-description", option.help);
  return input;
}

function formOptions() {
  const options = {};
  for (const input of $("options").elements) {
    if (!input.name) continue; // the fieldsets
    if (input.type === "checkbox") {
      if (input.checked) options[input.name] = true;
      continue;
    }
    const value = input.value.trim();
    if (value === "") continue;
    options[input.name] = input.type === "number" && !Number.isNaN(Number(value)) ? Number(value) : value;
  }
  return options;
}

// ---- the runs list
async function refreshRuns() {
  try {
    runs = await call("GET", "/api/runs");
  } catch (err) {
    showError(`cannot list the runs: ${err.message}`);
    return;
  }
  const body = $("runs").tBodies[0];
  body.replaceChildren();
  for (const run of runs) {
    const o = run.options || {};
    const row = element("tr", { "data-run": run.id, class: watched && watched.id === run.id ? "watched" : "" });
    const model = run.description || "";
    const accuracy = run.accuracy === null || run.accuracy === undefined ? "" : `${(100 * run.accuracy).toFixed(2)} %`;
    for (const text of [run.id, run.status, model, o.epochs ?? "", accuracy]) row.append(element("td", {}, String(text)));
    if (run.error) row.title = run.error;
    // A row opens its run with a click, or from the keyboard: Tab to it, Enter or Space.
    row.tabIndex = 0;
    row.setAttribute("aria-label", `watch run ${run.id}, ${run.status}${accuracy ? `, ${accuracy}` : ""}`);
    row.addEventListener("click", () => watch(run.id));
    row.addEventListener("keydown", (e) => {
      if (e.key === "Enter" || e.key === " ") { e.preventDefault(); watch(run.id); }
    });
    body.append(row);
  }
  updateButtons();
  fillCompare();
}

function fillCompare() {
  const picker = $("compare"), chosen = picker.value;
  picker.replaceChildren(new Option("none", ""));
  for (const run of runs) {
    if (!watched || run.id !== watched.id) picker.append(new Option(`${run.id} · ${run.options?.loss ?? ""}`, run.id));
  }
  picker.value = [...picker.options].some((o) => o.value === chosen) ? chosen : "";
}

// A run's records into a state of its own (the watched run's events are not disturbed).
function follow(id) {
  const state = freshState(id);
  state.source = new EventSource(`/api/runs/${encodeURIComponent(id)}/events`);
  state.source.onmessage = (event) => { take(state, JSON.parse(event.data)); schedule(); };
  state.source.onerror = () => { if (state.ending || state.test) state.source.close(); };
  return state;
}

function watchedRun() {
  return watched ? runs.find((r) => r.id === watched.id) : undefined;
}

function updateButtons() {
  const run = watchedRun();
  const busy = runs.some((r) => r.from_page && r.status === "running");
  $("train-start").disabled = busy;
  $("train-stop").disabled = !(run && run.from_page && run.status === "running");
  $("train-resume").disabled = busy || !(run && run.status === "stopped");
  document.body.dataset.runStatus = run ? run.status : "";
}

// ---- one run, watched
function freshState(id) {
  $("weights-caption").textContent = "";
  return { id, steps: [], epochs: [], probes: [], weights: null, init: null, test: null, ending: null, source: null,
    dirty: new Set(["loss", "probe", "weights"]) };
}

function watch(id) {
  if (watched && watched.source) watched.source.close();
  watched = freshState(id);
  $("watched").textContent = `· ${id}`;
  $("run-accuracy").textContent = "–";
  delete $("run-accuracy").dataset.value;
  $("probe-slider").dataset.follow = "true";
  const source = new EventSource(`/api/runs/${encodeURIComponent(id)}/events`);
  watched.source = source;
  const state = watched;
  source.onmessage = (event) => {
    if (watched !== state) return;
    take(state, JSON.parse(event.data));
    schedule();
  };
  source.onerror = () => {
    // The server ended the stream after the last record, or went away: no automatic replay.
    if (state.ending || state.test) source.close();
  };
  refreshRuns();
  schedule();
}

const VIEW_OF = { init: "loss", step: "loss", epoch: "loss", test: "loss", probe: "probe", weights: "weights" };

function take(state, record) {
  if (VIEW_OF[record.type]) state.dirty.add(VIEW_OF[record.type]);
  switch (record.type) {
    case "init": state.init = record; break;
    case "step": state.steps.push(record); break;
    case "epoch": state.epochs.push(record); break;
    case "probe":
      state.probes.push(record);
      break;
    case "weights": state.weights = record; break;
    case "test": state.test = record; state.source.close(); refreshRuns(); break;
    case "stopped": case "error": state.ending = record; state.source.close(); refreshRuns(); break;
  }
}

let lastDrawn = 0;

function schedule() {
  if (pending) return;
  pending = true;
  const wait = Math.max(0, lastDrawn + REDRAW_MS - performance.now());
  setTimeout(() => requestAnimationFrame(() => { pending = false; lastDrawn = performance.now(); render(); }), wait);
}

function classNames() {
  return (watched && watched.init && watched.init.class_names) || [...Array(10).keys()].map(String);
}

function sideRun(s) {
  const config = (s.init && s.init.config) || {};
  return { steps: s.steps, probes: s.probes, totalSteps: s.init ? s.init.steps_per_epoch * config.epochs : 0 };
}

function renderSide(root, s, scale) {
  const q = (cls) => root.querySelector(cls);
  if (!s) {
    for (const cls of [".side-loss", ".side-margin", ".side-logits", ".side-loss-caption", ".side-margin-caption"]) {
      q(cls).replaceChildren();
    }
    q(".side-title").textContent = "";
    q(".side-summary").textContent = "";
    return;
  }
  const config = (s.init && s.init.config) || {};
  q(".side-title").textContent = `${s.id} · ${config.loss ?? defaults.loss ?? ""}`;
  const last = s.probes[s.probes.length - 1];
  const accuracy = s.test ? `test accuracy ${(100 * s.test.accuracy).toFixed(2)} %` : "running";
  const margin = last && last.margin ? `, median margin ${last.margin.median.toFixed(2)} at step ${last.step}` : "";
  q(".side-summary").textContent = accuracy + margin;
  lossChart(q(".side-loss"), { steps: s.steps, epochs: s.epochs, totalSteps: sideRun(s).totalSteps, scale });
  marginChart(q(".side-margin"), s.probes, scale);
  lossText(q(".side-loss-caption"), s.steps, s.epochs);
  marginText(q(".side-margin-caption"), s.probes);
  if (last) {
    boxPlots(q(".side-logits"), last.logits, last.classes, classNames(), logitAxis(last));
  }
}

function renderCompare() {
  const both = compared && watched ? [watched, compared] : [null, null];
  // Nothing compared: no two empty columns. Two runs: the same axes, so their curves compare.
  $("sides").hidden = !both[0];
  const scale = both[0] ? chartScale(both.map(sideRun)) : null;
  both.forEach((s, i) => renderSide(document.querySelector(`[data-testid="side-${i}"]`), s, scale));
}

function render() {
  renderCompare();
  if (!watched) return;
  const s = watched;
  const config = (s.init && s.init.config) || {};
  const totalSteps = s.init ? s.init.steps_per_epoch * config.epochs : 0;
  if (s.dirty.has("loss")) {
    lossChart($("loss-chart"), { steps: s.steps, epochs: s.epochs, totalSteps });
    lossText($("loss-caption"), s.steps, s.epochs);
    renderEpochs(s);
  }
  if (s.dirty.has("probe")) renderProbe(s);
  if (s.dirty.has("weights")) renderWeights(s);
  s.dirty.clear();
  if (s.test) {
    $("run-accuracy").textContent = `${(100 * s.test.accuracy).toFixed(2)} %`;
    $("run-accuracy").dataset.value = String(s.test.accuracy);
  }
  let state = "";
  if (s.ending && s.ending.type === "stopped") state = "stopped: resume continues it bit for bit";
  else if (s.ending) state = `failed: ${s.ending.error}`;
  else if (!s.test && s.init) {
    const last = s.steps.length ? s.steps[s.steps.length - 1] : null;
    state = last ? `step ${last.step} of ${totalSteps}, loss ${last.loss.toFixed(4)}` : "starting";
  } else if (!s.init) state = "waiting for the run's first records (loading its data)";
  $("run-state").textContent = state; // a failed run's error is said here, once
}

function renderEpochs(s) {
  const body = $("epochs").tBodies[0];
  body.replaceChildren();
  const pct = (v) => (v === undefined ? "" : `${(100 * v).toFixed(2)} %`);
  for (const e of s.epochs) {
    const cells = [e.epoch, pct(e.train_accuracy), pct(e.val_accuracy),
      e.val_loss === undefined ? "" : e.val_loss.toFixed(4), e.seconds.toFixed(1)];
    const row = element("tr");
    for (const c of cells) row.append(element("td", {}, String(c)));
    body.append(row);
  }
}

function renderProbe(s) {
  const slider = $("probe-slider");
  if (!s.probes.length) {
    $("softmax-boxes").replaceChildren();
    $("logit-boxes").replaceChildren();
    $("probe-caption").textContent = "";
    $("probe-text").textContent = "";
    $("probe-table").replaceChildren();
    slider.disabled = true;
    return;
  }
  slider.disabled = false;
  slider.max = String(s.probes.length - 1);
  if (slider.dataset.follow === "true") slider.value = slider.max;
  const p = s.probes[Number(slider.value)];
  slider.setAttribute("aria-valuetext", `probe ${Number(slider.value) + 1} of ${s.probes.length}, at step ${p.step}`);
  $("probe-live").textContent = slider.dataset.follow === "true" ? "live" : "";
  $("probe-caption").textContent =
    `· step ${p.step} (epoch ${p.epoch}): loss ${p.loss.toFixed(4)}, accuracy ${(100 * p.accuracy).toFixed(1)} % ` +
    `on ${p.images} probe images`;
  const names = classNames();
  boxPlots($("softmax-boxes"), p.softmax, p.classes, names, { low: 0, high: 1, format: (v) => v.toFixed(1) });
  boxPlots($("logit-boxes"), p.logits, p.classes, names, logitAxis(p));
  boxText($("probe-text"), $("probe-table"), p, names, `At step ${p.step}, over the ${p.images} probe images`);
}

// A probe's logits on their own axis (its ticks say which): in the frame of the end of training the
// untrained net's logits, all within a unit or two of 0, would look flat.
function logitAxis(probe) {
  const low = Math.min(...probe.logits.min.flat()), high = Math.max(...probe.logits.max.flat());
  const span = Math.max(high - low, 0.5), digits = span < 5 ? 1 : 0;
  return { low: low - 0.05 * span, high: high + 0.05 * span, format: (v) => v.toFixed(digits) };
}

function renderWeights(s) {
  const w = s.weights;
  const root = $("weights");
  if (!w) { root.replaceChildren(); $("weights-caption").textContent = ""; return; }
  $("weights-caption").textContent = w.epoch === 1 && w.step === 0 ? "· at the start" : `· after epoch ${w.epoch}`;
  const images = decodeImages(w.images, w.side);
  root.replaceChildren();
  w.units.forEach((unit, k) => {
    const rows = images[k];
    const canvas = element("canvas");
    weightImage(canvas, rows);
    const figure = element("div", { class: "unit" });
    // The record says what each image is: a class's template, or a hidden unit.
    const label = w.caption === "class" ? `class ${classNames()[unit]}` : `${w.caption || "unit"} ${unit}`;
    figure.append(canvas, element("div", {}, label));
    root.append(figure);
  });
}

// ---- buttons
$("train-start").addEventListener("click", async () => {
  showError("");
  try {
    const { id } = await call("POST", "/api/runs", formOptions());
    await refreshRuns();
    watch(id);
  } catch (err) {
    showError(err.message);
  }
});
$("train-stop").addEventListener("click", async () => {
  try {
    await call("POST", `/api/runs/${encodeURIComponent(watched.id)}/stop`, {});
    $("train-stop").disabled = true;
  } catch (err) {
    showError(err.message);
  }
});
$("train-resume").addEventListener("click", async () => {
  showError("");
  try {
    const { id } = await call("POST", "/api/runs", { resume: watched.id });
    await refreshRuns();
    watch(id);
  } catch (err) {
    showError(err.message);
  }
});
$("compare").addEventListener("change", (e) => {
  if (compared && compared.source) compared.source.close();
  compared = e.target.value ? follow(e.target.value) : null;
  schedule();
});
$("probe-slider").addEventListener("input", (e) => {
  e.target.dataset.follow = String(e.target.value === e.target.max);
  if (watched) renderProbe(watched);
});

// The two columns of the side-by-side view, from one template.
for (const k of [0, 1]) {
  const side = $("side-template").content.firstElementChild.cloneNode(true);
  side.dataset.testid = `side-${k}`;
  $("sides").append(side);
}

async function start() {
  try {
    await buildForm();
  } catch (err) {
    showError(`cannot read train's options: ${err.message}`);
    return;
  }
  await refreshRuns();
  const first = runs.find((r) => r.status === "running") || runs[0];
  if (first) watch(first.id);
  setInterval(refreshRuns, 5000); // runs started elsewhere appear within seconds; the watched one reports its own end
  document.body.dataset.ready = "true";
}
start();
