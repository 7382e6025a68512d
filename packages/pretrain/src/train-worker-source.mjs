// Entry of a data-parallel worker when selfalign runs from its TypeScript source (inside the
// repo): registers tsx in this thread, then loads train-worker.ts. Published builds start
// train-worker.js directly.
import { register } from 'tsx/esm/api';

register();
await import('./train-worker.ts');
