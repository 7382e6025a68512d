// The playground resolves the selfalign packages to their TypeScript source (the same export
// condition the tests use), so `dev` needs no build of the libraries.
import { defineConfig } from 'vite';

export default defineConfig({
  resolve: { conditions: ['@selfalign/source', 'module', 'browser', 'development|production'] },
  server: { fs: { allow: ['../..'] } },
  build: { target: 'es2022', chunkSizeWarningLimit: 4000 },
});
