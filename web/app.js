// app.js — the kpool web console (docs/console.md): a static app that signs in with a team
// token and shows the team's topics, applications and streams through the public API only.
// Routes live in the URL fragment (#/ns/team-a/topics/orders), the token never does.
import { api, download, paths, token, AuthError, UnreachableError } from "./api.js";
import { h, table, badge, stateBadge, ms, bytes, when } from "./dom.js";
import { certificateExpiry } from "./cert.js";
import { lineChart } from "./chart.js";

const main = document.getElementById("main");
const nav = document.getElementById("nav");
const banner = document.getElementById("banner");
const live = document.getElementById("live");

let me = null; // {admin, namespace} of the signed-in token
let teams = []; // namespaces an admin may pick from
// Bumped by every navigation and sign-out: a load that finishes after the user moved on
// (or signed out) sees a newer generation and must not touch the page.
let gen = 0;

function say(text) {
  live.textContent = text;
}

function show(title, ...content) {
  document.title = title + " · kpool console";
  main.replaceChildren(...content.flat(Infinity).filter((c) => c !== null &&
    c !== undefined));
  const heading = main.querySelector("h1");
  if (heading) {
    heading.tabIndex = -1;
    heading.focus({ preventScroll: true });
  }
}

function setBanner(text) {
  banner.hidden = !text;
  banner.textContent = text || "";
}

// ---- sign-in ----

function signInPage(message) {
  nav.hidden = true;
  nav.replaceChildren();
  const input = h("input", {
    id: "token", name: "token", type: "password", autocomplete: "off", spellcheck: "false",
    required: true, "aria-describedby": "token-help" + (message ? " signin-error" : ""),
  });
  const error = h("p", { id: "signin-error", class: "error", role: "alert" }, message || "");
  error.hidden = !message;
  const button = h("button", { type: "submit" }, "Sign in");
  const form = h("form", { class: "signin", onsubmit: async (ev) => {
    ev.preventDefault();
    const t = input.value.trim();
    if (!t) return;
    button.disabled = true;
    error.hidden = true;
    try {
      me = await api(paths.whoami(), { tok: t });
      token.set(t);
      input.value = "";
      await afterSignIn();
    } catch (e) {
      error.textContent = e instanceof AuthError
        ? "That token is not valid: it is unknown, or it was revoked or rotated."
        : e.message;
      error.hidden = false;
      input.setAttribute("aria-invalid", "true");
      input.focus();
    } finally {
      button.disabled = false;
    }
  } },
  h("h1", {}, "Sign in"),
  h("label", { for: "token" }, "Team token"),
  input,
  h("p", { id: "token-help", class: "help" },
    "The API token of your team (", h("code", {}, "kpool team create"),
    " prints it) or the admin token of ", h("code", {}, "kpool up"),
    ". It is kept in this tab only and forgotten when you sign out or close it."),
  error, button);
  show("Sign in", form);
  if (!message) input.focus();
}

function signOut(message) {
  gen++;
  token.clear();
  me = null;
  teams = [];
  setBanner("");
  if (location.hash !== "" && location.hash !== "#/") history.replaceState(null, "", "#/");
  signInPage(message);
}

async function afterSignIn() {
  if (me.admin) {
    const list = await api(paths.teams());
    teams = list.items.map((t) => t.metadata.name);
  } else {
    teams = [me.namespace];
  }
  renderNav();
  route();
}

function currentNs() {
  const m = /^#\/ns\/([^/]+)/.exec(location.hash);
  const ns = m ? decodeURIComponent(m[1]) : null;
  if (ns && (me.admin || ns === me.namespace)) return ns;
  return me.admin ? teams[0] || null : me.namespace;
}

function renderNav() {
  const ns = currentNs();
  const items = [];
  if (me.admin) {
    const select = h("select", { id: "team", onchange: (ev) => {
      location.hash = "#/ns/" + encodeURIComponent(ev.target.value);
    } }, teams.map((t) => h("option", { value: t, selected: t === ns }, t)));
    items.push(h("label", { for: "team", class: "who" }, "Admin · team"), select);
  } else {
    items.push(h("span", { class: "who" }, "Team ", h("strong", { id: "whoami" }, me.namespace)));
  }
  const here = location.hash;
  const page = here === "#/pools" || here === "#/backups" ? here : "overview";
  const link = (href, text, key) => h("a", { href, class: "navlink",
    "aria-current": page === (key || href) ? "page" : null }, text);
  items.push(link(ns ? "#/ns/" + encodeURIComponent(ns) : "#/", "Overview", "overview"),
    link("#/pools", "Pools"));
  if (me.admin) items.push(link("#/backups", "Backups"));
  items.push(h("button", { type: "button", id: "signout", class: "secondary",
    onclick: () => signOut("You signed out.") }, "Sign out"));
  nav.replaceChildren(...items);
  nav.hidden = false;
}

// ---- loading with error states ----

// Runs load(ticket) for the navigation ticket; on 401 signs out, on a dead control plane
// shows how to retry. Nothing happens once a newer navigation has started.
async function guarded(title, load) {
  const ticket = ++gen;
  show(title, h("p", { class: "loading", role: "status" }, "Loading…"));
  try {
    setBanner("");
    await load(ticket);
  } catch (e) {
    if (ticket !== gen) return;
    if (e instanceof AuthError) {
      signOut("Your session ended: the token is no longer valid (revoked or rotated). " +
        "Sign in with a current token.");
    } else if (e instanceof UnreachableError) {
      show(title, h("h1", {}, title), errorBox(e.message +
        " Is `kpool up` running? The page retries when you press the button.", true));
    } else {
      show(title, h("h1", {}, title), errorBox(e.message, true));
    }
  }
}

