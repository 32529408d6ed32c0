// Charts of the dashboard: a time series (uPlot, on a canvas, with the same figures in a table for screen
// readers and keyboard users) and horizontal bars drawn with HTML (meter elements), which stay accessible as they are.
import { useEffect, useRef } from "preact/hooks";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";

export interface Series {
  label: string;
  values: number[];
  color: string;
  format: (v: number) => string;
}

export function TimeChart({ title, days, series }: { title: string; days: string[]; series: Series[] }) {
  const box = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const el = box.current;
    if (!el) return;
    const xs = days.map((d) => Date.parse(`${d}T00:00:00Z`) / 1000);
    const opts: uPlot.Options = {
      width: Math.max(280, el.clientWidth),
      height: 220,
      tzDate: (ts) => uPlot.tzDate(new Date(ts * 1e3), "Etc/UTC"),
      legend: { live: false },
      cursor: { drag: { x: false, y: false } },
      scales: { x: { time: true }, y2: { auto: true } },
      axes: [
        {},
        { scale: "y", values: (_u, ticks) => ticks.map((t) => series[0].format(t)), size: 84 },
        { scale: "y2", side: 1, grid: { show: false }, size: 50 },
      ],
      series: [
        {},
        ...series.map((s, i) => ({
          label: s.label,
          stroke: s.color,
          fill: i === 0 ? `${s.color}33` : undefined,
          width: 2,
          scale: i === 0 ? "y" : "y2",
          value: (_u: uPlot, v: number | null) => (v == null ? "–" : s.format(v)),
        })),
      ],
    };
    const chart = new uPlot(opts, [xs, ...series.map((s) => s.values)] as uPlot.AlignedData, el);
    const resize = new ResizeObserver(() => chart.setSize({ width: Math.max(280, el.clientWidth), height: 220 }));
    resize.observe(el);
    return () => {
      resize.disconnect();
      chart.destroy();
    };
  }, [days, series]);
  return (
    <figure class="chart" data-testid="day-chart">
      <figcaption>{title}</figcaption>
      <div ref={box} class="uplot-box" role="img" aria-label={`${title}: chart (the table below has the figures)`} />
      <details>
        <summary>Figures</summary>
        <div class="scroll">
          <table>
            <thead>
              <tr>
                <th scope="col">day</th>
                {series.map((s) => (
                  <th scope="col" key={s.label}>
                    {s.label}
                  </th>
                ))}
              </tr>
            </thead>
            <tbody>
              {days.map((d, i) => (
                <tr key={d}>
                  <td>{d}</td>
                  {series.map((s) => (
                    <td key={s.label}>{s.format(s.values[i])}</td>
                  ))}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      </details>
    </figure>
  );
}

export interface BarRow {
  name: string;
  value: number;
  text: string;
  extra?: string;
}

export function BarChart({ title, rows, testid }: { title: string; rows: BarRow[]; testid: string }) {
  const max = Math.max(0, ...rows.map((r) => r.value));
  return (
    <figure class="bars" data-testid={testid}>
      <figcaption>{title}</figcaption>
      {rows.length === 0 ? (
        <p class="muted">no requests in this range</p>
      ) : (
        <table>
          <tbody>
            {rows.map((r) => (
              <tr key={r.name}>
                <th scope="row">{r.name}</th>
                <td class="bar-cell">
                  <meter min={0} max={max || 1} value={r.value} aria-label={`${r.name}: ${r.text}`} />
                </td>
                <td class="num">
                  {r.text}
                  {r.extra && <span class="muted"> {r.extra}</span>}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </figure>
  );
}
