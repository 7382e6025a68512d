// What the page does, without the page: a policy (from a checkpoint, or fresh and untrained),
// random play on a target robot with next-observation features from the tfjs port of the
// default encoder, align in short chunks (so the plot can update between them), acting with
// the policy, and adapters kept in memory and switched by name. Browser-safe throughout.
import {
  type AlignState,
  align,
  decodeCheckpoint,
  type TaskLosses,
  trainBatchFromHost,
} from '@selfalign/align/browser';
import { policyController } from '@selfalign/harness';
import { Rng, tf } from '@selfalign/core';
import {
  defaultEncoderTf,
  episodeSamples,
  packBatch,
  type Sample,
  StatsAccumulator,
  type TfEncoder,
} from '@selfalign/data/browser';
import { createPolicy, getConfig, type Policy, type TrainBatch } from '@selfalign/experts';
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
  perception: number;
  dynamics: number;
  inverseDynamics: number;
}

export class Session {
  readonly adapters = new Map<string, Uint8Array>();
  activeAdapter: string | undefined;
  readonly history: LossPoint[] = [];
  lastAlignMs = 0;
  private play: Sample[] = [];
  private state: AlignState | undefined;

  private constructor(
    readonly policy: Policy,
    readonly pretrained: boolean,
    readonly sourceSlots: number[],
    readonly encoder: TfEncoder,
  ) {}

  static async create(opts: {
    config?: string;
    checkpointUrl?: string;
    seed?: number;
  }): Promise<Session> {
    if (opts.checkpointUrl) {
      const res = await fetch(opts.checkpointUrl);
      if (!res.ok) throw new Error(`checkpoint ${opts.checkpointUrl}: HTTP ${res.status}`);
      const loaded = decodeCheckpoint(new Uint8Array(await res.arrayBuffer()), opts.checkpointUrl);
      const slots = Object.values((loaded.info['slots'] ?? {}) as Record<string, number>);
      return new Session(
        loaded.policy,
        true,
        slots,
        defaultEncoderTf({ dim: loaded.policy.config.featureDim }),
      );
    }
    const policy = createPolicy(getConfig(opts.config ?? 'small'), opts.seed ?? 0);
    return new Session(policy, false, [0], defaultEncoderTf({ dim: policy.config.featureDim }));
  }

  /** The slot that alignment fills: the first one no source embodiment uses. */
  get slot(): number {
    const E = this.policy.config.ttt.slots;
    return (
      Array.from({ length: E }, (_, k) => k).find((k) => !this.sourceSlots.includes(k)) ?? E - 1
    );
  }

  get imageSize(): number {
    return this.policy.config.vision.imageSize;
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
    this.play = r.episodes.flatMap((e) => this.windows(e));
    if (!this.policy.normStats) this.policy.normStats = normStatsOf(this.play);
    return this.play.length;
  }

  /** Training samples of one episode, with next-observation features from the tfjs encoder. */
  private windows(e: Episode): Sample[] {
    const s = this.imageSize;
    const features = tf.tidy(
      () =>
        this.encoder
          .encode(tf.tensor(Int32Array.from(e.frames), [e.length, s, s, 3], 'int32'))
          .dataSync() as Float32Array,
    );
    const ep = {
      episodeIndex: 0,
      task: e.instruction,
      embodiment: e.embodiment,
      length: e.length,
      images: e.frames,
      states: e.states,
      actions: e.actions,
      features,
    };
    const meta = {
      kind: 'play' as const,
      imageShape: [s, s, 3] as [number, number, number],
      stateDim: 9,
      actionDim: 3,
      featureDim: this.encoder.dim,
    };
    return [...episodeSamples(ep, meta, this.policy.config.actionHorizon)];
  }

  private batch(size: number, rng: Rng): TrainBatch {
    const pick = Array.from({ length: size }, () => this.play[rng.int(this.play.length)]!);
    const s = this.imageSize;
    return trainBatchFromHost(this.policy, packBatch(pick, [s, s, 3]), this.slot);
  }

  /**
   * Aligns a fresh slot on the collected play, `chunk` steps at a time, calling `onChunk` with
   * the held-out per-task losses after each chunk (and yielding to the page in between).
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
    if (this.play.length === 0) throw new Error('collect play data first');
    const rng = new Rng(opts.seed ?? 0);
    const bs = opts.batchSize ?? 8;
    const batches = [this.batch(bs, rng), this.batch(bs, rng)];
    const heldOut = [this.batch(bs, rng)];
    const t0 = performance.now();
    this.state?.dispose();
    this.state = undefined;
    this.history.length = 0;
    let before: TaskLosses | undefined;
    let after: TaskLosses | undefined;
    const chunk = opts.chunk ?? 5;
    try {
      for (let done = 0; done < opts.steps; done += chunk) {
        const kind = opts.parametrisation ?? 'free';
        const r = await align(this.policy, batches, {
          slot: this.slot,
          parametrisation: kind,
          ...(kind === 'span' ? { basis: this.sourceSlots, init: 'mean' as const } : {}),
          lr: opts.lr ?? (kind === 'span' ? 3e-2 : 1e-2),
          maxSteps: Math.min(chunk, opts.steps - done),
          heldOut,
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
      for (const b of [...batches, ...heldOut])
        tf.dispose(Object.values(b).filter((v): v is tf.Tensor => v instanceof tf.Tensor));
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

  /** One episode of the policy acting on `target` (through the aligned slot); frames go to onFrame. */
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

const pick = (l: TaskLosses) => ({
  perception: l.perception,
  dynamics: l.dynamics,
  inverseDynamics: l.inverseDynamics,
});

/** Normalisation stats of the play data, when the policy has no stats of its own. */
function normStatsOf(frames: Sample[]) {
  const state = new StatsAccumulator(9);
  const actions = new StatsAccumulator(3);
  for (const f of frames) {
    state.add(f.state, 1);
    actions.add(f.actions.subarray(0, 3), 1);
  }
  return { state: state.result(), actions: actions.result() };
}
