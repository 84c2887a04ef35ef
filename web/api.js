// api.js — the console's only way to the control plane: fetch() with the bearer token.
// The token lives in sessionStorage (gone when the tab closes), never in a URL.

const TOKEN_KEY = "kpool.token";

export class ApiError extends Error {
  constructor(code, reason, message) {
    super(message);
    this.code = code;
    this.reason = reason;
  }
}

// 401: the token is unknown or was revoked or rotated; the app signs out.
export class AuthError extends ApiError {}

// The control plane did not answer at all (down, restarting, network).
export class UnreachableError extends Error {}

export const token = {
  get: () => sessionStorage.getItem(TOKEN_KEY),
  set: (t) => sessionStorage.setItem(TOKEN_KEY, t),
  clear: () => sessionStorage.removeItem(TOKEN_KEY),
};

export async function api(path, opts = {}) {
  try {
    return await call(path, opts);
  } catch (e) {
    // the console's pool requests were all busy: once more, after the wait it asked for
    if (!(e instanceof ApiError) || e.code !== 503 || !e.retryAfter || opts.method) throw e;
    await new Promise((r) => setTimeout(r, Math.min(e.retryAfter, 10) * 1000));
    return call(path, opts);
  }
}

async function call(path, { tok = token.get(), signal, method = "GET", body } = {}) {
  if (!tok) throw new AuthError(401, "Unauthorized", "Signed out.");
  let res;
  const headers = { Authorization: "Bearer " + tok, Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  try {
    res = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
      credentials: "omit",
      signal,
    });
  } catch (e) {
    if (e.name === "AbortError") throw e;
    throw new UnreachableError("The control plane at " + location.host + " did not answer.");
  }
  let answer = null;
  try {
    answer = await res.json();
  } catch (e) {
    answer = null;
  }
  if (res.ok) return answer;
  const msg = (answer && answer.message) || res.status + " " + res.statusText;
  const reason = (answer && answer.reason) || "";
  if (res.status === 401) throw new AuthError(401, reason, msg);
  if (res.status === 502 || res.status === 504) throw new UnreachableError(msg);
  const err = new ApiError(res.status, reason, msg);
  err.retryAfter = Number(res.headers.get("Retry-After")) || 0;
  throw err;
}

// Downloads path as a file called name: fetched with the token (a plain link could not send
// it), then handed to the browser as a blob URL.
export async function download(path, name) {
  const tok = token.get();
  if (!tok) throw new AuthError(401, "Unauthorized", "Signed out.");
  let res;
  try {
    res = await fetch(path, { headers: { Authorization: "Bearer " + tok }, cache: "no-store",
      credentials: "omit" });
  } catch (e) {
    throw new UnreachableError("The control plane at " + location.host + " did not answer.");
  }
  if (!res.ok) {
    let msg = res.status + " " + res.statusText;
    try { msg = (await res.json()).message || msg; } catch (e) { /* not JSON */ }
    if (res.status === 401) throw new AuthError(401, "Unauthorized", msg);
    throw new ApiError(res.status, "", msg);
  }
  const url = URL.createObjectURL(await res.blob());
  const a = document.createElement("a");
  a.href = url;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60000);
}

// Paths of the public API (docs/api.md).
const enc = encodeURIComponent;
export const paths = {
  whoami: () => "/apis/kpool.dev/v1/whoami",
  teams: () => "/apis/kpool.dev/v1/teams",
  pools: () => "/apis/kpool.dev/v1/pools",
  health: (pool) => `/apis/kpool.dev/v1/pools/${enc(pool)}/health`,
  poolMetrics: (pool) => `/apis/kpool.dev/v1/pools/${enc(pool)}/metrics`,
  backups: () => "/apis/kpool.dev/v1/backups",
  backupFile: (name) => `/apis/kpool.dev/v1/backups/files/${enc(name)}`,
  topics: (ns) => `/apis/kafka.nais.io/v1/namespaces/${enc(ns)}/topics`,
  topic: (ns, n) => `/apis/kafka.nais.io/v1/namespaces/${enc(ns)}/topics/${enc(n)}`,
  streams: (ns) => `/apis/kafka.nais.io/v1/namespaces/${enc(ns)}/streams`,
  apps: (ns) => `/apis/nais.io/v1alpha1/namespaces/${enc(ns)}/applications`,
  aivenapps: (ns) => `/apis/aiven.nais.io/v1/namespaces/${enc(ns)}/aivenapplications`,
  subjects: (ns) => `/apis/kpool.dev/v1/namespaces/${enc(ns)}/subjects`,
  doctor: (ns, app, connect) =>
    `/apis/kpool.dev/v1/namespaces/${enc(ns)}/applications/${enc(app)}/doctor` +
    (connect ? "?connect=true" : ""),
  secret: (ns, n) => `/api/v1/namespaces/${enc(ns)}/secrets/${enc(n)}`,
  console: (ns, n, what, q) =>
    `/apis/kpool.dev/v1/namespaces/${enc(ns)}/topics/${enc(n)}/${what}` +
    (q ? "?" + new URLSearchParams(q).toString() : ""),
};
