// Runs walletd (embedded JetStream, a fresh PostgreSQL database) and submits
// requests through the producer, as an outside service would. Needs Go and
// WALLET_TEST_DATABASE_URL, as the Go tests do.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { connect } from "nats";
import { envelope, requestSubject, submit } from "../producer.js";

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, "../../..");
const adminURL = process.env.WALLET_TEST_DATABASE_URL;
const skip = !adminURL && process.env.CI !== "true"
  ? "WALLET_TEST_DATABASE_URL is not set (see README): SKIPPING the walletd tests"
  : false;

let work, walletd, httpURL, natsURL, nc, dbName;

function freePort() {
  return new Promise((ok, fail) => {
    const s = createServer();
    s.once("error", fail);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => ok(port));
    });
  });
}

// startWalletd builds cmd/walletd and runs it until its "walletd ready" line.
async function startWalletd() {
  assert.ok(adminURL, "WALLET_TEST_DATABASE_URL must be set under CI");
  work = mkdtempSync(join(tmpdir(), "wallet-node-producer-"));
  const bin = join(work, "walletd");
  execFileSync("go", ["build", "-o", bin, "./cmd/walletd"], { cwd: repo, stdio: "inherit" });
  dbName = "wallet_node_" + randomUUID().replaceAll("-", "").slice(0, 12);
  const db = new URL(adminURL);
  db.pathname = "/" + dbName;
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("WALLET_")));
  walletd = spawn(bin, [
    "--db", db.toString(), "--create-db",
    "--port", "0",
    "--nats-listen", `127.0.0.1:${await freePort()}`,
    "--nats-store-dir", join(work, "jetstream"),
    "--log-format", "json", "--shutdown-timeout", "10s",
  ], { env, stdio: ["ignore", "pipe", "pipe"] });
  let log = "";
  return new Promise((ok, fail) => {
    const timer = setTimeout(() => fail(new Error("walletd not ready within 120 s:\n" + log.slice(-4000))), 120000);
    walletd.once("exit", (code) => fail(new Error(`walletd exited with ${code}:\n${log.slice(-4000)}`)));
    walletd.stderr.on("data", (chunk) => {
      log += chunk;
      for (const line of log.split("\n")) {
        if (!line.startsWith("{")) continue;
        let entry;
        try { entry = JSON.parse(line); } catch { continue; }
        if (entry.msg === "walletd ready") {
          clearTimeout(timer);
          httpURL = entry.http;
          natsURL = entry.nats;
          ok();
          return;
        }
      }
    });
  });
}

async function stopWalletd() {
  if (walletd && walletd.exitCode === null) {
    const exited = new Promise((ok) => walletd.once("exit", ok));
    walletd.kill("SIGTERM");
    await exited;
  }
  if (dbName) {
    try {
      execFileSync("psql", [adminURL, "-qc", `DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`], { stdio: "ignore" });
    } catch {
      console.error(`could not drop the test database ${dbName} (psql missing?)`);
    }
  }
  if (work) rmSync(work, { recursive: true, force: true });
}

async function http(method, path, body, headers = {}) {
  const res = await fetch(httpURL + path, {
    method,
    headers: body ? { "Content-Type": "application/json", ...headers } : headers,
    body: body ? JSON.stringify(body) : undefined,
  });
  return { status: res.status, body: await res.json() };
}

async function newAccount() {
  const r = await http("POST", "/v1/accounts", { currency: "USD" });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  return r.body.id;
}

async function balance(id) {
  const r = await http("GET", `/v1/accounts/${id}`);
  assert.equal(r.status, 200);
  return r.body.balance;
}

before(async () => {
  if (skip) return;
  await startWalletd();
  nc = await connect({ servers: natsURL });
}, { timeout: 300000 });

after(async () => {
  if (nc) await nc.drain();
  await stopWalletd();
});

