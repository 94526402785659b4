// A Node.js client of Capsule: stubs loaded at run time from the repository's proto/
// (no copy of the .proto files, no code generation step).
//
// It authenticates with a bearer token, creates a job whose `execute` is Python source
// text, triggers it and waits for the result, then reads the messages the job sent.
//
//   CAPSULE_ADDRESS  the engine (default 127.0.0.1:50051)
//   CAPSULE_TOKEN    the bearer token (default: the admin token in
//                    $CAPSULE_HOME/admin.token, CAPSULE_HOME defaulting to ~/.capsule)
//   CAPSULE_USER     the user the job acts for (default user_42)
'use strict';

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const PROTO_ROOT = path.resolve(__dirname, '..', '..', 'proto');
const PROTO_FILES = ['jobs.proto', 'executions.proto', 'messages.proto', 'admin.proto']
  .map((name) => `capsule/v1/${name}`);

// The job's code travels as Python source text; the engine compiles it under its
// sandbox policy when the job is created and runs it in a fresh child process.
const SOURCE = `
def execute(job):
    text = job.metadata["greeting"] + " (attempt " + str(job.attempt) + ")"
    job.user().send([{"type": "text", "text": text}])
    return {"sent": True, "words": len(text.split())}
`;

function loadApi() {
  // keepCase: fields keep their proto names (user_id, result_json); enums as their names;
  // int64 as strings. google/protobuf/timestamp.proto is one of protobufjs's bundled
  // well-known types, so only proto/ is needed on the include path.
  const definition = protoLoader.loadSync(PROTO_FILES, {
    includeDirs: [PROTO_ROOT], keepCase: true, enums: String, longs: String, defaults: true, oneofs: true,
  });
  return grpc.loadPackageDefinition(definition).capsule.v1;
}

function readToken() {
  if (process.env.CAPSULE_TOKEN) return process.env.CAPSULE_TOKEN.trim();
  const home = process.env.CAPSULE_HOME || path.join(os.homedir(), '.capsule');
  const file = path.join(home, 'admin.token');
  try {
    return fs.readFileSync(file, 'utf8').trim();
  } catch (err) {
    throw new Error(`no token: set CAPSULE_TOKEN, or run \`capsule serve\` once so that ${file} exists (${err.code})`);
  }
}

// Calls a unary RPC as a promise, with the token and a deadline. A refused call rejects
// with the gRPC error: `code` (a grpc.status number) and `details` (the engine's message,
// which names the field at fault and the fix).
function call(client, method, request, { metadata, seconds = 30 }) {
  const deadline = new Date(Date.now() + seconds * 1000);
  return new Promise((resolve, reject) => {
    client[method](request, metadata, { deadline }, (err, response) => {
      if (err) {
        err.rpc = method;
        reject(err);
      } else {
        resolve(response);
      }
    });
  });
}

function statusName(code) {
  return Object.keys(grpc.status).find((name) => grpc.status[name] === code) || String(code);
}

// Every message of the user, oldest first, a page at a time.
async function allMessages(messages, userId, options) {
  const out = [];
  let after_id = '';
  for (;;) {
    const page = await call(messages, 'ListMessages', { user_id: userId, after_id, limit: 1000 }, options);
    out.push(...page.messages);
    if (page.messages.length < 1000) return out;
    after_id = page.messages[page.messages.length - 1].id;
  }
}

async function main() {
  const address = process.env.CAPSULE_ADDRESS || '127.0.0.1:50051';
  const userId = process.env.CAPSULE_USER || 'user_42';
  const metadata = new grpc.Metadata();
  metadata.set('authorization', `Bearer ${readToken()}`);

  const api = loadApi();
  const credentials = grpc.credentials.createInsecure();
  const jobs = new api.JobService(address, credentials);
  const messages = new api.MessageService(address, credentials);
  try {
    return await run(jobs, messages, userId, metadata);
  } finally {
    jobs.close();
    messages.close();
  }
}

async function run(jobs, messages, userId, metadata) {
  const options = { metadata };
  // Job names are unique per owner among live jobs: one name per run, so running the
  // example again makes a new job instead of failing with ALREADY_EXISTS.
  const name = `node-greeting-${Date.now()}`;
  const created = await call(jobs, 'CreateJob', {
    spec: {
      name,
      description: 'Greets a user; created by the Node.js example',
      user_id: userId,
      metadata_json: JSON.stringify({ greeting: 'Hello from Node.js' }),
      artifact: { source: SOURCE, entrypoint: 'execute' },
      timeout_seconds: 30,
      // No schedule: the job runs on demand only (TriggerJob).
    },
  }, options);
  console.log(`created job ${created.job.name} (${created.job.id}), version ${created.version.number}, ` +
              `status ${created.job.status}`);

  const { execution } = await call(jobs, 'TriggerJob',
    { job: created.job.id, wait: true, wait_timeout_seconds: 60 }, { metadata, seconds: 90 });
  console.log(`execution ${execution.id}: ${execution.status} in ${execution.duration_ms} ms`);
  if (execution.status !== 'EXECUTION_STATUS_SUCCEEDED') {
    const error = execution.error || {};
    console.error(`the job did not succeed: ${error.type || ''} ${error.message || execution.reason || ''}`);
    (error.traceback || []).forEach((line) => console.error(`  ${line}`));
    return 1;
  }
  console.log(`result: ${execution.result_json}`);

  const inbox = await allMessages(messages, userId, options);
  const sent = inbox.filter((m) => m.execution_id === execution.id);
  console.log(`${userId} has ${inbox.length} message(s); this run sent ${sent.length}:`);
  for (const m of sent) {
    const text = JSON.parse(m.parts_json).map((part) => part.text).join(' ');
    const at = new Date(Number(m.created_at.seconds) * 1000).toISOString();
    console.log(`  [${at}] ${text}`);
  }
  return sent.length > 0 ? 0 : 1;
}

main().then(
  (code) => { process.exitCode = code; },
  (err) => {
    if (err.rpc) {
      console.error(`${err.rpc} failed: ${statusName(err.code)}: ${err.details}`);
      if (err.code === grpc.status.UNAVAILABLE) {
        console.error(`is the engine running at ${process.env.CAPSULE_ADDRESS || '127.0.0.1:50051'}? ` +
                      'start it with `capsule serve`, or set CAPSULE_ADDRESS');
      }
    } else {
      console.error(err.message);
    }
    process.exitCode = 1;
  },
);
