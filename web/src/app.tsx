import type { ComponentType } from "preact";
import { useEffect, useState } from "preact/hooks";
import { getKey, setKey } from "./api";
import { Playground } from "./playground";

const DASHBOARD = location.pathname.replace(/\/+$/, "") === "/dashboard";

/** The key box: the key is entered once and kept in this tab's session storage. */
function KeyBox({ onChange }: { onChange: (key: string) => void }) {
  const [draft, setDraft] = useState("");
  const [saved, setSaved] = useState(getKey() !== "");
  const save = (e: Event) => {
    e.preventDefault();
    setKey(draft.trim());
    setSaved(draft.trim() !== "");
    setDraft("");
    onChange(draft.trim());
  };
  const forget = () => {
    setKey("");
    setSaved(false);
    onChange("");
  };
  return (
    <form class="keybox" onSubmit={save} aria-label="Gateway key">
      {saved ? (
        <>
          <span class="muted" data-testid="key-state">
            key set for this tab
          </span>
          <button type="button" onClick={forget}>
            Forget key
          </button>
        </>
      ) : (
        <>
          <label for="api-key">API key</label>
          <input
            id="api-key"
            type="password"
            autocomplete="off"
            placeholder="sk-…"
            value={draft}
            onInput={(e) => setDraft((e.target as HTMLInputElement).value)}
          />
          <button type="submit">Use key</button>
        </>
      )}
    </form>
  );
}

export function App() {
  const [keyVersion, setKeyVersion] = useState(0);
  const [Dashboard, setDashboard] = useState<ComponentType<{ keyVersion: number }> | null>(null);
  useEffect(() => {
    if (DASHBOARD) void import("./dashboard").then((m) => setDashboard(() => m.Dashboard));
  }, []);
  return (
    <>
      <a class="skip" href="#main">
        Skip to content
      </a>
      <header class="top">
        <span class="brand">llm-router</span>
        <nav aria-label="Pages">
          <a href="/" aria-current={DASHBOARD ? undefined : "page"}>
            Playground
          </a>
          <a href="/dashboard" aria-current={DASHBOARD ? "page" : undefined}>
            Dashboard
          </a>
        </nav>
        <KeyBox onChange={() => setKeyVersion((v) => v + 1)} />
      </header>
      <main id="main" tabIndex={-1}>
        {DASHBOARD ? (
          Dashboard ? (
            <Dashboard keyVersion={keyVersion} />
          ) : (
            <p>Loading…</p>
          )
        ) : (
          <Playground keyVersion={keyVersion} />
        )}
      </main>
    </>
  );
}
