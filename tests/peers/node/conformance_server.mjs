// The reference server for the MCP conformance suite's server scenarios, built on the official
// TypeScript SDK 2.x. The suite ships no server of its own on a registry, so Warden's tests run it
// against this one directly and through the gateway, and compare.
//
//   PORT=3200 node conformance_server.mjs
//
// One endpoint at /mcp serves both eras: 2025-era clients get a sessionful transport (their
// sampling and elicitation need a session), 2026-07-28 clients the stateless handler.

import http from 'node:http';
import { randomUUID } from 'node:crypto';
import * as z from 'zod/v4';
import {
  McpServer, ResourceTemplate, completable, createMcpHandler, isLegacyRequest,
  inputRequired, acceptedContent, createRequestStateCodec,
} from '@modelcontextprotocol/server';
import {
  NodeStreamableHTTPServerTransport, toNodeHandler, toWebRequest,
  localhostHostValidation, localhostOriginValidation,
} from '@modelcontextprotocol/node';

const PORT = Number(process.env.PORT || 3200);
const IMG = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==';
const WAV = 'UklGRiYAAABXQVZFZm10IBAAAAABAAEAQB8AAAB9AAACABAAZGF0YQIAAAA=';
const codec = createRequestStateCodec({ key: 'warden-conformance-reference-key-0123456789abcdef' });
const CAPS_KEY = 'io.modelcontextprotocol/clientCapabilities';
const text = (t) => ({ content: [{ type: 'text', text: t }] });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const nameSchema = { type: 'object', properties: { name: { type: 'string' } }, required: ['name'] };
const confirmSchema = { type: 'object', properties: { ok: { type: 'boolean' } }, required: ['ok'] };
const capsOf = (ctx) => ctx.mcpReq.envelope?.[CAPS_KEY] ?? {};
let modern;