function errorBox(text, retry) {
  const again = typeof retry === "function" ? retry : () => route();
  return h("div", { class: "error-box", role: "alert" }, h("p", {}, text),
    retry && h("button", { type: "button", onclick: again }, "Retry"));
}

// A part of a page that loads on its own: its error does not hide the rest.
function section(id, title, load) {
  const ticket = gen;
  const body = h("div", { class: "section-body" }, h("p", { class: "loading" }, "Loading…"));
  const sec = h("section", { id, "aria-labelledby": id + "-h" }, h("h2", { id: id + "-h" }, title),
    body);
  Promise.resolve().then(load).then((content) => {
    if (ticket === gen) body.replaceChildren(...[].concat(content));
  }).catch((e) => {
      if (ticket !== gen) return;
      if (e instanceof AuthError) return signOut(
        "Your session ended: the token is no longer valid (revoked or rotated).");
      body.replaceChildren(errorBox(e.message, false));
    });
  return sec;
}

// ---- team overview ----

function topicLink(ns, name) {
  return h("a", { href: `#/ns/${encodeURIComponent(ns)}/topics/${encodeURIComponent(name)}` },
    name);
}

function syncState(obj) {
  const s = obj.status || {};
  return s.synchronizationState || (obj.metadata.deletionTimestamp ? "Deleting" : "");
}

function stateCell(obj) {
  const st = syncState(obj);
  const msg = (obj.status || {}).message;
  return h("div", {}, stateBadge(st),
    st !== "RolloutComplete" && msg ? h("div", { class: "status-msg" }, msg) : null);
}

function retention(cfg) {
  const hours = cfg.retentionHours;
  const time = hours === undefined ? "168 h" : hours < 0 ? "unlimited" : hours + " h";
  return time + " / " + bytes(cfg.retentionBytes === undefined ? -1 : cfg.retentionBytes);
}

// "team-*" style patterns of Topic ACLs (SPEC §3).
function wildcard(pattern, s) {
  const re = new RegExp("^" + pattern.split("*").map((p) =>
    p.replace(/[.+?^${}()|[\]\\]/g, "\\$&")).join(".*") + "$");
  return re.test(s);
}

function grantsFor(ns, app, topics) {
  const out = [];
  for (const t of topics) {
    for (const a of t.spec.acl || []) {
      if (wildcard(a.team || "", ns) && wildcard(a.application || "", app))
        out.push(h("div", {}, topicLink(ns, t.metadata.name), " ", badge(a.access)));
    }
  }
  return out.length ? out : "—";
}

async function certExpiry(ns, secretName) {
  if (!secretName) return "—";
  try {
    const s = await api(paths.secret(ns, secretName));
    const pem = atob((s.data || {}).KAFKA_CERTIFICATE || "");
    const d = certificateExpiry(pem);
    if (!d) return "—";
    const days = Math.floor((d - Date.now()) / 86400000);
    return h("span", { class: days < 14 ? "soon" : "" }, when(d.getTime()),
      " (" + (days < 0 ? "expired" : days + " d") + ")");
  } catch (e) {
    if (e instanceof AuthError) throw e;
    return "—";
  }
}

// `kpool doctor`'s findings for an application (the control plane computes them): a badge
// with the number of problems that opens the list, filled in when it comes. A button runs
// the check `kpool doctor` makes with the application's own credentials (the control plane
// connects to the pool with them: one Kafka client, so only when asked).
function doctorCell(ns, app) {
  const cell = h("div", { class: "doctor" }, h("span", { class: "muted" }, "…"));
  const findings = (list) => h("ul", { class: "findings" }, list.map((f) =>
    h("li", { class: "finding " + f.level }, h("strong", {}, f.level + ": "), f.message)));
  const show = (r) => {
    const summary = h("summary", {}, r.problems ?
      badge(r.problems + (r.problems === 1 ? " problem" : " problems"), "bad") :
      badge("No problems", "ok"));
    const stored = r.findings.filter((f) => f.section !== "pool");
    const live = r.findings.filter((f) => f.section === "pool");
    const check = h("button", { type: "button", class: "doctor-connect" },
      r.connected ? "Check the pool again" : "Check with the app's credentials");
    const poolPart = r.connected ? h("div", { class: "doctor-pool" },
      h("p", {}, h("strong", {}, "Pool (with " + ns + "/" + app + "'s credentials):")),
      findings(live)) : null;
    check.addEventListener("click", () => {
      check.disabled = true;
      check.textContent = "Connecting with the app's credentials…";
      api(paths.doctor(ns, app, true)).then((x) => {
        show(x);
        cell.querySelector(".doctor-connect")?.focus();
      }).catch((e) => {
        if (e instanceof AuthError) return signOut(
          "Your session ended: the token is no longer valid (revoked or rotated).");
        check.disabled = false;
        check.textContent = "Check with the app's credentials";
        cell.querySelector("details").append(h("p", { class: "error", role: "alert" },
          "The check failed: " + e.message));
      });
    });
    cell.replaceChildren(h("details", r.problems ? { open: "" } : {}, summary, findings(stored),
      poolPart, check));
  };
  api(paths.doctor(ns, app)).then(show)
    .catch((e) => { cell.replaceChildren(h("span", { class: "muted" }, "— " + e.message)); });
  return cell;
}

// A produce rate for people: "12.5 records/s".
function perSecond(v, unit) {
  if (v === undefined || v === null) return "—";
  return (v >= 100 || Number.isInteger(v) ? Math.round(v).toLocaleString("en") : v.toFixed(1)) +
    " " + unit + "/s";
}

