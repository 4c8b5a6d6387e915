import {
  BarController, BarElement, CategoryScale, Chart, Legend, LinearScale, LineController, LineElement,
  PointElement, Tooltip, type Plugin,
} from "chart.js";

Chart.register(BarController, BarElement, CategoryScale, LinearScale, LineController, LineElement, PointElement, Tooltip, Legend);

/** Shades the columns of missing points so a gap reads as "no data", not as zero. */
export const missingShade: Plugin<"bar"> = {
  id: "missingShade",
  beforeDatasetsDraw(chart, _args, options) {
    const missing = (options as { indexes?: number[] }).indexes ?? [];
    if (!missing.length) return;
    const { ctx, chartArea, scales } = chart;
    const x = scales.x;
    if (!x || !chartArea) return;
    const count = chart.data.labels?.length ?? 0;
    const width = count ? (chartArea.right - chartArea.left) / count : 0;
    const top = chartArea.top;
    const height = chartArea.bottom - chartArea.top;
    for (const i of missing) {
      const left = x.getPixelForValue(i) - width / 2;
      ctx.save();
      ctx.beginPath();
      ctx.rect(left, top, width, height);
      ctx.clip();
      ctx.fillStyle = "rgba(120, 120, 120, 0.10)";
      ctx.fillRect(left, top, width, height);
      ctx.strokeStyle = "rgba(120, 120, 120, 0.35)";
      ctx.lineWidth = 1;
      ctx.beginPath();
      for (let d = -height; d < width; d += 7) {
        ctx.moveTo(left + d, top + height);
        ctx.lineTo(left + d + height, top);
      }
      ctx.stroke();
      ctx.restore();
    }
  },
};

export { Chart };
