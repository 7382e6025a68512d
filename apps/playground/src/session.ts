// What the page does, without the page: the policy (the shipped checkpoint, a checkpoint URL,
// or a fresh untrained one), its success on a target robot over a fixed seed set, random play
// with next-observation features from the tfjs port of the default encoder, align of a fresh
// slot on every play frame with whole episodes held out (in short chunks, so the plot can update
// in between), acting with the policy, and adapters kept in memory and switched by name.
// Browser-safe throughout.
import {
  type AlignState,
  align,
  decodeCheckpoint,
  type TaskLosses,
} from '@selfalign/align/browser';
import { Rng, tf } from '@selfalign/core';
import {
  defaultEncoderTf,
  episodeSamples,
  type Sample,
  StatsAccumulator,
  type TfEncoder,
} from '@selfalign/data/browser';
import { createPolicy, disposeBatch, getConfig, type Policy } from '@selfalign/experts';
import {
  episodeData,
  fillWithSourceMean,
  firstFreeSlot,
  framesMeta,
  playSplit,
  policyController,
  robotDims,
  sourceSlotsOf,
} from '@selfalign/harness';
import {
  ArmEnv,
  type Embodiment,
  type Episode,
  randomController,
  runEpisodes,
  seedRange,
} from '@selfalign/sim';
import { encodeAdapter, loadAdapter } from '@selfalign/ttt';

export interface LossPoint {
  step: number;
  /** The objective align minimises: the tasks' held-out losses under align's weights. */
  total: number;
  perception: number;
  dynamics: number;
  inverseDynamics: number;
  /** For a policy pretrained with the state-dynamics task (align's default objective then). */
  stateDynamics?: number;
}

/** Downloads `url` with progress (fraction in [0, 1], or NaN when the size is unknown). */
export async function fetchWithProgress(
  url: string,
  onProgress: (fraction: number, bytes: number) => void,
): Promise<Uint8Array> {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`the checkpoint ${url} did not load: HTTP ${res.status}`);
  const total = Number(res.headers.get('content-length') ?? Number.NaN);
  if (!res.body) {
    const bytes = new Uint8Array(await res.arrayBuffer());
    onProgress(1, bytes.length);
    return bytes;
  }
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let got = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    got += value.length;
    onProgress(total > 0 ? got / total : Number.NaN, got);
  }
  const out = new Uint8Array(got);
  let o = 0;
  for (const c of chunks) {
    out.set(c, o);
    o += c.length;
  }
  return out;
}

export class Session {
  readonly adapters = new Map<string, Uint8Array>();
  activeAdapter: string | undefined;
  readonly history: LossPoint[] = [];
  lastAlignMs = 0;
  private play: Sample[] = [];
  private playTarget: Embodiment | undefined;
  private state: AlignState | undefined;

  private constructor(
    readonly policy: Policy,
    readonly pretrained: boolean,
    readonly sourceSlots: number[],
    readonly encoder: TfEncoder,
    readonly source: string,
  ) {}

  static async create(opts: {
    config?: string;
    checkpointUrl?: string;
    seed?: number;
    onProgress?: (fraction: number, bytes: number) => void;
  }): Promise<Session> {
    if (opts.checkpointUrl) {
      const bytes = await fetchWithProgress(opts.checkpointUrl, opts.onProgress ?? (() => {}));
      let loaded: ReturnType<typeof decodeCheckpoint>;
      try {
        loaded = decodeCheckpoint(bytes, opts.checkpointUrl);
      } catch (err) {
        throw new Error(`the checkpoint did not load: ${(err as Error).message}`);
      }
      return new Session(
        loaded.policy,
        true,
        sourceSlotsOf(loaded.info),
        defaultEncoderTf({ dim: loaded.policy.config.featureDim }),
        opts.checkpointUrl,
      );
    }
    const policy = createPolicy(getConfig(opts.config ?? 'small'), opts.seed ?? 0);
    return new Session(
      policy,
      false,
      [0],
      defaultEncoderTf({ dim: policy.config.featureDim }),
      `untrained '${policy.config.name}'`,
    );
  }

  /** The slot that alignment fills: the first one no source embodiment uses. */
  get slot(): number {
    return firstFreeSlot(this.policy, this.sourceSlots) ?? this.policy.config.ttt.slots - 1;
  }

  get imageSize(): number {
    return this.policy.config.vision.imageSize;
  }

  /** Puts the no-adaptation slot (the mean of the source slots) in place; no adapter is active. */
  resetSlot(): void {
    const basis = this.sourceSlots.filter((k) => k !== this.slot);
    if (basis.length > 0) fillWithSourceMean(this.policy, this.slot, basis);
    this.activeAdapter = undefined;
  }

  /** Success of the policy (through the current slot) over `seeds`, `parallel` at a time. */
  async evaluate(
    target: Embodiment,
    seeds: readonly number[],
    onEpisode?: (done: number, total: number) => void,
  ): Promise<{ successes: number; episodes: number }> {
    const r = await runEpisodes(
      target,
      'reach',
      seeds,
      policyController(this.policy, { slot: this.slot }),
      {
        env: { imageSize: this.imageSize },
        parallel: seeds.length,
        ...(onEpisode ? { onEpisode } : {}),
      },
    );
    return { successes: r.summaries.filter((s) => s.success).length, episodes: seeds.length };
  }

