import { useState, type FormEvent } from "react";
import type { ImportResult } from "../../api/types";
import { ErrorBox } from "../../components/ErrorBox";
import { useSession } from "../../state/auth";
import { IMPORT_HEADER, IMPORT_MAX_ROWS, importCsv } from "./deviceImport";

/** Reads a chosen file as text (File.text is missing in some test environments). */
function fileText(file: File): Promise<string> {
  if (typeof file.text === "function") return file.text();
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(String(reader.result ?? ""));
    reader.onerror = () => reject(reader.error);
    reader.readAsText(file);
  });
}

/** Imports meters from a CSV file and shows what each row became; `onDone` after any import. */
export function DeviceImportPanel({ onDone }: { onDone: () => void }) {
  const { api } = useSession();
  const [file, setFile] = useState<File | null>(null);
  const [progress, setProgress] = useState<{ done: number; total: number } | null>(null);
  const [result, setResult] = useState<ImportResult | null>(null);
  const [error, setError] = useState<unknown>(null);
  const busy = progress !== null && result === null && error === null;

  async function submit(event: FormEvent) {
    event.preventDefault();
    if (!file) return;
    setResult(null);
    setError(null);
    setProgress({ done: 0, total: 0 });
    try {
      const text = await fileText(file);
      setResult(await importCsv(text, api.importDevices, (done, total) => setProgress({ done, total })));
    } catch (e) {
      setError(e);
    } finally {
      onDone();
    }
  }

  return (
    <form className="card form import-panel" onSubmit={submit} aria-label="Import devices">
      <h2>Import devices from CSV</h2>
      <p className="muted">
        Header: <code>{IMPORT_HEADER}</code>. Owners are usernames separated by <code>;</code>. A known serial updates
        its device (its owners become the row's); a new one creates a device. Files of any length are sent{" "}
        {IMPORT_MAX_ROWS.toLocaleString("en-US")} rows at a time.
      </p>
      <div className="field">
        <label htmlFor="import-file">CSV file</label>
        <input
          id="import-file"
          type="file"
          accept=".csv,text/csv"
          onChange={(e) => setFile(e.target.files?.[0] ?? null)}
        />
      </div>
      <div className="form-actions">
        <button type="submit" disabled={!file || busy}>Import</button>
      </div>
      {progress && busy && (
        <div role="status" aria-live="polite">
          Imported {progress.done.toLocaleString("en-US")} of {progress.total.toLocaleString("en-US")} rows…
        </div>
      )}
      <ErrorBox error={error} title={progress && progress.done > 0 ? `Stopped after ${progress.done} rows:` : undefined} />
      {result && (
        <div className="import-result">
          <p role="status" data-testid="import-summary">
            {result.created.length} created, {result.updated.length} updated, {result.unchanged.length} unchanged,{" "}
            {result.rejected.length} rejected.
          </p>
          {result.rejected.length > 0 && (
            <div className="table-wrap">
              <table className="import-rejections">
                <caption>Rejected rows (nothing of them was changed)</caption>
                <thead>
                  <tr>
                    <th scope="col">Row</th>
                    <th scope="col">Serial</th>
                    <th scope="col">Reasons</th>
                  </tr>
                </thead>
                <tbody>
                  {result.rejected.map((r) => (
                    <tr key={r.row}>
                      <td data-label="Row">{r.row}</td>
                      <td data-label="Serial">{r.serial ?? <span className="muted">—</span>}</td>
                      <td data-label="Reasons">{r.problems.map((p) => `${p.field}: ${p.message}`).join("; ")}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
        </div>
      )}
    </form>
  );
}
