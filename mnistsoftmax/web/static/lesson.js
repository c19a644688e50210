// A lesson for a class: the page's views in the order the story is told, from an untrained net's
// 10 % on every class to a confident answer. Each step brings its view into place, says in a few
// sentences what to see there with this digit's own numbers, and gives one thing to do, which the
// page notices (lesson-task's data-done). Next and back by the buttons, or "." and "," anywhere
// outside a field; #lesson-N in the address opens step N (a teacher sends a class to one step).
import { batchMedians } from "./batch.js";
import { $, element, viewNumber } from "./common.js";
import { number as num } from "./draw.js";

const pct = (p) => `${(100 * p).toFixed(p > 0.999 || p < 0.001 ? 3 : 1)} %`;

function labelOf(r) {
  return r.label ?? r.digit;
}

function lastIndex(r) {
  return r.timeline ? r.timeline.steps.length - 1 : null;
}

// Each step: the view it brings into place, its title, what to see (from the answer shown), and
// one thing to do with the test that says it is done (answer, page) -> boolean.
export const STEPS = [
  {
    view: "input-view", title: "A digit and the net's answer",
    say: (r, names) => `The net reads your digit and answers ${names[r.digit]} with p = ${pct(r.probabilities[r.digit])}: ` +
      "softmax has turned its ten outputs into ten probabilities that add up to 1.",
    task: "Draw a digit, upload one, or pick one of MNIST's test digits.",
    done: (r) => r !== null,
  },
  {
    view: "batch-view", title: "A batch of digits, untrained and trained",
    say: (r) => {
      if (!r.batch) return "The batch is MNIST's digits, and this checkpoint was trained on other images.";
      const m = batchMedians(r.batch), when = r.batch.step === null ? "the trained weights" : `step ${r.batch.step}`;
      return `Under ${when} the right class's median logit is ${num(m.rightLogit)}, the others' ${num(m.otherLogit)}; ` +
        `its median probability ${pct(m.rightP)}. An untrained net gives every class a logit near 0 and about ` +
        "10 %: training pulls the right class's box up and pushes the others down.";
    },
    task: "Drag the timeline (in the bar at the top) to step 0, the untrained weights.",
    done: (r) => Boolean(r.timeline) && r.timeline.index === 0,
  },
  {
    view: "math-view", title: "Logits, exp and softmax",
    say: (r, names) => {
      const y = labelOf(r), m = Math.max(...r.logits);
      return `z are the logits: z${names[y]} = ${num(r.logits[y])}, the largest ${num(m)}. Each e^(z − max z) is ` +
        "at most 1, and dividing by their sum Σ gives softmax: " +
        `σ(z)${names[y]} = ${pct(r.probabilities[y])}.`;
    },
    task: "Choose this digit's true label (in the bar at the top).",
    done: (r) => r.label !== null && r.label !== undefined,
  },
  {
    view: "math-view", title: "The log, and −log p, the loss",
    say: (r, names) => (r.label === null || r.label === undefined ? "Choose the true label first." :
      `log σ(z)${names[r.label]} = ${num(r.log_softmax[r.label])}, so the loss is −log p = ${num(r.loss)}: ` +
      "0 for a sure right answer, large for a sure wrong one, ln 10 = 2.303 for a uniform guess."),
    task: "Move the timeline back to the end of the run (the trained weights).",
    done: (r) => Boolean(r.timeline) && r.timeline.index === lastIndex(r),
  },
  {
    view: "timeline-view", title: "−log p from ln 10 toward 0",
    say: (r) => (r.timeline
      ? `Before any training (step 0) this digit's loss was ${num(r.timeline.loss[0])}, within a hair of ln 10 = 2.303: ` +
        "the untrained net puts about 10 % on every class, and −ln 0.1 = ln 10. At the end of the run it is " +
        `${num(r.timeline.loss[lastIndex(r)])}, on its way to −ln 1 = 0.`
      : "This checkpoint kept no snapshots: train one with snapshots to follow the loss from ln 10."),
    task: "Drag the timeline to a step in the middle of the run.",
    done: (r) => Boolean(r.timeline) && r.timeline.index > 0 && r.timeline.index < lastIndex(r),
  },
  {
    view: "playground-view", title: "The logit playground: the worked table",
    say: () => "Each logit is a slider. The preset [3, 4, 1] is the worked example: softmax gives 0.259, 0.705 and " +
      "0.035; raising one logit takes probability from all the others, because they share one sum.",
    task: "Press the preset [3, 4, 1], then drag z0 until p0 is above 90 %.",
    done: (r, page) => page.playedProbability(0) > 0.9,
  },
  {
    view: "temperature-view", title: "Temperature",
    say: (r, names) => `softmax(z / T): at T = 1 the net's own answer (${pct(r.probabilities[r.digit])} on ` +
      `${names[r.digit]}); T above 1 flattens it toward 10 % each, T below 1 sharpens it. The order never changes.`,
    task: "Set T = 5.",
    done: () => Number($("temperature-input").value) === 5,
  },
  {
    view: "math-view", title: "The gradient: p − onehot",
    say: (r, names) => (r.label === null || r.label === undefined ? "Choose the true label first." :
      `The gradient of the loss with respect to the logits is σ(z) − onehot(y), the table's last column: ` +
      `${num(r.gradient[r.label])} for ${names[r.label]} (p − 1), and p itself for every other class. ` +
      "Untrained, the label's is near −0.9 and every other near +0.1; trained, all of them near 0."),
    task: "Drag the timeline to step 0 and read the gradient there.",
    done: (r) => Boolean(r.timeline) && r.timeline.index === 0,
  },
  {
    view: "jacobian-view", title: "The softmax Jacobian",
    say: (r, names) => {
      const y = labelOf(r), p = r.probabilities[y];
      return `∂S${names[y]}/∂z${names[y]} = S(1 − S) = ${num(p * (1 - p))}: near 0 when the net is sure. The chain ` +
        "rule through this matrix collapses to σ(z) − onehot(y). One layer down, the output layer's own " +
        `Jacobian is drawn in view ${viewNumber("step-view")}: a T × NT matrix, zero outside its diagonal blocks.`;
    },
    task: "Press Tab to reach the matrix, then move along a row with the arrow keys.",
    done: () => $("jacobian").contains(document.activeElement),
  },
  {
    view: "hinge-view", title: "The hinge beside cross entropy",
    say: (r) => (r.lab && r.lab.hinge
      ? `The hinge loss is ${num(r.lab.hinge.loss)}: once every other logit is 1 below the label's it stops pushing; ` +
        `cross entropy's loss here is ${num(r.loss)} and keeps pushing p toward 1.`
      : "Choose the true label first: the hinge compares every score with the label's."),
    task: "Drag the timeline back to the end of the run: does any class still violate the margin?",
    done: (r) => Boolean(r.timeline) && r.timeline.index === lastIndex(r),
  },
  {
    view: "decay-view", title: "Weight decay: a term for the weights",
    say: (r) => {
      const squared = r.squared_weights, t = r.timeline;
      if (!squared) return "";
      const at = t ? squared.through[t.index] : squared.trained;
      return `The sum of the squared weights is ${num(at)} here. Weight decay adds reg × ΣW² to the loss, and its ` +
        "gradient 2 × reg × W shrinks every weight a little at each step: the net keeps only the weights the " +
        "digits pay for.";
    },
    task: "Set reg to 1e−2 or more and compare the term with this digit's loss.",
    done: () => Number($("decay-reg").value) >= 4,
  },
  {
    view: "step-view", title: "One SGD step",
    say: (r, names) => (r.lab && r.lab.step
      ? `One step on this digit alone, W ← W − lr ∇L: its loss goes from ${num(r.lab.step.loss_before)} to ` +
        `${num(r.lab.step.loss_after)} at lr ${num(r.lab.step.lr)}. The images are the first layer's gradient.`
      : "Choose the true label first: a step needs the loss of a label."),
    task: "Set the step's learning rate to 1 and see the loss after the step.",
    done: () => Number($("step-lr").value) === 1,
  },
  {
    view: "soft-view", title: "Soft targets",
    say: () => "Against a soft target (label smoothing's) the loss bottoms out at the target's entropy, not 0: the " +
      "net is asked for less than certainty.",
    task: "Set ε to 0.2.",
    done: () => Number($("soft-epsilon").value) === 0.2,
  },
  {
    view: "second-view", title: "Another checkpoint: the same digit, another net",
    say: (r, names) => `Under this checkpoint ${names[r.digit]} gets ${pct(r.probabilities[r.digit])}. A second ` +
      "checkpoint beside it shows what the model, the loss or label smoothing change: a linear net is less " +
      "sure, the hinge's scores were never trained as probabilities, smoothing stops short of 100 %.",
    task: "Choose a second checkpoint (where the server has more than one).",
    done: () => $("compare-checkpoint").value !== "" || $("second-view").hidden,
  },
];

