// The main job, as far as the packages that exist today reach (it grows as packages land;
// the `selfalign demo` command of @selfalign/cli replaces it):
//   1. pick the TensorFlow.js backend;
//   2. the simulator: how much each held-out embodiment shift hurts a controller that does
//      not adapt (the source expert) next to the target's own expert;
//   3. random play on a held-out target, turned into policy batches;
//   4. the `small` policy on those batches: the three alignment losses (the signal align
//      will follow) and sampled action chunks, with timings.
// Not yet here: a pretrained checkpoint, Arrow data and ONNX features (issue 5), align
// (issue 6), before/after evaluation and the report (issue 7). This script says so at the end.
import { backendChoiceFromEnv, initBackend, Rng, tf } from '@selfalign/core';
import { createPolicy, makeObservation, small, type TrainBatch } from '@selfalign/experts';
import {
  expertController,
  HELD_OUT,
  PRESETS,
  randomController,
  runEpisodes,
  seedRange,
} from '@selfalign/sim';

const t0 = performance.now();
const secs = () => ((performance.now() - t0) / 1000).toFixed(1);
const info = await initBackend(backendChoiceFromEnv());
console.log(
  `backend: ${info.name}${info.skipped.length ? ` (skipped: ${info.skipped.map((s) => s.name).join(', ')})` : ''}`,
);

console.log(
  '\n1. Embodiment shifts on the simulator (reach, 50 episodes each): a controller that does not adapt',
);
console.log('| target | source expert (no adaptation) | own expert |');
console.log('|---|---|---|');
for (const name of HELD_OUT) {
  const seeds = seedRange(50);
  const un = await runEpisodes(PRESETS[name]!, 'reach', seeds, expertController(PRESETS.source));
  const own = await runEpisodes(PRESETS[name]!, 'reach', seeds, expertController());
  console.log(
    `| ${name} | ${(100 * un.successRate).toFixed(0)}% | ${(100 * own.successRate).toFixed(0)}% |`,
  );
}

const target = PRESETS.perm!;
console.log(
  `\n2. Random play on held-out target '${target.name}': 4 episodes at ${small.vision.imageSize} px`,
);
const play = await runEpisodes(target, 'reach', [1, 2, 3, 4], randomController(7), {
  record: true,
  env: { imageSize: small.vision.imageSize },
});
const frames = play.episodes.reduce((n, e) => n + e.length, 0);
console.log(`   ${frames} frames collected (${secs()} s so far)`);

console.log(
  `\n3. The small policy (${(createPolicy(small, 0).params.count() / 1e6).toFixed(2)} M parameters, untrained) on play windows`,
);
const policy = createPolicy(small, 0);
const rng = new Rng(3);
const b = 8;
const side = small.vision.imageSize;
const frame = side * side * 3;
const images = new Uint8Array(b * frame);
const states = new Float32Array(b * 9);
const actions = new Float32Array(b * small.actionHorizon * 3);
const mask = new Float32Array(b * small.actionHorizon);
for (let i = 0; i < b; i++) {
  const e = play.episodes[i % play.episodes.length]!;
  const t = rng.int(e.length);
  images.set(e.frames.subarray(t * frame, (t + 1) * frame), i * frame);
  states.set(e.states.subarray(t * 9, (t + 1) * 9), i * 9);
  for (let h = 0; h < small.actionHorizon; h++) {
    if (t + h >= e.length) continue;
    mask[i * small.actionHorizon + h] = 1;
    actions.set(
      e.actions.subarray((t + h) * 3, (t + h + 1) * 3),
      (i * small.actionHorizon + h) * 3,
    );
  }
}
const obs = makeObservation(policy, {
  batch: b,
  images,
  prompts: new Array(b).fill(play.episodes[0]!.instruction),
  state: states,
  stateDims: 9,
});
// Next-observation features come from the ONNX encoder of @selfalign/data (issue 5); until it
// lands the dynamics task is fed zero features, and its loss below says nothing yet.
const batch: TrainBatch = {
  ...obs,
  actions: tf.tensor3d(actions, [b, small.actionHorizon, 3]),
  actionMask: tf.tensor2d(mask, [b, small.actionHorizon]),
  nextFeatures: tf.zeros([b, small.featureDim]),
  isDemo: tf.zeros([b]),
};
let t1 = performance.now();
const terms = policy.computeLoss(batch, { streams: ['alignment'] });
const lossMs = performance.now() - t1;
const v = (x: tf.Tensor) => x.dataSync()[0]!.toFixed(3);
console.log(
  `   alignment losses: perception ${v(terms.perception)}, dynamics ${v(terms.dynamics)}, inverse dynamics ${v(terms.inverseDynamics)} (${lossMs.toFixed(0)} ms, batch ${b}); Action Expert calls: ${policy.calls.action}`,
);
t1 = performance.now();
const chunk = policy.sampleActions(obs, { actionDims: 3 });
console.log(
  `   sampleActions: chunk [${chunk.shape}] in ${(performance.now() - t1).toFixed(0)} ms; first action ${Array.from(chunk.dataSync().slice(0, 3), (x) => x.toFixed(2)).join(', ')}`,
);

console.log(`\nDone in ${secs()} s.`);
console.log(
  'Not yet in this pipeline: a pretrained checkpoint, Arrow play data and ONNX features (issue 5),',
);
console.log(
  'align() on TTT W1/b1 only (issue 6), before/after evaluation and the HTML report (issue 7).',
);
