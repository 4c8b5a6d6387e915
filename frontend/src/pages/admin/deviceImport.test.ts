import { describe, expect, it, vi } from "vitest";
import type { ImportResult } from "../../api/types";
import { csvRecords, importCsv, mergeResults, splitCsv } from "./deviceImport";

const HEADER = "serial,name,address,max_hourly_kwh,timezone,owners";
const empty = (): ImportResult => ({ created: [], updated: [], unchanged: [], rejected: [] });

describe("csvRecords", () => {
  it("keeps quoted commas, quotes and line breaks inside their record and leaves blank records out", () => {
    const text = `${HEADER}\r\nSN-1,"Garage, ""north""","Main St\n2nd floor",1,,\r\n\r\n,,,,,\n"",""\nSN-2,B,,1,,`;
    expect(csvRecords(text)).toEqual([
      HEADER, 'SN-1,"Garage, ""north""","Main St\n2nd floor",1,,', "SN-2,B,,1,,",
    ]);
  });
});

describe("splitCsv", () => {
  it("sends at most maxRows rows a part, each with the header, numbering rows over the file", () => {
    const rows = Array.from({ length: 2501 }, (_, i) => `SN-${i},Meter ${i},,1,,`);
    const parts = splitCsv(`\uFEFF${[HEADER, ...rows].join("\n")}\n`);
    expect(parts.map((p) => [p.firstRow, p.rows])).toEqual([[1, 1000], [1001, 1000], [2001, 501]]);
    expect(parts.every((p) => p.text.startsWith(`${HEADER}\n`))).toBe(true);
    expect(parts[1].text.split("\n")[1]).toBe("SN-1000,Meter 1000,,1,,");
  });

  it("cuts a part before it grows past maxBytes", () => {
    const rows = Array.from({ length: 10 }, (_, i) => `SN-${i},${"x".repeat(90)},,1,,`);
    expect(splitCsv([HEADER, ...rows].join("\n"), 1000, 350).map((p) => p.rows)).toEqual([3, 3, 3, 1]);
  });

  it("sends a header alone as one part (the API says what is wrong with it)", () => {
    expect(splitCsv("id,name\n")).toEqual([{ text: "id,name\n", firstRow: 1, rows: 0 }]);
    expect(splitCsv("")).toEqual([]);
  });
});

describe("importCsv", () => {
  it("sends the parts one after the other and numbers the answers' rows over the whole file", async () => {
    const rows = Array.from({ length: 1500 }, (_, i) => `SN-${i},Meter ${i},,1,,`);
    const sent: string[] = [];
    const send = vi.fn(async (csv: string) => {
      sent.push(csv);
      const result = empty();
      result.created.push({ row: 1, serial: "first", device_id: `d${sent.length}` });
      result.rejected.push({ row: 2, serial: null, problems: [{ field: "name", message: "bad" }] });
      return result;
    });
    const progress = vi.fn();
    const result = await importCsv([HEADER, ...rows].join("\n"), send, progress);
    expect(sent).toHaveLength(2);
    expect(result.created.map((r) => r.row)).toEqual([1, 1001]);
    expect(result.rejected.map((r) => r.row)).toEqual([2, 1002]);
    expect(progress.mock.calls).toEqual([[0, 1500], [1000, 1500], [1500, 1500]]);
  });

  it("merges nothing into an empty answer", () => {
    expect(mergeResults([])).toEqual(empty());
  });
});