// The records a topic holds (end minus start offsets), its size in bytes and its produce
// rate (both from the control plane's samples of the pool's metrics), filled in when they
// come: three cells from one request.
function figureCells(ns, t) {
  const cells = ["records", "size", "rate"].map((k) =>
    h("span", { class: "muted", "data-figure": k }, "…"));
  if (syncState(t) !== "RolloutComplete") {
    for (const c of cells) c.textContent = "—";
    return cells;
  }
  api(paths.console(ns, t.metadata.name, "partitions")).then((p) => {
    for (const c of cells) c.className = "";
    cells[0].textContent = p.records.toLocaleString("en");
    cells[1].textContent = bytes(p.sizeBytes);
    cells[2].textContent = perSecond(p.recordsPerSecond, "records");
  }).catch(() => { for (const c of cells) c.textContent = "—"; });
  return cells;
}

async function overview(ns, ticket) {
  if (!ns) {
    show("Teams", h("h1", {}, "Teams"), h("p", { class: "empty" },
      "No team has a token or resources yet. Create one with ", h("code", {},
        "kpool team create NAME"), "."));
    return;
  }
  const [topics, streams, apps, aivenapps] = await Promise.all([
    api(paths.topics(ns)), api(paths.streams(ns)), api(paths.apps(ns)), api(paths.aivenapps(ns))]);
  const aiven = Object.fromEntries(aivenapps.items.map((a) => [a.metadata.name, a]));
  const topicRows = topics.items.map((t) => {
    const cfg = t.spec.config || {};
    return [topicLink(ns, t.metadata.name), stateCell(t),
      h("code", {}, (t.status || {}).fullyQualifiedName || ns + "." + t.metadata.name),
      t.spec.pool || "—", cfg.partitions ?? 1, cfg.replication ?? "default", retention(cfg),
      ...figureCells(ns, t)];
  });
  const appRows = await Promise.all(apps.items.map(async (a) => {
    const name = a.metadata.name;
    const av = aiven[name] || {};
    const avs = av.status || {};
    const secret = (a.status || {}).kafkaSecretName || avs.synchronizationSecretName;
    return [name, stateBadge((a.status || {}).synchronizationState),
      secret ? h("code", {}, secret) : "—", avs.serviceUser ? h("code", {}, avs.serviceUser) : "—",
      await certExpiry(ns, secret), h("div", {}, grantsFor(ns, name, topics.items)),
      when((a.status || {}).synchronizationTime || avs.synchronizationTime),
      doctorCell(ns, name)];
  }));
  if (ticket !== gen) return;
  const streamRows = streams.items.map((s) => [s.metadata.name, stateCell(s),
    h("code", {}, (s.status || {}).fullyQualifiedName || "—"), s.spec.pool || "—"]);
  show("Team " + ns,
    h("h1", {}, "Team ", h("span", { class: "ns" }, ns)),
    h("section", { id: "topics", "aria-labelledby": "topics-h" },
      h("h2", { id: "topics-h" }, "Topics ", h("span", { class: "count" }, topics.items.length)),
      table("Topics of " + ns,
        ["Name", "State", "Name in the pool", "Pool", "Partitions", "Replication",
          "Retention (time / size)", "Records", "Size", "Produce rate"], topicRows,
        "No topics yet. Apply a Topic (see examples/topic.yaml) with kpool apply -f.")),
    h("section", { id: "applications", "aria-labelledby": "apps-h" },
      h("h2", { id: "apps-h" }, "Applications ", h("span", { class: "count" }, apps.items.length)),
      table("Applications of " + ns,
        ["Name", "State", "Secret", "Service user", "Certificate expires", "Topics granted",
          "Last deploy", "Doctor"], appRows, "No applications yet.")),
    section("schemas", "Schemas", () => schemasSection(ns)),
    h("section", { id: "streams", "aria-labelledby": "streams-h" },
      h("h2", { id: "streams-h" }, "Streams ", h("span", { class: "count" }, streams.items.length)),
      table("Streams of " + ns, ["Name", "State", "Prefix in the pool", "Pool"], streamRows,
        "No streams.")));
  say("Team " + ns + ": " + topics.items.length + " topics, " + apps.items.length +
    " applications");
}

// ---- schemas ----

function pretty(text) {
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch (e) {
    return text;
  }
}

// Line diff (longest common subsequence): [[" " | "-" | "+", line], ...].
function diffLines(a, b) {
  const x = a.split("\n").slice(0, 2000), y = b.split("\n").slice(0, 2000);
  const n = x.length, m = y.length;
  const L = Array.from({ length: n + 1 }, () => new Uint16Array(m + 1));
  for (let i = n - 1; i >= 0; i--)
    for (let j = m - 1; j >= 0; j--)
      L[i][j] = x[i] === y[j] ? L[i + 1][j + 1] + 1 : Math.max(L[i + 1][j], L[i][j + 1]);
  const out = [];
  let i = 0, j = 0;
  while (i < n && j < m) {
    if (x[i] === y[j]) { out.push([" ", x[i]]); i++; j++; }
    else if (L[i + 1][j] >= L[i][j + 1]) out.push(["-", x[i++]]);
    else out.push(["+", y[j++]]);
  }
  while (i < n) out.push(["-", x[i++]]);
  while (j < m) out.push(["+", y[j++]]);
  return out;
}

