// View 3: the worked table z -> e^(z - max z) -> softmax -> log-softmax (-> gradient) for this digit.
import { element } from "./common.js";

const fmt = (v, digits = 4) => {
  if (v === 0) return "0";
  const a = Math.abs(v);
  return a >= 1e-3 && a < 1e5 ? v.toFixed(digits) : v.toExponential(2);
};

export function showMath(table, r, classNames) {
  const hasLabel = r.label !== undefined;
  // On a phone the table fits the screen: fewer digits, and z − max z (z less the footer's max z) left out.
  const compact = window.matchMedia("(max-width: 760px)").matches, d = compact ? 3 : 4, dp = compact ? 4 : 6;
  const head = ["class", "z", ...(compact ? [] : ["z − max z"]), "e^(z − max z)", "σ(z)", "log σ(z)"];
  if (hasLabel) head.push(compact ? "∂L/∂z = σ − onehot" : "gradient ∂L/∂z = σ(z) − onehot");
  const thead = element("thead");
  const tr = element("tr");
  head.forEach((h) => tr.append(element("th", {}, h)));
  thead.append(tr);
  const tbody = element("tbody");
  r.logits.forEach((z, c) => {
    const classes = [c === r.digit ? "predicted" : "", c === r.label ? "label" : ""].join(" ").trim();
    const row = element("tr", { ...(classes ? { class: classes } : {}), "data-class": c });
    const cells = [classNames[c], fmt(z, d), ...(compact ? [] : [fmt(r.shifted[c])]), fmt(r.exp_shifted[c], dp),
      fmt(r.probabilities[c], dp), fmt(r.log_softmax[c], d)];
    if (hasLabel) cells.push(fmt(r.gradient[c], dp));
    cells.forEach((v) => row.append(element("td", {}, v)));
    tbody.append(row);
  });
  const tfoot = element("tfoot");
  const sum = element("tr");
  sum.append(element("td", {}, "Σ"), element("td", {}, `max z = ${fmt(r.max_logit, d)}`),
    ...(compact ? [] : [element("td")]), element("td", {}, fmt(r.exp_sum, dp)), element("td", {}, "1"),
    element("td", {}, `ln Σ = ${fmt(Math.log(r.exp_sum), d)}`));
  if (hasLabel) sum.append(element("td", {}, `loss ${fmt(r.loss, d)}`));
  tfoot.append(sum);
  table.replaceChildren(thead, tbody, tfoot);
}
