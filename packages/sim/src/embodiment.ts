// Embodiments: how the policy's action maps to joint commands, and what the body is.
//   b = M a                       M: a rotation of the action space (orthogonal, n x n)
//   c[perm[i]] = b[i]             action dim i drives joint perm[i]
//   cmd[j] = clamp(sign[j] * gain[j] * c[j], -1, 1)
//   qdot_target[j] = cmd[j] * maxJointVel, reached through a first-order actuator (lag)
// The body: link lengths, and joint offsets (the physical angle is the encoder reading plus
// the offset, so the same proprioceptive state is a different pose).
import { Rng } from '@selfalign/core/rng';

export interface Embodiment {
  name: string;
  /** Link lengths (world units; the workspace is [-1, 1]^2). */
  links: number[];
  /** Physical angle = measured angle + offset (rad). */
  offsets: number[];
  /** Action dim i drives joint perm[i]. */
  perm: number[];
  /** +1 or -1 per joint. */
  signs: number[];
  /** Per-joint command gain. */
  gains: number[];
  /** Row-major n x n orthogonal matrix applied to the action first. */
  mix: number[];
  /** Actuator time constant (s). */
  lag: number;
}

export const DEFAULT_LINKS = Object.freeze([0.4, 0.3, 0.2]);

const identity = (n: number): number[] =>
  Array.from({ length: n * n }, (_, k) => (k % (n + 1) === 0 ? 1 : 0));

/** A rotation by `angle` in the plane of action dims (i, j) of an n-dim action space. */
export function planeRotation(n: number, angle: number, i = 0, j = 1): number[] {
  const m = identity(n);
  const c = Math.cos(angle);
  const s = Math.sin(angle);
  m[i * n + i] = c;
  m[i * n + j] = -s;
  m[j * n + i] = s;
  m[j * n + j] = c;
  return m;
}

/** The source embodiment that the other presets shift. */
export function sourceEmbodiment(links: readonly number[] = DEFAULT_LINKS): Embodiment {
  const n = links.length;
  return {
    name: 'source',
    links: [...links],
    offsets: new Array(n).fill(0),
    perm: Array.from({ length: n }, (_, i) => i),
    signs: new Array(n).fill(1),
    gains: new Array(n).fill(1),
    mix: identity(n),
    lag: 0.05,
  };
}

const shift = (name: string, change: Partial<Embodiment>): Embodiment => ({
  ...sourceEmbodiment(),
  ...change,
  name,
});

/** Named presets of single and combined shifts (3 links). */
export const PRESETS: Readonly<Record<string, Embodiment>> = Object.freeze({
  source: sourceEmbodiment(),
  perm: shift('perm', { perm: [1, 2, 0] }),
  sign: shift('sign', { signs: [-1, -1, 1] }),
  links: shift('links', { links: [0.25, 0.45, 0.3] }),
  offset: shift('offset', { offsets: [0.9, -0.7, 0.6] }),
  gain: shift('gain', { gains: [0.45, 1.6, 0.7] }),
  rotate: shift('rotate', { mix: planeRotation(3, Math.PI / 3) }),
  lag: shift('lag', { lag: 0.35 }),
  combo: shift('combo', {
    perm: [2, 0, 1],
    signs: [1, -1, 1],
    links: [0.35, 0.35, 0.25],
    offsets: [0.5, 0, -0.4],
  }),
});

/**
 * The body shift of `e` against the default source arm, in words (what a person needs to see
 * on a page or in a report), e.g. "action 1 drives joint 2, ...; joints 1 and 2 turn the other
 * way". Lists every field that differs; "the source arm" when none does.
 */
export function describeEmbodiment(e: Embodiment): string {
  const base = sourceEmbodiment(DEFAULT_LINKS.slice(0, e.links.length));
  const n = e.links.length;
  const parts: string[] = [];
  const same = (a: readonly number[], b: readonly number[], tol = 1e-9) =>
    a.length === b.length && a.every((v, i) => Math.abs(v - b[i]!) <= tol);
  if (n !== base.links.length) parts.push(`${n} links`);
  if (!e.perm.every((p, i) => p === i))
    parts.push(
      `actions drive other joints (${e.perm.map((p, i) => `action ${i + 1} -> joint ${p + 1}`).join(', ')})`,
    );
  const flipped = e.signs.flatMap((s, j) => (s < 0 ? [j + 1] : []));
  if (flipped.length)
    parts.push(`joint${flipped.length > 1 ? 's' : ''} ${flipped.join(', ')} turn the other way`);
  if (!same(e.links, base.links))
    parts.push(
      `link lengths ${e.links.map((l) => l.toFixed(2)).join(' / ')} (source ${base.links.map((l) => l.toFixed(2)).join(' / ')})`,
    );
  if (e.offsets.some((o) => Math.abs(o) > 1e-9))
    parts.push(
      `joint encoders offset by ${e.offsets.map((o) => `${o >= 0 ? '+' : ''}${o.toFixed(2)}`).join(' / ')} rad`,
    );
  if (!same(e.gains, base.gains))
    parts.push(`joint gains ${e.gains.map((g) => g.toFixed(2)).join(' / ')}`);
  if (!same(e.mix, base.mix, 1e-6)) parts.push('the action space is rotated');
  if (Math.abs(e.lag - base.lag) > 1e-9)
    parts.push(`actuator lag ${e.lag.toFixed(2)} s (source ${base.lag.toFixed(2)} s)`);
  return parts.length ? parts.join('; ') : 'the source arm';
}

