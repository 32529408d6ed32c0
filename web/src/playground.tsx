// The playground: a prompt (multi-turn), routing preferences and constraints, "Route" (the decision, live as
// one types or on demand) and "Run" (streamed through /v1/chat/completions), alone or side by side with a
// baseline model. Every prompt and answer is rendered as text, never as HTML.
import { useEffect, useRef, useState } from "preact/hooks";
import {
  ApiError,
  type ChatMessage,
  type Decision,
  getJSON,
  type ModelList,
  ms,
  postJSON,
  type RunResult,
  streamChat,
  usd,
} from "./api";

const CAPABILITIES = ["tools", "vision", "json_mode", "streaming"] as const;
const WEIGHTS = ["quality", "cost", "latency"] as const;

interface Settings {
  weights: Record<string, number>;
  maxCost: string;
  maxLatency: string;
  capabilities: string[];
  allowed: string;
  model: string;
}

interface RunState {
  title: string;
  model: string;
  status: "running" | "done" | "error";
  text: string;
  result?: RunResult;
  error?: string;
}

function errorText(e: unknown): string {
  if (e instanceof ApiError) return `${e.status}${e.code ? ` ${e.code}` : ""}: ${e.message}`;
  return e instanceof Error ? e.message : String(e);
}

function routerOptions(s: Settings): Record<string, unknown> {
  const constraints: Record<string, unknown> = {};
  if (s.maxCost.trim()) constraints.max_cost_per_request = Number(s.maxCost);
  if (s.maxLatency.trim()) constraints.max_latency_ms = Number(s.maxLatency);
  if (s.capabilities.length) constraints.required_capabilities = s.capabilities;
  const allowed = s.allowed
    .split(",")
    .map((x) => x.trim())
    .filter(Boolean);
  if (allowed.length) constraints.allowed_models = allowed;
  return { preferences: s.weights, constraints };
}

function Slider({ name, value, onInput }: { name: string; value: number; onInput: (v: number) => void }) {
  const id = `w-${name}`;
  return (
    <div class="slider">
      <label for={id}>{name}</label>
      <input
        id={id}
        type="range"
        min={0}
        max={1}
        step={0.05}
        value={value}
        onInput={(e) => onInput(Number((e.target as HTMLInputElement).value))}
      />
      <output for={id}>{value.toFixed(2)}</output>
    </div>
  );
}

function Bar({ value, label }: { value: number; label: string }) {
  return (
    <span class="bar" title={`${label} ${value.toFixed(2)}`}>
      <meter min={0} max={1} value={value} aria-label={`${label} score`} />
      <span class="bar-num">{value.toFixed(2)}</span>
    </span>
  );
}

