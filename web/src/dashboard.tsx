// The usage dashboard (admin keys only): everything comes from /v1/usage/* (the ledger), loaded lazily so the
// playground's first load carries neither this code nor the chart library.
import { useEffect, useMemo, useState } from "preact/hooks";
import { ApiError, download, getJSON, ms, usd } from "./api";
import { BarChart, type Series, TimeChart } from "./charts";

interface Totals {
  requests: number;
  ok: number;
  errors: number;
  input_tokens: number;
  output_tokens: number;
  cost_usd: number;
  fallbacks: number;
  avg_latency_ms: number;
  p50_latency_ms?: number;
  p95_latency_ms?: number;
}
type Row<K extends string> = Totals & Record<K, string | null>;
interface Rows<K extends string> {
  rows: Row<K>[];
}
interface ProviderRow {
  provider: string | null;
  ok: number;
  errors: number;
  fallbacks: number;
  cost_usd: number;
}
interface Budget {
  key: string;
  admin: boolean;
  budget_usd_per_day: number | null;
  budget_usd_per_month: number | null;
  spent_usd_today: number;
  spent_usd_this_month: number;
  reserved_usd: number;
}
interface Live {
  providers: { provider: string; ready: boolean; reason: string | null }[];
  models: {
    model: string;
    circuit: string;
    circuit_reason: string | null;
    ttft_ms: number | null;
    ttft_samples: number;
    tokens_per_second: number | null;
    prior_ttft_ms: number;
  }[];
}
interface LogRow {
  request_id: string;
  ts: number;
  key_id: string | null;
  task: string | null;
  model: string | null;
  input_tokens: number;
  output_tokens: number;
  cost_usd: number;
  latency_ms: number;
  outcome: string;
  status: number;
  fallbacks: number;
  error: string | null;
  prompt?: string | null;
}
interface Data {
  summary: Totals;
  days: Row<"day">[];
  models: Row<"model">[];
  keys: Row<"key">[];
  tasks: Row<"task">[];
  providers: ProviderRow[];
  budgets: Budget[];
  live: Live;
}

const PAGE = 50;

function isoDay(offsetDays: number): string {
  const d = new Date(Date.now() + offsetDays * 86400_000);
  return d.toISOString().slice(0, 10);
}

function query(params: Record<string, string | number>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== "") q.set(k, String(v));
  return q.toString();
}

async function load(range: string): Promise<Data> {
  const by = <K extends string>(d: string) => getJSON<Rows<K>>(`/v1/usage/by/${d}?${range}`).then((r) => r.rows);
  const [summary, days, models, keys, tasks, providers, budgets, live] = await Promise.all([
    getJSON<Totals>(`/v1/usage/summary?${range}`),
    by<"day">("day"),
    by<"model">("model"),
    by<"key">("key"),
    by<"task">("task"),
    getJSON<{ rows: ProviderRow[] }>(`/v1/usage/by/provider?${range}`).then((r) => r.rows),
    getJSON<{ keys: Budget[] }>("/v1/usage/budgets").then((b) => b.keys),
    getJSON<Live>("/v1/usage/live"),
  ]);
  return { summary, days, models, keys, tasks, providers, budgets, live };
}

function errorText(e: unknown): string {
  if (e instanceof ApiError) return `${e.status}${e.code ? ` ${e.code}` : ""}: ${e.message}`;
  return e instanceof Error ? e.message : String(e);
}

const name = (v: string | null) => v ?? "(none)";

function Summary({ t }: { t: Totals }) {
  const items: [string, string][] = [
    ["requests", String(t.requests)],
    ["cost", usd(t.cost_usd)],
    ["errors", String(t.errors)],
    ["fallbacks", String(t.fallbacks)],
    ["tokens", `${t.input_tokens} in / ${t.output_tokens} out`],
    ["latency p50 / p95", `${ms(t.p50_latency_ms)} / ${ms(t.p95_latency_ms)}`],
  ];
  return (
    <dl class="tiles" data-testid="summary">
      {items.map(([k, v]) => (
        <div key={k}>
          <dt>{k}</dt>
          <dd>{v}</dd>
        </div>
      ))}
    </dl>
  );
}

