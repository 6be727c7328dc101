// The useStream hook itself, configured as agent-chat-ui configures it, rendered with
// React's test renderer: it creates the thread, streams with ["values"] and
// streamResumable, reads the thread's history, and branches from an earlier checkpoint
// as agent-chat-ui's "edit message" does.
import assert from "node:assert/strict";
import { test } from "node:test";
import React from "react";
import TestRenderer, { act } from "react-test-renderer";
import { Client } from "@langchain/langgraph-sdk";
import { useStream } from "@langchain/langgraph-sdk/react";

globalThis.IS_REACT_ACT_ENVIRONMENT = true;
const apiUrl = process.env.PARLEY_URL;
const apiKey = process.env.PARLEY_API_KEY;

function mount(options) {
  const seen = { stream: null, threadIds: [] };
  function Probe() {
    // agent-chat-ui keeps the thread id in the page's URL and hands it back to the hook.
    const [threadId, setThreadId] = React.useState(null);
    seen.stream = useStream({
      ...options,
      threadId,
      onThreadId: (id) => { seen.threadIds.push(id); setThreadId(id); },
    });
    return null;
  }
  let renderer;
  act(() => { renderer = TestRenderer.create(React.createElement(Probe)); });
  return { seen, unmount: () => act(() => renderer.unmount()) };
}

async function until(check, what) {
  for (let i = 0; i < 1200; i += 1) {
    if (check()) return;
    await act(async () => { await new Promise((resolve) => setTimeout(resolve, 25)); });
  }
  throw new Error(`never: ${what}`);
}

const contents = (stream) => stream.messages.map((m) => m.content);

test("useStream as agent-chat-ui sets it up: a new thread, values, history, an edit", async () => {
  const { seen, unmount } = mount({
    apiUrl, apiKey, assistantId: "assistant", fetchStateHistory: true,
  });
  await act(async () => {
    seen.stream.submit(
      { messages: [{ type: "human", content: "I am Ada" }] },
      { streamMode: ["values"], streamSubgraphs: true, streamResumable: true },
    );
  });
  await until(() => !seen.stream.isLoading && contents(seen.stream).length === 2,
    "the first answer");
  assert.deepEqual(contents(seen.stream), ["I am Ada", "You said: I am Ada"]);
  assert.equal(seen.threadIds.length, 1);
  const threadId = seen.threadIds[0];

  await act(async () => {
    seen.stream.submit(
      { messages: [{ type: "human", content: "what now" }] },
      { streamMode: ["values"], streamSubgraphs: true, streamResumable: true },
    );
  });
  await until(() => !seen.stream.isLoading && contents(seen.stream).length === 4,
    "the second answer");
  await until(() => seen.stream.history.length > 0, "the thread's history");

  // agent-chat-ui's edit: the edited message's first state's parent checkpoint.
  const edited = seen.stream.messages[2];
  const meta = seen.stream.getMessagesMetadata(edited);
  const parent = meta?.firstSeenState?.parent_checkpoint;
  assert.ok(parent, "the history names where the message came in");
  await act(async () => {
    seen.stream.submit(
      { messages: [{ type: "human", content: "first?" }] },
      { checkpoint: parent, streamMode: ["values"], streamSubgraphs: true,
        streamResumable: true },
    );
  });
  await until(() => !seen.stream.isLoading && contents(seen.stream).at(-1)
    === "Your first message was: I am Ada", "the edited branch's answer");
  assert.deepEqual(contents(seen.stream),
    ["I am Ada", "You said: I am Ada", "first?", "Your first message was: I am Ada"]);
  const state = await new Client({ apiUrl, apiKey }).threads.getState(threadId);
  assert.equal(state.values.messages.at(-2).content, "first?");
  unmount();
});
