// A named tree of parameters (`vlm/layers/0/attn/q`, `ttt/3/W1`, ...), in the spirit of
// openpi's nnx state with freeze filters and tinygrad's state dict. What trains is decided by
// a path filter handed to the optimiser step, never by flags inside model code.
import { tf } from './tf.js';

/**
 * Selects parameter paths. A string is a glob over `/`-separated segments (`*` matches one
 * segment or part of one, `**` any number of segments); an array matches if any member
 * does; a function decides itself.
 */
export type PathFilter =
  | string
  | RegExp
  | ((path: string) => boolean)
  | readonly (string | RegExp)[];

export function globToRegExp(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const ch = glob[i]!;
    if (ch === '*' && glob[i + 1] === '*') {
      re += '.*';
      i++;
      if (glob[i + 1] === '/') i++;
    } else if (ch === '*') re += '[^/]*';
    else re += ch.replace(/[.+?^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

/** Turns any PathFilter into a predicate. */
export function pathMatcher(filter: PathFilter): (path: string) => boolean {
  if (typeof filter === 'function') return filter;
  if (typeof filter === 'string') {
    const re = globToRegExp(filter);
    return (p) => re.test(p);
  }
  if (filter instanceof RegExp) return (p) => filter.test(p);
  const matchers = (filter as readonly (string | RegExp)[]).map(pathMatcher);
  return (p) => matchers.some((m) => m(p));
}

/** Host copies of parameter values, keyed by path. */
export type ParamSnapshot = Map<string, tf.Tensor>;

export class ParamTree {
  private readonly vars = new Map<string, tf.Variable>();

  /**
   * Adds a parameter (takes ownership of `init`, which is disposed).
   * @throws Error when the path exists already.
   */
  add(path: string, init: tf.Tensor): tf.Variable {
    if (this.vars.has(path)) {
      init.dispose();
      throw new Error(`parameter '${path}' is defined twice`);
    }
    // No tfjs name: variable names are global to the engine and two policies may coexist.
    const v = tf.variable(init, true);
    init.dispose();
    this.vars.set(path, v);
    return v;
  }

  get(path: string): tf.Variable {
    const v = this.vars.get(path);
    if (v === undefined) throw new Error(`no parameter '${path}'`);
    return v;
  }

  has(path: string): boolean {
    return this.vars.has(path);
  }

  /** All paths in insertion order. */
  paths(): string[] {
    return [...this.vars.keys()];
  }

  /** `[path, variable]` pairs, in insertion order, optionally filtered. */
  select(filter: PathFilter = '**'): [string, tf.Variable][] {
    const match = pathMatcher(filter);
    return [...this.vars].filter(([p]) => match(p));
  }

  /** A flat `{ path: variable }` record, in insertion order. */
  flatten(): Record<string, tf.Variable> {
    return Object.fromEntries(this.vars);
  }

  /** Number of scalars, optionally over a filter. */
  count(filter: PathFilter = '**'): number {
    return this.select(filter).reduce((n, [, v]) => n + v.size, 0);
  }

  /** Copies of the current values (the caller disposes them, e.g. with `disposeSnapshot`). */
  snapshot(filter: PathFilter = '**'): ParamSnapshot {
    return new Map(this.select(filter).map(([p, v]) => [p, tf.clone(v)]));
  }

  /** Assigns values from a snapshot (shapes must match); the snapshot stays owned by the caller. */
  restore(snapshot: ParamSnapshot): void {
    for (const [path, value] of snapshot) {
      const v = this.get(path);
      if (!tf.util.arraysEqual(v.shape, value.shape)) {
        throw new Error(
          `cannot restore '${path}': shape [${value.shape}] does not match [${v.shape}]`,
        );
      }
      v.assign(value);
    }
  }

  dispose(): void {
    for (const v of this.vars.values()) v.dispose();
    this.vars.clear();
  }
}

export function disposeSnapshot(snapshot: ParamSnapshot): void {
  for (const t of snapshot.values()) t.dispose();
  snapshot.clear();
}