  /** Random play on `target`: frames, actions and next-observation features. */
  async collectPlay(target: Embodiment, episodes: number, seed: number): Promise<number> {
    const r = await runEpisodes(
      target,
      'reach',
      seedRange(episodes, seed),
      randomController(seed),
      { record: true, env: { imageSize: this.imageSize } },
    );
    this.playTarget = target;
    this.play = r.episodes.flatMap((e, i) => this.windows(target, e, i));
    if (!this.policy.normStats) this.policy.normStats = normStatsOf(this.play, target);
    return this.play.length;
  }

  /** Training samples of one episode, with next-observation features from the tfjs encoder. */
  private windows(target: Embodiment, e: Episode, index: number): Sample[] {
    const s = this.imageSize;
    const t = tf.tensor(Int32Array.from(e.frames), [e.length, s, s, 3], 'int32');
    const f = this.encoder.encode(t);
    const features = f.dataSync().slice() as Float32Array;
    tf.dispose([t, f]);
    const meta = { ...framesMeta(target, 'play', s, this.encoder.dim) };
    return [
      ...episodeSamples(episodeData(e, index, features), meta, this.policy.config.actionHorizon),
    ];
  }

  /**
   * Aligns the slot on every collected play frame (a fifth of the episodes held out), `chunk`
   * steps at a time, calling `onChunk` with the held-out per-task losses after each chunk (and
   * yielding to the page in between).
   */
  async alignLive(
    opts: {
      steps: number;
      chunk?: number;
      lr?: number;
      batchSize?: number;
      seed?: number;
      parametrisation?: 'free' | 'span';
    },
    onChunk: (p: LossPoint) => void,
  ): Promise<{ before: TaskLosses; after: TaskLosses }> {
    if (this.play.length === 0 || !this.playTarget) throw new Error('collect play data first');
    const s = this.imageSize;
    const split = playSplit(
      this.policy,
      this.play,
      { imageShape: [s, s, 3] },
      opts.batchSize ?? 16,
      new Rng(opts.seed ?? 0),
      this.slot,
      0.2,
    );
    const t0 = performance.now();
    this.state?.dispose();
    this.state = undefined;
    this.history.length = 0;
    let before: TaskLosses | undefined;
    let after: TaskLosses | undefined;
    const chunk = opts.chunk ?? 10;
    const kind = opts.parametrisation ?? 'span';
    const basis = this.sourceSlots.filter((k) => k !== this.slot);
    try {
      for (let done = 0; done < opts.steps; done += chunk) {
        const r = await align(this.policy, split.train, {
          slot: this.slot,
          parametrisation: kind,
          ...(basis.length > 0 ? { basis, init: 'mean' as const } : {}),
          lr: opts.lr ?? (kind === 'span' ? 3e-2 : 1e-3),
          maxSteps: Math.min(chunk, opts.steps - done),
          heldOut: split.heldOut.length > 0 ? split.heldOut : split.train.slice(0, 1),
          ...(this.state ? { state: this.state } : {}),
        });
        this.state = r.state;
        before ??= r.before;
        after = r.after;
        if (this.history.length === 0) this.history.push({ step: 0, ...pick(r.before) });
        const point = { step: r.state.step, ...pick(r.after) };
        this.history.push(point);
        onChunk(point);
        await new Promise((resolve) => setTimeout(resolve, 0));
      }
    } finally {
      for (const b of [...split.train, ...split.heldOut]) disposeBatch(b);
    }
    this.lastAlignMs = performance.now() - t0;
    return { before: before!, after: after! };
  }

  /** Keeps the current slot as adapter `name` (and makes it the active one). */
  async saveAdapter(name: string): Promise<void> {
    this.adapters.set(
      name,
      await encodeAdapter(this.policy.tttModules(), this.slot, {
        fingerprint: this.policy.fingerprint,
        slotName: name,
        stats: { alignMs: this.lastAlignMs },
      }),
    );
    this.activeAdapter = name;
  }

  switchAdapter(name: string): void {
    const bytes = this.adapters.get(name);
    if (!bytes) throw new Error(`no adapter '${name}'`);
    loadAdapter(this.policy.tttModules(), bytes, this.slot, this.policy.fingerprint, name);
    this.activeAdapter = name;
  }

  /** One episode of the policy acting on `target` (through the slot); frames go to onFrame. */
  async act(
    target: Embodiment,
    seed: number,
    onFrame: (image: Uint8Array, env: ArmEnv) => Promise<void> | void,
  ): Promise<boolean> {
    const env = new ArmEnv(target, { imageSize: this.imageSize }).reset(seed, 'reach');
    const controller = policyController(this.policy, { slot: this.slot });
    controller.reset?.(0, seed);
    while (!env.done()) {
      const image = env.render();
      await onFrame(image, env);
      const [a] = await controller.act([
        {
          index: 0,
          env,
          image,
          state: env.observeState(),
          instruction: env.instruction,
          step: env.steps,
        },
      ]);
      env.step(a!);
    }
    await onFrame(env.render(), env);
    return env.success();
  }
}

const pick = (l: TaskLosses): Omit<LossPoint, 'step'> => ({
  total: l.total,
  perception: l.perception,
  dynamics: l.dynamics,
  inverseDynamics: l.inverseDynamics,
  ...(l.stateDynamics !== undefined ? { stateDynamics: l.stateDynamics } : {}),
});

/** Normalisation stats of the play data, when the policy has no stats of its own. */
function normStatsOf(frames: Sample[], target: Embodiment) {
  const { stateDim, actionDim } = robotDims(target);
  const state = new StatsAccumulator(stateDim);
  const actions = new StatsAccumulator(actionDim);
  for (const f of frames) {
    state.add(f.state, 1);
    actions.add(f.actions.subarray(0, actionDim), 1);
  }
  return { state: state.result(), actions: actions.result() };
}