function factory() {
  const s = new McpServer({ name: 'warden-conformance-reference', version: '1.0.0' }, {
    capabilities: {
      tools: { listChanged: true }, prompts: { listChanged: true },
      resources: { subscribe: true, listChanged: true }, logging: {}, completions: {},
    },
    requestState: { verify: codec.verify },
  });
  const tool = (name, cb, inputSchema) => s.registerTool(name, { description: `Conformance fixture ${name}.`, inputSchema: inputSchema ?? z.object({}) }, cb);

  tool('test_simple_text', async () => text('This is a simple text response for testing.'));
  tool('test_image_content', async () => ({ content: [{ type: 'image', data: IMG, mimeType: 'image/png' }] }));
  tool('test_audio_content', async () => ({ content: [{ type: 'audio', data: WAV, mimeType: 'audio/wav' }] }));
  tool('test_embedded_resource', async () => ({ content: [{ type: 'resource', resource: { uri: 'test://embedded-resource', mimeType: 'text/plain', text: 'This is an embedded resource content.' } }] }));
  tool('test_multiple_content_types', async () => ({ content: [
    { type: 'text', text: 'Multiple content types test:' },
    { type: 'image', data: IMG, mimeType: 'image/png' },
    { type: 'resource', resource: { uri: 'test://mixed-content-resource', mimeType: 'application/json', text: '{"test":"data","value":123}' } },
  ] }));
  tool('test_error_handling', async () => { throw new Error('This tool intentionally returns an error for testing'); });
  tool('test_tool_with_logging', async (_a, ctx) => {
    for (const m of ['Tool execution started', 'Tool processing data', 'Tool execution completed']) { await ctx.mcpReq.log('info', m); await sleep(50); }
    return text('Tool with logging executed successfully');
  });
  tool('test_tool_with_progress', async (_a, ctx) => {
    const progressToken = ctx.mcpReq._meta?.progressToken ?? 0;
    for (const p of [0, 50, 100]) {
      await ctx.mcpReq.notify({ method: 'notifications/progress', params: { progressToken, progress: p, total: 100 } });
      if (p < 100) await sleep(50);
    }
    return text(String(progressToken));
  });
  tool('test_sampling', async ({ prompt }, ctx) => {
    const r = await ctx.mcpReq.requestSampling({ messages: [{ role: 'user', content: { type: 'text', text: prompt } }], maxTokens: 100 });
    return text(`LLM response: ${r.content?.text ?? 'n/a'}`);
  }, z.object({ prompt: z.string() }));
  tool('test_elicitation', async ({ message }, ctx) => {
    const r = await ctx.mcpReq.elicitInput({ message, requestedSchema: { type: 'object', properties: {
      username: { type: 'string', description: "User's response" }, email: { type: 'string', description: "User's email address" } }, required: ['username', 'email'] } });
    return text(`User response: action=${r.action}, content=${JSON.stringify(r.content ?? {})}`);
  }, z.object({ message: z.string() }));
  tool('test_elicitation_sep1034_defaults', async (_a, ctx) => {
    const r = await ctx.mcpReq.elicitInput({ message: 'Please review the defaults', requestedSchema: { type: 'object', properties: {
      name: { type: 'string', default: 'John Doe' }, age: { type: 'integer', default: 30 }, score: { type: 'number', default: 95.5 },
      status: { type: 'string', enum: ['active', 'inactive', 'pending'], default: 'active' }, verified: { type: 'boolean', default: true } }, required: [] } });
    return text(`Elicitation completed: action=${r.action}, content=${JSON.stringify(r.content ?? {})}`);
  });
  tool('test_elicitation_sep1330_enums', async (_a, ctx) => {
    const r = await ctx.mcpReq.elicitInput({ message: 'Please choose', requestedSchema: { type: 'object', properties: {
      untitledSingle: { type: 'string', enum: ['option1', 'option2', 'option3'] },
      titledSingle: { type: 'string', oneOf: [{ const: 'value1', title: 'First Option' }, { const: 'value2', title: 'Second Option' }] },
      legacyEnum: { type: 'string', enum: ['opt1', 'opt2', 'opt3'], enumNames: ['Option One', 'Option Two', 'Option Three'] },
      untitledMulti: { type: 'array', items: { type: 'string', enum: ['option1', 'option2', 'option3'] } },
      titledMulti: { type: 'array', items: { anyOf: [{ const: 'value1', title: 'First Choice' }, { const: 'value2', title: 'Second Choice' }] } } }, required: [] } });
    return text(`Elicitation completed: action=${r.action}, content=${JSON.stringify(r.content ?? {})}`);
  });

  tool('test_input_required_result_elicitation', async (_a, ctx) => {
    const v = acceptedContent(ctx.mcpReq.inputResponses, 'user_name');
    if (!v || typeof v.name !== 'string') return inputRequired({ inputRequests: { user_name: inputRequired.elicit({ message: 'What is your name?', requestedSchema: nameSchema }) } });
    return text(`Hello, ${v.name}!`);
  });
  tool('test_input_required_result_sampling', async (_a, ctx) => {
    const r = ctx.mcpReq.inputResponses?.capital_question;
    if (!r) return inputRequired({ inputRequests: { capital_question: inputRequired.createMessage({ messages: [{ role: 'user', content: { type: 'text', text: 'What is the capital of France?' } }], maxTokens: 100 }) } });
    return text(`Sampling said: ${r.content?.text}`);
  });
  tool('test_input_required_result_list_roots', async (_a, ctx) => {
    const r = ctx.mcpReq.inputResponses?.client_roots;
    if (!r) return inputRequired({ inputRequests: { client_roots: inputRequired.listRoots() } });
    return text(`Roots: ${JSON.stringify(r.roots ?? [])}`);
  });
  tool('test_input_required_result_request_state', async (_a, ctx) => {
    if (!ctx.mcpReq.requestState() || !ctx.mcpReq.inputResponses?.confirm) {
      return inputRequired({ inputRequests: { confirm: inputRequired.elicit({ message: 'Please confirm', requestedSchema: confirmSchema }) }, requestState: await codec.mint({ step: 'confirm' }) });
    }
    return text('state-ok');
  });
  tool('test_input_required_result_multiple_inputs', async (_a, ctx) => {
    const ir = ctx.mcpReq.inputResponses ?? {};
    if (!ctx.mcpReq.requestState() || !ir.user_name || !ir.greeting || !ir.client_roots) {
      return inputRequired({ inputRequests: {
        user_name: inputRequired.elicit({ message: 'What is your name?', requestedSchema: nameSchema }),
        greeting: inputRequired.createMessage({ messages: [{ role: 'user', content: { type: 'text', text: 'Generate a greeting' } }], maxTokens: 50 }),
        client_roots: inputRequired.listRoots() }, requestState: await codec.mint({ step: 'multi' }) });
    }
    return text('all inputs received');
  });
  tool('test_input_required_result_multi_round', async (_a, ctx) => {
    const st = ctx.mcpReq.requestState();
    const ir = ctx.mcpReq.inputResponses ?? {};
    if (st?.round === 1 && ir.step1) {
      return inputRequired({ inputRequests: { step2: inputRequired.elicit({ message: 'Step 2: What is your favorite color?', requestedSchema: { type: 'object', properties: { color: { type: 'string' } }, required: ['color'] } }) }, requestState: await codec.mint({ round: 2 }) });
    }
    if (st?.round === 2 && ir.step2) return text('multi-round complete');
    return inputRequired({ inputRequests: { step1: inputRequired.elicit({ message: 'Step 1: What is your name?', requestedSchema: nameSchema }) }, requestState: await codec.mint({ round: 1 }) });
  });
  tool('test_input_required_result_tampered_state', async (_a, ctx) => {
    if (!ctx.mcpReq.requestState()) return inputRequired({ inputRequests: { confirm: inputRequired.elicit({ message: 'Please confirm', requestedSchema: confirmSchema }) }, requestState: await codec.mint({ step: 'tamper' }) });
    return text('state verified');
  });
  tool('test_input_required_result_capabilities', async (_a, ctx) => {
    if (Object.keys(ctx.mcpReq.inputResponses ?? {}).length) return text('done');
    const caps = capsOf(ctx);
    const requests = {};
    if (caps.sampling) requests.s = inputRequired.createMessage({ messages: [{ role: 'user', content: { type: 'text', text: 'hi' } }], maxTokens: 10 });
    if (caps.elicitation) requests.e = inputRequired.elicit({ message: 'hi', requestedSchema: nameSchema });
    return inputRequired({ inputRequests: requests, requestState: await codec.mint({ c: 1 }) });
  });
  // Refused at the HTTP layer below when the client did not declare sampling (McpServer turns
  // errors thrown by tools into tool results, and this one must be a -32021 protocol error).
  tool('test_missing_capability', async () => text('had sampling'));
  tool('test_streaming_elicitation', async () => text('no server requests on this stream'));
  tool('test_logging_tool', async (_a, ctx) => { await ctx.mcpReq.log('info', 'only if the request asked for a log level'); return text('done'); });
  tool('test_trigger_tool_change', async () => { modern?.notify.toolsChanged(); return text('tools changed'); });
  tool('test_trigger_prompt_change', async () => { modern?.notify.promptsChanged(); return text('prompts changed'); });
  tool('test_custom_header', async ({ region }) => text(`region=${region}`),
    z.object({ region: z.string().meta({ 'x-mcp-header': 'Region' }), query: z.string() }));

  s.registerResource('static-text', 'test://static-text', { description: 'Static text.', mimeType: 'text/plain' },
    async (uri) => ({ contents: [{ uri: uri.href, mimeType: 'text/plain', text: 'This is the content of the static text resource.' }] }));
  s.registerResource('static-binary', 'test://static-binary', { description: 'Static binary.', mimeType: 'image/png' },
    async (uri) => ({ contents: [{ uri: uri.href, mimeType: 'image/png', blob: IMG }] }));
  s.registerResource('watched', 'test://watched-resource', { description: 'Watched.', mimeType: 'text/plain' },
    async (uri) => ({ contents: [{ uri: uri.href, mimeType: 'text/plain', text: 'Watched resource content' }] }));
  s.registerResource('template', new ResourceTemplate('test://template/{id}/data', { list: undefined }), { description: 'Template.', mimeType: 'application/json' },
    async (uri, { id }) => ({ contents: [{ uri: uri.href, mimeType: 'application/json', text: JSON.stringify({ id, templateTest: true, data: `Data for ID: ${id}` }) }] }));
  s.server.setRequestHandler('resources/subscribe', async () => ({}));
  s.server.setRequestHandler('resources/unsubscribe', async () => ({}));

  s.registerPrompt('test_simple_prompt', { description: 'A simple prompt.' },
    () => ({ messages: [{ role: 'user', content: { type: 'text', text: 'This is a simple prompt for testing.' } }] }));
  s.registerPrompt('test_prompt_with_arguments', { description: 'A prompt with arguments.', argsSchema: z.object({
    arg1: completable(z.string(), (v) => ['paris', 'park', 'party'].filter((x) => x.startsWith(v ?? ''))), arg2: z.string() }) },
  ({ arg1, arg2 }) => ({ messages: [{ role: 'user', content: { type: 'text', text: `Prompt with arguments: arg1='${arg1}', arg2='${arg2}'` } }] }));
  s.registerPrompt('test_prompt_with_embedded_resource', { description: 'A prompt with a resource.', argsSchema: z.object({ resourceUri: z.string() }) },
    ({ resourceUri }) => ({ messages: [
      { role: 'user', content: { type: 'resource', resource: { uri: resourceUri, mimeType: 'text/plain', text: 'Embedded resource content for testing.' } } },
      { role: 'user', content: { type: 'text', text: 'Please process the embedded resource above.' } }] }));
  s.registerPrompt('test_prompt_with_image', { description: 'A prompt with an image.' }, () => ({ messages: [
    { role: 'user', content: { type: 'image', data: IMG, mimeType: 'image/png' } },
    { role: 'user', content: { type: 'text', text: 'Please analyze the image above.' } }] }));
  s.registerPrompt('test_input_required_result_prompt', { description: 'A prompt that needs input.' }, (ctx) => {
    const v = acceptedContent(ctx.mcpReq.inputResponses, 'user_context');
    if (!v) return inputRequired({ inputRequests: { user_context: inputRequired.elicit({ message: 'What context should the prompt use?', requestedSchema: { type: 'object', properties: { context: { type: 'string' } }, required: ['context'] } }) } });
    return { messages: [{ role: 'user', content: { type: 'text', text: `Context: ${v.context}` } }] };
  });
  return s;
}