// Long runs of unchanged lines shrink to their first and last 3 lines.
function folded(diff) {
  const out = [];
  for (let i = 0; i < diff.length;) {
    let j = i;
    while (j < diff.length && diff[j][0] === " ") j++;
    if (j - i > 8) {
      out.push(...diff.slice(i, i + 3), ["~", "⋯ " + (j - i - 6) + " unchanged lines"],
        ...diff.slice(j - 3, j));
    } else {
      out.push(...diff.slice(i, j));
    }
    if (j < diff.length) out.push(diff[j]);
    i = j + 1;
  }
  return out;
}

function subjectView(sub) {
  const versions = sub.versions;
  const latest = versions[versions.length - 1];
  const id = "subj-" + sub.pool + "-" + sub.subject;
  const pick = (which, v) => h("select", { id: id + "-" + which, "aria-label":
    (which === "a" ? "Compare version" : "with version") + " of " + sub.subject },
  versions.map((x) => h("option", { value: String(x.version), selected: x.version === v },
    "version " + x.version + " (id " + x.id + ")")));
  const a = pick("a", versions.length > 1 ? versions[versions.length - 2].version : latest.version);
  const b = pick("b", latest.version);
  const out = h("pre", { class: "diff", "aria-live": "polite" });
  const render = () => {
    const va = versions.find((x) => String(x.version) === a.value);
    const vb = versions.find((x) => String(x.version) === b.value);
    out.replaceChildren(...folded(diffLines(pretty(va.schema), pretty(vb.schema))).map(
      ([k, line]) => h("span", { class: k === "+" ? "add" : k === "-" ? "del" :
        k === "~" ? "fold" : "" }, k === "~" ? line : k + " " + line)));
  };
  a.addEventListener("change", render);
  b.addEventListener("change", render);
  render();
  return h("div", { class: "subject" },
    h("h3", {}, h("code", {}, sub.subject), badge(latest.schemaType), badge(sub.compatibilityLevel),
      h("span", { class: "muted" }, versions.length + " version" +
        (versions.length === 1 ? "" : "s") + " · pool " + sub.pool)),
    h("div", { class: "browse" }, h("div", { class: "field" },
      h("label", { for: id + "-a" }, "Compare"), a),
    h("div", { class: "field" }, h("label", { for: id + "-b" }, "with"), b)),
    out);
}

async function schemasSection(ns) {
  const list = await api(paths.subjects(ns));
  const errors = list.errors.map((e) => errorBox("Pool " + e.pool + ": " + e.message, false));
  if (!list.items.length)
    return errors.concat(h("p", { class: "empty" }, "No schema subjects named " + ns +
      ".… in the registry."));
  return errors.concat(list.items.map(subjectView));
}

// ---- topic page ----

function configTable(t) {
  const cfg = t.spec.config || {};
  const rows = Object.keys(cfg).sort().map((k) => [k, h("code", {}, String(cfg[k]))]);
  return table("Configuration", ["Setting", "Value"], rows,
    "No settings: the pool's defaults apply.");
}

function aclTable(t) {
  const rows = (t.spec.acl || []).map((a) => [a.team, a.application, badge(a.access)]);
  return table("Access control list", ["Team", "Application", "Access"], rows,
    "No ACL entries: only the pool's administrators can use this topic.");
}

async function partitionsSection(ns, name) {
  return partitionsView(await api(paths.console(ns, name, "partitions")));
}

function partitionsView(p) {
  return [h("p", { class: "summary" }, p.records + " records in " + p.partitions.length +
    " partitions, " + bytes(p.sizeBytes) + " on disk, produce rate " +
    perSecond(p.recordsPerSecond, "records") + ", consume rate " +
    perSecond(p.consumeRecordsPerSecond, "records")),
  table("Partitions", ["Partition", "Leader", "Replicas", "In sync", "Start offset", "End offset",
    "Records", "Size"], p.partitions.map((x) => [String(x.partition), String(x.leader),
    x.replicas.join(", "), x.isr.join(", "), String(x.startOffset), String(x.endOffset),
    String(x.records), bytes(x.sizeBytes)]), "No partitions.")];
}

async function groupsSection(ns, name) {
  return groupsView(await api(paths.console(ns, name, "consumergroups")));
}

function groupsView(g) {
  if (!g.items.length)
    return h("p", { class: "empty" }, "No consumer group has committed an offset on this topic.");
  return g.items.map((grp) => h("div", { class: "group" },
    h("h3", {}, grp.group, " ", stateBadge(grp.state || "Unknown"), " ",
      h("span", { class: "lag" + (grp.lag > 0 ? " behind" : "") }, "lag " + grp.lag)),
    table("Lag of " + grp.group, ["Partition", "Committed offset", "End offset", "Lag"],
      grp.partitions.map((x) => [String(x.partition), String(x.committedOffset),
        String(x.endOffset), String(x.lag)]), "")));
}

// Key, value or header bytes as the API gives them (utf8 text, hex, or null); JSON objects
// are pretty-printed. inline: a short one-line form (keys, headers).
function shownBytes(v, enc, inline) {
  if (enc === "null") return h("span", { class: "muted" }, "null");
  if (inline && enc === "utf8" && !v.includes("\n")) return h("code", {}, v);
  if (enc === "hex") return h("span", {}, badge("hex"), " ", h("code", { class: "hex" },
    v.replace(/(.{2})/g, "$1 ").trim()));
  try {
    const j = JSON.parse(v);
    if (typeof j === "object" && j !== null)
      return h("pre", { class: "json" }, JSON.stringify(j, null, 2));
  } catch (e) { /* not JSON: plain text */ }
  return h("pre", { class: "text" }, v);
}

