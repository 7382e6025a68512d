// The demo's HTML report: one self-contained file (inline SVG plots, PNG frames as data URLs,
// no script, nothing fetched) with, per held-out robot, the alignment losses per task over the
// align steps, success before and after, and a strip of rollout frames before and after.
import { crc32, deflateSync } from 'node:zlib';
import { TASK_TITLE } from './task-titles.js';

export interface ReportCurve {
  label: string;
  /** y by step (x = index + 1) */
  values: readonly number[];
}

export interface ReportTarget {
  name: string;
  description: string;
  successBefore: number | null;
  /** parametrisation -> success after align (null when untrained) */
  successAfter: Record<string, number | null>;
  /** plot title -> curves */
  curves: Record<string, ReportCurve[]>;
  /** held-out losses before -> after, per parametrisation and task */
  heldOut: Record<string, { before: Record<string, number>; after: Record<string, number> }>;
  wallS: Record<string, number>;
  /** Rollout frames (uint8 RGB, side x side) before and after align, for one episode seed. */
  strips?: { side: number; before: Uint8Array[]; after: Uint8Array[]; afterLabel: string };
}

export interface Report {
  title: string;
  policy: string;
  machine: string;
  targets: ReportTarget[];
  totalS: number;
}

/** PNG of an RGB image (8 bit, no alpha), scaled up by `scale` with nearest neighbour. */
export function encodePng(rgb: Uint8Array, side: number, scale = 1): Uint8Array {
  const w = side * scale;
  const raw = new Uint8Array(w * (1 + 3 * w));
  for (let y = 0; y < w; y++) {
    const row = y * (1 + 3 * w);
    raw[row] = 0; // filter: none
    for (let x = 0; x < w; x++) {
      const src = (Math.floor(y / scale) * side + Math.floor(x / scale)) * 3;
      raw.set(rgb.subarray(src, src + 3), row + 1 + 3 * x);
    }
  }
  const chunk = (type: string, data: Uint8Array) => {
    const out = new Uint8Array(12 + data.length);
    const view = new DataView(out.buffer);
    view.setUint32(0, data.length);
    out.set(Buffer.from(type, 'ascii'), 4);
    out.set(data, 8);
    view.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)));
    return out;
  };
  const ihdr = new Uint8Array(13);
  const hv = new DataView(ihdr.buffer);
  hv.setUint32(0, w);
  hv.setUint32(4, w);
  ihdr.set([8, 2, 0, 0, 0], 8); // 8-bit RGB
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(raw)),
    chunk('IEND', new Uint8Array(0)),
  ]);
}

const esc = (s: string) =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b'];

/** An SVG line chart of the curves (shared y axis from 0). */
export function lineChart(title: string, curves: readonly ReportCurve[], w = 420, h = 220): string {
  const pad = { l: 48, r: 12, t: 24, b: 30 };
  const n = Math.max(1, ...curves.map((c) => c.values.length));
  const ymax = Math.max(1e-9, ...curves.flatMap((c) => c.values.filter(Number.isFinite)));
  const x = (i: number) => pad.l + ((w - pad.l - pad.r) * i) / Math.max(1, n - 1);
  const y = (v: number) => h - pad.b - ((h - pad.t - pad.b) * v) / ymax;
  const lines = curves
    .map((c, k) => {
      const pts = c.values.map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(' ');
      return `<polyline class="curve" data-label="${esc(c.label)}" fill="none" stroke="${COLORS[k % COLORS.length]}" stroke-width="1.5" points="${pts}"/>`;
    })
    .join('');
  const legend = curves
    .map(
      (c, k) =>
        `<text x="${pad.l + 8 + 110 * k}" y="${pad.t - 8}" fill="${COLORS[k % COLORS.length]}" font-size="11">${esc(c.label)}</text>`,
    )
    .join('');
  return `<svg class="chart" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}" role="img" aria-label="${esc(title)}">
<rect x="0" y="0" width="${w}" height="${h}" fill="#fff"/>
<line x1="${pad.l}" y1="${h - pad.b}" x2="${w - pad.r}" y2="${h - pad.b}" stroke="#888"/>
<line x1="${pad.l}" y1="${pad.t}" x2="${pad.l}" y2="${h - pad.b}" stroke="#888"/>
<text x="${pad.l - 4}" y="${pad.t + 4}" text-anchor="end" font-size="10">${ymax.toPrecision(2)}</text>
<text x="${pad.l - 4}" y="${h - pad.b}" text-anchor="end" font-size="10">0</text>
<text x="${w - pad.r}" y="${h - 8}" text-anchor="end" font-size="10">step ${n}</text>
${legend}${lines}</svg>`;
}

