// chart.js — small SVG line charts with labelled axes and units, for figures the console
// samples while a page is open (no charting library: the console ships no dependencies).

const NS = "http://www.w3.org/2000/svg";
const COLORS = ["#2563eb", "#d97706", "#059669", "#db2777", "#7c3aed", "#0891b2"];

function el(tag, attrs, text) {
  const e = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

// 0, 1, 2, 5, 10, 20, 50… above v: the top of the y axis.
function niceMax(v) {
  if (v <= 0) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

function clock(t) {
  return new Date(t).toISOString().slice(11, 19);
}

function fmt(v) {
  if (Math.abs(v) >= 100 || Number.isInteger(v)) return Math.round(v).toLocaleString("en");
  return v.toFixed(Math.abs(v) < 1 ? 2 : 1);
}

// series: [{name, points: [[time_ms, value], ...]}]; yLabel names the unit ("records").
// Returns an <svg> (role img, labelled with the latest values) with a legend below it.
export function lineChart({ title, yLabel, series }) {
  const W = 640, H = 220, L = 64, R = 16, T = 16, B = 44;
  const all = series.flatMap((s) => s.points);
  const t0 = Math.min(...all.map((p) => p[0])), t1 = Math.max(...all.map((p) => p[0]));
  const span = Math.max(t1 - t0, 1000);
  const ymax = niceMax(Math.max(...all.map((p) => p[1]), 0));
  const x = (t) => L + ((t - t0) / span) * (W - L - R);
  const y = (v) => T + (1 - v / ymax) * (H - T - B);
  const latest = series.map((s) => s.name + " " + fmt(s.points[s.points.length - 1][1]))
    .join(", ");
  const svg = el("svg", { viewBox: `0 0 ${W} ${H}`, class: "chart", role: "img",
    "aria-label": `${title}: ${yLabel} over the last ${Math.round(span / 1000)} s; now ${latest}` });
  for (let i = 0; i <= 4; i++) { // y grid and ticks
    const v = (ymax * i) / 4;
    svg.append(el("line", { x1: L, x2: W - R, y1: y(v), y2: y(v), class: "grid" }));
    svg.append(el("text", { x: L - 6, y: y(v) + 4, "text-anchor": "end", class: "tick" }, fmt(v)));
  }
  const nt = Math.min(3, Math.max(1, Math.floor(span / 1000))); // no two ticks in one second
  for (let i = 0; i <= nt; i++) { // x ticks: clock time
    const t = t0 + (span * i) / nt;
    svg.append(el("text", { x: x(t), y: H - B + 16, "text-anchor": i === 0 ? "start" : i === nt ?
      "end" : "middle", class: "tick" }, clock(t)));
  }
  svg.append(el("line", { x1: L, x2: W - R, y1: H - B, y2: H - B, class: "axis" }));
  svg.append(el("line", { x1: L, x2: L, y1: T, y2: H - B, class: "axis" }));
  svg.append(el("text", { x: (L + W - R) / 2, y: H - 6, "text-anchor": "middle",
    class: "label" }, "time (UTC)"));
  svg.append(el("text", { x: 14, y: (T + H - B) / 2, "text-anchor": "middle", class: "label",
    transform: `rotate(-90 14 ${(T + H - B) / 2})` }, yLabel));
  series.forEach((s, i) => {
    const d = s.points.map((p, k) => (k ? "L" : "M") + x(p[0]).toFixed(1) + " " +
      y(p[1]).toFixed(1)).join(" ");
    svg.append(el("path", { d, class: "series", stroke: COLORS[i % COLORS.length] }));
    for (const p of s.points.slice(-1))
      svg.append(el("circle", { cx: x(p[0]), cy: y(p[1]), r: 3, fill: COLORS[i % COLORS.length] }));
  });
  const legend = document.createElement("ul");
  legend.className = "legend";
  series.forEach((s, i) => {
    const li = document.createElement("li");
    const sw = document.createElement("span");
    sw.className = "swatch";
    sw.style.background = COLORS[i % COLORS.length];
    li.append(sw, s.name + ": " + fmt(s.points[s.points.length - 1][1]) + " " + yLabel);
    legend.append(li);
  });
  const fig = document.createElement("figure");
  const cap = document.createElement("figcaption");
  cap.textContent = title;
  fig.append(cap, svg, legend);
  return fig;
}
