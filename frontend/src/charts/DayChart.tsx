import "./setup";
import type { ChartData, ChartOptions } from "chart.js";
import { Chart as ChartView } from "react-chartjs-2";
import type { DayConsumption } from "../api/types";
import { formatKwh } from "../format";
import { dayChartModel } from "./mapping";
import { missingShade } from "./setup";

const BAR = "#2f7d5b";
const BAR_OVER = "#e8590c";
const LIMIT = "#c92a2a";
const RESET = "#5f3dc4";

/** Hourly bars of one day with the device's limit as a line; missing hours are shaded and empty. */
export function DayChart({ day }: { day: DayConsumption }) {
  const model = dayChartModel(day);
  const data: ChartData<"bar" | "line", (number | null)[], string> = {
    labels: model.labels,
    datasets: [
      {
        type: "bar",
        label: "kWh",
        data: model.values,
        backgroundColor: model.over.map((o) => (o ? BAR_OVER : BAR)),
        borderColor: model.labels.map((_, i) => (model.resets.includes(i) ? RESET : "transparent")),
        borderWidth: model.labels.map((_, i) => (model.resets.includes(i) ? 3 : 0)),
        borderRadius: 3,
        order: 2,
      },
      {
        type: "line",
        label: `Limit (${formatKwh(model.limit)} per hour)`,
        data: model.labels.map(() => model.limit),
        borderColor: LIMIT,
        borderWidth: 2,
        borderDash: [6, 4],
        pointRadius: 0,
        fill: false,
        order: 1,
      },
    ],
  };
  const options: ChartOptions<"bar" | "line"> = {
    responsive: true,
    maintainAspectRatio: false,
    animation: false,
    interaction: { mode: "index", intersect: false },
    scales: {
      y: { beginAtZero: true, title: { display: true, text: "kWh" } },
      x: { ticks: { maxRotation: 0, autoSkip: true, autoSkipPadding: 6 } },
    },
    plugins: {
      legend: { position: "bottom" },
      tooltip: {
        callbacks: {
          label: (ctx) => (ctx.dataset.type === "line" ? `Limit: ${formatKwh(model.limit)}` : ctx.raw === null ? "No reading" : `${formatKwh(ctx.raw as number, 3)}`),
          afterLabel: (ctx) => (ctx.dataset.type !== "line" && model.resets.includes(ctx.dataIndex) ? "Meter reset in this hour" : ""),
        },
      },
      ...({ missingShade: { indexes: model.missing } } as object),
    },
  };
  return (
    <figure className="chart" aria-label={`Hourly consumption on ${day.date}`}>
      <div className="chart-canvas">
        <ChartView type="bar" data={data} options={options} plugins={[missingShade as never]} />
      </div>
      <figcaption className="chart-legend-note">
        <span><span className="swatch missing" aria-hidden="true" /> Shaded columns: no reading in that hour ({model.missing.length} of {model.labels.length}).</span>
        <span><span className="swatch over" aria-hidden="true" /> Orange bars: over the limit; the red line is the hourly limit.</span>
        {model.resets.length > 0 && (
          <span className="chart-resets">Outlined bars: the meter was reset in that hour ({model.resets.map((i) => model.labels[i]).join(", ")}); the hour counts the register's new value.</span>
        )}
      </figcaption>
    </figure>
  );
}