function DecisionView({ d }: { d: Decision }) {
  const scorers = Object.keys(d.ranking[0]?.breakdown ?? {});
  const c = d.classification;
  return (
    <section class="card" aria-label="Routing decision" data-testid="decision">
      <h2>Decision</h2>
      <p>
        task <strong data-testid="task">{c.task}</strong> ({c.method}, confidence {c.confidence.toFixed(2)}) · route{" "}
        <code>{String(d.route ?? "–")}</code> · selected <strong data-testid="selected">{d.selected}</strong> · decided
        in {d.routing_time_ms.toFixed(2)} ms · {d.input_tokens} tokens in, ~{d.expected_output_tokens} out
      </p>
      <div class="scroll">
        <table class="ranking">
          <caption class="sr-only">Ranking of the candidate models</caption>
          <thead>
            <tr>
              <th scope="col">#</th>
              <th scope="col">model</th>
              <th scope="col">score</th>
              {scorers.map((s) => (
                <th scope="col" key={s}>
                  {s} <span class="muted">×{(d.weights[s] ?? 0).toFixed(2)}</span>
                </th>
              ))}
              <th scope="col">est. cost</th>
              <th scope="col">est. latency</th>
            </tr>
          </thead>
          <tbody>
            {d.ranking.map((r, i) => (
              <tr key={r.model}>
                <td>{i + 1}</td>
                <td>{r.model}</td>
                <td>{r.score.toFixed(3)}</td>
                {scorers.map((s) => (
                  <td key={s}>
                    <Bar value={r.breakdown[s] ?? 0} label={s} />
                  </td>
                ))}
                <td>{usd(r.estimated_cost_usd)}</td>
                <td>{ms(r.estimated_latency_ms)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {d.rejected.length > 0 && (
        <details>
          <summary>{d.rejected.length} rejected</summary>
          <ul class="rejected" data-testid="rejected">
            {d.rejected.map((r) => (
              <li key={r.model_id + r.constraint}>
                <strong>{r.model_id}</strong> ({r.constraint}): {r.reason}
              </li>
            ))}
          </ul>
        </details>
      )}
    </section>
  );
}

function RunPanel({ run }: { run: RunState }) {
  const r = run.result;
  const rep = r?.report;
  const failed = rep ? rep.attempts.filter((a) => a.outcome !== "ok") : [];
  return (
    <section class="card run" aria-label={run.title} aria-busy={run.status === "running"} data-testid="run">
      <h2>{run.title}</h2>
      {run.status === "error" ? (
        <p class="error" role="alert" data-testid="run-error">
          {run.error}
        </p>
      ) : (
        <div class="answer" data-testid="answer" aria-live="polite">
          {run.text || (run.status === "running" ? "…" : "")}
        </div>
      )}
      {r && (
        <dl class="facts" data-testid="run-facts">
          <dt>answered by</dt>
          <dd data-testid="answered-by">{rep?.model ?? r.model}</dd>
          <dt>fallbacks</dt>
          <dd data-testid="fallbacks">
            {rep ? rep.fallbacks : "–"}
            {failed.map((a) => (
              <span class="failed" key={a.model + a.latency_ms}>
                {" "}
                {a.model} failed ({a.error_kind ?? "error"})
              </span>
            ))}
          </dd>
          <dt>tokens</dt>
          <dd>{rep ? `${rep.input_tokens} in, ${rep.output_tokens} out` : "–"}</dd>
          <dt>cost</dt>
          <dd data-testid="cost">
            {usd(rep?.cost_usd)} <span class="muted">(estimated {usd(rep?.estimated_cost_usd)})</span>
          </dd>
          <dt>latency</dt>
          <dd data-testid="latency">
            {ms(r.totalMs)} <span class="muted">(first token {ms(r.firstTokenMs)})</span>
          </dd>
        </dl>
      )}
    </section>
  );
}

function Savings({ routed, baseline }: { routed: RunState; baseline: RunState }) {
  const a = routed.result?.report;
  const b = baseline.result?.report;
  if (!a || !b) return null;
  const saved = b.cost_usd - a.cost_usd;
  const pct = b.cost_usd > 0 ? (100 * saved) / b.cost_usd : 0;
  return (
    <p class="savings" data-testid="savings">
      {saved >= 0
        ? `Routing saved ${usd(saved)} (${pct.toFixed(0)} %) against ${baseline.model}`
        : `Routing cost ${usd(-saved)} more than ${baseline.model}`}
      ; latency {ms(routed.result?.totalMs)} vs {ms(baseline.result?.totalMs)}.
    </p>
  );
}

function useModels(keyVersion: number): [string[], string] {
  const [models, setModels] = useState<string[]>(["auto"]);
  const [error, setError] = useState("");
  useEffect(() => {
    getJSON<ModelList>("/v1/models")
      .then((m) => {
        setModels(m.data.map((x) => x.id));
        setError("");
      })
      .catch((e) => setError(errorText(e)));
  }, [keyVersion]);
  return [models, error];
}

interface SettingsProps {
  s: Settings;
  set: (patch: Partial<Settings>) => void;
  models: string[];
  modelsError: string;
  side: boolean;
  setSide: (v: boolean) => void;
  baseline: string;
  setBaseline: (v: string) => void;
}

/** Model, preferences, constraints and the side-by-side baseline. */
function SettingsPanel({ s, set, models, modelsError, side, setSide, baseline, setBaseline }: SettingsProps) {
  const concrete = models.filter((m) => m.includes("/"));
  return (
    <aside class="card settings" aria-label="Routing settings">
      <h2>Routing</h2>
      <label for="model">Model</label>
      <select id="model" value={s.model} onChange={(e) => set({ model: (e.target as HTMLSelectElement).value })}>
        {models.map((m) => (
          <option key={m} value={m}>
            {m}
          </option>
        ))}
      </select>
      {modelsError && (
        <p class="error" role="alert" data-testid="models-error">
          {modelsError}
        </p>
      )}
      <fieldset>
        <legend>Preferences</legend>
        {WEIGHTS.map((w) => (
          <Slider key={w} name={w} value={s.weights[w] ?? 0} onInput={(v) => set({ weights: { ...s.weights, [w]: v } })} />
        ))}
      </fieldset>
      <fieldset>
        <legend>Constraints</legend>
        <label for="max-cost">Max cost per request (USD)</label>
        <input id="max-cost" inputMode="decimal" value={s.maxCost} onInput={(e) => set({ maxCost: (e.target as HTMLInputElement).value })} />
        <label for="max-latency">Max latency (ms)</label>
        <input id="max-latency" inputMode="numeric" value={s.maxLatency} onInput={(e) => set({ maxLatency: (e.target as HTMLInputElement).value })} />
        <span class="label">Required capabilities</span>
        <div class="caps">
          {CAPABILITIES.map((c) => (
            <label class="inline" key={c}>
              <input
                type="checkbox"
                checked={s.capabilities.includes(c)}
                onChange={(e) =>
                  set({
                    capabilities: (e.target as HTMLInputElement).checked
                      ? [...s.capabilities, c]
                      : s.capabilities.filter((x) => x !== c),
                  })
                }
              />
              {c}
            </label>
          ))}
        </div>
        <label for="allowed">Allowed models (globs, comma separated)</label>
        <input id="allowed" value={s.allowed} placeholder="openai/*, anthropic/*" onInput={(e) => set({ allowed: (e.target as HTMLInputElement).value })} />
      </fieldset>
      <fieldset>
        <legend>Side by side</legend>
        <label class="inline">
          <input type="checkbox" checked={side} onChange={(e) => setSide((e.target as HTMLInputElement).checked)} />
          compare with a baseline model
        </label>
        <label for="baseline">Baseline model</label>
        <select id="baseline" value={baseline} disabled={!side} onChange={(e) => setBaseline((e.target as HTMLSelectElement).value)}>
          <option value="">choose…</option>
          {concrete.map((m) => (
            <option key={m} value={m}>
              {m}
            </option>
          ))}
        </select>
      </fieldset>
    </aside>
  );
}

interface ComposeProps {
  history: ChatMessage[];
  prompt: string;
  setPrompt: (v: string) => void;
  onRoute: () => void;
  onRun: (e?: Event) => void;
  running: boolean;
  live: boolean;
  setLive: (v: boolean) => void;
  onNew: () => void;
}

/** The conversation so far, the next message, and the Route / Run buttons. */
function Compose({ history, prompt, setPrompt, onRoute, onRun, running, live, setLive, onNew }: ComposeProps) {
  return (
    <form class="card compose" onSubmit={onRun} aria-label="Compose">
      {history.length > 0 && (
        <ol class="history" aria-label="Conversation" data-testid="history">
          {history.map((m, i) => (
            <li key={i} class={m.role}>
              <span class="role">{m.role}</span>
              <div class="text">{m.content}</div>
            </li>
          ))}
        </ol>
      )}
      <label for="prompt">{history.length ? "Next message" : "Prompt"}</label>
      <textarea
        id="prompt"
        rows={5}
        value={prompt}
        onInput={(e) => setPrompt((e.target as HTMLTextAreaElement).value)}
        onKeyDown={(e) => {
          if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) void onRun(e);
        }}
        placeholder="Ask anything… (Ctrl+Enter runs it)"
      />
      <div class="actions">
        <button type="button" onClick={onRoute}>
          Route
        </button>
        <button type="submit" class="primary" disabled={running}>
          {running ? "Running…" : "Run"}
        </button>
        <label class="inline">
          <input type="checkbox" checked={live} onChange={(e) => setLive((e.target as HTMLInputElement).checked)} />
          route as I type
        </label>
        {history.length > 0 && (
          <button type="button" onClick={onNew}>
            New conversation
          </button>
        )}
      </div>
    </form>
  );
}

export function Playground({ keyVersion }: { keyVersion: number }) {
  const [models, modelsError] = useModels(keyVersion);
  const [history, setHistory] = useState<ChatMessage[]>([]);
  const [prompt, setPrompt] = useState("");
  const [s, setS] = useState<Settings>({
    weights: { quality: 0.6, cost: 0.3, latency: 0.1 },
    maxCost: "",
    maxLatency: "",
    capabilities: [],
    allowed: "",
    model: "auto",
  });
  const [live, setLive] = useState(false);
  const [decision, setDecision] = useState<Decision | null>(null);
  const [routeError, setRouteError] = useState("");
  const [side, setSide] = useState(false);
  const [baseline, setBaseline] = useState("");
  const [runs, setRuns] = useState<RunState[]>([]);
  const routeAbort = useRef<AbortController | null>(null);

  const messages = (): ChatMessage[] => [...history, { role: "user", content: prompt }];
  const body = (model: string) => ({ model, messages: messages(), router: routerOptions(s) });

  const route = async () => {
    if (!prompt.trim()) return setRouteError("Write a prompt first.");
    routeAbort.current?.abort();
    const ctl = new AbortController();
    routeAbort.current = ctl;
    try {
      setDecision(await postJSON<Decision>("/v1/route", body(s.model), ctl.signal));
      setRouteError("");
    } catch (e) {
      if (!ctl.signal.aborted) {
        setDecision(null);
        setRouteError(errorText(e));
      }
    }
  };

  useEffect(() => {
    if (!live || !prompt.trim()) return;
    const t = setTimeout(() => void route(), 350);
    return () => clearTimeout(t);
  }, [live, prompt, s, history]);

  const runOne = async (index: number, model: string) => {
    const update = (patch: Partial<RunState>) =>
      setRuns((rs) => rs.map((r, i) => (i === index ? { ...r, ...patch } : r)));
    try {
      const result = await streamChat(body(model), (text) => update({ text }));
      update({ status: "done", result, text: result.text });
      return result;
    } catch (e) {
      update({ status: "error", error: errorText(e) });
      return null;
    }
  };

  const run = async (e?: Event) => {
    e?.preventDefault();
    if (!prompt.trim()) return setRouteError("Write a prompt first.");
    const sideBySide = side && baseline !== "";
    const initial: RunState[] = [{ title: sideBySide ? `Routed (${s.model})` : "Answer", model: s.model, status: "running", text: "" }];
    if (sideBySide) initial.push({ title: `Baseline (${baseline})`, model: baseline, status: "running", text: "" });
    setRuns(initial);
    const [main] = await Promise.all([runOne(0, s.model), sideBySide ? runOne(1, baseline) : Promise.resolve(null)]);
    if (main) {
      setHistory((h) => [...h, { role: "user", content: prompt }, { role: "assistant", content: main.text }]);
      setPrompt("");
    }
  };

  const running = runs.some((r) => r.status === "running");
  const set = (patch: Partial<Settings>) => setS((old) => ({ ...old, ...patch }));

  return (
    <div class="playground">
      <Compose
        history={history}
        prompt={prompt}
        setPrompt={setPrompt}
        onRoute={() => void route()}
        onRun={run}
        running={running}
        live={live}
        setLive={setLive}
        onNew={() => setHistory([])}
      />

      <SettingsPanel
        s={s}
        set={set}
        models={models}
        modelsError={modelsError}
        side={side}
        setSide={setSide}
        baseline={baseline}
        setBaseline={setBaseline}
      />

      <div class="results">
        {routeError && (
          <p class="error" role="alert" data-testid="route-error">
            {routeError}
          </p>
        )}
        {runs.length === 2 && <Savings routed={runs[0]} baseline={runs[1]} />}
        {runs.length > 0 && (
          <div class={runs.length === 2 ? "pair" : ""}>
            {runs.map((r, i) => (
              <RunPanel key={i} run={r} />
            ))}
          </div>
        )}
        {decision && <DecisionView d={decision} />}
      </div>
    </div>
  );
}
