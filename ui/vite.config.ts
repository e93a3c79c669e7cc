import { defineConfig } from "vitest/config";
import react from "@vitejs/plugin-react";

// `npm run dev` proxies the API to a running `concord serve` (CONCORD_API, default port 8470),
// so the dev page and the API share an origin exactly as in production.
const api = process.env.CONCORD_API ?? "http://127.0.0.1:8470";

export default defineConfig({
  plugins: [react()],
  base: "/",
  build: {
    outDir: "dist",
    sourcemap: false,
    chunkSizeWarningLimit: 900,
  },
  server: {
    host: "127.0.0.1",
    proxy: { "/api": api, "/hooks": api },
  },
  test: {
    environment: "node",
    include: ["src/**/*.test.ts"],
  },
});