/** Held-out targets: never used for pretraining. */
export const HELD_OUT: readonly string[] = Object.freeze([
  'perm',
  'sign',
  'links',
  'offset',
  'rotate',
  'combo',
]);

export function getPreset(name: string): Embodiment {
  const e = PRESETS[name];
  if (e === undefined)
    throw new Error(`unknown embodiment '${name}'; presets: ${Object.keys(PRESETS).join(', ')}`);
  return structuredCloneEmbodiment(e);
}

function structuredCloneEmbodiment(e: Embodiment): Embodiment {
  return {
    ...e,
    links: [...e.links],
    offsets: [...e.offsets],
    perm: [...e.perm],
    signs: [...e.signs],
    gains: [...e.gains],
    mix: [...e.mix],
  };
}

/**
 * A random member of the family (for pretraining sources): random permutation and signs,
 * gains in [0.6, 1.4], link lengths within +-25% of the default, offsets in [-0.6, 0.6],
 * an action-space rotation in [-45, 45] degrees, lag in [0.03, 0.15] s.
 */
export function sampleEmbodiment(rng: Rng, name: string, n = 3): Embodiment {
  const perm = rng.shuffle(Array.from({ length: n }, (_, i) => i));
  const base = n === 3 ? DEFAULT_LINKS : new Array(n).fill(0.9 / n);
  const i = rng.int(n);
  const j = (i + 1 + rng.int(n - 1)) % n;
  return {
    name,
    links: base.map((l) => l * (0.75 + 0.5 * rng.uniform())),
    offsets: Array.from({ length: n }, () => -0.6 + 1.2 * rng.uniform()),
    perm,
    signs: Array.from({ length: n }, () => (rng.uniform() < 0.5 ? -1 : 1)),
    gains: Array.from({ length: n }, () => 0.6 + 0.8 * rng.uniform()),
    mix: planeRotation(n, (rng.uniform() - 0.5) * (Math.PI / 2), i, j),
    lag: 0.03 + 0.12 * rng.uniform(),
  };
}

/** `count` random source embodiments, reproducible from `seed`. */
export function sampleSources(count: number, seed: number, n = 3): Embodiment[] {
  const rng = new Rng(seed);
  return Array.from({ length: count }, (_, k) => sampleEmbodiment(rng.fork(k), `src-${k}`, n));
}

/** Policy action [n] -> joint commands in [-1, 1] [n]. */
export function actionToCommand(
  e: Embodiment,
  a: ArrayLike<number>,
  out: Float64Array = new Float64Array(e.links.length),
): Float64Array {
  const n = e.links.length;
  for (let i = 0; i < n; i++) {
    let b = 0;
    for (let k = 0; k < n; k++) b += e.mix[i * n + k]! * Math.max(-1, Math.min(1, a[k]!));
    const j = e.perm[i]!;
    out[j] = Math.max(-1, Math.min(1, e.signs[j]! * e.gains[j]! * b));
  }
  return out;
}

/**
 * Joint commands [n] -> the policy action that produces them (scaled down as a whole when a
 * component would leave [-1, 1], so the direction is kept).
 */
export function commandToAction(
  e: Embodiment,
  cmd: ArrayLike<number>,
  out: Float64Array = new Float64Array(e.links.length),
): Float64Array {
  const n = e.links.length;
  const b = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const j = e.perm[i]!;
    b[i] = cmd[j]! / (e.signs[j]! * e.gains[j]!);
  }
  let peak = 0;
  for (let k = 0; k < n; k++) {
    let a = 0;
    for (let i = 0; i < n; i++) a += e.mix[i * n + k]! * b[i]!; // M^T b (M orthogonal)
    out[k] = a;
    peak = Math.max(peak, Math.abs(a));
  }
  if (peak > 1) for (let k = 0; k < n; k++) out[k]! /= peak;
  return out;
}

export function validateEmbodiment(e: Embodiment): void {
  const n = e.links.length;
  const fail = (m: string) => {
    throw new Error(`embodiment '${e.name}': ${m}`);
  };
  if (n < 2) fail('at least 2 links');
  for (const [k, v] of [
    ['offsets', e.offsets],
    ['perm', e.perm],
    ['signs', e.signs],
    ['gains', e.gains],
  ] as const) {
    if (v.length !== n) fail(`${k} has ${v.length} entries for ${n} links`);
  }
  if ([...e.perm].sort().some((p, i) => p !== i)) fail(`perm [${e.perm}] is not a permutation`);
  if (e.signs.some((s) => s !== 1 && s !== -1)) fail('signs must be +1 or -1');
  if (e.mix.length !== n * n) fail(`mix has ${e.mix.length} entries, expected ${n * n}`);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      let dot = 0;
      for (let k = 0; k < n; k++) dot += e.mix[i * n + k]! * e.mix[j * n + k]!;
      if (Math.abs(dot - (i === j ? 1 : 0)) > 1e-6) fail('mix is not orthogonal');
    }
  }
  if (!(e.lag > 0)) fail('lag must be positive');
  if (e.links.some((l) => !(l > 0))) fail('link lengths must be positive');
}
