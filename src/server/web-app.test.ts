import assert from "node:assert/strict";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { ConfigError } from "../core/errors.js";
import { createTestModel, startTestGrove, type TestModel } from "../test-support/grove-fixture.js";

// Where the served web app comes from (--web-dir / GROVE_WEB_DIR), over real HTTP.

let model: TestModel;

before(async () => {
  model = await createTestModel();
});

after(async () => {
  await model?.cleanup();
});

describe("--web-dir", () => {
  test("a folder with a build is served at / with index.html for client routes; the APIs keep their 404s", async () => {
    const web = join(model.directory, "web-build");
    await mkdir(join(web, "assets"), { recursive: true });
    await writeFile(join(web, "index.html"), "<!doctype html><title>custom build</title><div id=app></div>");
    await writeFile(join(web, "assets", "app-1234.js"), "console.log('hi')");
    await writeFile(join(web, "assets", "app-5678.css"), "body {}");
    const grove = await startTestGrove(model, { webDir: web });
    try {
      assert.equal(grove.webApp, true);
      const root = await fetch(`${grove.url}/`);
      assert.equal(root.status, 200);
      assert.match(await root.text(), /custom build/);
      assert.equal(root.headers.get("cache-control"), "no-cache");
      const asset = await fetch(`${grove.url}/assets/app-1234.js`);
      assert.match(asset.headers.get("cache-control") ?? "", /immutable/);
      assert.match(await (await fetch(`${grove.url}/models/tiny%3Abase`)).text(), /custom build/);
      const api = await fetch(`${grove.url}/api/nothing`);
      assert.equal(api.status, 404);
      // Ollama's error shape under /api/ (issue 23).
      assert.match(((await api.json()) as { error: string }).error, /No route for GET \/api\/nothing/);
      const v1 = await fetch(`${grove.url}/v1/nothing`);
      assert.ok(((await v1.json()) as { error: { message: string } }).error.message);
      assert.equal((await fetch(`${grove.url}/anything`, { method: "POST" })).status, 404, "only GET and HEAD fall back to the app");
      // /metrics labels every web app file as one route, not one label per hashed name (issue 23).
      assert.equal((await fetch(`${grove.url}/assets/app-5678.css`)).status, 200);
      const metrics = await (await fetch(`${grove.url}/metrics`)).text();
      assert.match(metrics, /grove_requests_total\{route="static",model="",status="200"\} [3-9]/);
      assert.doesNotMatch(metrics, /route="\/assets\//);
      assert.match(metrics, /grove_requests_total\{route="unmatched",model="",status="404"\}/);
    } finally {
      await grove.close();
    }
  });

  test("none serves the APIs only", async () => {
    const grove = await startTestGrove(model, { webDir: "none" });
    try {
      assert.equal(grove.webApp, false);
      assert.equal((await fetch(`${grove.url}/`)).status, 404);
      assert.equal((await fetch(`${grove.url}/v1/models`)).status, 200);
    } finally {
      await grove.close();
    }
  });

  test("a folder without index.html is refused at startup, naming the flag", async () => {
    const empty = join(model.directory, "empty-web");
    await mkdir(empty, { recursive: true });
    await assert.rejects(startTestGrove(model, { webDir: empty }), (error: unknown) => error instanceof ConfigError && /--web-dir .*holds no index\.html/.test(error.message));
  });
});
