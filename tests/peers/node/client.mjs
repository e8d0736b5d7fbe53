// A scriptable MCP client on the official TypeScript SDKs, for Warden's end-to-end tests.
//
//   node client.mjs '<spec as JSON>'
//
// spec = {
//   sdk: "v1" (@modelcontextprotocol/sdk 1.x) | "v2" (@modelcontextprotocol/client 2.x),
//   era: "legacy" | "auto" | "modern"            (v2 only; v1 is always legacy),
//   transport: { type: "http", url, headers?, balance? } | { type: "stdio", command, args, env? },
//     balance: [url, ...] sends each HTTP request to the next of these in turn, as a load balancer
//     without stickiness does, and on to the next when one cannot be reached (out.balanced says
//     where each request went),
//   capabilities: { sampling?, elicitation?, roots? },
//   answers: { sampling?: result, elicitation?: result, roots?: [roots] },
//   ops: [ { op: "listTools" | "callTool" | ..., ... } ],
// }
//
// Prints one JSON object: { connected, era, version, server, instructions, ops: [...], notifications,
// serverRequests }. Every op records ok/result or ok:false/error, so the test decides what is right.

const spec = JSON.parse(process.argv[2]);
const v2 = spec.sdk === 'v2';
const answers = spec.answers ?? {};
const capabilities = spec.capabilities ?? {};
const notifications = [];
const serverRequests = [];
const out = { connected: false, ops: [], notifications, serverRequests };

let Client, HttpTransport, StdioTransport, schemas = {};
if (v2) {
  ({ Client, StreamableHTTPClientTransport: HttpTransport } = await import('@modelcontextprotocol/client'));
  ({ StdioClientTransport: StdioTransport } = await import('@modelcontextprotocol/client/stdio'));
} else {
  ({ Client } = await import('@modelcontextprotocol/sdk/client/index.js'));
  ({ StreamableHTTPClientTransport: HttpTransport } = await import('@modelcontextprotocol/sdk/client/streamableHttp.js'));
  ({ StdioClientTransport: StdioTransport } = await import('@modelcontextprotocol/sdk/client/stdio.js'));
  schemas = await import('@modelcontextprotocol/sdk/types.js');
}

const options = { capabilities };
if (v2) {
  const era = spec.era ?? 'auto';
  options.versionNegotiation = { mode: era === 'modern' ? { pin: '2026-07-28' } : era };
}
const client = new Client({ name: `warden-e2e-${spec.sdk}`, version: '1.0.0' }, options);
client.onerror = (e) => { out.clientErrors = [...(out.clientErrors ?? []), String(e?.message ?? e)]; };

function onRequest(method, schema, answer) {
  const handler = async (req) => {
    serverRequests.push({ method, params: req.params ?? null });
    if (answer === undefined) throw new Error(`no answer configured for ${method}`);
    // A person or a model takes time to answer; tests can make it so.
    if (answers.delayMs) await new Promise((r) => setTimeout(r, answers.delayMs));
    return answer;
  };
  if (v2) client.setRequestHandler(method, handler);
  else client.setRequestHandler(schema, handler);
}
if (capabilities.sampling) onRequest('sampling/createMessage', schemas.CreateMessageRequestSchema, answers.sampling);
if (capabilities.elicitation) onRequest('elicitation/create', schemas.ElicitRequestSchema, answers.elicitation);
if (capabilities.roots) onRequest('roots/list', schemas.ListRootsRequestSchema, answers.roots === undefined ? undefined : { roots: answers.roots });

// Keep the first notifications whole and count the rest, so a flood cannot swamp the output.
const MAX_RECORDED = 500;
out.notificationCount = 0;
const record = (n) => {
  out.notificationCount++;
  if (notifications.length < MAX_RECORDED) notifications.push({ method: n.method, params: n.params ?? null });
};
client.fallbackNotificationHandler = async (n) => record(n);
const notificationMethods = [
  ['notifications/message', 'LoggingMessageNotificationSchema'],
  ['notifications/tools/list_changed', 'ToolListChangedNotificationSchema'],
  ['notifications/prompts/list_changed', 'PromptListChangedNotificationSchema'],
  ['notifications/resources/list_changed', 'ResourceListChangedNotificationSchema'],
  ['notifications/resources/updated', 'ResourceUpdatedNotificationSchema'],
];
for (const [method, schemaName] of notificationMethods) {
  try {
    if (v2) client.setNotificationHandler(method, async (n) => record(n));
    else client.setNotificationHandler(schemas[schemaName], async (n) => record(n));
  } catch { /* the SDK may reserve some handlers */ }
}