let index = -1; // the step shown; -1: the lesson is closed
let last = null; // the answer shown, for the sentences and the tasks
let names = [...Array(10).keys()].map(String);
let playedProbability = () => 0;

function render() {
  const panel = $("lesson-panel");
  panel.hidden = index < 0;
  $("lesson").setAttribute("aria-expanded", String(index >= 0));
  if (index < 0) return;
  const step = STEPS[index];
  const where = viewNumber(step.view);
  $("lesson-step").dataset.index = String(index + 1);
  $("lesson-step").dataset.count = String(STEPS.length);
  $("lesson-step").textContent = `Step ${index + 1} of ${STEPS.length}: ${step.title}` + (where ? ` (view ${where})` : "");
  $("lesson-text").textContent = last ? step.say(last, names) : "Draw, upload or pick a digit to begin.";
  const done = last !== null && Boolean(step.done(last, { playedProbability }));
  $("lesson-task").textContent = `${done ? "✓ done: " : "To do: "}${step.task}`;
  $("lesson-task").dataset.done = String(done);
  $("lesson-back").disabled = index === 0;
  $("lesson-next").disabled = index === STEPS.length - 1;
}

export function goTo(n) {
  index = Math.max(0, Math.min(STEPS.length - 1, n));
  address(`#lesson-${index + 1}`);
  render();
  placeView();
}

