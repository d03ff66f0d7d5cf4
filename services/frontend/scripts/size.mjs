// The main bundle's size, gzipped: it must stay under 200 KB.
import { readdirSync, readFileSync } from "node:fs";
import { gzipSync } from "node:zlib";

const dir = new URL("../dist/assets/", import.meta.url);
let total = 0;
for (const name of readdirSync(dir)) {
  const size = gzipSync(readFileSync(new URL(name, dir))).length;
  total += size;
  console.log(`${name}\t${(size / 1024).toFixed(1)} KB gzipped`);
}
console.log(`total\t${(total / 1024).toFixed(1)} KB gzipped (limit 200 KB)`);
if (total > 200 * 1024) process.exit(1);
