/** A tiny SVG line for table cells (a chart library per row would be too heavy). */
interface Props {
  points: Array<{ value: number }>;
  width?: number;
  height?: number;
  threshold?: number;
  testId?: string;
}

export function Sparkline({ points, width = 110, height = 28, threshold, testId }: Props) {
  const values = points.slice(-60).map((p) => p.value);
  if (values.length < 2) {
    return (
      <svg width={width} height={height} data-testid={testId} aria-label="spread history (waiting for data)">
        <line x1={0} x2={width} y1={height / 2} y2={height / 2} stroke="#d9d9d9" strokeDasharray="3 3" />
      </svg>
    );
  }
  const all = threshold !== undefined ? [...values, threshold] : values;
  const min = Math.min(...all);
  const max = Math.max(...all);
  const span = max - min || 1;
  const y = (v: number) => height - 2 - ((v - min) / span) * (height - 4);
  const step = width / (values.length - 1);
  const d = values.map((v, i) => `${(i * step).toFixed(1)},${y(v).toFixed(1)}`).join(" ");
  const last = values[values.length - 1] ?? 0;
  const color = threshold !== undefined && last >= threshold ? "#389e0d" : "#1677ff";
  return (
    <svg width={width} height={height} data-testid={testId} aria-label="spread history">
      {threshold !== undefined ? (
        <line x1={0} x2={width} y1={y(threshold)} y2={y(threshold)} stroke="#faad14" strokeDasharray="2 2" />
      ) : null}
      <polyline fill="none" stroke={color} strokeWidth={1.5} points={d} />
    </svg>
  );
}
