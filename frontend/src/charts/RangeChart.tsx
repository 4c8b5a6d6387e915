import "./setup";
import type { ChartData, ChartOptions } from "chart.js";
import { Chart as ChartView } from "react-chartjs-2";
import type { RangeConsumption } from "../api/types";
import { formatKwh } from "../format";
import { rangeChartModel } from "./mapping";
import { missingShade } from "./setup";

/** A range by day (or hour) with the previous period of the same length beside it. */
export function RangeChart({ range }: { range: RangeConsumption }) {
  const model = rangeChartModel(range);
  const prevLabel = `Previous period (${range.previous.from} – ${range.previous.to})`;
  const data: ChartData<"bar", (number | null)[], string> = {
    labels: model.labels,
    datasets: [
      { label: `This period (${range.from} – ${range.to})`, data: model.current, backgroundColor: "#2f7d5b", borderRadius: 3 },
      { label: prevLabel, data: model.previous, backgroundColor: "#adb5bd", borderRadius: 3 },
    ],
  };
  const options: ChartOptions<"bar"> = {
    responsive: true,
    maintainAspectRatio: false,
    animation: false,
    interaction: { mode: "index", intersect: false },
    scales: {
      y: { beginAtZero: true, title: { display: true, text: "kWh" } },
      x: { ticks: { maxRotation: 0, autoSkip: true } },
    },
    plugins: {
      legend: { position: "bottom" },
      tooltip: {
        callbacks: {
          title: (items) => items.map((item) => (item.datasetIndex === 1 ? model.previousLabels[item.dataIndex] : model.labels[item.dataIndex])).join(" / "),
          label: (ctx) => `${ctx.dataset.label}: ${ctx.raw === null ? "no reading" : formatKwh(ctx.raw as number, 3)}`,
        },
      },
      ...({ missingShade: { indexes: model.missing } } as object),
    },
  };
  return (
    <figure className="chart" aria-label={`Consumption from ${range.from} to ${range.to}`}>
      <div className="chart-canvas">
        <ChartView type="bar" data={data} options={options} plugins={[missingShade as never]} />
      </div>
      <figcaption className="chart-legend-note">
        <span><span className="swatch missing" aria-hidden="true" /> Shaded: no reading in that {range.granularity === "hour" ? "hour" : "day"}.</span>
      </figcaption>
    </figure>
  );
}