function Charts({ d }: { d: Data }) {
  const days = useMemo(() => d.days.map((r) => r.day as string), [d]);
  const series: Series[] = useMemo(
    () => [
      { label: "cost", values: d.days.map((r) => r.cost_usd), color: "#1f6feb", format: usd },
      { label: "requests", values: d.days.map((r) => r.requests), color: "#bf5700", format: (v) => String(v) },
    ],
    [d],
  );
  const cost = <K extends string>(rows: Row<K>[], k: K) =>
    rows.map((r) => ({ name: name(r[k]), value: r.cost_usd, text: usd(r.cost_usd), extra: `${r.requests} req` }));
  return (
    <>
      <TimeChart title="Cost and requests by day (UTC)" days={days} series={series} />
      <div class="grid3">
        <BarChart title="Cost by model" rows={cost(d.models, "model")} testid="by-model" />
        <BarChart title="Cost by key" rows={cost(d.keys, "key")} testid="by-key" />
        <BarChart title="Cost by task" rows={cost(d.tasks, "task")} testid="by-task" />
      </div>
      <div class="grid3">
        <BarChart
          title="Latency p95 by model (p50 beside it)"
          testid="latency"
          rows={d.models
            .filter((r) => r.ok > 0)
            .map((r) => ({
              name: name(r.model),
              value: r.p95_latency_ms ?? 0,
              text: ms(r.p95_latency_ms),
              extra: `p50 ${ms(r.p50_latency_ms)}`,
            }))}
        />
        <BarChart
          title="Errors and fallbacks by provider"
          testid="by-provider"
          rows={d.providers.map((r) => ({
            name: name(r.provider),
            value: r.errors + r.fallbacks,
            text: `${r.errors} errors, ${r.fallbacks} fallbacks`,
            extra: `${r.ok} answered`,
          }))}
        />
        <BarChart
          title="Requests by key"
          testid="requests-by-key"
          rows={d.keys.map((r) => ({ name: name(r.key), value: r.requests, text: String(r.requests) }))}
        />
      </div>
    </>
  );
}

