import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import fastifyStatic from "@fastify/static";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { isApiPath } from "./api-paths.js";

/**
 * Where `npm run build` puts the bundled web app (`vite build` → `dist/web/`); resolved from
 * this module (`dist/server/web-app.js`), so it holds wherever Grove runs from.
 */
export const WEB_APP_DIR = resolve(dirname(fileURLToPath(import.meta.url)), "..", "web");


/** True when the web app was built into `root` (it holds `index.html`). */
export function webAppBuilt(root: string = WEB_APP_DIR): boolean {
  return existsSync(join(root, "index.html"));
}

/**
 * Serves the bundled web app at `/`: its files as they are, and `index.html` for any other
 * GET outside the API prefixes, so client-side routes survive a reload. Registered routes
 * keep precedence (fastify prefers a static route over the wildcard).
 */
export function registerWebApp(app: FastifyInstance, root: string): void {
  app.register(fastifyStatic, {
    root,
    prefix: "/",
    wildcard: false,
    index: ["index.html"],
    cacheControl: false, // set below, per file
    // Hashed assets may be cached for good; index.html must be revalidated to pick up a new build.
    setHeaders: (response, path) => {
      response.setHeader("cache-control", path.startsWith(join(root, "assets")) ? "public, max-age=31536000, immutable" : "no-cache");
    },
  });
}

/**
 * For the not-found handler: answers `index.html` when the request is a page navigation
 * outside the APIs and returns true; false means the caller sends its API 404.
 */
export function sendWebAppFallback(request: FastifyRequest, reply: FastifyReply): boolean {
  const path = request.url.split("?")[0]!;
  if ((request.method !== "GET" && request.method !== "HEAD") || isApiPath(path)) return false;
  if (typeof reply.sendFile !== "function") return false;
  reply.header("cache-control", "no-cache");
  void reply.sendFile("index.html");
  return true;
}
