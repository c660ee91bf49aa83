import { ErrorBoundary, lazy, LocationProvider, Route, Router, useLocation } from "preact-iso";
import { useState } from "preact/hooks";
import { storeApiKey, storedApiKey } from "./api.js";
import { ChatPage } from "./chat-page.js";

// The chat is in the first bundle; the other pages (and Chart.js, d3) load when first opened.
const ModelsPage = lazy(() => import("./pages/models/models-page.js").then((module) => module.ModelsPage));
const LeaderboardPage = lazy(() => import("./pages/leaderboard/leaderboard-page.js").then((module) => module.LeaderboardPage));
const OperationsPage = lazy(() => import("./pages/operations/operations-page.js").then((module) => module.OperationsPage));

const PAGES = [
  { href: "/", label: "Chat" },
  { href: "/models", label: "Models" },
  { href: "/leaderboard", label: "Leaderboard" },
  { href: "/operations", label: "Operations" },
] as const;

/**
 * The API key field, folded away under "API key" (with "set" once one is saved): kept in this
 * browser only and sent as a bearer token with every call. Saving reloads the page's data.
 */
function ApiKeyField() {
  const [key, setKey] = useState(storedApiKey);
  const saved = storedApiKey() !== "";
  return (
    <details class="api-key">
      <summary>API key{saved ? " (set)" : ""}</summary>
      <form onSubmit={(event) => { event.preventDefault(); storeApiKey(key.trim()); location.reload(); }}>
        <label>API key
          <input type="password" autocomplete="off" placeholder="only when the server has keys" value={key}
            onInput={(event) => setKey(event.currentTarget.value)} />
        </label>
        <button type="submit">Use key</button>
        {saved && <button type="button" onClick={() => { storeApiKey(""); location.reload(); }}>Forget key</button>}
      </form>
    </details>
  );
}

function Header() {
  const { path } = useLocation();
  const current = (href: string) => (href === "/" ? path === "/" : path === href || path.startsWith(`${href}/`));
  return (
    <header class="top">
      <span class="brand" aria-hidden="true">Grove</span>
      <nav aria-label="Pages">
        <ul>
          {PAGES.map((page) => (
            <li key={page.href}><a href={page.href} aria-current={current(page.href) ? "page" : undefined}>{page.label}</a></li>
          ))}
        </ul>
      </nav>
      <ApiKeyField />
    </header>
  );
}

function NotFound() {
  return <main class="page"><h1>Not found</h1><p>There is no page here. <a href="/">Back to the chat</a>.</p></main>;
}

/** The web app: a header with the pages, and the page the address names. */
export function App() {
  return (
    <LocationProvider>
      <Header />
      <ErrorBoundary>
        <Router>
          <Route path="/" component={ChatPage} />
          <Route path="/models" component={ModelsPage} />
          <Route path="/models/:ref" component={ModelsPage} />
          <Route path="/leaderboard" component={LeaderboardPage} />
          <Route path="/operations" component={OperationsPage} />
          <Route default component={NotFound} />
        </Router>
      </ErrorBoundary>
    </LocationProvider>
  );
}
