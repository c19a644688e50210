// The JSON API, as the page uses it (scripts can call the same URLs).

async function answer(response) {
  const body = await response.json().catch(() => ({ error: `HTTP ${response.status}` }));
  if (!response.ok) throw new Error(body.error || `HTTP ${response.status}`);
  return body;
}

export async function listCheckpoints() {
  return answer(await fetch("/api/checkpoints"));
}

// image: a Blob or File holding an image file, sent as the raw body.
export async function predict(image, { checkpoint, label }) {
  const query = new URLSearchParams();
  if (checkpoint) query.set("checkpoint", checkpoint);
  if (label !== "" && label !== null && label !== undefined) query.set("label", label);
  const response = await fetch(`/api/predict?${query}`, {
    method: "POST",
    headers: { "Content-Type": image.type || "application/octet-stream" },
    body: image,
  });
  return answer(response);
}
