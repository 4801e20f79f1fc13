#!/usr/bin/env node
/**
 * Bundle-size budget: gzip every dist/assets/*.js and fail when the entry chunk (the script
 * dist/index.html loads) or all JS together exceeds its budget. Run after `vite build`.
 *
 *   node scripts/size.mjs            # budgets below
 *   SIZE_ENTRY_KB=420 SIZE_TOTAL_KB=550 node scripts/size.mjs
 *
 * kB = 1000 bytes of gzip (level 9), the unit Vite's build report uses.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join, basename, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";

const ENTRY_BUDGET_KB = Number(process.env.SIZE_ENTRY_KB ?? 450);
const TOTAL_BUDGET_KB = Number(process.env.SIZE_TOTAL_KB ?? 600);

const dist = join(dirname(fileURLToPath(import.meta.url)), "..", "dist");
const assets = join(dist, "assets");

let html;
try {
  html = readFileSync(join(dist, "index.html"), "utf8");
} catch {
  console.error("size: dist/index.html not found — run `npm run build` first");
  process.exit(2);
}
const entryMatch = html.match(/<script[^>]+type="module"[^>]+src="[^"]*\/assets\/([^"]+\.js)"/);
if (!entryMatch) {
  console.error("size: no module entry script in dist/index.html");
  process.exit(2);
}
const entryName = entryMatch[1];

const kb = (bytes) => (bytes / 1000).toFixed(2);
const rows = readdirSync(assets)
  .filter((f) => f.endsWith(".js"))
  .map((f) => {
    const raw = readFileSync(join(assets, f));
    return { file: f, raw: raw.length, gzip: gzipSync(raw, { level: 9 }).length, entry: f === entryName };
  })
  .sort((a, b) => b.gzip - a.gzip);

const entry = rows.find((r) => r.entry);
if (!entry) {
  console.error(`size: entry ${entryName} is not in dist/assets`);
  process.exit(2);
}
const total = rows.reduce((sum, r) => sum + r.gzip, 0);

for (const r of rows) {
  console.log(`${r.entry ? "entry " : "chunk "} ${kb(r.gzip).padStart(8)} kB gzip  ${kb(r.raw).padStart(9)} kB  ${basename(r.file)}`);
}
console.log(`entry  ${kb(entry.gzip)} kB gzip (budget ${ENTRY_BUDGET_KB} kB)`);
console.log(`total  ${kb(total)} kB gzip (budget ${TOTAL_BUDGET_KB} kB)`);

const failures = [];
if (entry.gzip > ENTRY_BUDGET_KB * 1000) failures.push(`entry chunk ${kb(entry.gzip)} kB > ${ENTRY_BUDGET_KB} kB`);
if (total > TOTAL_BUDGET_KB * 1000) failures.push(`all JS ${kb(total)} kB > ${TOTAL_BUDGET_KB} kB`);
if (failures.length) {
  console.error(`size: over budget: ${failures.join("; ")}`);
  process.exit(1);
}
console.log("size: within budget");
