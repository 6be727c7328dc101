// Parley's HTTP API as the page uses it. Requests are same-origin and carry the login
// page's HttpOnly cookie (the page never sees the token); bodies are JSON, which a
// cross-site form cannot send. A 401 means the session ended: the page hands over to
// `onSessionExpired`, which keeps the user's draft and sends them to sign in.

export class ApiError extends Error {
  constructor(status, detail, retryAfter = null) {
    super(detail || `HTTP ${status}`);
    this.status = status;
    this.retryAfter = retryAfter;
  }
}

export class SessionExpired extends Error {
  constructor() {
    super("your session has ended: sign in again");
  }
}

let expiredHandler = () => {};

export function onSessionExpired(handler) {
  expiredHandler = handler;
}

async function detailOf(response) {
  try {
    const body = await response.json();
    const detail = body.detail ?? body.error?.message;
    if (Array.isArray(detail)) return detail.map((d) => d.msg ?? String(d)).join("; ");
    return detail ? String(detail) : `${response.status} ${response.statusText}`;
  } catch {
    return `${response.status} ${response.statusText}`;
  }
}

// The raw response (for streams); errors become ApiError, a 401 SessionExpired.
export async function send(method, path,
  { body, signal, accept = "application/json", lastEventId = null } = {}) {
  const headers = { Accept: accept };
  if (lastEventId) headers["Last-Event-ID"] = lastEventId;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "same-origin",
    signal,
  });
  if (response.status === 401) {
    expiredHandler();
    throw new SessionExpired();
  }
  if (!response.ok) {
    const retry = response.headers.get("Retry-After");
    throw new ApiError(response.status, await detailOf(response), retry ? Number(retry) : null);
  }
  return response;
}

async function json(method, path, options) {
  const response = await send(method, path, options);
  return response.status === 204 ? null : response.json();
}

const q = encodeURIComponent;

export const api = {
  // Who is signed in; null where auth is off (no /auth on this server).
  async me() {
    try {
      return await json("GET", "/auth/me");
    } catch (error) {
      if (error instanceof ApiError && error.status === 404) return null;
      throw error;
    }
  },
  updateProfile: (fields) => json("PATCH", "/auth/me", { body: fields }),
  apiKeys: () => json("GET", "/auth/api-keys"),
  createApiKey: (fields) => json("POST", "/auth/api-keys", { body: fields }),
  revokeApiKey: (id) => json("DELETE", `/auth/api-keys/${q(String(id))}`),
  agents: () => json("GET", "/agents"),
  threads: (limit = 100) => json("GET", `/history/threads?limit=${limit}`),
  messages: (threadId, before = null, limit = 100) => json("GET",
    `/history?thread_id=${q(threadId)}&limit=${limit}${before ? `&before=${q(before)}` : ""}`),
  renameThread: (threadId, title) => json("PATCH", `/history/threads/${q(threadId)}`,
    { body: { title } }),
  // The whole forgetting: state, transcript and what memory took from the thread.
  deleteThread: (threadId) => json("DELETE", `/chat/threads/${q(threadId)}`),
  memories: ({ query = null, limit = 50, offset = 0 } = {}) => json("GET", query
    ? `/memories?query=${q(query)}&limit=${limit}`
    : `/memories?limit=${limit}&offset=${offset}`),
  deleteMemory: (id) => json("DELETE", `/memories/${q(id)}`),
  forgetEverything: () => json("DELETE", "/memories"),
  remember: (text) => json("POST", "/memories", { body: [{ text }] }),
  // With lastEventId, the rest of a turn whose stream was lost (the same body again).
  stream: (body, signal, lastEventId = null) => send("POST", "/chat/stream", {
    body, signal, accept: "text/event-stream", lastEventId,
  }),
  // The calls a thread waits on for the user's decision; null when none waits.
  async approval(threadId) {
    try {
      return await json("GET", `/chat/threads/${q(threadId)}/approval`);
    } catch (error) {
      if (error instanceof ApiError && error.status === 404) return null;
      throw error;
    }
  },
  // Tool approval (docs/approval.md): the decision on a waiting call. The answer is the
  // rest of the turn as a stream, or 202 while other calls of the step still wait.
  decide: (threadId, decision, signal) => send("POST",
    `/chat/threads/${q(threadId)}/decisions`,
    { body: decision, signal, accept: "text/event-stream" }),
  signOut: () => fetch("/logout", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: "{}",
    credentials: "same-origin",
    redirect: "manual",
  }),
};
