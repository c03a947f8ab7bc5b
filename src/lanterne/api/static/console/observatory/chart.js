// SVG drawing shared by the observatory's charts: drawn here, no chart library, nothing from a CDN.

const SVG_NS = "http://www.w3.org/2000/svg";

export function svg(tag, attrs, text) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

export function chartFrame(node, height) {
  node.replaceChildren();
  const width = Math.max(node.clientWidth || 600, 240);
  node.setAttribute("viewBox", "0 0 " + width + " " + height);
  node.setAttribute("preserveAspectRatio", "none");
  return { width: width, height: height, left: 48, right: 10, top: 10, bottom: 26 };
}

export function niceMax(v) {
  if (!(v > 0)) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

export function yAxis(node, f, lo, hi, fmt) {
  const plotH = f.height - f.top - f.bottom;
  for (let i = 0; i <= 4; i++) {
    const v = lo + ((hi - lo) * i) / 4;
    const y = f.top + plotH - (plotH * i) / 4;
    node.appendChild(svg("line", { class: "axis", x1: f.left, x2: f.width - f.right, y1: y, y2: y, opacity: i ? 0.35 : 1 }));
    node.appendChild(svg("text", { class: "tick", x: f.left - 4, y: y + 4, "text-anchor": "end" }, fmt(v)));
  }
}
