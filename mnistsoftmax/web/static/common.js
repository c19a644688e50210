// What both pages share: the element helpers and the one way to call the JSON API.

export const $ = (id) => document.getElementById(id);

// A digit already in MNIST's form (784 bytes, light ink on black), as a Blob of this type: the
// digit a page exported by mnistsoftmax.explore opens with; nothing preprocesses it.
export const DIGIT_TYPE = "application/x-mnist-digit";

export function element(tag, attributes = {}, text) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attributes)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

const SVG = "http://www.w3.org/2000/svg";

export function svg(tag, attributes = {}, text) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attributes)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

// Each numbered view's number by its section's id, filled by views.js from its list: how a module
// refers to another view ("view 9") without importing the list (which imports the modules).
export const VIEW_NUMBERS = new Map();

export function viewNumber(id) {
  return VIEW_NUMBERS.get(id);
}

// The page's error line (#error): shown with a message, hidden without one.
export function showError(message) {
  $("error").textContent = message;
  $("error").hidden = !message;
}

// An answer's JSON, or an Error carrying the server's one-line {"error": ...}.
export async function answer(response) {
  const body = await response.json().catch(() => ({ error: `HTTP ${response.status}` }));
  if (!response.ok) throw new Error(body.error || `HTTP ${response.status}`);
  return body;
}

// A JSON request: body (any JSON value) is sent as application/json.
export async function call(method, url, body) {
  const options = { method, headers: {} };
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  return answer(await fetch(url, options));
}

// A chart's data as a table (a <table> element): a header row of `headers`, then `rows` of cells'
// texts; each header a column header, for screen readers.
export function fillTable(table, headers, rows) {
  table.replaceChildren();
  const head = table.createTHead().insertRow();
  for (const text of headers) {
    const th = document.createElement("th");
    th.scope = "col";
    th.textContent = text;
    head.append(th);
  }
  const body = table.createTBody();
  for (const cells of rows) {
    const row = body.insertRow();
    for (const text of cells) row.insertCell().textContent = String(text);
  }
}