// A key or value with what the registry says about it: decoded (Avro, JSON Schema) when it
// was framed in the registry's wire format, else its bytes.
function shownField(m, field) {
  const decoded = m[field + "Decoded"], schema = m[field + "Schema"];
  const error = m[field + "SchemaError"];
  const raw = shownBytes(m[field], m[field + "Encoding"], field === "key");
  if (decoded !== undefined)
    return h("div", {}, badge(schema.type + " · schema " + schema.id, "ok"),
      h("pre", { class: "json" }, JSON.stringify(decoded, null, 2)));
  if (error) return h("div", {}, badge("not decoded: " + error, "warn"), raw);
  return raw;
}

function messageRow(m) {
  return h("li", { class: "message" },
    h("div", { class: "meta" },
      h("span", {}, "partition ", h("strong", {}, m.partition)),
      h("span", {}, "offset ", h("strong", {}, m.offset)),
      h("span", { title: m.timestampType }, when(m.timestamp)),

      m.truncated ? badge("truncated", "warn") : null),
    h("dl", {},
      h("dt", {}, "Key"), h("dd", {}, shownField(m, "key")),
      h("dt", {}, "Value"), h("dd", {}, shownField(m, "value")),
      m.headers.length ? [h("dt", {}, "Headers"), h("dd", {}, h("ul", { class: "headers" },
        m.headers.map((x) => h("li", {}, h("code", {}, x.key), ": ",
          shownBytes(x.value, x.valueEncoding, true)))))] : null));
}

function browser(ns, name, partitions) {
  const results = h("div", { id: "messages", "aria-live": "polite" });
  const mode = h("select", { id: "mode", name: "mode" },
    h("option", { value: "newest" }, "Newest"),
    h("option", { value: "offset" }, "From an offset"),
    h("option", { value: "time" }, "From a time"));
  const partition = h("select", { id: "partition", name: "partition" },
    h("option", { value: "" }, "All"),
    Array.from({ length: partitions }, (_, i) => h("option", { value: String(i) }, String(i))));
  const limit = h("input", { id: "limit", name: "limit", type: "number", min: "1", max: "500",
    value: "20", inputmode: "numeric" });
  const offset = h("input", { id: "offset", name: "offset", type: "number", min: "0",
    value: "0", inputmode: "numeric" });
  const at = h("input", { id: "at", name: "at", type: "datetime-local", step: "1" });
  const offsetField = h("div", { class: "field", hidden: true },
    h("label", { for: "offset" }, "Offset"), offset);
  const timeField = h("div", { class: "field", hidden: true },
    h("label", { for: "at" }, "Time (your local time)"), at);
  mode.addEventListener("change", () => {
    offsetField.hidden = mode.value !== "offset";
    timeField.hidden = mode.value !== "time";
  });
  const load = async () => {
    const q = { limit: limit.value || "20" };
    if (partition.value !== "") q.partition = partition.value;
    if (mode.value === "offset") q.offset = offset.value || "0";
    if (mode.value === "time") {
      const t = new Date(at.value).getTime();
      if (isNaN(t)) {
        results.replaceChildren(errorBox("Pick a time to read from.", false));
        return;
      }
      q.timestamp = String(t);
    }
    results.replaceChildren(h("p", { class: "loading" }, "Reading…"));
    const ticket = gen;
    try {
      const r = await api(paths.console(ns, name, "messages", q));
      if (ticket !== gen) return;
      results.replaceChildren(r.items.length
        ? h("ol", { class: "messages" }, r.items.map(messageRow))
        : h("p", { class: "empty" }, "No messages there."));
      say(r.items.length + " messages shown");
    } catch (e) {
      if (ticket !== gen) return;
      if (e instanceof AuthError) return signOut(
        "Your session ended: the token is no longer valid (revoked or rotated).");
      results.replaceChildren(errorBox(e.message, false));
    }
  };
  const form = h("form", { class: "browse", onsubmit: (ev) => { ev.preventDefault(); load(); } },
    h("div", { class: "field" }, h("label", { for: "mode" }, "Read"), mode),
    h("div", { class: "field" }, h("label", { for: "partition" }, "Partition"), partition),
    offsetField, timeField,
    h("div", { class: "field" }, h("label", { for: "limit" }, "How many"), limit),
    h("button", { type: "submit", id: "read" }, "Read messages"));
  load();
  return [form, results];
}

// Samples per topic page: the produce rate (from the end offsets) and each group's lag,
// every SAMPLE_MS while the page is open (the first two 1 s apart, so a rate shows at once).
// Each sample also redraws the partitions and consumer groups tables (onData), so they show
// what the charts show.
const SAMPLE_MS = 5000;
const SAMPLES_MAX = 120; // 10 minutes

function sampler(ns, name, ticket, box, onData) {
  const samples = [];
  const tick = async () => {
    if (ticket !== gen) return;
    if (document.hidden && samples.length > 1) { // a background tab asks the pool nothing
      setTimeout(tick, SAMPLE_MS);
      return;
    }
    try {
      const [p, g] = await Promise.all([api(paths.console(ns, name, "partitions")),
        api(paths.console(ns, name, "consumergroups"))]);
      if (ticket !== gen) return;
      const end = p.partitions.reduce((a, x) => a + x.endOffset, 0);
      samples.push({ t: Date.now(), end, lag: Object.fromEntries(g.items.map((x) => [x.group, x.lag])),
        // the brokers' per-topic counters as the control plane last sampled them (null
        // before it has two samples, or without the pool's metrics)
        produced: p.produceRecordsPerSecond ?? null, consumed: p.consumeRecordsPerSecond ?? null });
      if (samples.length > SAMPLES_MAX) samples.shift();
      drawCharts(box, samples, g.lagHistory);
      if (onData) onData(p, g);
    } catch (e) {
      if (ticket !== gen) return;
      if (e instanceof AuthError) return signOut(
        "Your session ended: the token is no longer valid (revoked or rotated).");
      box.replaceChildren(errorBox(e.message, false));
    }
    setTimeout(tick, samples.length === 1 ? 1000 : SAMPLE_MS);
  };
  tick();
}

