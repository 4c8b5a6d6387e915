/**
 * Importing a CSV file of meters: the file is sent in parts the API takes (at most IMPORT_MAX_ROWS
 * data rows and IMPORT_MAX_BYTES a request, each part with the file's header), one after the other,
 * and the parts' answers are put together with row numbers counted over the whole file.
 */
import type { ImportResult } from "../../api/types";

/** What one request takes (the API answers 413 beyond): rows, and bytes well under its body limit. */
export const IMPORT_MAX_ROWS = 1000;
export const IMPORT_MAX_BYTES = 200 * 1024;
export const IMPORT_HEADER = "serial,name,address,max_hourly_kwh,timezone,owners";

export interface ImportPart {
  /** The part as a CSV file: the header, then its rows. */
  text: string;
  /** The file's row number of the part's first data row (the API counts from 1 in each part). */
  firstRow: number;
  rows: number;
}

/**
 * The records of a CSV text (a quoted field may hold commas, quotes and line breaks), blank ones
 * left out as the API leaves them out, each with its line ending removed.
 */
export function csvRecords(text: string): string[] {
  const records: string[] = [];
  let start = 0;
  let quoted = false;
  for (let i = 0; i <= text.length; i += 1) {
    const ch = text[i];
    if (ch === '"') quoted = !quoted;
    else if (i === text.length || (ch === "\n" && !quoted)) {
      const record = text.slice(start, i).replace(/\r$/, "");
      if (record.replace(/[,\s"]/g, "") !== "") records.push(record);
      start = i + 1;
    }
  }
  return records;
}

/** The file in parts of at most `maxRows` data rows and about `maxBytes`, each with the header. */
export function splitCsv(text: string, maxRows = IMPORT_MAX_ROWS, maxBytes = IMPORT_MAX_BYTES): ImportPart[] {
  const [header, ...rows] = csvRecords(text.replace(/^\uFEFF/, ""));
  if (header === undefined) return [];
  const parts: ImportPart[] = [];
  let current: string[] = [];
  let bytes = 0;
  let firstRow = 1;
  const flush = () => {
    if (current.length === 0) return;
    parts.push({ text: [header, ...current].join("\n") + "\n", firstRow, rows: current.length });
    firstRow += current.length;
    current = [];
    bytes = 0;
  };
  for (const row of rows) {
    if (current.length >= maxRows || (current.length > 0 && bytes + row.length + 1 > maxBytes)) flush();
    current.push(row);
    bytes += row.length + 1;
  }
  flush();
  if (parts.length === 0) parts.push({ text: header + "\n", firstRow: 1, rows: 0 });
  return parts;
}

/** Every part's answer in one, with row numbers counted over the whole file. */
export function mergeResults(answers: { part: ImportPart; result: ImportResult }[]): ImportResult {
  const merged: ImportResult = { created: [], updated: [], unchanged: [], rejected: [] };
  for (const { part, result } of answers) {
    const shift = part.firstRow - 1;
    merged.created.push(...result.created.map((r) => ({ ...r, row: r.row + shift })));
    merged.updated.push(...result.updated.map((r) => ({ ...r, row: r.row + shift })));
    merged.unchanged.push(...result.unchanged.map((r) => ({ ...r, row: r.row + shift })));
    merged.rejected.push(...result.rejected.map((r) => ({ ...r, row: r.row + shift })));
  }
  return merged;
}

/**
 * Sends the parts one after the other; `progress` hears how many rows are done. A part the API
 * refuses whole (a bad header, a file that is not CSV) stops the import with its error: the parts
 * before it are imported, as the answer so far says.
 */
export async function importCsv(
  text: string,
  send: (csv: string) => Promise<ImportResult>,
  progress: (done: number, total: number) => void = () => undefined,
): Promise<ImportResult> {
  const parts = splitCsv(text);
  const total = parts.reduce((sum, part) => sum + part.rows, 0);
  const answers: { part: ImportPart; result: ImportResult }[] = [];
  let done = 0;
  progress(0, total);
  for (const part of parts) {
    answers.push({ part, result: await send(part.text) });
    done += part.rows;
    progress(done, total);
  }
  return mergeResults(answers);
}
