// Writes a brotli (.br) and a gzip (.gz) copy beside each text file of the built UI, once at
// build time, so the server sends the smallest form a browser takes without compressing on
// every request. Node's own zlib does both; files under 1 KiB are left as they are.

import { readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { brotliCompressSync, constants, gzipSync } from "node:zlib";

const DIST = new URL("../dist/", import.meta.url).pathname;
const TEXT = /\.(js|css|html|svg|json|txt|map)$/;
const MIN_BYTES = 1024;

function* files(dir) {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) yield* files(path);
    else if (TEXT.test(name)) yield path;
  }
}

let before = 0;
let afterBr = 0;
for (const path of files(DIST)) {
  const data = readFileSync(path);
  if (data.length < MIN_BYTES) continue;
  const br = brotliCompressSync(data, {
    params: { [constants.BROTLI_PARAM_QUALITY]: 11, [constants.BROTLI_PARAM_SIZE_HINT]: data.length },
  });
  writeFileSync(`${path}.br`, br);
  writeFileSync(`${path}.gz`, gzipSync(data, { level: 9 }));
  before += data.length;
  afterBr += br.length;
}
console.log(`compressed the UI: ${(before / 1024).toFixed(0)} KiB of text, ${(afterBr / 1024).toFixed(0)} KiB as brotli`);
