// The one vitest config: every package runs `vitest run --config ../../vitest.shared.ts`
// from its own folder (root = that folder), so packages stay independent turbo tasks while
// the settings live once. Packages resolve to their TypeScript source via the custom
// export condition, so no build is needed before testing.
import { defineConfig } from 'vitest/config';

export default defineConfig({
  resolve: { conditions: ['@selfalign/source'] },
  ssr: { resolve: { conditions: ['@selfalign/source'] } },
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    environment: 'node',
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 60_000,
    reporters: ['default', ['json', { outputFile: '.vitest/report.json' }]],
  },
});
