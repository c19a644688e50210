// The JSON API, as the draw page uses it (scripts can call the same URLs). In a page exported by
// `mnistsoftmax export --format html` the model is inside the file and local.js gives the same
// answers, computed in the browser.
import { answer, call } from "./common.js";

const local = document.getElementById("mnistsoftmax-model") ? import("./local.js") : null;

export async function listCheckpoints() {
  if (local) return (await local).checkpoints();
  return call("GET", "/api/checkpoints");
}

// The digit an exported page opens with ({image, label}), or null (a served page opens blank).
export async function initialDigit() {
  return local ? (await local).initialDigit() : null;
}

// image: a Blob or File holding an image file, sent as the raw body.
export async function predict(image, { checkpoint, label, lr, snapshot }) {
  if (local) return (await local).predict(image, { label, lr, snapshot });
  const query = new URLSearchParams();
  if (checkpoint) query.set("checkpoint", checkpoint);
  if (lr) query.set("lr", lr);
  if (snapshot !== null && snapshot !== undefined) query.set("snapshot", snapshot);
  if (label !== "" && label !== null && label !== undefined) query.set("label", label);
  const response = await fetch(`/api/predict?${query}`, {
    method: "POST",
    headers: { "Content-Type": image.type || "application/octet-stream" },
    body: image,
  });
  return answer(response);
}
