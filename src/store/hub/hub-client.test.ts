import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { ConfigError, InvalidRequestError, NotFoundError, UpstreamError } from "../../core/errors.js";
import { FakeHub, seededBytes, sha256Hex } from "../../test-support/fake-hub.js";
import { chooseModelFile, HubClient, type HubFileListing } from "./hub-client.js";
import { hubSettingsFromEnvironment } from "./hub-settings.js";

const model = seededBytes(4096, 2);
const README = "---\nlicense: mit\nbase_model: acme/base\nbase_model_relation: finetune\n---\n# Tiny\n";

describe("HubClient", () => {
  let hub: FakeHub;
  let client: HubClient;

  before(async () => {
    hub = await FakeHub.start({
      cdn: true,
      repos: [
        { repo: "acme/tiny-GGUF", readme: README, files: [{ path: "tiny.gguf", content: model }, { path: "notes.txt", content: Buffer.from("x"), lfs: false }] },
        { repo: "acme/no-card", files: [] },
      ],
    });
    client = new HubClient({ endpoint: `${hub.endpoint}/`, token: "hf_secret" });
  });
  after(() => hub.close());

  test("lists files with their LFS sha256 and size, and the commit", async () => {
    const listing = await client.listFiles("acme/tiny-GGUF", "main");
    assert.equal(listing.commit, "c".repeat(40));
    assert.deepEqual(listing.files.find((file) => file.path === "tiny.gguf"), { path: "tiny.gguf", size: model.length, sha256: sha256Hex(model) });
    assert.deepEqual(listing.files.find((file) => file.path === "notes.txt"), { path: "notes.txt", size: 1, sha256: undefined });
    const request = hub.requests.find((entry) => entry.path.startsWith("/api/models/"))!;
    assert.equal(request.path, "/api/models/acme/tiny-GGUF/revision/main");
    assert.equal(request.headers.authorization, "Bearer hf_secret");
  });

  test("a missing repository or revision is a NotFoundError", async () => {
    await assert.rejects(client.listFiles("acme/missing", "main"), NotFoundError);
    await assert.rejects(client.listFiles("acme/tiny-GGUF", "no-such-branch"), NotFoundError);
    await assert.rejects(client.listFiles("acme/../x", "main"), InvalidRequestError);
  });

  test("reads the model card's lineage; no README is no card", async () => {
    assert.deepEqual(await client.readModelCard("acme/tiny-GGUF", "main"), { baseModels: ["acme/base"], relation: "finetune", license: "mit" });
    assert.equal(await client.readModelCard("acme/no-card", "main"), undefined);
  });

  test("HEAD reads X-Linked-Etag and X-Linked-Size without following the CDN redirect", async () => {
    const before = hub.requests.length;
    const head = await client.headFile("acme/tiny-GGUF", "main", "tiny.gguf");
    assert.deepEqual(head, {
      url: `${hub.endpoint}/acme/tiny-GGUF/resolve/main/tiny.gguf`,
      sha256: sha256Hex(model),
      size: model.length,
      commit: "c".repeat(40),
    });
    assert.deepEqual(hub.requests.slice(before).map((request) => `${request.host} ${request.method}`), ["hub HEAD"]);
    await assert.rejects(client.headFile("acme/tiny-GGUF", "main", "other.gguf"), NotFoundError);
  });

  test("a refusal without a token suggests one", async () => {
    const refusing = new HubClient({ fetch: async () => new Response("no", { status: 401 }) });
    await assert.rejects(
      refusing.listFiles("acme/private", "main"),
      (error: unknown) => error instanceof UpstreamError && error.status === 401 && /HF_TOKEN/.test(error.message),
    );
  });

  test("the endpoint must be a plain http(s) URL", () => {
    assert.equal(new HubClient().endpoint, "https://huggingface.co");
    assert.equal(new HubClient({ endpoint: "http://mirror.local/hf/" }).endpoint, "http://mirror.local/hf");
    assert.throws(() => new HubClient({ endpoint: "ftp://x" }), ConfigError);
    assert.throws(() => new HubClient({ endpoint: "not a url" }), ConfigError);
    assert.throws(() => new HubClient({ endpoint: "https://user:pw@x" }), ConfigError);
  });
});

describe("chooseModelFile", () => {
  const file = (path: string) => ({ path, size: 1, sha256: undefined });
  const listing = (...paths: string[]): HubFileListing => ({ commit: undefined, files: paths.map(file) });

  test("takes the only GGUF file, or the one named", () => {
    assert.equal(chooseModelFile(listing("README.md", "a.gguf"), undefined, "acme/x").path, "a.gguf");
    assert.equal(chooseModelFile(listing("a.gguf", "b.gguf"), "b.gguf", "acme/x").path, "b.gguf");
  });

  test("several GGUF files: an error that lists them", () => {
    assert.throws(
      () => chooseModelFile(listing("a.gguf", "b.gguf"), undefined, "acme/x"),
      (error: unknown) => error instanceof InvalidRequestError && /a\.gguf, b\.gguf/.test(error.message),
    );
  });

  test("a missing file or no GGUF at all: NotFoundError", () => {
    assert.throws(() => chooseModelFile(listing("a.gguf"), "c.gguf", "acme/x"), /no file 'c\.gguf'; its GGUF files: a\.gguf/);
    assert.throws(() => chooseModelFile(listing("README.md"), undefined, "acme/x"), NotFoundError);
  });
});

describe("hubSettingsFromEnvironment", () => {
  test("reads HF_ENDPOINT and HF_TOKEN, falling back to HUGGING_FACE_HUB_TOKEN", () => {
    assert.deepEqual(hubSettingsFromEnvironment({ HF_ENDPOINT: "http://mirror", HF_TOKEN: "a", HUGGING_FACE_HUB_TOKEN: "b" }), {
      endpoint: "http://mirror",
      token: "a",
    });
    assert.deepEqual(hubSettingsFromEnvironment({ HF_TOKEN: "", HUGGING_FACE_HUB_TOKEN: "b" }), { endpoint: undefined, token: "b" });
  });
});
