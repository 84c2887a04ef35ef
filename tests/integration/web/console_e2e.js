// console_e2e.js — the web console end to end in Debian's headless Chromium, driven by
// playwright-core (no browser download). Run by test_console_web.py, which starts `kpool up`,
// creates the teams, topics and messages and passes them in the environment:
//   BASE_URL, ADMIN_TOKEN, TOKEN_A, NS_A, TOPIC_A, VALUE_A, GROUP_A, APP_A, USER_A, FAILING_TOPIC,
//   RECORDS_A, AVRO_A, SUBJECT_A, FAILING_MESSAGE, NS_B, TOPIC_B, VALUE_B, TOKEN_C, NS_C, SHOTS (a directory)
// Prints one line per step; exits 1 with the failed step's reason.
"use strict";
const { chromium } = require("playwright-core");
const fs = require("fs");
const os = require("os");
const path = require("path");

const E = process.env;
const WAIT = { timeout: 15000 };

// Asks the Python side (test_console_web.py) to do something only a Kafka client can.
const stdinLines = [];
let stdinWaiter = null;
const stdinReader = require("readline").createInterface({ input: process.stdin });
stdinReader.on("line", (l) => {
  if (stdinWaiter) { const w = stdinWaiter; stdinWaiter = null; w(l); } else stdinLines.push(l);
});
function ask(what) {
  console.log("ask: " + what);
  return new Promise((resolve) => {
    if (stdinLines.length) resolve(stdinLines.shift()); else stdinWaiter = resolve;
  });
}

function step(name) {
  console.log("step: " + name);
}

function check(cond, what) {
  if (!cond) throw new Error("check failed: " + what);
}

async function text(page) {
  return page.locator("body").innerText();
}

async function signIn(page, tok) {
  await page.locator("#token").fill(tok);
  await page.locator("form.signin button[type=submit]").click();
}

