// End-to-end browser suite: the whole desk (emulator venue, daphne, market data, Celery) driven
// in Debian's headless Chromium through playwright-core. Started by scripts/e2e.sh with BASE_URL set.
//
// Each step is a named check with bounded waits (no fixed sleeps). A failing step saves
// screenshots/<step>.failed.png and screenshots/<step>.console.log; steps that need it are then
// reported as failed ("blocked"). The last line is always `N passed, N failed`.
import { mkdtempSync, mkdirSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const BASE_URL = (process.env.BASE_URL ?? "").replace(/\/$/, "");
const USERNAME = process.env.E2E_USERNAME ?? process.env.OPERATOR_USERNAME ?? "e2e";
const PASSWORD = process.env.E2E_PASSWORD ?? process.env.OPERATOR_PASSWORD ?? "e2e-password-123";
const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const HERE = dirname(fileURLToPath(import.meta.url));
const SHOTS = join(HERE, "screenshots");

if (!BASE_URL) {
  console.error("BASE_URL is not set (scripts/e2e.sh starts the stack and sets it)");
  process.exit(2);
}

// ---- the little harness -------------------------------------------------------------------

/** @type {{name: string, status: "pass" | "fail" | "skip", ms: number, detail?: string}[]} */
const results = [];
const consoleLog = [];
const pageErrors = [];
const socketCloses = [];
let page;

const slug = (s) => s.toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-|-$/g, "");

class Skip extends Error {}
/** Thrown from an `eventually` probe: stop waiting, the outcome is already decided. */
class Fatal extends Error {}

/** Run one named check; `needs` names earlier checks that must have passed. */
async function step(name, fn, { needs = [] } = {}) {
  const blocked = needs.filter((n) => results.find((r) => r.name === n)?.status !== "pass");
  if (blocked.length) {
    const by = blocked.length > 2 ? `${blocked.length} earlier steps` : blocked.join(", ");
    results.push({ name, status: "fail", ms: 0, detail: `blocked by ${by}` });
    console.log(`FAIL ${name} (blocked by ${by})`);
    return;
  }
  const started = Date.now();
  const errorsBefore = pageErrors.length;
  consoleLog.push(`---- step: ${name}`);
  try {
    const detail = await fn();
    // A React crash or unhandled rejection is a failure even when the page still looks right.
    if (pageErrors.length > errorsBefore) throw new Error(`uncaught page error: ${pageErrors.slice(errorsBefore).join(" | ")}`);
    results.push({ name, status: "pass", ms: Date.now() - started, detail });
    console.log(`ok   ${name} (${((Date.now() - started) / 1000).toFixed(1)} s)${detail ? ` — ${detail}` : ""}`);
  } catch (err) {
    const ms = Date.now() - started;
    if (err instanceof Skip) {
      results.push({ name, status: "skip", ms, detail: err.message });
      console.log(`SKIP ${name}: ${err.message}`);
      return;
    }
    const message = err instanceof Error ? err.message.split("\n").slice(0, 6).join("\n     ") : String(err);
    results.push({ name, status: "fail", ms, detail: message });
    console.log(`FAIL ${name} (${(ms / 1000).toFixed(1)} s): ${message}`);
    const base = join(SHOTS, `${slug(name)}.failed`);
    try {
      await page.screenshot({ path: `${base}.png`, fullPage: true, timeout: 10_000 });
    } catch (shotErr) {
      console.log(`     (no failure screenshot: ${shotErr instanceof Error ? shotErr.message : shotErr})`);
    }
    writeFileSync(`${base}.console.log`, `${consoleLog.join("\n")}\n`);
    console.log(`     saved ${base}.png and ${base}.console.log (url ${page?.url()})`);
    // Leave no modal or drawer over the page for the next (independent) step: reload the desk.
    try {
      await page.goto("/");
      await page.locator(tid("nav-dashboard")).waitFor({ timeout: 15_000 });
    } catch {
      /* the next step reports its own failure */
    }
  }
}

