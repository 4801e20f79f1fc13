/**
 * Whether this browser can draw charts: lightweight-charts needs a 2D canvas context and, without
 * one, fails later inside an animation frame (an uncaught error), not when the chart is created.
 * Hardened browsers and test DOMs have none; the cards then show their figures without a chart.
 */
export function canDrawCharts(): boolean {
  try {
    return document.createElement("canvas").getContext("2d") !== null;
  } catch {
    return false;
  }
}