modern = createMcpHandler(factory, { legacy: 'reject', onerror: (e) => console.error('[modern]', e.message) });
const modernNode = toNodeHandler(modern);

const sessions = new Map();
async function legacy(req, res, body) {
  const sid = req.headers['mcp-session-id'];
  if (sid && sessions.has(sid)) return sessions.get(sid).handleRequest(req, res, body);
  if (sid) {
    res.writeHead(404, { 'content-type': 'application/json' });
    return res.end(JSON.stringify({ jsonrpc: '2.0', id: null, error: { code: -32001, message: 'Session not found' } }));
  }
  const transport = new NodeStreamableHTTPServerTransport({ sessionIdGenerator: () => randomUUID(), onsessioninitialized: (id) => sessions.set(id, transport) });
  transport.onclose = () => transport.sessionId && sessions.delete(transport.sessionId);
  await factory().connect(transport);
  return transport.handleRequest(req, res, body);
}

function missingSampling(body) {
  const p = body?.params;
  if (body?.method !== 'tools/call' || p?.name !== 'test_missing_capability') return false;
  return !p?._meta?.[CAPS_KEY]?.sampling;
}

const hostOk = localhostHostValidation();
const originOk = localhostOriginValidation();
http.createServer(async (req, res) => {
  try {
    if (!hostOk(req, res) || !originOk(req, res)) return;
    let body;
    if (req.method === 'POST') {
      const chunks = [];
      for await (const c of req) chunks.push(c);
      const raw = Buffer.concat(chunks).toString('utf8');
      try { body = raw ? JSON.parse(raw) : undefined; } catch { body = undefined; }
    }
    const webReq = await toWebRequest(req, body);
    if (await isLegacyRequest(webReq, body)) return legacy(req, res, body);
    if (missingSampling(body)) {
      res.writeHead(400, { 'content-type': 'application/json' });
      return res.end(JSON.stringify({ jsonrpc: '2.0', id: body.id, error: { code: -32021, message: 'test_missing_capability needs the sampling capability', data: { requiredCapabilities: { sampling: {} } } } }));
    }
    return modernNode(req, res, body);
  } catch (e) {
    console.error('conformance server:', e);
    if (!res.headersSent) { res.writeHead(500); res.end(); }
  }
}).listen(PORT, '127.0.0.1', () => console.error(`conformance reference server on http://localhost:${PORT}/mcp`));
