// An SVG chart of one day: bars (volume) under lines (prices), drawn from plain numbers.

const NS = "http://www.w3.org/2000/svg";

function el(tag, attributes, text) {
  const node = document.createElementNS(NS, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
}

// `from`..`to`: the x range (Unix seconds); `lines`: [{cls, points: [[x, y], ...]}] on the
// left axis; `bars`: [[x, value], ...] on the right axis, `step` wide; labels by functions.
// `width`: the width it is shown at (its container's), so that its text keeps its size on
// a phone; the hours labelled are as many as fit.
export function dayChart({ title, from, to, step, lines = [], bars = [], xLabel, yLabel, barLabel, width: shown = 720 }) {
  const width = Math.round(Math.min(1400, Math.max(280, shown || 720)));
  const height = width < 560 ? 220 : 260;
  const pad = { left: 56, right: bars.length ? 44 : 24, top: 12, bottom: 28 };
  const svg = el("svg", { viewBox: `0 0 ${width} ${height}`, class: "chart", role: "img" });
  svg.append(el("title", {}, title));
  const plotW = width - pad.left - pad.right;
  const plotH = height - pad.top - pad.bottom;
  const x = (t) => pad.left + ((t - from) / (to - from)) * plotW;
  const ys = lines.flatMap((line) => line.points.map((p) => p[1]));
  const yMax = Math.max(1, ...ys) * 1.1;
  const y = (v) => pad.top + plotH - (v / yMax) * plotH;
  const barMax = Math.max(1, ...bars.map((b) => b[1])) * 1.1;
  const yb = (v) => pad.top + plotH - (v / barMax) * plotH;

  svg.append(el("line", { x1: pad.left, y1: pad.top + plotH, x2: width - pad.right, y2: pad.top + plotH, class: "axis" }));
  svg.append(el("line", { x1: pad.left, y1: pad.top, x2: pad.left, y2: pad.top + plotH, class: "axis" }));
  for (let i = 0; i <= 4; i += 1) {
    const value = (yMax / 4) * i;
    svg.append(el("text", { x: pad.left - 6, y: y(value) + 4, "text-anchor": "end", class: "label" }, yLabel(value)));
    if (bars.length) {
      const amount = (barMax / 4) * i;
      svg.append(el("text", { x: width - pad.right + 6, y: yb(amount) + 4, class: "label" }, barLabel(amount)));
    }
  }
  const hours = (to - from) / 3600;
  const fit = Math.max(2, Math.floor(plotW / 48)); // an "HH:MM" label needs about 48 px
  const every = [1, 2, 3, 4, 6, 12, 24].find((n) => hours / n <= fit) ?? 24;
  for (let h = 0; h <= hours; h += every) {
    const t = from + h * 3600;
    svg.append(el("text", { x: x(t), y: height - 8, "text-anchor": "middle", class: "label" }, xLabel(t)));
  }
  const barWidth = Math.max(1, (step / (to - from)) * plotW - 1);
  for (const [t, value] of bars) {
    if (value <= 0) continue;
    svg.append(el("rect", { x: x(t), y: yb(value), width: barWidth, height: pad.top + plotH - yb(value), class: "bar" }));
  }
  for (const line of lines) {
    if (!line.points.length) continue;
    // Prices hold for their whole interval: a step per point.
    const path = line.points
      .map(([t, v], i) => `${i ? "L" : "M"}${x(t).toFixed(1)},${y(v).toFixed(1)} L${x(t + step).toFixed(1)},${y(v).toFixed(1)}`)
      .join(" ");
    svg.append(el("path", { d: path, class: line.cls }));
    if (line.dots) {
      for (const [t, v] of line.points) svg.append(el("circle", { cx: x(t + step / 2), cy: y(v), r: 2.5, class: "dot" }));
    }
  }
  return svg;
}