/** Horizontal bars of success rates in [0, 1]. */
function successBars(rows: readonly [string, number | null][]): string {
  const w = 420;
  const rowH = 22;
  const h = rowH * rows.length + 8;
  const bars = rows
    .map(([label, v], i) => {
      const y = 4 + i * rowH;
      const len = v === null ? 0 : (w - 170) * v;
      const text = v === null ? 'n/a' : `${(100 * v).toFixed(0)}%`;
      return `<text x="0" y="${y + 14}" font-size="12">${esc(label)}</text><rect class="bar" data-value="${v ?? ''}" x="120" y="${y + 3}" width="${len.toFixed(1)}" height="14" fill="${i === 0 ? '#999' : '#2ca02c'}"/><text x="${125 + len}" y="${y + 14}" font-size="12">${text}</text>`;
    })
    .join('');
  return `<svg class="bars" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}">${bars}</svg>`;
}

function strip(frames: readonly Uint8Array[], side: number, label: string): string {
  const imgs = frames
    .map(
      (f, i) =>
        `<img class="frame" alt="${esc(label)} frame ${i}" width="${side * 2}" height="${side * 2}" src="data:image/png;base64,${Buffer.from(encodePng(f, side, 2)).toString('base64')}">`,
    )
    .join('');
  return `<div class="strip"><div class="strip-label">${esc(label)}</div>${imgs}</div>`;
}

export function renderReport(r: Report): string {
  const pct = (v: number | null) => (v === null ? 'n/a' : `${(100 * v).toFixed(0)}%`);
  const sections = r.targets
    .map((t) => {
      const rows: [string, number | null][] = [
        ['no adaptation', t.successBefore],
        ...Object.entries(t.successAfter).map(
          ([k, v]) => [k === 'practice' ? 'practice' : `align ${k}`, v] as [string, number | null],
        ),
      ];
      const charts = Object.entries(t.curves)
        .map(
          ([title, curves]) =>
            `<figure><figcaption>${esc(title)}</figcaption>${lineChart(title, curves)}</figure>`,
        )
        .join('');
      // the design's three tasks, and the extra (blind) tasks where the policy has them
      const tasks = Object.keys(TASK_TITLE).filter((task) =>
        Object.values(t.heldOut).some((v) => v.before[task] !== undefined),
      );
      const table = Object.entries(t.heldOut)
        .map(
          ([k, v]) =>
            `<tr><td>${esc(k)}</td>${tasks
              .map(
                (task) =>
                  `<td>${(v.before[task] ?? Number.NaN).toFixed(3)} &rarr; ${(v.after[task] ?? Number.NaN).toFixed(3)}</td>`,
              )
              .join(
                '',
              )}<td>${(t.wallS[k] ?? 0).toFixed(1)} s</td><td class="success">${pct(t.successAfter[k] ?? null)}</td></tr>`,
        )
        .join('');
      const strips = t.strips
        ? strip(t.strips.before, t.strips.side, 'before align (source-mean slot)') +
          strip(t.strips.after, t.strips.side, `after align (${t.strips.afterLabel})`)
        : '';
      return `<section class="target" id="target-${esc(t.name)}">
<h2>${esc(t.name)}</h2><p>${esc(t.description)}</p>
<h3>Success on the robot</h3>${successBars(rows)}
<h3>Held-out alignment losses (before &rarr; after)</h3>
<table><tr><th>slot parametrisation</th>${tasks.map((task) => `<th>${TASK_TITLE[task]}</th>`).join('')}<th>align wall time</th><th>success after</th></tr>${table}</table>
<h3>Alignment losses over the align steps</h3><div class="charts">${charts}</div>
${strips ? `<h3>One episode, before and after</h3>${strips}` : ''}
</section>`;
    })
    .join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(r.title)}</title>
<style>
body{font-family:system-ui,sans-serif;margin:24px;max-width:1100px;color:#222}
table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ccc;padding:4px 8px;font-size:13px}
.charts{display:flex;flex-wrap:wrap;gap:12px}figure{margin:0}figcaption{font-size:12px;color:#555}
.strip{display:flex;gap:4px;align-items:center;margin:4px 0}.strip-label{width:220px;font-size:12px}
.frame{image-rendering:pixelated;border:1px solid #ddd}
</style></head><body>
<h1>${esc(r.title)}</h1>
<p class="meta">${esc(r.policy)}<br>${esc(r.machine)}; the demo took ${r.totalS.toFixed(0)} s.</p>
${sections}
</body></html>
`;
}
