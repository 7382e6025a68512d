// A minimal line plot of the alignment losses on a canvas (the state-dynamics task's too when
// the policy has it).
import type { LossPoint } from './session.js';

const SERIES: [keyof Omit<LossPoint, 'step' | 'total'>, string][] = [
  ['perception', '#d33'],
  ['dynamics', '#36c'],
  ['inverseDynamics', '#2a2'],
  ['stateDynamics', '#a3a'],
];

export function drawLosses(canvas: HTMLCanvasElement, points: readonly LossPoint[]): void {
  const ctx = canvas.getContext('2d')!;
  const { width: w, height: h } = canvas;
  ctx.clearRect(0, 0, w, h);
  ctx.strokeStyle = '#ccc';
  ctx.strokeRect(30, 10, w - 40, h - 30);
  if (points.length === 0) return;
  const series = SERIES.filter(([k]) => points[0]![k] !== undefined);
  const values = points.flatMap((p) => series.map(([k]) => p[k]!));
  const lo = Math.min(...values);
  const hi = Math.max(...values);
  const maxStep = Math.max(1, ...points.map((p) => p.step));
  const x = (s: number) => 30 + ((w - 40) * s) / maxStep;
  const y = (v: number) => 10 + (h - 30) * (1 - (v - lo) / Math.max(1e-9, hi - lo));
  ctx.fillStyle = '#666';
  ctx.font = '10px sans-serif';
  ctx.fillText(hi.toFixed(2), 0, 14);
  ctx.fillText(lo.toFixed(2), 0, h - 20);
  ctx.fillText(`step ${maxStep}`, w - 50, h - 5);
  for (const [key, color] of series) {
    ctx.strokeStyle = color;
    ctx.beginPath();
    points.forEach((p, i) =>
      i === 0 ? ctx.moveTo(x(p.step), y(p[key]!)) : ctx.lineTo(x(p.step), y(p[key]!)),
    );
    ctx.stroke();
  }
}