function describeError(e) {
  return {
    name: e?.constructor?.name,
    code: e?.code,
    message: String(e?.message ?? e),
    data: e?.data ?? null,
  };
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
let transport;
const t = spec.transport;
if (t.type === 'http') {
  const opts = t.headers ? { requestInit: { headers: t.headers } } : {};
  if (t.balance) {
    out.balanced = [];
    let next = 0;
    opts.fetch = async (url, init) => {
      let last;
      for (let tries = 0; tries < t.balance.length; tries++) {
        const to = t.balance[next++ % t.balance.length];
        try {
          const r = await fetch(new URL(new URL(url).pathname, to), init);
          out.balanced.push({ method: init?.method ?? 'GET', to, status: r.status });
          return r;
        } catch (e) {
          out.balanced.push({ method: init?.method ?? 'GET', to, unreachable: String(e?.cause?.code ?? e?.message ?? e) });
          last = e;
        }
      }
      throw last;
    };
  }
  transport = new HttpTransport(new URL(t.url), Object.keys(opts).length ? opts : undefined);
} else {
  transport = new StdioTransport({ command: t.command, args: t.args ?? [], env: { ...process.env, ...(t.env ?? {}) }, stderr: 'pipe' });
}

try {
  await client.connect(transport);
  out.connected = true;
} catch (e) {
  out.connectError = describeError(e);
  process.stdout.write(JSON.stringify(out) + '\n', () => process.exit(0));
  await new Promise(() => {});
}
out.era = v2 ? client.getProtocolEra() : 'legacy';
out.version = v2 ? client.getNegotiatedProtocolVersion() : transport.protocolVersion ?? null;
out.server = client.getServerVersion() ?? null;
out.capabilities = client.getServerCapabilities() ?? null;
out.instructions = client.getInstructions?.() ?? null;
out.sessionId = transport.sessionId ?? null;

let listen = null;
async function runOp(o) {
  const timeout = o.timeoutMs ?? 30000;
  const reqOpts = { timeout };
  switch (o.op) {
    case 'listTools': return client.listTools(o.cursor ? { cursor: o.cursor } : undefined, reqOpts);
    case 'listAllTools': {
      const tools = []; let cursor; let pages = 0;
      do { const r = await client.listTools(cursor ? { cursor } : undefined, reqOpts); tools.push(...r.tools); cursor = r.nextCursor; pages++; } while (cursor && pages < 100);
      return { tools, pages };
    }
    case 'callTool': {
      const progress = [];
      const params = { name: o.name, arguments: o.arguments ?? {} };
      if (o.meta) params._meta = o.meta;
      const opts = { ...reqOpts };
      if (o.progress) opts.onprogress = (p) => progress.push(p);
      if (o.abortAfterMs) { const ac = new AbortController(); setTimeout(() => ac.abort('cancelled by the test'), o.abortAfterMs); opts.signal = ac.signal; }
      const r = v2 ? await client.callTool(params, opts) : await client.callTool(params, undefined, opts);
      return o.progress ? { ...r, __progress: progress } : r;
    }
    case 'listPrompts': return client.listPrompts(undefined, reqOpts);
    case 'getPrompt': return client.getPrompt({ name: o.name, arguments: o.arguments ?? {} }, reqOpts);
    case 'listResources': return client.listResources(undefined, reqOpts);
    case 'listResourceTemplates': return client.listResourceTemplates(undefined, reqOpts);
    case 'readResource': return client.readResource({ uri: o.uri }, reqOpts);
    case 'subscribe': return client.subscribeResource({ uri: o.uri }, reqOpts);
    case 'unsubscribe': return client.unsubscribeResource({ uri: o.uri }, reqOpts);
    case 'complete': return client.complete({ ref: o.ref, argument: o.argument }, reqOpts);
    case 'setLevel': return client.setLoggingLevel(o.level, reqOpts);
    case 'ping': return client.ping(reqOpts);
    case 'rootsChanged': return client.sendRootsListChanged();
    case 'sleep': await sleep(o.ms); return {};
    case 'waitFor': {
      const deadline = Date.now() + (o.timeoutMs ?? 10000);
      const count = () => notifications.filter((n) => n.method === o.method && (!o.uri || n.params?.uri === o.uri)).length;
      while (count() < (o.count ?? 1)) { if (Date.now() > deadline) throw new Error(`timed out waiting for ${o.method}`); await sleep(25); }
      return { count: count() };
    }
    case 'listen': listen = await client.listen(o.filter); return { honoredFilter: listen.honoredFilter };
    case 'parallel': {
      // Several ops at once on the one connection, for tests of what holds under concurrency.
      const settled = await Promise.allSettled((o.ops ?? []).map((x) => runOp(x)));
      return settled.map((r) => (r.status === 'fulfilled' ? { ok: true, result: r.value } : { ok: false, error: describeError(r.reason) }));
    }
    case 'closeListen': if (listen) await listen.close(); return {};
    case 'terminate': await transport.terminateSession(); return {};
    default: throw new Error(`unknown op ${o.op}`);
  }
}

for (const o of spec.ops ?? []) {
  try {
    out.ops.push({ op: o.op, ok: true, result: await runOp(o) });
  } catch (e) {
    out.ops.push({ op: o.op, ok: false, error: describeError(e) });
  }
}
try { await client.close(); } catch { /* already closed */ }
// Exit only once the result is written: a pipe may take it in several chunks.
process.stdout.write(JSON.stringify(out) + '\n', () => process.exit(0));