const tid = (id) => `[data-testid="${id}"]`;

async function shot(name) {
  // Finite CSS animations (antd modal zoom, drawer slide) are fast-forwarded to their end state.
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true, animations: "disabled" });
}

/** Poll `probe` until it returns a truthy value or `timeoutMs` passes; the error says what was awaited. */
async function eventually(what, probe, { timeoutMs = 15_000, everyMs = 200 } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      const value = await probe();
      if (value) return value;
      last = value;
    } catch (err) {
      if (err instanceof Fatal) throw err;
      last = err instanceof Error ? err.message : err;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what} (last: ${JSON.stringify(last)})`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** Same-origin API call with the page's session cookie; returns the parsed envelope. */
async function api(method, path, body) {
  return page.evaluate(
    async ({ method, path, body }) => {
      const csrf = document.cookie.split("; ").find((c) => c.startsWith("csrftoken="))?.split("=")[1];
      const res = await fetch(`/api${path}`, {
        method,
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", ...(csrf ? { "X-CSRFToken": csrf } : {}) },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      let json = null;
      try {
        json = await res.json();
      } catch {
        /* not JSON */
      }
      return { status: res.status, json };
    },
    { method, path, body },
  );
}

/** Pick an option in an antd <Select> identified by its data-testid. */
async function choose(testId, value) {
  const t = Date.now();
  try {
    await chooseNow(testId, value);
  } finally {
    if (process.env.E2E_TRACE) console.log(`     choose ${testId}=${value}: ${Date.now() - t} ms`);
  }
}

async function chooseNow(testId, value) {
  const select = page.locator(`.ant-select:has(${tid(testId)}), ${tid(testId)}.ant-select`).first();
  await select.click();
  const option = page.locator(`.ant-select-dropdown:visible .ant-select-item-option[title="${value}"]`);
  await option.click({ timeout: 5_000 });
  await page.locator(`.ant-select-dropdown:visible`).waitFor({ state: "hidden", timeout: 5_000 }).catch(() => {});
  const shown = (await select.locator(".ant-select-selection-item").textContent())?.trim();
  if (shown !== value) throw new Error(`select ${testId} shows "${shown}", wanted "${value}"`);
}

async function fill(testId, value) {
  const input = page.locator(tid(testId));
  await input.fill(String(value));
  const now = await input.inputValue();
  if (now !== String(value)) throw new Error(`input ${testId} holds "${now}", wanted "${value}"`);
}

async function gotoNav(label, ready) {
  await page.locator(tid(`nav-${label}`)).click();
  await page.locator(ready).first().waitFor({ state: "visible", timeout: 15_000 });
}

/** Text of the first success/error toast that shows up (antd message or notification). */
async function toastText(timeout) {
  const toast = page.locator(".ant-message-notice, .ant-notification-notice").first();
  await toast.waitFor({ state: "visible", timeout });
  return (await toast.innerText()).trim();
}

/** The backend's minimum TWAP interval, read from its validation message for a too-short one. */
async function twapMinIntervalMs() {
  const res = await api("POST", "/twap/plans", {
    name: "e2e-probe",
    totalQty: 0.001,
    sliceQty: 0.001,
    intervalMs: 1,
    legs: [
      { exchange: "bybit", symbol: "BTCUSDT", side: "buy", type: "market" },
      { exchange: "binance", symbol: "BTCUSDT", side: "sell", type: "market" },
    ],
  });
  if (res.status < 400) throw new Error(`a 1 ms TWAP interval was accepted: ${JSON.stringify(res.json)}`);
  const text = JSON.stringify(res.json?.error?.fields?.intervalMs ?? res.json);
  const match = /at least (\d+) ?ms/.exec(text);
  if (!match) throw new Error(`no minimum interval in ${text}`);
  return Math.max(1000, Number(match[1]));
}

/** Why the server says a plan is in its state (stateReason), for failure messages. */
async function planReason(planId) {
  const res = await api("GET", `/twap/plans/${planId}`);
  return res.json?.data?.stateReason ?? JSON.stringify(res.json);
}

/** The dashboard account card's balances ("BTC 1 1; USDT ..."), once loaded for `exchange`. */
async function accountText(exchange) {
  const card = page.locator(".ant-card", { has: page.locator(tid("account-exchange")) });
  const shown = (await card.locator(".ant-select-selection-item").innerText()).trim();
  if (shown !== exchange) throw new Error(`account card shows ${shown}, not ${exchange}`);
  return eventually(`${exchange} balances in the account card`, async () => {
    if ((await card.locator(".ant-spin-spinning").count()) > 0) return null;
    const rows = await card.locator(".ant-table-tbody tr.ant-table-row").allInnerTexts();
    return rows.length ? rows.map((r) => r.replace(/\s+/g, " ").trim()).join("; ") : null;
  });
}

// ---- the flow -----------------------------------------------------------------------------

const runStarted = Date.now();
mkdirSync(SHOTS, { recursive: true });
for (const f of readdirSync(SHOTS)) rmSync(join(SHOTS, f), { recursive: true, force: true }); // only this run's pictures
const profile = mkdtempSync(join(tmpdir(), "arbsite-e2e-chromium-"));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: CHROMIUM,
  headless: true,
  args: [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
  ],
  viewport: { width: Number(process.env.E2E_WIDTH ?? 1440), height: 900 }, // E2E_WIDTH=1280: a laptop screen
  baseURL: BASE_URL,
});
context.setDefaultTimeout(15_000);
page = context.pages()[0] ?? (await context.newPage());
const t0 = Date.now();
const stamp = () => `${((Date.now() - t0) / 1000).toFixed(1).padStart(6)}s`;
page.on("console", (m) => consoleLog.push(`${stamp()} console.${m.type()}: ${m.text()}`));
page.on("pageerror", (e) => {
  consoleLog.push(`${stamp()} pageerror: ${e.message}`);
  pageErrors.push(e.message);
});
page.on("requestfailed", (r) => consoleLog.push(`${stamp()} requestfailed: ${r.method()} ${r.url()} ${r.failure()?.errorText ?? ""}`));
page.on("response", (r) => {
  if (r.status() >= 400) consoleLog.push(`${stamp()} http ${r.status()}: ${r.request().method()} ${r.url()}`);
});
page.on("websocket", (ws) => {
  consoleLog.push(`${stamp()} websocket open: ${ws.url()}`);
  ws.on("close", () => {
    consoleLog.push(`${stamp()} websocket closed: ${ws.url()}`);
    socketCloses.push(stamp().trim());
  });
});

const flow = { pairId: null, twapPlanId: null };

await step("log in through the form", async () => {
  await page.goto("/");
  await page.waitForURL(/\/login$/, { timeout: 15_000 });
  await page.locator(tid("login-username")).fill(USERNAME);
  await page.locator(tid("login-password")).fill(PASSWORD);
  await shot("login");
  await page.locator(tid("login-submit")).click();
  await eventually("the desk after signing in", async () => {
    const refused = page.locator(tid("login-error"));
    if (await refused.isVisible()) throw new Fatal(`login refused: ${(await refused.innerText()).trim()}`);
    return page.locator(tid("nav-dashboard")).isVisible();
  });
  if (new URL(page.url()).pathname !== "/") throw new Error(`after login the URL is ${page.url()}`);
  await page.locator(`${tid("connection-indicator")}[data-state="open"]`).waitFor({ timeout: 15_000 });
});

await step(
  "dashboard shows the emulator and both exchanges",
  async () => {
    await page.locator(`${tid("venue-badge")}[data-venue="emulator"]`).waitFor();
    await page.locator(tid("emulator-banner")).waitFor();
    await page.locator(tid("paper-badge")).waitFor();
    const health = {};
    for (const name of ["binance", "bybit"]) {
      await page.locator(tid(`exchange-${name}`)).waitFor();
      // The market-data process watches both venues from the start: wait for a healthy stream.
      health[name] = await eventually(
        `${name} to report healthy`,
        async () => {
          const text = (await page.locator(tid(`exchange-${name}-health`)).innerText()).trim();
          return text === "healthy" ? text : false;
        },
        { timeoutMs: 30_000 },
      );
    }
    flow.accountBefore = await accountText("binance");
    await shot("dashboard");
    return `binance ${health.binance}, bybit ${health.bybit}; binance paper account ${flow.accountBefore}`;
  },
  { needs: ["log in through the form"] },
);

await step(
  "create a pair through the drawer",
  async () => {
    await gotoNav("arbitrage", tid("pair-new"));
    const rowIds = async () =>
      page.locator('[data-testid^="pair-row-"]').evaluateAll((rows) => rows.map((r) => r.getAttribute("data-testid").slice("pair-row-".length)));
    await page.locator(".ant-table-tbody").first().waitFor();
    const before = new Set(await rowIds());
    await page.locator(tid("pair-new")).click();
    await page.locator(tid("pair-submit")).waitFor();
    await choose("pair-leg1-exchange", "bybit");
    await choose("pair-leg1-type", "linear");
    await fill("pair-leg1-symbol", "BTCUSDT");
    await choose("pair-leg2-exchange", "binance");
    await choose("pair-leg2-type", "spot");
    await fill("pair-leg2-symbol", "BTCUSDT");
    await fill("pair-threshold", "0.1");
    await fill("pair-qty", "0.001");
    await fill("pair-total-amount", "200");
    await page.locator(tid("pair-submit")).click();
    const created = await eventually(
      "the new pair's row",
      async () => {
        const formError = page.locator(tid("pair-form-error"));
        if (await formError.isVisible()) throw new Fatal(`form error: ${(await formError.innerText()).trim()}`);
        return (await rowIds()).find((id) => !before.has(id));
      },
      { timeoutMs: 15_000 },
    );
    flow.pairId = created;
    await page.locator(tid("pair-submit")).waitFor({ state: "hidden" });
    return `pair ${created}`;
  },
  { needs: ["log in through the form"] },
);

await step(
  "the pair's live prices and spread move",
  async () => {
    const id = flow.pairId;
    const read = async () => {
      const cells = [`pair-${id}-leg1-bid`, `pair-${id}-leg2-bid`, `pair-${id}-leg1-ask`, `pair-${id}-leg2-ask`];
      const values = [];
      for (const c of cells) {
        const el = page.locator(tid(c));
        if ((await el.count()) === 0) return null;
        values.push((await el.innerText()).trim());
      }
      return values.every((v) => /^\d+(\.\d+)?$/.test(v)) ? values : null;
    };
    const first = await eventually("bid/ask prices on both legs", read, { timeoutMs: 30_000 });
    const spread = (await page.locator(tid(`pair-${id}-spread`)).innerText()).trim();
    const moved = await eventually(
      "a leg bid to change",
      async () => {
        const now = await read();
        return now && (now[0] !== first[0] || now[1] !== first[1]) ? now : null;
      },
      { timeoutMs: 30_000 },
    );
    await page.locator(`${tid(`pair-${id}-sparkline`)}`).waitFor();
    await shot("arbitrage");
    return `bids ${first[0]}/${first[1]} -> ${moved[0]}/${moved[1]}, spread ${spread}`;
  },
  { needs: ["create a pair through the drawer"] },
);

await step(
  "execute the pair on paper",
  async () => {
    const id = flow.pairId;
    await page.locator(tid(`pair-${id}-execute`)).click();
    await page.locator(tid("execute-confirm")).waitFor();
    const paper = (await page.locator(tid("execute-paper")).innerText({ timeout: 10_000 })).trim();
    if (!/PAPER/.test(paper)) throw new Error(`paper tag reads "${paper}"`);
    await shot("execute-modal");
    await page.locator(tid("execute-confirm")).click();
    const outcome = await eventually(
      "the execution result",
      async () => {
        const err = page.locator(tid("execute-error"));
        if (await err.isVisible()) throw new Fatal(`execution refused: ${(await err.innerText()).trim()}`);
        const ok = page.locator(".ant-message-notice", { hasText: `Executed ${id}` });
        if (await ok.isVisible()) return (await ok.innerText()).trim();
        const warn = page.locator(".ant-notification-notice", { hasText: `Execution of ${id}` });
        if (await warn.isVisible()) throw new Fatal(`execution not completed: ${(await warn.innerText()).trim()}`);
        return null;
      },
      { timeoutMs: 30_000 },
    );
    if (!outcome.includes("[paper]")) throw new Error(`success message without [paper]: ${outcome}`);
    await page.locator(tid("execute-confirm")).waitFor({ state: "hidden" });
    // The pair's execution history (expanded row) lists it as a completed paper execution.
    await page.locator(`${tid(`pair-row-${id}`)} .ant-table-row-expand-icon`).click();
    const history = page.locator(".ant-table-expanded-row .ant-table-row").first();
    const row = await eventually(
      "a completed paper execution in the pair's history",
      async () => {
        if ((await history.count()) === 0) return null;
        const text = (await history.innerText()).replace(/\s+/g, " ");
        return /completed/.test(text) && /paper/.test(text) ? text : null;
      },
      { timeoutMs: 10_000 },
    );
    await shot("arbitrage-executed");
    return `${outcome}; history: ${row.trim()}`;
  },
  { needs: ["the pair's live prices and spread move"] },
);

await step(
  "the fills reach the dashboard timeline",
  async () => {
    await gotoNav("dashboard", tid("event-timeline"));
    const fills = page.locator(tid("event-order_filled"));
    await eventually("two order_filled entries (one per leg)", async () => (await fills.count()) >= 2, { timeoutMs: 20_000 });
    const texts = await fills.allInnerTexts();
    for (const ex of ["bybit", "binance"]) {
      if (!texts.some((t) => t.includes(ex))) throw new Error(`no ${ex} fill in the timeline: ${JSON.stringify(texts)}`);
    }
    if (!texts.every((t) => t.includes("[paper]"))) throw new Error(`a fill is not marked paper: ${JSON.stringify(texts)}`);
    // Both legs traded, so the Binance paper account on the dashboard must show the fill.
    let accountAfter = flow.accountBefore;
    if (flow.accountBefore !== undefined) {
      accountAfter = await eventually(
        "the binance account card to show post-fill balances",
        async () => {
          const now = await accountText("binance");
          return now !== flow.accountBefore ? now : null;
        },
        { timeoutMs: 10_000 },
      );
    }
    await shot("dashboard-fills");
    return `${texts.map((t) => t.replace(/\s+/g, " ")).join(" | ")}; binance account now ${accountAfter}`;
  },
  { needs: ["execute the pair on paper"] },
);

await step(
  "dashboard analytics: paper PnL, opportunity statistics, performance monitor",
  async () => {
    await gotoNav("dashboard", tid("pnl-card"));
    // The paper execution above has a realised PnL: it must be counted on the paper side, never as live.
    const paper = await eventually(
      "the paper PnL total to count the execution",
      async () => {
        const text = (await page.locator(tid("pnl-paper")).innerText()).replace(/\s+/g, " ");
        const m = text.match(/(\d+) execution\(s\)/);
        return m && Number(m[1]) >= 1 ? text : null;
      },
      { timeoutMs: 15_000 },
    );
    if (!paper.includes("PAPER")) throw new Error(`paper PnL is not labelled: ${paper}`);
    const stats = page.locator(tid("opportunity-stats"));
    await eventually("the opportunity statistics to load", async () => {
      const error = page.locator(tid("opportunity-stats-error"));
      if (await error.isVisible()) throw new Fatal(`stats error: ${(await error.innerText()).trim()}`);
      return !(await stats.locator(".ant-spin-spinning").count());
    });
    const statRows = await page.locator('[data-testid^="opportunity-stats-"]').evaluateAll((rows) =>
      rows.map((r) => r.getAttribute("data-testid")).filter((id) => id !== "opportunity-stats" && id !== "opportunity-stats-error"),
    );
    const perf = await eventually("the performance monitor status", async () => {
      const error = page.locator(tid("performance-error"));
      if (await error.isVisible()) throw new Fatal(`performance error: ${(await error.innerText()).trim()}`);
      const status = page.locator(tid("performance-status"));
      return (await status.count()) ? (await status.innerText()).trim() : null;
    });
    if (!["ok", "degraded", "no data"].includes(perf)) throw new Error(`performance status "${perf}"`);
    await shot("dashboard-analytics");
    return `${paper.trim()}; ${statRows.length} pair(s) with opportunity stats; performance ${perf}`;
  },
  { needs: ["execute the pair on paper"] },
);

await step(
  "TWAP plan: create, start, pause, resume, complete",
  async () => {
    await gotoNav("twap", tid("twap-create"));
    const probe = await api("GET", "/twap/plans");
    if (probe.status === 404 || probe.json?.error?.code === "NOT_FOUND") {
      await shot("twap");
      throw new Skip(`the TWAP API is not in the backend yet (GET /api/twap/plans -> ${probe.status} ${probe.json?.error?.message ?? ""})`);
    }
    if (probe.status !== 200) throw new Error(`GET /api/twap/plans -> ${probe.status} ${JSON.stringify(probe.json)}`);
    const minMs = await twapMinIntervalMs();
    const rowIds = async () =>
      page.locator('[data-testid^="twap-row-"]').evaluateAll((rows) => rows.map((r) => r.getAttribute("data-testid").slice("twap-row-".length)));
    const before = new Set(await rowIds());
    const name = `e2e_twap_${Date.now()}`;
    await fill("twap-name", name);
    await fill("twap-total-qty", "0.003");
    await fill("twap-slice-qty", "0.001");
    await fill("twap-interval", String(minMs / 1000));
    await choose("twap-leg1-exchange", "bybit");
    await choose("twap-leg1-market", "linear");
    await fill("twap-leg1-symbol", "BTCUSDT");
    await choose("twap-leg1-side", "buy");
    await choose("twap-leg2-exchange", "binance");
    await choose("twap-leg2-market", "spot");
    await fill("twap-leg2-symbol", "BTCUSDT");
    await choose("twap-leg2-side", "sell");
    await page.locator(tid("twap-create")).click();
    const id = await eventually(
      "the new plan's row",
      async () => {
        const formError = page.locator(tid("twap-form-error"));
        if (await formError.isVisible()) throw new Fatal(`form error: ${(await formError.innerText()).trim()}`);
        return (await rowIds()).find((planId) => !before.has(planId));
      },
      { timeoutMs: 15_000 },
    );
    flow.twapPlanId = id;
    const state = async () => (await page.locator(tid(`twap-${id}-state`)).innerText()).trim();
    const progress = async () => (await page.locator(tid(`twap-${id}-progress`)).innerText()).replace(/\s+/g, " ").trim();
    const waitState = (wanted, timeoutMs = 15_000) =>
      eventually(`plan ${id} to be ${wanted}`, async () => {
        const s = await state();
        // Past the operator's own pause, "paused" means the engine stopped the plan: say why.
        const unexpected = s === "failed" || (s === "completed" && wanted !== "completed") || (s === "paused" && wanted === "completed");
        if (unexpected) throw new Fatal(`plan is ${s} (${await progress()}): ${await planReason(id)}`);
        return s === wanted;
      }, { timeoutMs });
    const timeline = [`created (${await state()})`];

    await page.locator(tid(`twap-${id}-start`)).click();
    await waitState("running");
    timeline.push(`started: ${await progress()}`);
    // Pause while slices remain: the button is enabled as soon as the row shows "running".
    await page.locator(tid(`twap-${id}-pause`)).click();
    await waitState("paused");
    const pausedAt = await progress();
    timeline.push(`paused: ${pausedAt}`);
    await shot("twap-paused");
    await page.locator(tid(`twap-${id}-resume`)).click();
    await waitState("running").catch(async (err) => {
      if ((await state()) !== "completed") throw err; // the last slice can finish straight after resume
    });
    timeline.push("resumed");
    await waitState("completed", 60_000);
    const done = await progress();
    if (!/0\.003 \/ 0\.003/.test(done) || !/slices 3\/3/.test(done)) throw new Error(`completed with progress "${done}"`);
    timeline.push(`completed: ${done}`);
    await shot("twap");
    return `${id}: ${timeline.join("; ")}`;
  },
  { needs: ["log in through the form"] },
);

await step(
  "TWAP slice history",
  async () => {
    const twap = results.find((r) => r.name === "TWAP plan: create, start, pause, resume, complete");
    if (twap?.status === "skip") throw new Skip("no TWAP API in the backend");
    if (twap?.status !== "pass") throw new Error("blocked by the TWAP plan step");
    const id = flow.twapPlanId;
    const toggle = page.locator(tid(`twap-${id}-slices-toggle`));
    await toggle.focus();
    await page.keyboard.press("Enter"); // keyboard-operable, like every control
    const panel = page.locator(tid(`twap-${id}-slices`));
    await panel.waitFor();
    const rows = panel.locator('[data-testid^="slice-row-"]');
    await eventually("three slice rows", async () => (await rows.count()) === 3);
    const states = await panel.locator('[data-testid$="-state"]').allInnerTexts();
    if (!states.every((st) => st.trim() === "done")) throw new Error(`slice states: ${JSON.stringify(states)}`);
    const fills = [];
    for (const leg of [1, 2]) {
      for (let i = 1; i <= 3; i += 1) {
        const text = (await panel.locator(tid(`slice-${i}-leg${leg}`)).innerText()).replace(/\s+/g, " ");
        if (!/^0\.001 @ \d/.test(text)) throw new Error(`slice ${i} leg ${leg}: "${text}"`);
        fills.push(text);
      }
    }
    await shot("twap-slices");
    return `${id}: ${fills.slice(0, 2).join(" | ")} ...`;
  },
  { needs: ["log in through the form"] },
);

await step(
  "settings page",
  async () => {
    await gotoNav("settings", tid("kill-switch"));
    // No keys anywhere in this stack: both venues must say publicOnly, and no key is ever echoed.
    for (const name of ["binance", "bybit"]) {
      const mode = (await page.locator(tid(`api-mode-${name}`)).innerText()).trim();
      if (mode !== "publicOnly") throw new Error(`${name} keys card says "${mode}"`);
      const key = await page.locator(tid(`api-key-${name}`)).inputValue();
      if (key) throw new Error(`${name} API key input is prefilled`);
    }
    // Risk limits: once the backend serves them, the form must render from its fields.
    const risk = await api("GET", "/risk/limits");
    let riskNote = `risk limits API -> ${risk.status}`;
    if (risk.status === 200) {
      await page.locator(tid("risk-limits-save")).waitFor();
      const field = page.locator(tid("risk-maxOrderNotional"));
      const shown = await eventually("the max order notional limit in the form", async () => (await field.inputValue()) || null);
      const server = risk.json?.data?.global?.maxOrderNotional;
      if (Number(shown) !== Number(server)) throw new Error(`form shows maxOrderNotional ${shown}, server says ${server}`);
      const body = await page.locator("main, .ant-layout-content").first().innerText();
      if (body.includes("[object Object]")) throw new Error("the settings page renders [object Object]");
      const state = (await page.locator(tid("risk-global-state")).innerText()).trim();
      riskNote += `, ${await page.locator('input[data-testid^="risk-"]').count()} limit fields, trading ${state}`;
      // The kill switch round trip: engage (confirmed), see it, release (confirmed).
      await page.locator(tid("kill-switch")).click();
      await page.locator(tid("kill-switch-confirm")).click();
      await page.locator(tid("kill-switch-engaged")).waitFor();
      await shot("settings-kill-switch");
      await page.locator(tid("kill-switch")).click();
      await page.locator(tid("kill-switch-confirm")).click();
      await page.locator(tid("kill-switch-engaged")).waitFor({ state: "hidden" });
      riskNote += ", kill switch engaged and released";
    }
    await shot("settings");
    return riskNote;
  },
  { needs: ["log in through the form"] },
);

await step(
  "operator token: created once, works as a bearer key, revoked",
  async () => {
    if (!(await page.locator(tid("operator-tokens")).isVisible())) await gotoNav("settings", tid("operator-tokens"));
    const bearer = (key) =>
      page.evaluate(async (key) => (await fetch("/api/auth/tokens", { credentials: "omit", headers: { Authorization: `Bearer ${key}` } })).status, key);
    const name = `e2e-${Date.now()}`;
    await fill("token-name", name);
    await page.keyboard.press("Enter"); // the form submits from the keyboard
    const keyField = page.locator(tid("token-key"));
    await keyField.waitFor();
    const key = await keyField.inputValue();
    if (!key) throw new Error("no key shown after creating a token");
    const warning = (await page.locator(tid("token-key-warning")).innerText()).trim();
    if (!/not see it again/i.test(warning)) throw new Error(`warning reads "${warning}"`);
    await shot("settings-token-created");
    await page.locator(tid("token-key-done")).click();
    await keyField.waitFor({ state: "detached" });
    if ((await page.content()).includes(key)) throw new Error("the key is still in the page after the modal closed");
    const row = page.locator('[data-testid^="token-row-"]', { hasText: name });
    await row.waitFor();
    const rowId = (await row.getAttribute("data-testid")).slice("token-row-".length);
    const usable = await bearer(key);
    if (usable !== 200) throw new Error(`GET /api/auth/tokens with the new key -> ${usable}`);
    await page.locator(tid(`token-${rowId}-revoke`)).click();
    await page.locator(tid(`token-${rowId}-revoke-confirm`)).click();
    await eventually("the token to show revoked", async () => (await page.locator(tid(`token-${rowId}-status`)).innerText()).trim() === "revoked");
    const after = await bearer(key);
    if (after !== 401 && after !== 403) throw new Error(`a revoked key still answers ${after}`);
    return `token ${rowId}: key worked (200), shown once, revoked (then ${after})`;
  },
  { needs: ["log in through the form"] },
);

await step(
  "the live websocket stayed up for the whole run",
  async () => {
    if (socketCloses.length) throw new Error(`the /ws socket closed ${socketCloses.length} time(s), at ${socketCloses.join(", ")}`);
    const state = await page.locator(tid("connection-indicator")).getAttribute("data-state");
    if (state !== "open") throw new Error(`connection indicator is ${state}`);
  },
  // After a failed step the page is reloaded (which closes the socket): only judge a clean run.
  { needs: results.map((r) => r.name) },
);

await context.close();
rmSync(profile, { recursive: true, force: true });
writeFileSync(join(SHOTS, "console.log"), `${consoleLog.join("\n")}\n`);

const count = (s) => results.filter((r) => r.status === s).length;
console.log(`\ne2e finished in ${((Date.now() - runStarted) / 1000).toFixed(1)} s; screenshots in ${SHOTS}`);
for (const r of results.filter((r) => r.status === "skip")) console.log(`skipped: ${r.name} — ${r.detail}`);
console.log(`${count("pass")} passed, ${count("fail")} failed`);
process.exit(count("fail") > 0 ? 1 : 0);