// lagHistory: the control plane's samples of the groups' lag ([{time, lag: {group: n}}]),
// which go back past this page's opening; without it, the page's own samples.
function drawCharts(box, samples, lagHistory) {
  if (samples.length < 2) {
    box.replaceChildren(h("p", { class: "loading" }, "Sampling…"));
    return;
  }
  const rate = samples.slice(1).map((s, i) => [s.t,
    Math.max(0, (s.end - samples[i].end) * 1000 / (s.t - samples[i].t))]);
  const server = (lagHistory || []).length > 1;
  const lagSamples = server ? lagHistory.map((x) => ({ t: Date.parse(x.time), lag: x.lag }))
    : samples;
  const groups = [...new Set(lagSamples.flatMap((s) => Object.keys(s.lag)))].sort().slice(0, 6);
  // produce and consume rates from the brokers' counters (kpool_topic_records_in_total and
  // _out_total, the figures /metrics gives); the produce rate from the end offsets when the
  // pool's metrics are not sampled
  const fromMetrics = (k) => samples.filter((s) => s[k] !== null).map((s) => [s.t, s[k]]);
  const produced = fromMetrics("produced"), consumed = fromMetrics("consumed");
  const charts = [lineChart({ title: "Produce and consume rate", yLabel: "records/s",
    series: [{ name: "produced", points: produced.length > 1 ? produced : rate },
      { name: "consumed", points: consumed }].filter((x) => x.points.length) })];
  if (groups.length)
    charts.push(lineChart({ title: "Consumer lag", yLabel: "records",
      series: groups.map((gname) => ({ name: gname, points: lagSamples.filter((s) =>
        gname in s.lag).map((s) => [s.t, s.lag[gname]]) })) }));
  box.replaceChildren(h("p", { class: "help" }, "The rates are sampled by this page every " +
    SAMPLE_MS / 1000 + " s while it is open (the brokers' counters, as the control plane last " +
    "read them); " + (server ? "the lag by the control plane " +
    "while the topic is looked at (up to an hour back)." : "the lag too.")),
  h("div", { class: "charts" }, charts));
}

async function topicPage(ns, name, ticket) {
  const t = await api(paths.topic(ns, name));
  if (ticket !== gen) return;
  const cfg = t.spec.config || {};
  const fqn = (t.status || {}).fullyQualifiedName || ns + "." + name;
  const charts = h("div", {}, h("p", { class: "loading" }, "Sampling…"));
  // the tables follow the sampler: rewritten in place (the sections' headings, and the
  // focus outside them, stay), with the time of the figures
  const refresh = (p, g) => {
    const at = h("p", { class: "help updated" }, "Updated " +
      new Date().toISOString().slice(11, 19) + " UTC; refreshed every " + SAMPLE_MS / 1000 +
      " s while the page is open.");
    const pb = document.querySelector("#partitions .section-body");
    const gb = document.querySelector("#groups .section-body");
    if (pb) pb.replaceChildren(...partitionsView(p), at);
    if (gb) gb.replaceChildren(...[].concat(groupsView(g)), at.cloneNode(true));
  };
  if (syncState(t) === "RolloutComplete") sampler(ns, name, ticket, charts, refresh);
  else charts.replaceChildren(h("p", { class: "empty" }, "The topic is not in the pool yet."));
  show("Topic " + name,
    h("p", { class: "crumbs" }, h("a", { href: "#/ns/" + encodeURIComponent(ns) }, "Team " + ns),
      " / topics"),
    h("h1", {}, "Topic ", h("span", { class: "ns" }, name)),
    h("dl", { class: "facts" },
      h("dt", {}, "State"), h("dd", {}, stateCell(t)),
      h("dt", {}, "Name in the pool"), h("dd", {}, h("code", {}, fqn)),
      h("dt", {}, "Pool"), h("dd", {}, t.spec.pool || "—"),
      h("dt", {}, "Partitions"), h("dd", {}, String(cfg.partitions ?? 1)),
      h("dt", {}, "Replication"), h("dd", {}, String(cfg.replication ?? "default")),
      h("dt", {}, "Retention"), h("dd", {}, retention(cfg)),
      h("dt", {}, "Last synchronized"), h("dd", {}, when((t.status || {}).synchronizationTime))),
    h("section", { id: "acl", "aria-labelledby": "acl-h" }, h("h2", { id: "acl-h" }, "Access"),
      aclTable(t)),
    h("section", { id: "config", "aria-labelledby": "config-h" },
      h("h2", { id: "config-h" }, "Configuration"), configTable(t)),
    section("partitions", "Partitions", () => partitionsSection(ns, name)),
    section("groups", "Consumer groups", () => groupsSection(ns, name)),
    h("section", { id: "rates", "aria-labelledby": "rates-h" },
      h("h2", { id: "rates-h" }, "Rates and lag"), charts),
    h("section", { id: "browser", "aria-labelledby": "browser-h" },
      h("h2", { id: "browser-h" }, "Messages"),
      syncState(t) === "RolloutComplete" ? browser(ns, name, cfg.partitions ?? 1)
        : h("p", { class: "empty" }, "The topic is not in the pool yet.")));
}

// ---- pools and backups ----

