// selfalign features: add observation.features to a frame file with an ONNX image model.
import { resolve } from 'node:path';
import { addFeatures, openFrames } from '@selfalign/data';
import type { Command } from '../command.js';
import { Progress } from '../io.js';
import { checkOutputs } from '../paths.js';
import { featureExtractor } from '../shared.js';

export const features: Command = {
  name: 'features',
  summary:
    'add next-observation features to a frame file (default encoder or any ONNX image model)',
  usage: `selfalign features --in FILE --out FILE [options]
  --model M            default | FILE.onnx (e.g. a DINOv2-small export)   (default default)
  --feature-dim F      dim of the default encoder                          (default 64)
  --output NAME        model output to use (default: its first)
  --batch-size B       frames per run                                      (default 32)`,
  options: {
    in: { type: 'string' },
    out: { type: 'string' },
    model: { type: 'string' },
    'feature-dim': { type: 'string' },
    output: { type: 'string' },
    'batch-size': { type: 'string' },
  },
  async run(args, io) {
    const input = resolve(io.cwd, args.str('in'));
    const out = resolve(io.cwd, args.str('out'));
    checkOutputs('features', [input], [out]);
    const model = args.str('model', 'default');
    const batchSize = args.int('batch-size', 32, 1);
    const output = args.optStr('output');
    const extractor = await featureExtractor(model, io.cwd, args.int('feature-dim', 64, 1), {
      batchSize,
      ...(output ? { outputName: output } : {}),
    });
    try {
      let total = 0;
      const { batches } = await openFrames(input);
      for await (const b of batches) total += b.length;
      const progress = new Progress(io, 'features', total, !args.has('json'));
      let last = 0;
      const { rows } = await addFeatures(input, out, extractor, {
        onProgress: (r) => {
          progress.tick(r - last);
          last = r;
        },
      });
      progress.end();
      return {
        lines: [
          `wrote ${rows} frames with ${extractor.dim}-dim features (${extractor.name}) to ${out}`,
        ],
        json: { out, rows, featureDim: extractor.dim, model: extractor.name },
      };
    } finally {
      await extractor.dispose();
    }
  },
};
