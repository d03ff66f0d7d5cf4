import { defineConfig } from "vite";

// In development the app talks to a running gateway through Vite's proxy (same origin,
// as when the gateway serves the built app): GATEWAY=http://127.0.0.1:8080 npm run dev.
// API_KEY, when set, is added by the proxy for a gateway that still asks for one.
const gateway = process.env.GATEWAY ?? "http://127.0.0.1:8080";
const apiKey = process.env.API_KEY;

export default defineConfig({
  esbuild: { jsx: "automatic", jsxImportSource: "preact" },
  build: { target: "es2022", outDir: "dist", assetsInlineLimit: 0, sourcemap: false },
  server: {
    proxy: {
      "/api": {
        target: gateway,
        changeOrigin: true,
        headers: apiKey ? { Authorization: `Bearer ${apiKey}` } : {},
      },
    },
  },
});
