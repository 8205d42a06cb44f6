// Calls a model API with the official SDKs (openai, @anthropic-ai/sdk from
// tests/node/node_modules) and prints one JSON line with what came back.
// usage: node sdk_client.mjs openai|anthropic BASE_URL MODEL stream|whole
// The proxy comes from HTTPS_PROXY/HTTP_PROXY (undici's EnvHttpProxyAgent),
// TLS trust from NODE_EXTRA_CA_CERTS.
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, "../../node/package.json"));
const [, , sdk, baseURL, model, mode] = process.argv;
// node 20's fetch ignores HTTP(S)_PROXY: route it through undici's
// EnvHttpProxyAgent, which reads them (and NO_PROXY) like curl does.
const undici = require("undici");
const proxied = process.env.HTTPS_PROXY || process.env.HTTP_PROXY || process.env.https_proxy || process.env.http_proxy;
const dispatcher = proxied ? new undici.EnvHttpProxyAgent() : undefined;
const fetch = (url, init) => undici.fetch(url, { ...init, dispatcher });
const stream = mode === "stream";
const out = { sdk, stream, text: "", error: null, model: null };

try {
  if (sdk === "openai") {
    const OpenAI = require("openai").default ?? require("openai");
    const client = new OpenAI({ baseURL, apiKey: "sk-sandbox-must-not-leak", maxRetries: 0, fetch });
    const params = { model, messages: [{ role: "user", content: "hi" }] };
    if (stream) {
      const s = await client.chat.completions.create({ ...params, stream: true });
      for await (const ch of s) {
        if (ch.model) out.model = ch.model;
        out.text += ch.choices?.[0]?.delta?.content ?? "";
      }
    } else {
      const r = await client.chat.completions.create(params);
      out.model = r.model;
      out.text = r.choices[0].message.content;
    }
  } else {
    const mod = require("@anthropic-ai/sdk");
    const Anthropic = mod.default ?? mod.Anthropic ?? mod;
    const client = new Anthropic({ baseURL, apiKey: "sk-ant-sandbox-must-not-leak", maxRetries: 0, fetch });
    const params = { model, max_tokens: 16, messages: [{ role: "user", content: "hi" }] };
    if (stream) {
      const s = await client.messages.create({ ...params, stream: true });
      for await (const ev of s) {
        if (ev.type === "message_start") out.model = ev.message.model;
        if (ev.type === "content_block_delta") out.text += ev.delta.text ?? "";
      }
    } else {
      const r = await client.messages.create(params);
      out.model = r.model;
      out.text = r.content[0].text;
    }
  }
} catch (e) {
  out.error = String(e?.message ?? e);
}
console.log(JSON.stringify(out));
