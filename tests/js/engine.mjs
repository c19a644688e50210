// Runs the page's engine (static/local.js) outside a browser, for tests/test_engine.py: reads
// [document, cases, batch] as JSON on stdin (document: export.page_model's; each case {pixels: 784
// bytes in MNIST's form, label, lr, snapshot}; batch {pixels: N x 784 bytes, classes, k, indices})
// and writes {answers: each case's answer, batches: the batch under each index, squared} on stdout.
import { readFileSync } from "node:fs";

const STATIC = new URL("../../mnistsoftmax/web/static/", import.meta.url);
const { engine } = await import(new URL("local.js", STATIC));
const { DIGIT_TYPE } = await import(new URL("common.js", STATIC));

const [document, cases, batch] = JSON.parse(readFileSync(0, "utf8"));
const page = engine(document);
const answers = [];
for (const { pixels, label, lr, snapshot } of cases) {
  const image = new Blob([Uint8Array.from(pixels)], { type: DIGIT_TYPE });
  answers.push(await page.predict(image, { label, lr, snapshot }));
}
const pixels = Uint8Array.from(batch.pixels);
const batches = batch.indices.map((index) => page.batch(pixels, batch.classes, batch.k, index));
process.stdout.write(JSON.stringify({ answers, batches, squared: page.squaredWeights() }));