async function poolsPage(ticket) {
  const pools = await api(paths.pools());
  if (ticket !== gen) return;
  const rows = pools.items.map((p) => {
    const st = p.status || {};
    const r = (p.spec || {}).replication || {};
    return [p.metadata.name, h("div", {}, stateBadge(st.state),
      st.state !== "Ready" && st.message ? h("div", { class: "status-msg" }, st.message) : null),
    h("code", {}, (p.spec || {}).bootstrapServers || "—"),
    st.topics ?? "—", st.unmanagedTopicCount ?? "—",
    [r.min ?? 1, r.max ?? 1, r.default ?? r.min ?? 1].join(" / ")];
  });
  show("Pools", h("h1", {}, "Pools"),
    h("section", { id: "pools", "aria-labelledby": "pools-h" }, h("h2", { id: "pools-h" },
      "Kafka pools"),
    table("Pools", ["Name", "State", "Bootstrap servers", "Topics", "Unmanaged topics",
      "Replication (min / max / default)"], rows, "No pools.")),
    pools.items.map((p) => [section("health-" + p.metadata.name, "Health of " + p.metadata.name,
      () => healthSection(p.metadata.name)), historySection(p.metadata.name, ticket)]));
}

const MiB = 1024 * 1024;

// The pool's history as the control plane sampled it from the brokers' metrics: redrawn
// every sampling interval while the page is open.
function historySection(pool, ticket) {
  const box = h("div", {}, h("p", { class: "loading" }, "Loading…"));
  const draw = async () => {
    if (ticket !== gen) return;
    if (document.hidden && box.querySelector("figure")) { // a background tab asks nothing
      setTimeout(draw, 10000);
      return;
    }
    let m;
    try {
      m = await api(paths.poolMetrics(pool));
    } catch (e) {
      if (ticket !== gen) return;
      if (e instanceof AuthError) return signOut(
        "Your session ended: the token is no longer valid (revoked or rotated).");
      box.replaceChildren(errorBox(e.message, false));
      setTimeout(draw, 10000);
      return;
    }
    if (ticket !== gen) return;
    const s = m.samples || [];
    const pts = (k, scale = 1) => s.filter((x) => x[k] !== null && x[k] !== undefined)
      .map((x) => [Date.parse(x.time), x[k] / scale]);
    const chart = (title, yLabel, series) => {
      const have = series.filter((x) => x.points.length);
      return have.length ? lineChart({ title, yLabel, series: have }) : null;
    };
    // bytes in the unit their largest value reads best in
    const unitOf = (keys, suffix) => {
      const max = Math.max(0, ...s.flatMap((x) => keys.map((k) => x[k] || 0)));
      const u = [["B", 1], ["KiB", 1024], ["MiB", MiB], ["GiB", 1024 * MiB]];
      const [name, div] = u.filter(([, d]) => max >= d).pop() || u[0];
      return [name + suffix, div];
    };
    const [netUnit, netDiv] = unitOf(["bytesInPerSecond", "bytesOutPerSecond"], "/s");
    const [diskUnit, diskDiv] = unitOf(["diskUsedBytes"], "");
    const charts = [
      chart("Requests", "requests/s", [{ name: "all APIs", points: pts("requestsPerSecond") }]),
      chart("Request latency", "ms", [{ name: "mean", points: pts("latencyMeanMs") },
        { name: "99th percentile", points: pts("latencyP99Ms") }]),
      chart("Network", netUnit, [{ name: "in", points: pts("bytesInPerSecond", netDiv) },
        { name: "out", points: pts("bytesOutPerSecond", netDiv) }]),
      chart("Records produced", "records/s", [{ name: "all topics",
        points: pts("recordsInPerSecond") }]),
      chart("Disk used by logs", diskUnit, [{ name: "all brokers",
        points: pts("diskUsedBytes", diskDiv) }]),
    ].filter(Boolean);
    // each broker's own figures (the charts above add them up): its rates between its last
    // two samples, its disk, or why its last sample failed
    const brokers = table("Each broker of " + pool + " (its metrics, disk use and rates)",
      ["Broker", "Metrics", "Requests", "In", "Out", "Logs", "Free", "File system"],
      (m.brokers || []).map((b) => [
        b.nodeId !== undefined ? String(b.nodeId) : "—",
        h("div", {}, h("code", {}, b.metricsUrl),
          b.lastError ? h("p", { class: "error" }, "Last sample failed: " + b.lastError)
            : null),
        perSecond(b.requestsPerSecond, "requests"),
        b.bytesInPerSecond === undefined || b.bytesInPerSecond === null ? "—"
          : bytes(Math.round(b.bytesInPerSecond)) + "/s",
        b.bytesOutPerSecond === undefined || b.bytesOutPerSecond === null ? "—"
          : bytes(Math.round(b.bytesOutPerSecond)) + "/s",
        bytes(b.diskUsedBytes), bytes(b.diskFreeBytes), bytes(b.diskCapacityBytes)]),
      "No broker metrics.");
    const every = m.intervalMs ? m.intervalMs / 1000 + " s" : "—";
    box.replaceChildren(...[
      m.lastError ? errorBox("The last sample failed: " + m.lastError, false) : null,
      m.message ? h("p", { class: "empty" }, m.message) : null,
      h("p", { class: "help" }, "Sampled by the control plane every " + every + " from " +
        "the metrics of each of the " + (m.brokers || []).length + " broker(s), added up; the " +
        "last " + (m.samplesMax || 0) + " samples are kept."),
      charts.length ? h("div", { class: "charts" }, charts)
        : h("p", { class: "empty" }, "Not enough samples yet."),
      brokers].filter(Boolean));
    setTimeout(draw, Math.max(m.intervalMs || 10000, 1000));
  };
  draw();
  return h("section", { id: "history-" + pool, "aria-labelledby": "history-h-" + pool },
    h("h2", { id: "history-h-" + pool }, "Over time: " + pool), box);
}

