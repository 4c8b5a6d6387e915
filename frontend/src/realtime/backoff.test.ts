import { describe, expect, it } from "vitest";
import { backoffDelay } from "./backoff";

describe("backoffDelay", () => {
  const noJitter = { jitter: 0 };

  it("doubles from the base delay up to the cap", () => {
    const delays = [0, 1, 2, 3, 4, 5, 6, 7].map((a) => backoffDelay(a, noJitter));
    expect(delays).toEqual([1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]);
  });

  it("keeps jitter within its fraction and under the cap", () => {
    expect(backoffDelay(2, { jitter: 0.2, random: () => 0 })).toBe(3200);
    expect(backoffDelay(2, { jitter: 0.2, random: () => 1 })).toBe(4800);
    expect(backoffDelay(10, { jitter: 0.2, random: () => 1 })).toBe(30000);
  });

  it("treats a negative attempt as the first", () => {
    expect(backoffDelay(-3, noJitter)).toBe(1000);
  });
});
