#!/usr/bin/env node
// Submits a transfer (or a deposit or withdrawal) to the wallet straight
// over NATS JetStream, as docs/messaging.md describes, waits for its outcome
// and prints it. Usable as a module (submit) and as a command:
//
//   node producer.js --nats nats://127.0.0.1:4223 --from <uuid> --to <uuid> --amount 10.00 --currency USD
import { randomUUID } from "node:crypto";
import { parseArgs } from "node:util";
import { pathToFileURL } from "node:url";
import { connect, headers as natsHeaders, JSONCodec } from "nats";

const jc = JSONCodec();

// The subject a request is published on: the account it debits (for a
// deposit, the credited account), then its id. Both tokens must be
// lower-case UUIDs that agree with the body, or the request is dead-lettered.
export function requestSubject(req) {
  const debited = req.kind === "transfer" ? req.from_account_id : req.account_id;
  return `wallet.requests.${debited}.${req.id}`;
}

// envelope builds a version 1 request. Every value is a string except v; the
// amount in particular must be a decimal string, never a JSON number.
export function envelope({ kind = "transfer", id = randomUUID(), from, to, account, amount, currency }) {
  if (typeof amount !== "string") {
    throw new TypeError("amount must be a decimal string such as \"100.25\", not a number");
  }
  const req = { v: 1, kind, id: id.toLowerCase() };
  if (kind === "transfer") {
    req.from_account_id = from.toLowerCase();
    req.to_account_id = to.toLowerCase();
  } else {
    req.account_id = account.toLowerCase();
  }
  req.amount = amount;
  req.currency = currency;
  return req;
}

// lastOutcome reads the outcome already on wallet.results.<id>, or null
// when there is none (not decided yet).
async function lastOutcome(nc, id) {
  const jsm = await nc.jetstreamManager();
  try {
    const m = await jsm.direct.getMessage("WALLET_RESULTS", { last_by_subj: `wallet.results.${id}` });
    return m.json();
  } catch (err) {
    if (String(err?.code) === "404" || /no message found/i.test(String(err?.message))) {
      return null;
    }
    throw err;
  }
}

// submit publishes req and resolves with { ack, outcome } once the request
// is decided. It subscribes to the outcome subjects before publishing, so it
// cannot miss the outcome; it retries a publish that failed or timed out with
// the same Nats-Msg-Id, which the stream deduplicates; and when the PubAck
// says duplicate (the id was published before, perhaps decided long ago) it
// also reads the outcome already stored.
export async function submit(nc, req, { timeoutMs = 30000, traceId, attempts = 5 } = {}) {
  const outcome = nc.subscribe(`wallet.results.${req.id}`, { max: 1 });
  const conflict = nc.subscribe(`wallet.results.${req.id}.conflict`, { max: 1 });
  const first = (sub) => (async () => {
    for await (const m of sub) {
      return m.json();
    }
    return null;
  })();
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no outcome for ${req.id} within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    await nc.flush(); // the subscriptions are on the server before the publish
    const h = natsHeaders();
    if (traceId) {
      h.set("Wallet-Trace-Id", traceId);
    }
    const js = nc.jetstream();
    let ack;
    for (let n = 1; ; n++) {
      try {
        ack = await js.publish(requestSubject(req), jc.encode(req), { msgID: req.id, headers: h, timeout: 5000 });
        break;
      } catch (err) {
        if (n >= attempts) {
          throw err;
        }
        await new Promise((r) => setTimeout(r, 200 * n));
      }
    }
    const waits = [first(outcome), first(conflict), timeout];
    if (ack.duplicate) {
      const stored = await lastOutcome(nc, req.id);
      if (stored) {
        return { ack, outcome: stored };
      }
    }
    return { ack, outcome: await Promise.race(waits) };
  } finally {
    clearTimeout(timer);
    outcome.unsubscribe();
    conflict.unsubscribe();
  }
}

async function main() {
  const { values } = parseArgs({
    options: {
      nats: { type: "string", default: process.env.WALLET_NATS_URL || "nats://127.0.0.1:4223" },
      kind: { type: "string", default: "transfer" },
      id: { type: "string" },
      from: { type: "string" },
      to: { type: "string" },
      account: { type: "string" },
      amount: { type: "string" },
      currency: { type: "string", default: "USD" },
      trace: { type: "string" },
      timeout: { type: "string", default: "30000" },
    },
  });
  const req = envelope({ ...values, id: values.id || randomUUID() });
  const nc = await connect({ servers: values.nats.split(","), name: "wallet-node-producer" });
  try {
    const { ack, outcome } = await submit(nc, req, { timeoutMs: Number(values.timeout), traceId: values.trace });
    console.log(JSON.stringify({ accepted: { stream: ack.stream, seq: ack.seq, duplicate: ack.duplicate }, outcome }));
    return outcome.status === "applied" ? 0 : 1;
  } finally {
    await nc.drain();
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().then(
    (code) => process.exit(code),
    (err) => {
      console.error(`wallet-node-producer: ${err.message}`);
      process.exit(2);
    },
  );
}
