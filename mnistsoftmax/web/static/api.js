// Where the draw page's answers come from: the page's engine (local.js), computed in the browser
// from a checkpoint's weights. In a page exported by `mnistsoftmax export --format html` they are
// inside the file; a served page lists the checkpoints with GET /api/checkpoints and fetches a
// checkpoint's weights once, with GET /api/model, when it is first chosen. No move of the timeline,
// the label or a lab control sends a request. (Programs ask POST /api/predict for the same numbers,
// computed in Python.)
import { answer, call } from "./common.js";
import { BATCH } from "./examples.js";
import { engine } from "./local.js";

const inside = document.getElementById("mnistsoftmax-model");
const exported = inside ? engine(JSON.parse(inside.textContent)) : null;

let listed = new Map(); // name -> the listing's entry, for its stamp
const engines = new Map(); // name -> {stamp, engine: a promise}

export async function listCheckpoints() {
  if (exported) return [exported.entry];
  const entries = await call("GET", "/api/checkpoints");
  listed = new Map(entries.map((entry) => [entry.name, entry]));
  return entries;
}

// Back on the page (another tab trained a run, say): the files' versions are read again, so that
// the next answer of a checkpoint written since fetches its new weights. No request otherwise.
if (!exported) {
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") listCheckpoints().catch(() => {});
  });
}

// The engine of the checkpoint of that name (the first listed for none), its weights fetched once
// for each version of its file.
function engineFor(name) {
  if (exported) return Promise.resolve(exported);
  const chosen = name || listed.keys().next().value;
  const stamp = listed.get(chosen)?.stamp ?? "";
  const known = engines.get(chosen);
  if (known && known.stamp === stamp) return known.engine;
  const query = new URLSearchParams(chosen ? { checkpoint: chosen } : {});
  const made = fetch(`/api/model?${query}`).then(answer).then(engine);
  made.catch(() => engines.delete(chosen)); // a failure is not kept: the next answer asks again
  engines.set(chosen, { stamp, engine: made });
  return made;
}

// The digit an exported page opens with ({image, label}), or null (a served page opens blank).
export async function initialDigit() {
  return exported ? exported.initialDigit() : null;
}

// image: a Blob or File holding an image file (or a drawn digit); the answer POST /api/predict
// gives for it, with its timeline.
export async function predict(image, { checkpoint, label, lr, snapshot }) {
  const page = await engineFor(checkpoint);
  return withBatch(page, await page.predict(image, { label, lr, snapshot }));
}

// Beside the digit's answer: the batch of MNIST test digits under the same weights (for a net of
// MNIST's digits: another data set's classes are not these), and the squared weights' sum.
let batchPixels = null;
function withBatch(page, result) {
  const entry = page.entry, index = result.timeline ? result.timeline.index : null;
  if (entry.dataset === "mnist" && entry.class_names.length === 10) {
    batchPixels = batchPixels || Uint8Array.from(atob(BATCH.pixels), (c) => c.charCodeAt(0));
    result.batch = page.batch(batchPixels, [...Array(10).keys()], BATCH.perClass, index);
  }
  result.squared_weights = page.squaredWeights();
  return result;
}
