// Drives `cordon server` with OpenSandbox's official JavaScript SDK, unchanged.
// usage: node sdk_drive.mjs PORT KEY USE_SERVER_PROXY(0|1)
// Prints one JSON object with what it saw; the pytest side asserts on it.
import { ConnectionConfig, Sandbox, SandboxManager } from "@alibaba-group/opensandbox";

const [port, key, proxy] = process.argv.slice(2);
const config = new ConnectionConfig({
  domain: `127.0.0.1:${port}`, apiKey: key, useServerProxy: proxy === "1",
});
const out = {};
const sbx = await Sandbox.create({
  connectionConfig: config, image: "cordon-host", timeoutSeconds: 600,
  env: { FOO: "bar baz" }, metadata: { via: "sdk", proxy },
});
out.id = sbx.id;
let ex = await sbx.commands.run("echo hello $FOO; echo second line");
out.stdout = ex.logs.stdout.map((m) => m.text); // one event per line, as OpenSandbox's execd
out.exitCode = ex.exitCode ?? null;
const streamed = [];
ex = await sbx.commands.run("echo to-err >&2; exit 3", undefined, {
  onStderr: (m) => streamed.push(m.text),
});
out.stderr = streamed;
out.failExitCode = ex.exitCode ?? null;
out.failError = ex.error ? ex.error.name || String(ex.error.value) : null;
const info = await sbx.getInfo();
out.state = info.status.state;
out.metadata = info.metadata;
out.expiresAt = info.expiresAt ? new Date(info.expiresAt).toISOString() : null;
out.endpoint = (await sbx.getEndpoint(44772)).endpoint;
const mgr = SandboxManager.create({ connectionConfig: config });
const list = await mgr.listSandboxInfos({ metadata: { via: "sdk", proxy } });
out.listed = list.items.map((i) => i.id);
await sbx.pause();
out.pausedState = (await sbx.getInfo()).status.state;
const resumed = await sbx.resume();
ex = await resumed.commands.run("echo after-resume");
out.afterResume = ex.logs.stdout.map((m) => m.text);
await resumed.renew(1800);
const renewed = await resumed.getInfo();
out.renewedBy = Math.round((new Date(renewed.expiresAt) - Date.now()) / 1000);
await resumed.kill();
await resumed.close();
try {
  await mgr.getSandboxInfo(out.id);
  out.afterKill = "still there";
} catch (e) {
  out.afterKill = e.error?.code ?? String(e);
}
console.log(JSON.stringify(out));
