// Drives an execd files API with OpenSandbox's official JavaScript SDK's
// filesystem adapter, unchanged (the same one `sandbox.files` uses).
// usage: node sdk_files.mjs BASE_URL DIR [HEADER=VALUE ...]
//   BASE_URL: execd itself, or `cordon server`'s /sandboxes/{id}/proxy/{port}
//   DIR: an empty directory the test owns
// Prints one JSON object with what it saw; the pytest side asserts on it.
import { createHash } from "node:crypto";
import { createExecdClient, FilesystemAdapter } from "@alibaba-group/opensandbox/internal";

const [baseUrl, dir, ...hdrs] = process.argv.slice(2);
const headers = Object.fromEntries(hdrs.map((h) => [h.slice(0, h.indexOf("=")), h.slice(h.indexOf("=") + 1)]));
const client = createExecdClient({ baseUrl, headers });
const files = new FilesystemAdapter(client, { baseUrl, headers });
const out = {};
const sha = (b) => createHash("sha256").update(b).digest("hex");

// small text and bytes (FormData path)
await files.createDirectories([{ path: `${dir}/a/b`, mode: 750 }]);
await files.writeFiles([
  { path: `${dir}/a/b/hello.txt`, data: "hello from the sdk\nsecond line\n", mode: 640 },
  { path: `${dir}/bytes.bin`, data: new Uint8Array([0, 1, 2, 255, 254, 13, 10]) },
]);
out.text = await files.readFile(`${dir}/a/b/hello.txt`);
out.bytes = Array.from(await files.readBytes(`${dir}/bytes.bin`));
out.range = await files.readFile(`${dir}/a/b/hello.txt`, { range: "bytes=5-14" });

// a large file through the streaming multipart path, read back as a stream
const MB = 1 << 20, SIZE = 24 * MB;
const big = new Uint8Array(SIZE);
for (let i = 0; i < SIZE; i++) big[i] = (i * 7 + (i >> 12)) & 255;
async function* chunks() {
  for (let o = 0; o < SIZE; o += MB) yield big.subarray(o, o + MB);
}
await files.writeFiles([{ path: `${dir}/big/big.bin`, data: chunks(), mode: 600 }]);
const h = createHash("sha256");
let got = 0;
for await (const c of files.readBytesStream(`${dir}/big/big.bin`)) {
  h.update(c);
  got += c.length;
}
out.bigSent = sha(big);
out.bigGot = h.digest("hex");
out.bigLen = got;

// metadata
const info = await files.getFileInfo([`${dir}/a/b/hello.txt`, `${dir}/big/big.bin`]);
out.info = Object.fromEntries(Object.entries(info).map(([k, v]) => [k, {
  path: v.path, type: v.type, size: v.size, mode: v.mode, owner: v.owner,
  modified: v.modifiedAt instanceof Date, created: v.createdAt instanceof Date,
}]));
out.dirMode = (await files.getFileInfo([`${dir}/a/b`]))[`${dir}/a/b`].mode;
out.list = (await files.listDirectory({ path: dir, depth: 3 })).map((e) => [e.path, e.type]).sort();
out.search = (await files.search({ path: dir, pattern: "*.txt" })).map((e) => e.path);

// change things
await files.setPermissions([{ path: `${dir}/bytes.bin`, mode: 604 }]);
out.chmod = (await files.getFileInfo([`${dir}/bytes.bin`]))[`${dir}/bytes.bin`].mode;
await files.moveFiles([{ src: `${dir}/bytes.bin`, dest: `${dir}/moved/here.bin` }]);
out.moved = Array.from(await files.readBytes(`${dir}/moved/here.bin`));
out.replaced = await files.replaceContentsDetailed([
  { path: `${dir}/a/b/hello.txt`, oldContent: "line", newContent: "LINE!" },
]);
out.afterReplace = await files.readFile(`${dir}/a/b/hello.txt`);
await files.deleteFiles([`${dir}/moved/here.bin`]);
await files.deleteDirectories([`${dir}/a`]);
out.afterDelete = (await files.listDirectory({ path: dir, depth: 1 })).map((e) => e.path).sort();

// errors keep their status
try {
  await files.readFile(`${dir}/no-such-file`);
  out.missing = "read";
} catch (e) {
  out.missing = e.statusCode ?? String(e);
}
try {
  await files.getFileInfo([`${dir}/no-such-file`]);
  out.missingInfo = "read";
} catch (e) {
  out.missingInfo = e.statusCode ?? String(e);
}
console.log(JSON.stringify(out));