test("the envelope and subject follow docs/messaging.md", () => {
  const id = "6F1C1B2E-3D4A-4B5C-8D6E-7F8091A2B3C4";
  const from = "11111111-2222-4333-8444-555555555555";
  const to = "99999999-8888-4777-8666-555555555555";
  const req = envelope({ id, from, to, amount: "100.11", currency: "USD" });
  assert.equal(JSON.stringify(req),
    `{"v":1,"kind":"transfer","id":"${id.toLowerCase()}","from_account_id":"${from}","to_account_id":"${to}","amount":"100.11","currency":"USD"}`);
  assert.equal(requestSubject(req), `wallet.requests.${from}.${id.toLowerCase()}`);
  const dep = envelope({ kind: "deposit", id, account: to, amount: "5", currency: "EUR" });
  assert.equal(requestSubject(dep), `wallet.requests.${to}.${id.toLowerCase()}`);
  assert.throws(() => envelope({ from, to, amount: 1, currency: "USD" }), /decimal string/);
});

test("a deposit and a transfer published over NATS are applied", { skip, timeout: 120000 }, async () => {
  const a = await newAccount();
  const b = await newAccount();

  const dep = await submit(nc, envelope({ kind: "deposit", account: a, amount: "100", currency: "usd" }), { traceId: "node-test-1" });
  assert.equal(dep.ack.stream, "WALLET_REQUESTS");
  assert.equal(dep.ack.duplicate, false);
  assert.equal(dep.outcome.status, "applied", JSON.stringify(dep.outcome));
  assert.equal(dep.outcome.amount, "100.00");
  assert.equal(dep.outcome.currency, "USD");

  const req = envelope({ from: a, to: b, amount: "30.505", currency: "USD" });
  const { outcome } = await submit(nc, req);
  assert.equal(outcome.status, "applied", JSON.stringify(outcome));
  assert.equal(outcome.id, req.id);
  assert.equal(outcome.kind, "transfer");
  assert.equal(outcome.from_account_id, a);
  assert.equal(outcome.to_account_id, b);
  assert.equal(outcome.amount, "30.51"); // half away from zero, to USD's precision
  assert.ok(Date.parse(outcome.processed_at) >= Date.parse(outcome.accepted_at));
  assert.equal(await balance(a), "69.49");
  assert.equal(await balance(b), "30.51");

  // The HTTP API sees the same transfer.
  const tr = await http("GET", `/v1/transfers/${req.id}`);
  assert.equal(tr.status, 200);
  assert.equal(tr.body.status, "applied");

  // The same request again: deduplicated, the stored outcome comes back, and
  // no money moves twice.
  const again = await submit(nc, req);
  assert.equal(again.ack.duplicate, true);
  assert.deepEqual(again.outcome, outcome);
  assert.equal(await balance(a), "69.49");
});

test("a transfer the balance cannot cover is rejected with its reason", { skip, timeout: 120000 }, async () => {
  const a = await newAccount();
  const b = await newAccount();
  const { outcome } = await submit(nc, envelope({ from: a, to: b, amount: "1", currency: "USD" }));
  assert.equal(outcome.status, "rejected");
  assert.equal(outcome.reason, "insufficient_funds");
  assert.equal(await balance(b), "0.00");
});

test("the command prints the outcome", { skip, timeout: 120000 }, async () => {
  const a = await newAccount();
  const b = await newAccount();
  await submit(nc, envelope({ kind: "deposit", account: a, amount: "10", currency: "USD" }));
  const out = execFileSync(process.execPath, [join(here, "..", "producer.js"),
    "--nats", natsURL, "--from", a, "--to", b, "--amount", "2.25", "--currency", "USD"], { encoding: "utf8" });
  const printed = JSON.parse(out);
  assert.equal(printed.accepted.duplicate, false);
  assert.equal(printed.outcome.status, "applied");
  assert.equal(printed.outcome.amount, "2.25");
  assert.equal(await balance(b), "2.25");
});
