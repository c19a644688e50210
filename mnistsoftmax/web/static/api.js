// The JSON API, as the draw page uses it (scripts can call the same URLs).
import { answer, call } from "./common.js";

export async function listCheckpoints() {
  return call("GET", "/api/checkpoints");
}

// image: a Blob or File holding an image file, sent as the raw body.
export async function predict(image, { checkpoint, label, lr }) {
  const query = new URLSearchParams();
  if (checkpoint) query.set("checkpoint", checkpoint);
  if (lr) query.set("lr", lr);
  if (label !== "" && label !== null && label !== undefined) query.set("label", label);
  const response = await fetch(`/api/predict?${query}`, {
    method: "POST",
    headers: { "Content-Type": image.type || "application/octet-stream" },
    body: image,
  });
  return answer(response);
}
