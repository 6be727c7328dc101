// LangGraph's JavaScript client against a real Parley, as agent-chat-ui uses it.
// PARLEY_URL, PARLEY_API_KEY (a personal API key), PARLEY_OTHER_KEY (another user's) and
// PARLEY_CUT_URL (a proxy that cuts one stream midway) come from the Python test.
import assert from "node:assert/strict";
import { test } from "node:test";
import { Client } from "@langchain/langgraph-sdk";

const apiUrl = process.env.PARLEY_URL;
const apiKey = process.env.PARLEY_API_KEY;
const client = new Client({ apiUrl, apiKey });
const says = (content) => ({ messages: [{ type: "human", content }] });
const texts = (values) => values.messages.map((m) => m.content);

test("agent-chat-ui's first calls: /info with X-Api-Key, assistants, threads by graph_id", async () => {
  const info = await fetch(`${apiUrl}/info`, { headers: { "X-Api-Key": apiKey } });
  assert.ok(info.ok);
  const [assistant] = await client.assistants.search({ graphId: "assistant" });
  assert.equal(assistant.graph_id, "assistant");
  const thread = await client.threads.create();
  await client.runs.wait(thread.thread_id, "assistant", { input: says("hello") });
  const found = await client.threads.search({ metadata: { graph_id: "assistant" }, limit: 100 });
  const mine = found.find((t) => t.thread_id === thread.thread_id);
  assert.deepEqual(texts(mine.values), ["hello", "You said: hello"]);
  const byId = await client.threads.search({ metadata: { assistant_id: assistant.assistant_id } });
  assert.ok(byId.some((t) => t.thread_id === thread.thread_id));
});

test("runs.stream: metadata first, end last, the run in Content-Location", async () => {
  const thread = await client.threads.create();
  let created;
  const parts = [];
  for await (const part of client.runs.stream(thread.thread_id, "assistant", {
    input: says("add them"),
    streamMode: ["values", "updates", "messages-tuple", "custom"],
    onRunCreated: (meta) => { created = meta; },
  })) parts.push(part);
  assert.equal(parts[0].event, "metadata");
  assert.equal(parts.at(-1).event, "end");
  assert.equal(parts[0].data.run_id, created.run_id);
  assert.equal(created.thread_id, thread.thread_id);
  const values = parts.filter((p) => p.event === "values").at(-1).data;
  assert.equal(texts(values).at(-1), "The sum is 5.");
  assert.deepEqual(parts.filter((p) => p.event === "custom").map((p) => p.data.event),
    ["tool_start", "tool_end"]);
  assert.ok(parts.some((p) => p.event === "messages" && p.data[1].langgraph_node === "agent"));
  const run = await client.runs.get(thread.thread_id, created.run_id);
  assert.equal(run.status, "success");
});

test("a resumable stream cut midway comes back through Location and Last-Event-ID", async () => {
  const thread = await client.threads.create();
  const cut = new Client({ apiUrl: process.env.PARLEY_CUT_URL, apiKey });
  const parts = [];
  for await (const part of cut.runs.stream(thread.thread_id, "assistant", {
    input: says("wait 1"), streamMode: ["values"], streamResumable: true,
    onDisconnect: "continue",
  })) parts.push(part);
  assert.deepEqual(parts.map((p) => p.id), parts.map((_, i) => String(i)));
  assert.equal(parts.at(-1).event, "end");
  assert.equal(texts(parts.filter((p) => p.event === "values").at(-1).data).at(-1), "Waited.");
});

test("history, state and a second user's 404", async () => {
  const thread = await client.threads.create();
  await client.runs.wait(thread.thread_id, "assistant", { input: says("I am Ada") });
  const history = await client.threads.getHistory(thread.thread_id, { limit: 10 });
  assert.ok(history.length > 1);
  assert.equal(history[0].checkpoint.thread_id, thread.thread_id);
  const state = await client.threads.getState(thread.thread_id);
  assert.deepEqual(texts(state.values), ["I am Ada", "You said: I am Ada"]);
  const other = new Client({ apiUrl, apiKey: process.env.PARLEY_OTHER_KEY });
  await assert.rejects(other.threads.get(thread.thread_id), /404/);
  await assert.rejects(other.threads.getHistory(thread.thread_id), /404/);
});
