// Runs the page's engine (static/local.js) outside a browser, for tests/test_engine.py: reads
// [document, cases] as JSON on stdin (document: export.page_model's; each case {pixels: 784 bytes
// in MNIST's form, label, lr, snapshot}) and writes each case's answer as one JSON array on stdout.
import { readFileSync } from "node:fs";

const STATIC = new URL("../../mnistsoftmax/web/static/", import.meta.url);
const { engine } = await import(new URL("local.js", STATIC));
const { DIGIT_TYPE } = await import(new URL("common.js", STATIC));

const [document, cases] = JSON.parse(readFileSync(0, "utf8"));
const page = engine(document);
const answers = [];
for (const { pixels, label, lr, snapshot } of cases) {
  const image = new Blob([Uint8Array.from(pixels)], { type: DIGIT_TYPE });
  answers.push(await page.predict(image, { label, lr, snapshot }));
}
process.stdout.write(JSON.stringify(answers));
