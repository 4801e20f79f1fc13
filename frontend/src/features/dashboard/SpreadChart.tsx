/** Spread history for one pair (lightweight-charts), fed by the live price cache. */
import {
  ColorType,
  createChart,
  LineSeries,
  type AutoscaleInfo,
  type IChartApi,
  type ISeriesApi,
  type UTCTimestamp,
} from "lightweight-charts";
import { canDrawCharts } from "./canvas";
import { useEffect, useRef } from "react";
import type { SpreadPoint } from "../arbitrage/types";

interface Props {
  points: SpreadPoint[];
  threshold: number;
  height?: number;
}

export default function SpreadChart({ points, threshold, height = 180 }: Props) {
  const container = useRef<HTMLDivElement>(null);
  const chart = useRef<IChartApi | null>(null);
  const series = useRef<ISeriesApi<"Line"> | null>(null);

  useEffect(() => {
    const el = container.current;
    if (!el || !canDrawCharts()) return; // no 2D canvas: the card still shows its figures
    let created: IChartApi | null = null;
    try {
      created = createChart(el, {
        height,
        autoSize: true,
        layout: { background: { type: ColorType.Solid, color: "#ffffff" }, textColor: "#595959", fontSize: 11 },
        grid: { vertLines: { color: "#f0f0f0" }, horzLines: { color: "#f0f0f0" } },
        timeScale: { timeVisible: true, secondsVisible: true },
        rightPriceScale: { borderVisible: false },
      });
    } catch {
      return; // no canvas (e.g. a test DOM): the card still shows the numbers
    }
    const line = created.addSeries(LineSeries, {
      color: "#1677ff",
      lineWidth: 2,
      priceFormat: { type: "custom", formatter: (v: number) => `${v.toFixed(4)} %`, minMove: 0.0001 },
      // Keep the threshold on screen so "how far from triggering" is visible at a glance.
      autoscaleInfoProvider: (original: () => AutoscaleInfo | null) => {
        const info = original();
        if (!info?.priceRange) return info;
        return {
          ...info,
          priceRange: {
            minValue: Math.min(info.priceRange.minValue, threshold),
            maxValue: Math.max(info.priceRange.maxValue, threshold),
          },
        };
      },
    });
    line.createPriceLine({ price: threshold, color: "#faad14", lineWidth: 1, lineStyle: 2, axisLabelVisible: true, title: "threshold" });
    chart.current = created;
    series.current = line;
    return () => {
      created?.remove();
      chart.current = null;
      series.current = null;
    };
  }, [height, threshold]);

  useEffect(() => {
    series.current?.setData(points.map((p) => ({ time: p.time as UTCTimestamp, value: p.value })));
  }, [points, threshold]);

  return <div ref={container} style={{ width: "100%", height }} />;
}
