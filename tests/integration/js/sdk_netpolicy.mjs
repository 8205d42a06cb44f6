// Creates a sandbox with OpenSandbox's networkPolicy through the official
// JavaScript SDK, unchanged, and probes egress from inside it with curl.
// usage: node sdk_netpolicy.mjs PORT KEY
// Prints one JSON object with what it saw; the pytest side asserts on it.
import { ConnectionConfig, Sandbox } from "@alibaba-group/opensandbox";

const [port, key] = process.argv.slice(2);
const config = new ConnectionConfig({ domain: `127.0.0.1:${port}`, apiKey: key });
const out = {};
const curl = "curl -s -o /dev/null -m 10 -w '%{http_code}\\n' http://";
const sbx = await Sandbox.create({
  connectionConfig: config, image: "cordon-host", timeoutSeconds: 600,
  networkPolicy: {
    defaultAction: "deny",
    egress: [{ action: "allow", target: "allowed.test" }],
  },
});
out.id = sbx.id;
out.allowed = (await sbx.commands.run(curl + "allowed.test/")).logs.stdout.map((m) => m.text);
out.denied = (await sbx.commands.run(curl + "denied.test/")).logs.stdout.map((m) => m.text);
try {
  await Sandbox.create({
    connectionConfig: config, image: "cordon-host", timeoutSeconds: 600,
    networkPolicy: { egress: [{ action: "allow", target: "10.0.0.0/8" }] },
  });
  out.refused = "created";
} catch (e) {
  out.refused = { status: e.statusCode ?? null, message: e.error?.message ?? String(e) };
}
console.log(JSON.stringify(out));
