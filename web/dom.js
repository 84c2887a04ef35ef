// dom.js — building the page from data without innerHTML: every string reaches the page as
// text, so nothing a topic name, a message or a server error holds can run as markup.

// h("a", {href: "#/x", class: "c"}, "text", child, [more]) -> element
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

// A table with a caption, column headers and one row per item; empty -> a message.
export function table(caption, columns, rows, empty) {
  if (!rows.length) return h("p", { class: "empty" }, empty);
  return h("div", { class: "table-wrap", tabindex: "0", role: "region", "aria-label": caption },
    h("table", {},
      h("caption", {}, caption),
      h("thead", {}, h("tr", {}, columns.map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, rows.map((r) => h("tr", {}, r.map((cell, i) =>
        i === 0 ? h("th", { scope: "row" }, cell) : h("td", {}, cell)))))));
}

export function badge(text, kind) {
  return h("span", { class: "badge " + (kind || "") }, text);
}

// A sync state as a badge: green when done, red when failed, amber otherwise.
export function stateBadge(state) {
  if (!state) return badge("Pending", "warn");
  const kind = /Complete|Synchronized|Ready|Succeeded|Verified/.test(state) && !/Failed/.test(state)
    ? "ok" : /Fail|Error|Corrupt/.test(state) ? "bad" : "warn";
  return badge(state, kind);
}

export function ms(v) {
  if (v === undefined || v === null || v === "") return "—";
  const n = Number(v);
  if (n < 0) return "unlimited";
  const hours = n / 3600000;
  if (hours >= 24 && hours % 24 === 0) return hours / 24 + " d";
  if (hours >= 1) return +hours.toFixed(1) + " h";
  return n + " ms";
}

export function bytes(v) {
  if (v === undefined || v === null || v === "") return "—";
  const n = Number(v);
  if (n < 0) return "unlimited";
  const u = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0, x = n;
  while (x >= 1024 && i < u.length - 1) { x /= 1024; i++; }
  return (i ? x.toFixed(1) : x) + "\u00a0" + u[i]; // one unbreakable figure
}

export function when(t) {
  if (t === undefined || t === null || t === "") return "—";
  const d = typeof t === "number" ? new Date(t) : new Date(t);
  if (isNaN(d)) return String(t);
  return d.toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z");
}
