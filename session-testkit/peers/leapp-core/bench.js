#!/usr/bin/env node
// bench.js N [--rounds R] [--home DIR]
//
// Leapp's workspace speed, measured with leapp-core's own code
// (npm @noovolari/leapp-core, found in $SESSION_PEERS_LEAPP_CORE).
//
// Workspace: one IAM user session ("bench-user", eu-west-1, keys in the
// in-memory keytar) and N IAM role chained sessions, all chained to that one
// IAM user (the common Leapp layout: one set of long-term keys, many roles
// assumed from it), each with region eu-west-1, role ARN
// arn:aws:iam::<account>:role/BenchRole<i>, role session name
// "assumed-from-leapp" and the named profile "bench". The IAM user is
// created through AwsIamUserService.create; the N chained sessions are
// leapp-core AwsIamRoleChainedSession objects added in one
// Repository.updateSessions call (one persist: creating 10,000 through
// AwsIamRoleChainedService.create would rewrite the file 10,000 times).
// The file is written by leapp-core (class-transformer + CryptoJS AES).
//
// Figures (medians over R rounds, default 10):
// - cold_load_ms: what Leapp does on start: fresh FileService,
//   WorkspaceConsistencyService and Repository, then getWorkspace(): read,
//   decrypt, deserialize, consistency check, and Leapp's own re-save of the
//   main file plus the backup rewrite (two encrypted writes).
// - update_one_persist_ms: AwsIamRoleChainedService.update of one session
//   (its region flips between eu-west-1 and eu-central-1), which persists the
//   whole workspace file and notifies the session subject, as in Leapp.
// Every cold load checks it got N+1 sessions; the last update is checked by
// a fresh load at the end.
//
// Prints one JSON line:
// {"n":N,"cold_load_ms":..,"update_one_persist_ms":..,"rounds":R,"leapp_core_version":"x.y.z"}
"use strict";

const fs = require("fs");
const os = require("os");
const path = require("path");
const { performance } = require("perf_hooks");
const L = require("./leapp.js");

function usage(msg) {
  if (msg) process.stderr.write(`bench.js: ${msg}\n`);
  process.stderr.write("usage: bench.js N [--rounds R] [--home DIR]\n");
  process.exit(2);
}

function parseArgs(argv) {
  const args = { n: undefined, rounds: 10, home: undefined };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--rounds") args.rounds = Number(argv[++i]);
    else if (a === "--home") args.home = argv[++i];
    else if (args.n === undefined) args.n = Number(a);
    else usage(`unexpected argument ${a}`);
  }
  if (!Number.isInteger(args.n) || args.n < 1) usage("N must be a positive integer");
  if (!Number.isInteger(args.rounds) || args.rounds < 1) usage("R must be a positive integer");
  return args;
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function round3(x) {
  return Math.round(x * 1000) / 1000;
}

async function createWorkspace(home, n, aesKey, keytar) {
  const s = L.sessionServices(L.services(home, { aesKey, keytar }));
  const { AwsNamedProfile } = L.core("models/aws/aws-named-profile");
  const { AwsIamRoleChainedSession } = L.core("models/aws/aws-iam-role-chained-session");
  const uuid = L.peerRequire("uuid");

  const profile = new AwsNamedProfile(uuid.v4(), "bench");
  s.repository.addProfile(profile);
  await s.awsIamUserService.create({
    sessionName: "bench-user",
    region: "eu-west-1",
    profileId: profile.id,
    accessKey: "AKIAIOSFODNN7EXAMPLE",
    secretKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    mfaDevice: "arn:aws:iam::111122223333:mfa/bench",
  });
  const user = s.repository.getSessions().find((x) => x.sessionName === "bench-user");
  const chained = [];
  for (let i = 0; i < n; i++) {
    const account = String(100000000000 + i);
    chained.push(
      new AwsIamRoleChainedSession(`bench-role-${i}`, "eu-west-1", `arn:aws:iam::${account}:role/BenchRole${i}`, profile.id, user.sessionId, "assumed-from-leapp"),
    );
  }
  s.repository.updateSessions([...s.repository.getSessions(), ...chained]);
  return chained.map((c) => c.sessionId);
}

function coldLoad(home, aesKey, expected) {
  const { LogService } = L.core("services/log-service");
  const { FileService } = L.core("services/file-service");
  const { WorkspaceConsistencyService } = L.core("services/workspace-consistency-service");
  const { Repository } = L.core("services/repository");
  const logger = { entries: [], log(m, l) { this.entries.push({ m, l }); }, show(m, l) { this.entries.push({ m, l }); } };
  const native = L.nativeService(home, aesKey, L.memoryKeytar());

  const t0 = performance.now();
  const fileService = new FileService(native);
  const consistency = new WorkspaceConsistencyService(fileService, native, new LogService(logger));
  const repository = new Repository(native, fileService, consistency);
  const workspace = repository.getWorkspace();
  const ms = performance.now() - t0;

  if (workspace.sessions.length !== expected) {
    throw new Error(`cold load found ${workspace.sessions.length} sessions, expected ${expected}; leapp-core logged: ${JSON.stringify(logger.entries)}`);
  }
  return ms;
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const ownHome = args.home === undefined;
  const home = ownHome ? fs.mkdtempSync(path.join(os.tmpdir(), "leapp-bench-")) : args.home;
  try {
    // A fixed raw machine id: the bench does not depend on /etc/machine-id.
    const { aesKey } = L.machineIdFor("leapp-core-bench-machine-id");
    const keytar = L.memoryKeytar();
    const ids = await createWorkspace(home, args.n, aesKey, keytar);
    const expected = args.n + 1;

    const cold = [];
    for (let r = 0; r < args.rounds; r++) cold.push(coldLoad(home, aesKey, expected));

    const s = L.sessionServices(L.services(home, { aesKey, keytar }));
    const updates = [];
    let last;
    for (let r = 0; r < args.rounds; r++) {
      const id = ids[(r * 7919) % ids.length];
      const session = s.repository.getSessionById(id);
      const region = session.region === "eu-west-1" ? "eu-central-1" : "eu-west-1";
      const request = {
        sessionName: session.sessionName,
        region,
        roleArn: session.roleArn,
        roleSessionName: session.roleSessionName,
        parentSessionId: session.parentSessionId,
        profileId: session.profileId,
      };
      const t0 = performance.now();
      await s.awsIamRoleChainedService.update(id, request);
      updates.push(performance.now() - t0);
      last = { id, region };
    }

    // The last update reached the file: a fresh leapp-core load sees it.
    const check = L.services(home, { aesKey, keytar: L.memoryKeytar() });
    const seen = check.repository.getSessionById(last.id).region;
    if (seen !== last.region) throw new Error(`update not persisted: ${seen} != ${last.region}`);

    process.stdout.write(
      JSON.stringify({
        n: args.n,
        cold_load_ms: round3(median(cold)),
        update_one_persist_ms: round3(median(updates)),
        rounds: args.rounds,
        leapp_core_version: L.leappCoreVersion(),
      }) + "\n",
    );
  } finally {
    if (ownHome) fs.rmSync(home, { recursive: true, force: true });
  }
}

main().catch((e) => {
  process.stderr.write(`bench.js: ${e && e.stack ? e.stack : e}\n`);
  process.exit(1);
});
