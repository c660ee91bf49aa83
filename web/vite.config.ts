import { fileURLToPath } from "node:url";
import preact from "@preact/preset-vite";
import { defineConfig } from "vite";

// Bundles web/ into dist/web/, which the server serves at `/` (src/server/web-app.ts).
// Everything is bundled at build time: no CDN at run time.
export default defineConfig({
  root: fileURLToPath(new URL(".", import.meta.url)),
  plugins: [preact()],
  build: {
    outDir: fileURLToPath(new URL("../dist/web", import.meta.url)),
    emptyOutDir: true,
  },
  // `vite dev` forwards the APIs to a Grove started with `npm start` (default port).
  server: { proxy: { "/v1": "http://127.0.0.1:11435", "/api": "http://127.0.0.1:11435" } },
});
