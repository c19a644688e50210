// Formulas as mathematics: KaTeX (static/vendor/katex.min.js, MIT, loaded by the page as a plain
// script) turns TeX into MathML, which the browser draws with its own fonts: no font file, no
// style sheet, nothing fetched. Without KaTeX the TeX source stays, as text.

export function render(element, source, display = false) {
  if (window.katex) {
    window.katex.render(source, element, { output: "mathml", displayMode: display, throwOnError: false });
    // A formula on a line of its own scrolls sideways on a phone: a region the keyboard can scroll
    // too (in the Tab order); a screen reader reads its MathML.
    for (const block of element.querySelectorAll("math[display=block]")) block.setAttribute("tabindex", "0");
  } else {
    element.textContent = source;
  }
  element.dataset.tex = source;
  return element;
}

// A new element holding the formula.
export function tex(source, display = false) {
  return render(document.createElement(display ? "div" : "span"), source, display);
}

// Every element of the page's HTML that names a formula in data-tex (data-display: on a line of its own).
export function renderAll(root = document) {
  for (const e of root.querySelectorAll("[data-tex]")) render(e, e.dataset.tex, e.hasAttribute("data-display"));
}

// A number for TeX: 4 significant digits, an exponent as a power of ten.
export function num(v, digits = 4) {
  if (!Number.isFinite(v)) return Number.isNaN(v) ? "\\text{NaN}" : v > 0 ? "\\infty" : "-\\infty";
  if (v === 0) return "0";
  const a = Math.abs(v);
  if (a >= 1e-3 && a < 1e5) return String(Number(v.toPrecision(digits)));
  const [mantissa, exponent] = v.toExponential(digits - 1).split("e");
  return `${mantissa} \\times 10^{${Number(exponent)}}`;
}
