// The node's API from the browser: JSON over fetch, WebSockets that reconnect.
//
// URLs are relative to the page, so the same code works at "/" of a standalone node and
// under Home Assistant's ingress path. Standalone, the API token the user typed is kept in
// this tab's sessionStorage and sent as "Authorization: Bearer"; a WebSocket cannot carry
// that header, so each connection first gets a single-use ticket bound to its route. Behind
// ingress no token is needed: Home Assistant has signed the user in.

const TOKEN_KEY = "transactiva.token";
const base = new URL(".", document.baseURI);

export function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(value) {
  if (value) sessionStorage.setItem(TOKEN_KEY, value);
  else sessionStorage.removeItem(TOKEN_KEY);
}

export class ApiError extends Error {
  constructor(status, body) {
    const detail = body && body.error ? body.error : {};
    super(detail.message || `HTTP ${status}`);
    this.status = status;
    this.code = detail.code || "http_error";
    this.field = detail.field || null;
  }
}

function url(path, query) {
  const address = new URL(`api/v1/${path.replace(/^\//, "")}`, base);
  for (const [key, value] of Object.entries(query || {})) {
    if (value !== undefined && value !== null) address.searchParams.set(key, String(value));
  }
  return address;
}

export async function api(path, { method = "GET", body, query } = {}) {
  const headers = { Accept: "application/json" };
  const stored = token();
  if (stored) headers.Authorization = `Bearer ${stored}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(url(path, query), {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    cache: "no-store",
  });
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

// A WebSocket to `path` that reconnects with backoff until closed. `query()` gives the query
// to (re)connect with (e.g. the last event seen, to resume); `onMessage` gets parsed JSON;
// `onState` gets "live" or "down".
export function stream(path, { query = () => ({}), onMessage, onState = () => {} }) {
  let socket = null;
  let closed = false;
  let delay = 1000;
  let timer = null;

  async function connect() {
    if (closed) return;
    const params = { ...query() };
    try {
      if (token()) {
        // A ticket opens this one stream route, once, within seconds; nothing else.
        const body = { path: `/api/v1/${path.replace(/^\//, "")}` };
        params.ticket = (await api("web/ticket", { method: "POST", body })).ticket;
      }
    } catch {
      retry();
      return;
    }
    const address = url(path, params);
    address.protocol = address.protocol === "https:" ? "wss:" : "ws:";
    socket = new WebSocket(address);
    socket.onopen = () => {
      delay = 1000;
      onState("live");
    };
    socket.onmessage = (message) => {
      try {
        onMessage(JSON.parse(message.data));
      } catch (error) {
        console.error("transactiva: bad stream message", error);
      }
    };
    socket.onclose = () => {
      onState("down");
      retry();
    };
  }

  function retry() {
    if (closed) return;
    clearTimeout(timer);
    timer = setTimeout(connect, delay);
    delay = Math.min(delay * 2, 30000);
  }

  connect();
  return {
    close() {
      closed = true;
      clearTimeout(timer);
      if (socket) socket.close();
    },
  };
}
