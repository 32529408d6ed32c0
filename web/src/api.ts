// The gateway's HTTP API as the web app uses it. The key lives in sessionStorage (this tab only; never in a URL
// or a cookie) and rides in the Authorization header of each request.

const KEY_STORAGE = "llm-router.key";

export function getKey(): string {
  try {
    return sessionStorage.getItem(KEY_STORAGE) ?? "";
  } catch {
    return "";
  }
}

export function setKey(key: string): void {
  try {
    if (key) sessionStorage.setItem(KEY_STORAGE, key);
    else sessionStorage.removeItem(KEY_STORAGE);
  } catch {
    /* storage disabled: the key is not kept */
  }
}

export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly code: string | null,
  ) {
    super(message);
  }
}

function headers(extra: Record<string, string> = {}): Record<string, string> {
  const key = getKey();
  return key ? { authorization: `Bearer ${key}`, ...extra } : extra;
}

async function failure(res: Response): Promise<ApiError> {
  let message = `${res.status} ${res.statusText}`;
  let code: string | null = null;
  try {
    const body = await res.json();
    if (body && body.error) {
      message = String(body.error.message ?? message);
      code = body.error.code ?? null;
    }
  } catch {
    /* not JSON */
  }
  return new ApiError(message, res.status, code);
}

export async function getJSON<T>(path: string, signal?: AbortSignal): Promise<T> {
  const res = await fetch(path, { headers: headers(), signal, credentials: "omit" });
  if (!res.ok) throw await failure(res);
  return (await res.json()) as T;
}

export async function postJSON<T>(path: string, body: unknown, signal?: AbortSignal): Promise<T> {
  const res = await fetch(path, {
    method: "POST",
    headers: headers({ "content-type": "application/json" }),
    body: JSON.stringify(body),
    signal,
    credentials: "omit",
  });
  if (!res.ok) throw await failure(res);
  return (await res.json()) as T;
}

/** Fetches a file (the CSV export) with the key and hands it to the browser as a download. */
export async function download(path: string, fallbackName: string): Promise<void> {
  const res = await fetch(path, { headers: headers(), credentials: "omit" });
  if (!res.ok) throw await failure(res);
  const blob = await res.blob();
  const match = /filename="([^"]+)"/.exec(res.headers.get("content-disposition") ?? "");
  const url = URL.createObjectURL(blob);
  const a = document.createElement("a");
  a.href = url;
  a.download = match ? match[1] : fallbackName;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

// ---------------------------------------------------------------------------------------------------
// types of the answers

export interface ModelList {
  data: { id: string; owned_by: string }[];
}

export interface Ranked {
  model: string;
  score: number;
  breakdown: Record<string, number>;
  estimated_cost_usd: number;
  estimated_latency_ms: number;
}

export interface Decision {
  request_id: string;
  selected: string;
  classification: { task: string; confidence: number; method: string };
  route: unknown;
  weights: Record<string, number>;
  input_tokens: number;
  expected_output_tokens: number;
  routing_time_ms: number;
  ranking: Ranked[];
  rejected: { model_id: string; constraint: string; reason: string }[];
}

export interface Attempt {
  model: string;
  outcome: string;
  error_kind: string | null;
  latency_ms: number;
}

export interface StreamReport {
  model: string;
  cost_usd: number;
  estimated_cost_usd: number;
  latency_ms: number;
  input_tokens: number;
  output_tokens: number;
  fallbacks: number;
  attempts: Attempt[];
}

export interface RunResult {
  text: string;
  model: string;
  task: string;
  requestId: string;
  firstTokenMs: number;
  totalMs: number;
  report: StreamReport | null;
}

export interface ChatMessage {
  role: "user" | "assistant";
  content: string;
}

// ---------------------------------------------------------------------------------------------------
// streaming chat completions (SSE over fetch)

interface Chunk {
  model?: string;
  choices?: { delta?: { content?: string | null } }[];
  error?: { message?: string; code?: string };
}

function handleEvent(event: string, out: RunResult, onText: (text: string) => void): boolean {
  for (const line of event.split("\n")) {
    if (line.startsWith(": x-router-report ")) {
      out.report = JSON.parse(line.slice(18)) as StreamReport;
    } else if (line.startsWith("data: ")) {
      const data = line.slice(6);
      if (data === "[DONE]") return true;
      const chunk = JSON.parse(data) as Chunk;
      if (chunk.error) throw new ApiError(String(chunk.error.message), 502, chunk.error.code ?? null);
      if (chunk.model) out.model = chunk.model;
      const text = chunk.choices?.[0]?.delta?.content;
      if (text) {
        if (!out.text) out.firstTokenMs = performance.now();
        out.text += text;
        onText(out.text);
      }
    }
  }
  return false;
}

/** Streams a chat completion token by token; resolves with what answered and what it cost. */
export async function streamChat(
  body: Record<string, unknown>,
  onText: (text: string) => void,
  signal?: AbortSignal,
): Promise<RunResult> {
  const t0 = performance.now();
  const res = await fetch("/v1/chat/completions", {
    method: "POST",
    headers: headers({ "content-type": "application/json", "x-router-stream-report": "1" }),
    body: JSON.stringify({ ...body, stream: true, stream_options: { include_usage: true } }),
    signal,
    credentials: "omit",
  });
  if (!res.ok || !res.body) throw await failure(res);
  const out: RunResult = {
    text: "",
    model: res.headers.get("x-router-model") ?? "",
    task: res.headers.get("x-router-task") ?? "",
    requestId: res.headers.get("x-request-id") ?? "",
    firstTokenMs: 0,
    totalMs: 0,
    report: null,
  };
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let done = false;
  while (!done) {
    const { value, done: ended } = await reader.read();
    if (ended) break;
    buffer += value;
    let cut: number;
    while (!done && (cut = buffer.indexOf("\n\n")) >= 0) {
      const event = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      done = handleEvent(event, out, onText);
    }
  }
  out.totalMs = performance.now() - t0;
  out.firstTokenMs = out.firstTokenMs ? out.firstTokenMs - t0 : out.totalMs;
  return out;
}

export function usd(value: number | null | undefined): string {
  if (value == null) return "–";
  if (value === 0) return "$0";
  return value < 0.01 ? `$${value.toPrecision(3)}` : `$${value.toFixed(4)}`;
}

export function ms(value: number | null | undefined): string {
  if (value == null) return "–";
  return value >= 1000 ? `${(value / 1000).toFixed(2)} s` : `${value.toFixed(0)} ms`;
}