async function healthSection(pool) {
  const x = await api(paths.health(pool));
  const bad = (n) => h("strong", { class: n > 0 ? "soon" : "" }, String(n));
  return [
    h("dl", { class: "facts" },
      h("dt", {}, "Brokers"), h("dd", {}, String(x.brokers.length)),
      h("dt", {}, "Topics (internal ones too)"), h("dd", {}, String(x.topics)),
      h("dt", {}, "Partitions (internal ones too)"), h("dd", {}, String(x.partitions)),
      h("dt", {}, "Under-replicated partitions"), h("dd", {}, bad(x.underReplicatedPartitions)),
      h("dt", {}, "Offline partitions"), h("dd", {}, bad(x.offlinePartitions))),
    table("Brokers of " + pool, ["Id", "Host", "Port"], x.brokers.map((b) =>
      [String(b.id), b.host, String(b.port)]), "No brokers answered."),
  ];
}

async function backupsPage(ticket) {
  const b = await api(paths.backups());
  if (ticket !== gen) return;
  const pools = (b.pools || []).map((p) => [p.pool, h("div", {}, stateBadge(p.state),
    p.lastError ? h("div", { class: "status-msg" }, p.lastError) : null),
  when(p.lastSuccessTime), when(p.nextScheduledTime), String(p.successesTotal ?? 0),
  String(p.failuresTotal ?? 0)]);
  const files = (b.items || []).map((f) => [h("code", {}, f.name), f.pool, when(f.time),
    bytes(f.sizeBytes), h("div", {}, stateBadge(f.state),
      f.error ? h("div", { class: "status-msg" }, f.error) : null),
    f.summary ? `${f.summary.topics} topics, ${f.summary.acls} ACLs, ` +
      `${f.summary.resources} resources` : "—",
    h("button", { type: "button", class: "download", "aria-label": "Download " + f.name,
      onclick: async () => {
        try {
          await download(paths.backupFile(f.name), f.name);
        } catch (e) {
          if (e instanceof AuthError) return signOut(
            "Your session ended: the token is no longer valid (revoked or rotated).");
          say("Download failed: " + e.message);
        }
      } }, "Download")]);
  const sch = b.schedule || {};
  const outcome = h("div", { role: "status" });
  const now = h("button", { type: "button", id: "backup-now", onclick: async () => {
    now.disabled = true;
    outcome.replaceChildren(h("p", { class: "loading" }, "Backing up every pool…"));
    try {
      const r = await api(paths.backups(), { method: "POST", body: {} });
      say("Backed up: " + r.items.map((f) => f.name).join(", "));
      route();
    } catch (e) {
      if (e instanceof AuthError) return signOut(
        "Your session ended: the token is no longer valid (revoked or rotated).");
      outcome.replaceChildren(errorBox(e.message, false));
      now.disabled = false;
    }
  } }, "Back up now");
  show("Backups", h("h1", {}, "Backups"),
    h("p", { class: "summary" }, "Every " + ms(sch.intervalMs) + " into ",
      h("code", {}, sch.directory || "—"), ", keeping " + (sch.retentionCount ?? "—") +
      " files per pool (", h("code", {}, "kpool backup"), " restores one)."),
    h("div", { class: "browse" }, now), outcome,
    h("section", { id: "backup-pools", "aria-labelledby": "bp-h" },
      h("h2", { id: "bp-h" }, "Per pool"),
      table("Backups per pool", ["Pool", "State", "Last success", "Next", "Succeeded", "Failed"],
        pools, "No pool has been backed up yet.")),
    h("section", { id: "backup-files", "aria-labelledby": "bf-h" },
      h("h2", { id: "bf-h" }, "Files"),
      table("Backup files", ["File", "Pool", "Time", "Size", "State", "Holds", "Download"], files,
        "No backup files yet.")));
}

// ---- routing ----

async function route() {
  if (!me) return;
  const ns = currentNs();
  renderNav();
  const asked = /^#\/ns\/([^/]+)/.exec(location.hash);
  if (asked && !me.admin && decodeURIComponent(asked[1]) !== me.namespace) {
    const other = decodeURIComponent(asked[1]);
    show("Not your team", h("h1", {}, "Not your team"), errorBox("This token belongs to team " +
      me.namespace + "; it cannot see team " + other + ".", false),
    h("p", {}, h("a", { href: "#/ns/" + encodeURIComponent(me.namespace) }, "Back to team " +
      me.namespace)));
    return;
  }
  if (location.hash === "#/pools") return guarded("Pools", poolsPage);
  if (location.hash === "#/backups") return guarded("Backups", backupsPage);
  const m = /^#\/ns\/[^/]+\/topics\/([^/]+)$/.exec(location.hash);
  if (m && ns) {
    const name = decodeURIComponent(m[1]);
    return guarded("Topic " + name, (ticket) => topicPage(ns, name, ticket));
  }
  return guarded("Team " + (ns || ""), (ticket) => overview(ns, ticket));
}

window.addEventListener("hashchange", route);

async function start() {
  const t = token.get();
  if (!t) return signInPage();
  try {
    me = await api(paths.whoami(), { tok: t });
    await afterSignIn();
  } catch (e) {
    if (e instanceof AuthError) return signOut(
      "Your session ended: the token is no longer valid (revoked or rotated).");
    if (e instanceof UnreachableError) {
      show("Unreachable", h("h1", {}, "Control plane unreachable"),
        errorBox(e.message + " Is `kpool up` running?", start));
      return;
    }
    token.clear();
    signInPage(e.message);
  }
}

start();
