// Builds the web app into the core package (llm_router/gateway/static), which the wheel ships.
// `nox -s web` runs `npm ci && npm run build`; scripts/stamp.mjs then records a hash of the sources
// so that a test fails when the committed build is stale.
import { defineConfig } from "vite";

export default defineConfig({
  base: "/",
  esbuild: { jsx: "automatic", jsxImportSource: "preact" },
  build: {
    outDir: "../core/src/llm_router/gateway/static",
    emptyOutDir: true,
    target: "es2022",
    modulePreload: { polyfill: false },
    assetsInlineLimit: 0, // no data: URLs for assets; everything is a file served by the gateway
    reportCompressedSize: true,
  },
});
