// A patron client in Node.js with nothing but @grpc/grpc-js, @grpc/proto-loader and
// proto/patron.proto: enroll a member, submit a batch with one purchase, read the member back.
//
//   npm ci
//   node client.js [--address 127.0.0.1:50051] [--member M-NODE-1] [--occurred-at-ms N]
//
// Refused or unreachable calls are tried again, PATRON_RETRIES times (8, about 10 s, unless set),
// as the patron command does. PATRON_TOKEN (a bearer token) and PATRON_TLS_CA (a CA's PEM file) are used when set, as the
// patron command uses them. Prints three JSON lines: the enrollment, the acknowledgement, the member.

"use strict";

const fs = require("fs");
const path = require("path");
const grpc = require("@grpc/grpc-js");
const protoLoader = require("@grpc/proto-loader");

const PROTO = path.join(__dirname, "..", "..", "proto", "patron.proto");
const DEADLINE_MS = 10000;

function options(argv) {
  const given = { address: "127.0.0.1:50051", member: "M-NODE-1", "occurred-at-ms": String(Date.now()) };
  for (let i = 0; i < argv.length; i += 2) {
    const name = argv[i].replace(/^--/, "");
    if (!(name in given) || argv[i + 1] === undefined) {
      throw new Error(`unknown option ${argv[i]}; expected --address, --member or --occurred-at-ms`);
    }
    given[name] = argv[i + 1];
  }
  return given;
}

function load() {
  // keepCase: the proto's field names (member_id), as every patron document spells them;
  // longs as strings: int64 points and amounts never lose precision in a JavaScript number.
  const definition = protoLoader.loadSync(PROTO, { keepCase: true, longs: String, enums: String, defaults: true });
  return grpc.loadPackageDefinition(definition).patron.v1;
}

function credentials() {
  const ca = process.env.PATRON_TLS_CA;
  return ca ? grpc.credentials.createSsl(fs.readFileSync(ca)) : grpc.credentials.createInsecure();
}

function metadata() {
  const headers = new grpc.Metadata();
  if (process.env.PATRON_TOKEN) {
    headers.set("authorization", `Bearer ${process.env.PATRON_TOKEN}`);
  }
  return headers;
}

function callOnce(client, method, request) {
  return new Promise((resolve, reject) => {
    client[method](request, metadata(), { deadline: Date.now() + DEADLINE_MS }, (error, answer) =>
      error ? reject(error) : resolve(answer));
  });
}

// Worth another try: the server is starting, restarting or full. Every call here is safe to
// send again: a batch and its transactions carry their own ids (a resent one answers
// `duplicate`), an enrollment of an enrolled member answers created=false, a read is a read.
const RETRIABLE = new Set([grpc.status.UNAVAILABLE, grpc.status.RESOURCE_EXHAUSTED,
  grpc.status.DEADLINE_EXCEEDED, grpc.status.ABORTED]);
// PATRON_RETRIES as for the patron command: how often (default 8, about 10 s in all); 0 fails fast.
const RETRIES = Number(process.env.PATRON_RETRIES || 8);

function pauseMs(error, attempt) {
  // A full shard says how long its calls take (trailer patron-retry-after-ms); otherwise back off
  // from 50 ms to 2 s. The ×0.5–1.5 spread keeps refused clients from coming back together.
  const said = error.metadata ? Number(error.metadata.get("patron-retry-after-ms")[0] || 0) : 0;
  return Math.max(Math.min(50 * 2 ** attempt, 2000), said) * (0.5 + Math.random());
}

async function call(client, method, request) {
  for (let attempt = 0; ; attempt += 1) {
    try {
      return await callOnce(client, method, request);
    } catch (error) {
      if (!RETRIABLE.has(error.code) || attempt >= RETRIES) {
        throw error;
      }
      await new Promise((resolve) => setTimeout(resolve, pauseMs(error, attempt)));
    }
  }
}

async function main() {
  const given = options(process.argv.slice(2));
  const v1 = load();
  const members = new v1.Members(given.address, credentials());
  const ingest = new v1.Ingest(given.address, credentials());
  const memberId = given.member;

  const enrolled = await call(members, "Enroll", { member_id: memberId, channel: "online", birthday: "03-05" });
  console.log(JSON.stringify({ enrolled: enrolled.created, tier: enrolled.member.tier }));

  const batch = {
    batch_id: `node-${memberId}-1`,
    transactions: [{
      txn_id: `${memberId}-T1`,
      member_id: memberId,
      occurred_at_ms: given["occurred-at-ms"],
      kind: "KIND_PURCHASE",
      channel: "online",
      lines: [
        { sku: "SKU-1", category: "dairy", name: "Milk 1L", paid_minor: 10000, quantity: 1 },
        { sku: "SKU-2", category: "bakery", name: "Bread", paid_minor: 2000, quantity: 1 },
      ],
    }],
  };
  const ack = await call(ingest, "SubmitBatch", batch);
  console.log(JSON.stringify({ batch_id: ack.batch_id, results: ack.results }));

  const member = await call(members, "GetMember", { member_id: memberId });
  console.log(JSON.stringify({ member }));
  members.close();
  ingest.close();
}

main().catch((error) => {
  // one clear line, not a stack: a gRPC error carries its status name and details
  const code = error.code !== undefined ? `${grpc.status[error.code]}: ` : "";
  console.error(`patron node example: ${code}${error.details || error.message}`);
  process.exit(1);
});
