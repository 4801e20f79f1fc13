/** Cumulative realised PnL (lightweight-charts, lazy-loaded): live solid, paper dashed. */
import { ColorType, createChart, LineSeries, LineStyle, type IChartApi, type ISeriesApi, type UTCTimestamp } from "lightweight-charts";
import { canDrawCharts } from "./canvas";
import { useEffect, useRef } from "react";
import type { PnlHistory } from "./analyticsApi";

export const LIVE_COLOR = "#389e0d";
export const PAPER_COLOR = "#722ed1";

interface Props {
  history: PnlHistory;
  height?: number;
}

export default function PnlChart({ history, height = 200 }: Props) {
  const container = useRef<HTMLDivElement>(null);
  const chartRef = useRef<IChartApi | null>(null);
  const live = useRef<ISeriesApi<"Line"> | null>(null);
  const paper = useRef<ISeriesApi<"Line"> | null>(null);

  useEffect(() => {
    const el = container.current;
    if (!el || !canDrawCharts()) return; // no 2D canvas: the card still shows its figures
    let chart: IChartApi | null = null;
    try {
      chart = createChart(el, {
        height,
        autoSize: true,
        layout: { background: { type: ColorType.Solid, color: "#ffffff" }, textColor: "#595959", fontSize: 11 },
        grid: { vertLines: { color: "#f0f0f0" }, horzLines: { color: "#f0f0f0" } },
        timeScale: { timeVisible: true, secondsVisible: false },
        rightPriceScale: { borderVisible: false },
      });
    } catch {
      return; // no canvas (a test DOM): the card still shows the totals
    }
    const format = { type: "custom" as const, formatter: (v: number) => `${v.toFixed(2)} USDT`, minMove: 0.0001 };
    live.current = chart.addSeries(LineSeries, { color: LIVE_COLOR, lineWidth: 2, title: "live", priceFormat: format });
    paper.current = chart.addSeries(LineSeries, {
      color: PAPER_COLOR,
      lineWidth: 2,
      lineStyle: LineStyle.Dashed,
      title: "paper",
      priceFormat: format,
    });
    live.current.createPriceLine({ price: 0, color: "#bfbfbf", lineWidth: 1, lineStyle: LineStyle.Dotted, axisLabelVisible: false, title: "" });
    chartRef.current = chart;
    return () => {
      chart?.remove();
      chartRef.current = null;
      live.current = null;
      paper.current = null;
    };
  }, [height]);

  useEffect(() => {
    const toData = (points: PnlHistory["live"]["points"]) => points.map((p) => ({ time: p.time as UTCTimestamp, value: p.value }));
    live.current?.setData(toData(history.live.points));
    paper.current?.setData(toData(history.paper.points));
    chartRef.current?.timeScale().fitContent();
  }, [history]);

  return <div ref={container} style={{ width: "100%", height }} />;
}