function Budgets({ rows }: { rows: Budget[] }) {
  const limit = (spent: number, budget: number | null) =>
    budget == null ? (
      <span>{usd(spent)} (no limit)</span>
    ) : (
      <>
        <meter min={0} max={budget} value={spent} high={budget * 0.8} aria-label={`${usd(spent)} of ${usd(budget)}`} />{" "}
        {usd(spent)} / {usd(budget)}
      </>
    );
  return (
    <section class="card" aria-labelledby="budgets-h" data-testid="budgets">
      <h2 id="budgets-h">Budgets per key</h2>
      <div class="scroll">
        <table>
          <thead>
            <tr>
              <th scope="col">key</th>
              <th scope="col">today</th>
              <th scope="col">this month</th>
              <th scope="col">reserved (in flight)</th>
            </tr>
          </thead>
          <tbody>
            {rows.map((b) => (
              <tr key={b.key}>
                <th scope="row">
                  {b.key}
                  {b.admin ? " (admin)" : ""}
                </th>
                <td>{limit(b.spent_usd_today, b.budget_usd_per_day)}</td>
                <td>{limit(b.spent_usd_this_month, b.budget_usd_per_month)}</td>
                <td>{usd(b.reserved_usd)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </section>
  );
}

function LiveState({ live }: { live: Live }) {
  return (
    <section class="card" aria-labelledby="live-h" data-testid="live">
      <h2 id="live-h">Live state</h2>
      <ul class="providers">
        {live.providers.map((p) => (
          <li key={p.provider} class={p.ready ? "ok" : "bad"}>
            {p.provider}: {p.ready ? "ready" : `not ready (${p.reason})`}
          </li>
        ))}
      </ul>
      {live.models.length === 0 ? (
        <p class="muted">no measurements yet</p>
      ) : (
        <div class="scroll">
          <table>
            <thead>
              <tr>
                <th scope="col">model</th>
                <th scope="col">circuit</th>
                <th scope="col">first token (live / prior)</th>
                <th scope="col">tokens/s</th>
              </tr>
            </thead>
            <tbody>
              {live.models.map((m) => (
                <tr key={m.model}>
                  <th scope="row">{m.model}</th>
                  <td class={m.circuit === "open" ? "bad" : "ok"}>{m.circuit_reason ?? m.circuit}</td>
                  <td>
                    {ms(m.ttft_ms)} / {ms(m.prior_ttft_ms)} <span class="muted">({m.ttft_samples} samples)</span>
                  </td>
                  <td>{m.tokens_per_second == null ? "–" : m.tokens_per_second.toFixed(0)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}

function RequestLog({ range, version }: { range: Record<string, string>; version: number }) {
  const [search, setSearch] = useState("");
  const [outcome, setOutcome] = useState("");
  const [offset, setOffset] = useState(0);
  const [page, setPage] = useState<{ total: number; rows: LogRow[] } | null>(null);
  const [error, setError] = useState("");
  const params = { ...range, q: search, outcome };
  useEffect(() => {
    const t = setTimeout(() => {
      getJSON<{ total: number; rows: LogRow[] }>(`/v1/usage/requests?${query({ ...params, limit: PAGE, offset })}`)
        .then((p) => {
          setPage(p);
          setError("");
        })
        .catch((e) => setError(errorText(e)));
    }, 200);
    return () => clearTimeout(t);
  }, [search, outcome, offset, version, range.since, range.until]);
  const exportCsv = () => download(`/v1/usage/requests.csv?${query(params)}`, "usage.csv").catch((e) => setError(errorText(e)));
  const prompts = page?.rows.some((r) => r.prompt !== undefined);
  return (
    <section class="card" aria-labelledby="log-h" data-testid="log">
      <h2 id="log-h">Requests</h2>
      <div class="filters">
        <label for="log-q">Search</label>
        <input id="log-q" type="search" value={search} placeholder="request id, key, model, task, error" onInput={(e) => { setSearch((e.target as HTMLInputElement).value); setOffset(0); }} />
        <label for="log-outcome">Outcome</label>
        <select id="log-outcome" value={outcome} onChange={(e) => { setOutcome((e.target as HTMLSelectElement).value); setOffset(0); }}>
          {["", "ok", "error", "cancelled", "auth", "budget", "no_candidates", "request"].map((o) => (
            <option key={o} value={o}>
              {o || "any"}
            </option>
          ))}
        </select>
        <button type="button" onClick={() => void exportCsv()}>
          Export CSV
        </button>
      </div>
      {error && <p class="error" role="alert">{error}</p>}
      {page && (
        <>
          <p class="muted" data-testid="log-total">
            {page.total} requests{page.total > PAGE ? `, ${offset + 1}–${Math.min(offset + PAGE, page.total)} shown` : ""}
          </p>
          <div class="scroll">
            <table class="log">
              <thead>
                <tr>
                  {["time (UTC)", "request id", "key", "task", "model", "tokens", "cost", "latency", "outcome", ...(prompts ? ["prompt"] : [])].map((h) => (
                    <th scope="col" key={h}>{h}</th>
                  ))}
                </tr>
              </thead>
              <tbody>
                {page.rows.map((r) => (
                  <tr key={r.request_id + r.ts}>
                    <td>{new Date(r.ts * 1000).toISOString().slice(0, 19).replace("T", " ")}</td>
                    <td><code>{r.request_id}</code></td>
                    <td>{name(r.key_id)}</td>
                    <td>{name(r.task)}</td>
                    <td>{name(r.model)}</td>
                    <td>{r.input_tokens}+{r.output_tokens}</td>
                    <td>{usd(r.cost_usd)}</td>
                    <td>{ms(r.latency_ms)}</td>
                    <td class={r.outcome === "ok" ? "ok" : "bad"} title={r.error ?? ""}>
                      {r.outcome}{r.fallbacks ? ` (${r.fallbacks} fallback)` : ""}
                    </td>
                    {prompts && <td class="prompt">{r.prompt ?? ""}</td>}
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          <div class="pager">
            <button type="button" disabled={offset === 0} onClick={() => setOffset(Math.max(0, offset - PAGE))}>Newer</button>
            <button type="button" disabled={offset + PAGE >= page.total} onClick={() => setOffset(offset + PAGE)}>Older</button>
          </div>
        </>
      )}
    </section>
  );
}

export function Dashboard({ keyVersion }: { keyVersion: number }) {
  const [since, setSince] = useState(isoDay(-29));
  const [until, setUntil] = useState(isoDay(0));
  const [data, setData] = useState<Data | null>(null);
  const [error, setError] = useState("");
  const [version, setVersion] = useState(0);
  const range = useMemo(() => ({ since, until }), [since, until]);
  useEffect(() => {
    load(query(range))
      .then((d) => {
        setData(d);
        setError("");
      })
      .catch((e) => {
        setData(null);
        setError(errorText(e));
      });
  }, [range, keyVersion, version]);
  return (
    <div class="dashboard">
      <form class="card range" aria-label="Date range" onSubmit={(e) => { e.preventDefault(); setVersion((v) => v + 1); }}>
        <label for="since">From</label>
        <input id="since" type="date" value={since} max={until} onChange={(e) => setSince((e.target as HTMLInputElement).value)} />
        <label for="until">To</label>
        <input id="until" type="date" value={until} min={since} onChange={(e) => setUntil((e.target as HTMLInputElement).value)} />
        <button type="submit">Refresh</button>
      </form>
      {error && (
        <p class="error" role="alert" data-testid="dashboard-error">
          {error}
        </p>
      )}
      {data && (
        <>
          <Summary t={data.summary} />
          <Charts d={data} />
          <div class="grid2">
            <Budgets rows={data.budgets} />
            <LiveState live={data.live} />
          </div>
          <RequestLog range={range} version={keyVersion + version} />
        </>
      )}
    </div>
  );
}
