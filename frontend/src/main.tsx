import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { App } from "./App";
import { loadRuntimeConfig } from "./config";
import "./styles.css";

const root = createRoot(document.getElementById("root")!);

function StartupError({ message }: { message: string }) {
  return (
    <main className="auth-page">
      <div className="card auth-card">
        <h1>Cannot start</h1>
        <div className="error-box" role="alert">{message}</div>
        <button type="button" onClick={() => window.location.reload()}>Try again</button>
      </div>
    </main>
  );
}

loadRuntimeConfig().then(
  (config) =>
    root.render(
      <StrictMode>
        <App config={config} />
      </StrictMode>,
    ),
  (error: unknown) => root.render(<StartupError message={error instanceof Error ? error.message : String(error)} />),
);
