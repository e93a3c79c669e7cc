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
    rollupOptions: {
      output: {
        // Libraries in chunks of their own, and the app's shared code (API client, components,
        // lib) in one more, so that each page's lazily loaded chunk imports those and never the
        // entry: WebKitGTK (the desktop window) evaluated a page chunk that imported the entry
        // back before the entry's code was ready. Libraries change far less often than the app,
        // so a new release mostly reuses them from the browser's cache (content-hashed names,
        // cached for a year).
        manualChunks(id) {
          if (!id.includes("node_modules")) {
            return /\/src\/(api|components|lib)\//.test(id) ? "shell" : undefined;
          }
          if (/node_modules\/(react|react-dom|scheduler|react-router)\//.test(id)) return "react";
          if (id.includes("@tanstack")) return "query";
          if (id.includes("uplot")) return "charts";
          if (id.includes("lucide-react")) return "icons";
          return "vendor";
        },
      },
    },
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