async function main() {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), "kpool-chromium-"));
  // a fresh profile each run (Playwright passes it as --user-data-dir)
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: E.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    viewport: { width: 1280, height: 800 },
    acceptDownloads: true,
  });
  const errors = [];
  try {
    const page = await context.newPage();
    page.on("pageerror", (e) => errors.push("page error: " + e.message));
    page.on("console", (m) => { if (m.type() === "error" && !/401|403|404|Failed to load/.test(m.text())) errors.push("console: " + m.text()); });
    const urls = [];
    page.on("request", (r) => urls.push(r.url()));

    step("an unauthenticated visitor sees only the sign-in page");
    await page.goto(E.BASE_URL + "/");
    await page.getByRole("heading", { name: "Sign in" }).waitFor(WAIT);
    check(await page.locator("#nav").isHidden(), "no navigation before sign-in");
    check(!(await text(page)).includes(E.TOPIC_A), "no topic before sign-in");
    await page.screenshot({ path: path.join(E.SHOTS, "console-signin.png") });

    step("a bad token is refused with a message");
    await signIn(page, "not-a-token");
    await page.locator("#signin-error").waitFor({ state: "visible", ...WAIT });
    check(/not valid/.test(await page.locator("#signin-error").innerText()), "bad-token message");
    check(await page.getByRole("heading", { name: "Sign in" }).isVisible(), "still signing in");

    step("team A signs in and sees its topics");
    await signIn(page, E.TOKEN_A);
    await page.getByRole("heading", { name: "Team " + E.NS_A }).waitFor(WAIT);
    const topics = page.locator("#topics");
    await topics.getByRole("link", { name: E.TOPIC_A, exact: true }).waitFor(WAIT);
    await topics.getByText("RolloutComplete").first().waitFor(WAIT);
    const failing = topics.locator("tr", { hasText: E.FAILING_TOPIC });
    await failing.getByText("FailedPrepare").waitFor(WAIT);
    await failing.getByText(E.FAILING_MESSAGE).waitFor(WAIT);
    const topicRow = topics.locator("tr", { hasText: E.NS_A + "." + E.TOPIC_A });
    const records = topicRow.locator("[data-figure=records]");
    await page.waitForFunction((el) => /^\d+$/.test(el.textContent), await records.elementHandle(), WAIT);
    check(await records.innerText() === E.RECORDS_A, "records of " + E.TOPIC_A + ": " +
      await records.innerText());
    // size in bytes and produce rate, from the control plane's samples of the pool's metrics
    const size = topicRow.locator("[data-figure=size]");
    await page.waitForFunction((el) => /^\d+(\.\d)?\s(B|KiB)$/.test(el.textContent),
      await size.elementHandle(), WAIT);
    // a figure, not a value: the records were produced just before, so the samples may still
    // cover them (zero once quiet and positive under load: test_console_api.py's
    // test_partition_sizes_and_produce_rate)
    const rate = await topicRow.locator("[data-figure=rate]").innerText();
    check(/^[\d,]+(\.\d)? records\/s$/.test(rate), "produce rate of " + E.TOPIC_A + ": " + rate);
    check(await page.locator("#nav").getByRole("link", { name: "Backups" }).count() === 0,
      "no Backups link for a team");
    const overview = await text(page);
    check(!overview.includes(E.TOPIC_B), "team B's topic is not shown to team A");
    check(await page.evaluate(() => sessionStorage.getItem("kpool.token")) === E.TOKEN_A,
      "the token is in sessionStorage");
    check(await page.evaluate(() => localStorage.length) === 0, "nothing in localStorage");
    const subject = page.locator("#schemas .subject", { hasText: E.SUBJECT_A });
    await subject.getByText("BACKWARD").waitFor(WAIT);
    await subject.locator(".diff .add", { hasText: '"qty"' }).waitFor(WAIT); // v1 -> v2
    const app = page.locator("#applications tr", { hasText: E.USER_A });
    await app.getByText("RolloutComplete", { exact: true }).waitFor(WAIT);
    await app.getByRole("link", { name: E.TOPIC_A, exact: true }).waitFor(WAIT); // granted, with its access
    await app.getByText("readwrite").first().waitFor(WAIT);
    await app.getByText(/\(\d+ d\)/).waitFor(WAIT); // certificate expiry, days left
    // kpool doctor's findings: the failing Topic granting the app access is its one problem
    await app.locator(".doctor summary").getByText("1 problem").waitFor(WAIT);
    await app.locator(".finding.problem", { hasText: "Topic " + E.NS_A + "/" + E.FAILING_TOPIC +
      " is FailedPrepare" }).waitFor(WAIT);
    await app.locator(".finding.ok", { hasText: E.NS_A + "." + E.TOPIC_A + ": readwrite" })
      .waitFor(WAIT);
    // the check with the app's own credentials (the control plane connects with its secret)
    await app.getByRole("button", { name: "Check with the app's credentials" }).click();
    const live = app.locator(".doctor-pool");
    await live.getByText("Pool (with " + E.NS_A + "/").waitFor({ timeout: 30000 });
    await live.locator(".finding.ok", { hasText: /^ok: connected to .* over TLS$/ }).waitFor(WAIT);
    await live.locator(".finding.ok", { hasText: E.NS_A + "." + E.TOPIC_A +
      ": exists and is authorized" }).waitFor(WAIT);
    await app.getByRole("button", { name: "Check the pool again" }).waitFor(WAIT);
    await page.screenshot({ path: path.join(E.SHOTS, "console-team.png"), fullPage: true });

    step("the topic page: partitions, ACL, consumer group lag, the message browser");
    await topics.getByRole("link", { name: E.TOPIC_A, exact: true }).click();
    await page.getByRole("heading", { name: "Topic " + E.TOPIC_A }).waitFor(WAIT);
    await page.locator("#acl").getByText("readwrite").first().waitFor(WAIT);
    await page.locator("#partitions table").waitFor(WAIT);
    check(/on disk, produce rate/.test(await page.locator("#partitions .summary").innerText()),
      "the topic's size and rate");
    const p0 = page.locator("#partitions tbody tr").first().locator("td").last();
    check(/^\d+(\.\d)?\s(B|KiB)$/.test(await p0.innerText()), "partition 0's size: " +
      await p0.innerText());
    const group = page.locator("#groups .group", { hasText: E.GROUP_A });
    await group.waitFor(WAIT);
    check(/lag [1-9]/.test(await group.locator("h3").innerText()), "the group shows its lag");
    const msg = page.locator("#messages li.message", { hasText: E.VALUE_A });
    await msg.first().waitFor(WAIT);
    await page.locator("#messages pre.json").first().waitFor(WAIT); // JSON pretty-printed
    await page.locator("#messages").getByText("hex").first().waitFor(WAIT); // binary as hex
    const avro = page.locator("#messages li.message", { hasText: E.AVRO_A });
    await avro.getByText(/^AVRO · schema \d+$/).waitFor(WAIT); // decoded through the registry
    check(/"item": "avro-coffee"/.test(await avro.locator("pre.json").innerText()), "Avro as JSON");
    // charts sampled by the page: produce rate and the group's lag, with labelled axes
    const rates = page.locator("#rates");
    await rates.locator("figure", { hasText: "Consumer lag" }).locator("svg").waitFor(WAIT);
    check((await rates.locator("svg text.label").allTextContents()).includes("records/s"),
      "the rate chart's y axis says records/s");
    await rates.locator(".legend", { hasText: E.GROUP_A + ": 2 records" }).waitFor(WAIT);
    // the consume rate: the brokers' kpool_topic_records_out_total, read by the message
    // browser's fetches above, as the control plane sampled it
    await rates.locator("figure", { hasText: "Produce and consume rate" }).locator(".legend li",
      { hasText: /^consumed: / }).waitFor({ timeout: 20000 });
    const p0endBefore = await page.locator("#partitions tbody tr").first().locator("td").nth(5)
      .innerText();
    check(await ask("produce") === "ok", "the producer wrote");
    // the next samples (every 5 s) show the lag the new records make: 2 + 5
    await rates.locator(".legend", { hasText: E.GROUP_A + ": 7 records" })
      .waitFor({ timeout: 20000 });
    // and the tables follow without a reload: the group's lag, partition 0's end offset
    await page.locator("#groups .group h3", { hasText: "lag 7" }).waitFor({ timeout: 20000 });
    await page.locator("#partitions .updated").waitFor(WAIT);
    const p0end = await page.locator("#partitions tbody tr").first().locator("td").nth(5)
      .innerText();
    check(Number(p0end) >= 5 + Number(p0endBefore), "partition 0's end offset moved: " +
      p0endBefore + " -> " + p0end);
    // the lag chart is drawn from the history the control plane keeps
    await rates.getByText(/the lag by the control plane/).waitFor(WAIT);
    await page.screenshot({ path: path.join(E.SHOTS, "console-topic.png"), fullPage: true });

    step("the browser reads from an offset");
    await page.locator("#mode").selectOption("offset");
    await page.locator("#offset").fill("1");
    await page.locator("#partition").selectOption("0");
    await page.locator("#read").click();
    await page.locator("#messages li.message").first().waitFor(WAIT);
    const first = await page.locator("#messages li.message .meta").first().innerText();
    check(/offset\s*1\b/.test(first), "from offset 1 the first message is offset 1: " + first);

    step("keyboard: the sign-out button is reachable with Tab");
    let reached = false;
    await page.locator("body").focus();
    for (let i = 0; i < 12 && !reached; i++) {
      await page.keyboard.press("Tab");
      reached = await page.evaluate(() => document.activeElement && document.activeElement.id === "signout");
    }
    check(reached, "Tab reaches Sign out");

    step("phone width");
    await page.setViewportSize({ width: 390, height: 844 });
    await page.screenshot({ path: path.join(E.SHOTS, "console-topic-phone.png") });
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - innerWidth);
    check(overflow <= 1, "no horizontal scrolling of the page at 390 px (" + overflow + ")");
    await page.setViewportSize({ width: 1280, height: 800 });

    step("team A cannot open team B's namespace or topic");
    await page.goto(E.BASE_URL + "/#/ns/" + E.NS_B + "/topics/" + E.TOPIC_B);
    await page.getByRole("heading", { name: "Not your team" }).waitFor(WAIT);
    await page.getByText("cannot see team " + E.NS_B).waitFor(WAIT);
    check(!(await text(page)).includes(E.VALUE_B), "team B's message is not shown");

    step("sign out");
    await page.goto(E.BASE_URL + "/#/");
    await page.locator("#signout").click();
    await page.getByRole("heading", { name: "Sign in" }).waitFor(WAIT);
    check(await page.evaluate(() => sessionStorage.getItem("kpool.token")) === null,
      "the token is gone");

    step("a revoked token sends the user back to sign-in with a message");
    await signIn(page, E.TOKEN_C);
    await page.getByRole("heading", { name: "Team " + E.NS_C }).waitFor(WAIT);
    // every part of the page loaded (its schemas too), so no request of it races the revoke
    await page.waitForFunction(() => !document.querySelector(".loading, .muted"), null, WAIT);
    const res = await fetch(E.BASE_URL + "/apis/kpool.dev/v1/teams/" + E.NS_C, {
      method: "DELETE", headers: { Authorization: "Bearer " + E.ADMIN_TOKEN } });
    check(res.status === 200, "revoke answered " + res.status);
    await page.locator("#signout").waitFor(WAIT);
    // the next request the page makes is refused (401)
    await page.evaluate((ns) => { location.hash = "#/ns/" + ns + "/topics/any"; }, E.NS_C);
    await page.getByRole("heading", { name: "Sign in" }).waitFor(WAIT);
    await page.getByText("no longer valid").waitFor(WAIT);

    step("the admin sees every team");
    await signIn(page, E.ADMIN_TOKEN);
    await page.locator("#team").waitFor(WAIT);
    await page.locator("#team").selectOption(E.NS_B);
    await page.getByRole("heading", { name: "Team " + E.NS_B }).waitFor(WAIT);
    await page.locator("#topics").getByRole("link", { name: E.TOPIC_B, exact: true }).waitFor(WAIT);

    step("pools and backups");
    await page.locator("#nav").getByRole("link", { name: "Pools" }).click();
    await page.getByRole("heading", { name: "Pools", exact: true }).waitFor(WAIT);
    await page.locator("#pools tr", { hasText: "dev" }).getByText("Ready").waitFor(WAIT);
    const health = page.locator("#health-dev");
    await health.getByRole("table").waitFor(WAIT); // its brokers
    check(/Offline partitions\s*0/.test(await health.innerText()), "no offline partitions");
    // the pool over time, from the control plane's samples of the broker's metrics
    const hist = page.locator("#history-dev");
    for (const [title, unit] of [["Requests", /^requests\/s$/], ["Request latency", /^ms$/],
      ["Network", /^(B|KiB|MiB)\/s$/], ["Disk used by logs", /^(B|KiB|MiB)$/]]) {
      const fig = hist.locator("figure", { hasText: title });
      await fig.locator("svg").waitFor(WAIT);
      const labels = await fig.locator("svg text.label").allTextContents();
      check(labels.some((l) => unit.test(l)) && labels.includes("time (UTC)"),
        title + " axes: " + labels);
    }
    await hist.locator("figure", { hasText: "Request latency" }).locator(".legend",
      { hasText: "99th percentile" }).waitFor(WAIT);
    const disk = hist.locator("table tbody tr").first();
    check(/\/metrics/.test(await disk.innerText()) && /(KiB|MiB|GiB|TiB)/.test(await disk.innerText()),
      "disk use per broker: " + await disk.innerText());
    await page.screenshot({ path: path.join(E.SHOTS, "console-pools.png"), fullPage: true });
    await page.locator("#nav").getByRole("link", { name: "Backups" }).click();
    await page.getByRole("heading", { name: "Backups", exact: true }).waitFor(WAIT);
    await page.locator("#backup-files").getByText("No backup files yet.").waitFor(WAIT);
    await page.locator("#backup-now").click();
    await page.locator("#backup-files tr", { hasText: "dev-" }).getByText("Verified")
      .waitFor({ timeout: 30000 });
    step("a backup file downloaded");
    const [dl] = await Promise.all([page.waitForEvent("download", WAIT),
      page.locator("#backup-files tr", { hasText: "dev-" }).getByRole("button",
        { name: /^Download / }).first().click()]);
    const saved = path.join(E.SHOTS, "downloaded-backup");
    await dl.saveAs(saved);
    console.log("downloaded: " + dl.suggestedFilename() + " " + saved);

    step("an unreachable control plane is said so");
    await page.route("**/apis/**", (r) => r.abort("connectionrefused"));
    await page.reload();
    await page.getByText("did not answer").waitFor(WAIT);
    await page.screenshot({ path: path.join(E.SHOTS, "console-unreachable.png") });
    await page.unroute("**/apis/**");

    check(!urls.some((u) => u.includes(E.TOKEN_A) || u.includes(E.ADMIN_TOKEN)),
      "no token in any URL");
    check(!urls.some((u) => !u.startsWith(E.BASE_URL)), "no request leaves the control plane: " +
      urls.filter((u) => !u.startsWith(E.BASE_URL)).join(" "));
    check(errors.length === 0, "no page errors: " + errors.join("; "));
    console.log("ok");
  } catch (e) {
    // what the page showed when it failed, for the report
    for (const p of context.pages()) {
      await p.screenshot({ path: path.join(E.SHOTS, "console-failure.png"), fullPage: true })
        .catch(() => {});
      console.log("page " + p.url() + ":\n" + (await p.locator("body").innerText().catch(() => "")));
    }
    if (errors.length) console.log("page errors: " + errors.join("; "));
    throw e;
  } finally {
    await context.close();
    fs.rmSync(profile, { recursive: true, force: true });
  }
}

main().then(() => stdinReader.close(), (e) => {
  console.error(e.stack || String(e));
  process.exit(1);
});