// The step's view brought to just below the bar, which has grown by the lesson's panel.
function placeView() {
  const bar = $("controls");
  document.documentElement.style.setProperty("--bar", `${bar.offsetHeight}px`);
  const view = $(STEPS[index].view);
  if (view && !view.hidden) view.scrollIntoView({ block: "start" });
}

// The step in the address, for a teacher to send; a page in a notebook's frame (about:srcdoc) may
// refuse it, and the lesson goes on without.
function address(hash) {
  try {
    if (location.hash !== hash) history.replaceState(null, "", hash || location.pathname + location.search);
  } catch {
    // nothing: the address is a convenience
  }
}

function close() {
  index = -1;
  address("");
  render();
}

// The answer every view has just drawn: the sentences and the task follow it.
export function showLesson(result, classNames) {
  const first = last === null;
  last = result;
  names = classNames;
  if (index < 0) return;
  render();
  // The first digit fills the views above the step's, which pushes it down: it is put back in
  // place once (later answers leave the page where the learner has scrolled it).
  if (first) placeView();
}

function fromAddress() {
  const found = /^#lesson-(\d+)$/.exec(location.hash);
  if (found) goTo(Number(found[1]) - 1);
}

export function wireLesson(played) {
  playedProbability = played;
  $("lesson").addEventListener("click", () => (index < 0 ? goTo(0) : close()));
  $("lesson-next").addEventListener("click", () => goTo(index + 1));
  $("lesson-back").addEventListener("click", () => goTo(index - 1));
  document.addEventListener("keydown", (e) => {
    const typing = e.target.closest && e.target.closest("input, select, textarea, [role=grid]");
    if (index < 0 || typing || e.ctrlKey || e.metaKey || e.altKey) return;
    if (e.key === ".") { e.preventDefault(); goTo(index + 1); }
    if (e.key === ",") { e.preventDefault(); goTo(index - 1); }
  });
  // A task done by hand (a slider, a field) without a new answer is noticed too.
  document.addEventListener("input", () => index >= 0 && render());
  document.addEventListener("click", () => index >= 0 && setTimeout(render, 0));
  $("jacobian").addEventListener("focusin", () => index >= 0 && render());
  window.addEventListener("hashchange", fromAddress);
  fromAddress();
}
