// Server-Sent Events from a fetch response. EventSource cannot POST a body, and
// /chat/stream takes the message as JSON, so the stream is read and parsed here, by the
// format's own rules: fields per line, an event per blank line, comments (the server's
// keep-alive pings) ignored, CR LF, LF or CR as line ends.

export async function* readEvents(response) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let event = { type: "", data: [], id: null };
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      // A CR at the end may be the first half of a CR LF: wait for the next chunk.
      const lines = buffer.split(/\r\n|\r(?!$)|\n/);
      buffer = lines.pop();
      for (const line of lines) {
        if (line === "") {
          if (event.data.length) {
            yield { type: event.type || "message", data: event.data.join("\n"), id: event.id };
          }
          event = { type: "", data: [], id: event.id };
          continue;
        }
        if (line.startsWith(":")) continue;
        const colon = line.indexOf(":");
        const field = colon === -1 ? line : line.slice(0, colon);
        let text = colon === -1 ? "" : line.slice(colon + 1);
        if (text.startsWith(" ")) text = text.slice(1);
        if (field === "event") event.type = text;
        else if (field === "data") event.data.push(text);
        else if (field === "id") event.id = text;
      }
    }
  } finally {
    reader.releaseLock();
  }
}
