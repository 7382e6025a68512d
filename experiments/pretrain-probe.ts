// Feasibility probe for issue 7: how fast does the `small` policy learn to reach on the
// simulator's source embodiments on this CPU? 8 random sources (a slot each), expert reach
// demos + random play, default ONNX features, pretrain with batch 16; every `evalEvery` steps
// the reach success on 3 sources (10 episodes each). Usage:
//   pnpm --filter @selfalign/experiments pretrain-probe [--minutes 45] [--demos 30] [--eval-every 300]
//     [--lr 3e-4] [--log /tmp/probe.log]   (one core: tfjs-wasm is single-threaded)
import { appendFileSync, writeFileSync } from 'node:fs';
import { trainBatchFromHost } from '@selfalign/align';
import { initBackend, Rng } from '@selfalign/core';
import {
  type DatasetMeta,
  defaultFeatureExtractor,
  episodeSamples,
  packBatch,
  type Sample,
  StatsAccumulator,
} from '@selfalign/data';
import { createPolicy, small } from '@selfalign/experts';
import { policyController } from '@selfalign/harness';
import { pretrain } from '@selfalign/pretrain';
import {
  expertController,
  randomController,
  runEpisodes,
  sampleSources,
  seedRange,
} from '@selfalign/sim';
import { arg } from './args.js';

const num = (n: string, d: number) => Number(arg(n, String(d)));
const minutes = num('--minutes', 35);
const demosPer = num('--demos', 30);
const evalEvery = num('--eval-every', 300);
const lr = num('--lr', 3e-4);
/** --keypoints W: weight of the auxiliary keypoint loss (the vision tower locates the target). */
const kpWeight = num('--keypoints', 0);
/** --no-velocity: the policy sees joint angles only (cos, sin), not joint velocities. */
const ds = process.argv.includes('--no-velocity') ? 6 : 9;
const logFile = process.argv.includes('--log')
  ? process.argv[process.argv.indexOf('--log') + 1]!
  : '/tmp/probe.log';
const log = (s: string) => {
  appendFileSync(logFile, `${new Date().toISOString().slice(11, 19)} ${s}\n`);
};
writeFileSync(logFile, '');
await initBackend('wasm');
const sources = sampleSources(8, 1);
const side = small.vision.imageSize;
const extractor = await defaultFeatureExtractor();
const samples: Sample[] = [];
const slotOf = new Map(sources.map((e, k) => [e.name, k]));
const meta: DatasetMeta = {
  format: 'selfalign-frames/1',
  kind: 'demo',
  fps: 10,
  imageShape: [side, side, 3],
  stateDim: ds,
  actionDim: 3,
  featureDim: 64,
  objectDim: 4,
};
const t0 = performance.now();
for (const [k, e] of sources.entries()) {
  for (const [kind, ctrl, n] of [
    ['demo', expertController(), demosPer],
    ['play', randomController(k), 5],
  ] as const) {
    const r = await runEpisodes(
      e,
      'reach',
      seedRange(n, 100_000 + k * 1000 + (kind === 'play' ? 500 : 0)),
      ctrl,
      { record: true, env: { imageSize: side } },
    );
    for (const ep of r.episodes) {
      const features = await extractor.extract(ep.frames, ep.length, side, side);
      const data = {
        episodeIndex: 0,
        task: ep.instruction,
        embodiment: e.name,
        length: ep.length,
        images: ep.frames,
        // keep the first `ds` of each frame's 9 values (all of them, or the angles only)
        states: Float32Array.from(
          { length: ep.length * ds },
          (_, i) => ep.states[Math.floor(i / ds) * 9 + (i % ds)]!,
        ),
        actions: ep.actions,
        features,
        objects: ep.objects,
      };
      for (const s of episodeSamples(data, { ...meta, kind }, small.actionHorizon)) samples.push(s);
    }
  }
}
// norm stats over every frame (state) and every executed action
const stateAcc = new StatsAccumulator(ds);
const actionAcc = new StatsAccumulator(3);
for (const s of samples) {
  stateAcc.add(s.state, 1);
  actionAcc.add(s.actions.subarray(0, 3), 1);
}
const stats = { state: stateAcc.result(), actions: actionAcc.result() };
log(
  `data: ${samples.length} samples (${samples.filter((s) => s.isDemo).length} demo) from 8 sources in ${((performance.now() - t0) / 1000).toFixed(0)} s`,
);
const policy = createPolicy(small, { seed: 0, normStats: stats });
const total = 3000;
const deadline = performance.now() + minutes * 60_000;
const ckpt = `${logFile}.ckpt.safetensors`;
const evaluate = async (step: number) => {
  const rates: string[] = [];
  for (const k of [0, 3, 6]) {
    const r = await runEpisodes(
      sources[k]!,
      'reach',
      seedRange(10, 900_000 + k),
      policyController(policy, { slot: k, stateDims: ds }),
      { env: { imageSize: side } },
    );
    rates.push(
      `${sources[k]!.name} ${(100 * r.successRate).toFixed(0)}% (dist ${r.meanFinalDistance.toFixed(2)}, mse ${r.actionMse.toFixed(3)})`,
    );
  }
  log(`step ${step}: reach ${rates.join('; ')}`);
};
await evaluate(0);
let done = 0;
// train in chunks (resuming from the checkpoint, on one schedule) and evaluate between them
while (done < total && performance.now() < deadline) {
  const chunkStart = performance.now();
  const chunkFrom = done;
  const r = await pretrain(
    policy,
    (step) => {
      const rng = new Rng(step);
      const pick = Array.from({ length: 16 }, () => samples[rng.int(samples.length)]!);
      return trainBatchFromHost(
        policy,
        packBatch(pick, meta.imageShape),
        pick.map((s) => slotOf.get(s.embodiment)!),
      );
    },
    {
      steps: total,
      until: done + evalEvery,
      lr,
      warmup: 100,
      checkpoint: { path: ckpt, every: evalEvery },
      lossWeights: { keypoints: kpWeight },
      ...(done > 0 ? { resume: ckpt } : {}),
      onStep: (step, loss, t) => {
        if (step % 50 === 0)
          log(
            `step ${step} loss ${loss.toFixed(3)} action ${t['action']?.toFixed(3)} keypoints ${t['keypoints']?.toFixed(4)} (${((performance.now() - chunkStart) / (step - chunkFrom)).toFixed(0)} ms/step)`,
          );
      },
    },
  );
  done = r.step;
  await evaluate(done);
}
log('done');
