// Builds Leapp's own services (npm @noovolari/leapp-core) over a given HOME
// folder, the way the Leapp CLI / desktop app wires them, with Node
// implementations of leapp-core's INativeService.
//
// leapp-core is found in $SESSION_PEERS_LEAPP_CORE (the node_modules folder
// that ./scripts/test installs from scripts/peers/leapp-core/package.json).
//
// Shims (all in nativeService below):
// - os.homedir() returns the given folder, so nothing touches the real
//   ~/.Leapp or ~/.aws;
// - machineId is the AES passphrase leapp-core's FileService uses: by default
//   node-machine-id's machineIdSync() (what the Leapp CLI passes), or
//   sha256(raw) of an explicit raw id (node-machine-id's hashing), so a test
//   can fix the key without /etc/machine-id;
// - keytar is an in-memory fake (the real keytar needs libsecret and a
//   D-Bus session; leapp-core only calls setPassword/getPassword/
//   deletePassword/findCredentials);
// - fs is Node's fs plus fs-extra's removeSync (FileService.removeFileSync);
// - the members leapp-core uses only to start sessions, talk to Azure or
//   plugins (exec, sudo, nodeIpc, tar, fetch, ...) throw when touched.
"use strict";

const crypto = require("crypto");
const fs = require("fs");
const os = require("os");
const path = require("path");
const url = require("url");

const ENV = "SESSION_PEERS_LEAPP_CORE";

function nodeModules() {
  const nm = process.env[ENV];
  if (!nm) {
    throw new Error(`$${ENV} is not set (run ./scripts/test, which installs the leapp-core peer)`);
  }
  if (!fs.existsSync(path.join(nm, "@noovolari", "leapp-core", "package.json"))) {
    throw new Error(`$${ENV} = ${nm} has no @noovolari/leapp-core`);
  }
  return nm;
}

/** require() of a module inside the peer's node_modules. */
function peerRequire(name) {
  return require(path.join(nodeModules(), name));
}

/** A file of leapp-core's dist/ folder, e.g. "services/repository". */
function core(file) {
  return peerRequire(`@noovolari/leapp-core/dist/${file}`);
}

function leappCoreVersion() {
  return peerRequire("@noovolari/leapp-core/package.json").version;
}

/**
 * The machine id leapp-core would use as its AES passphrase.
 * `raw` given: sha256 hex of it (what node-machine-id's machineIdSync()
 * returns for that raw id). Otherwise node-machine-id itself.
 */
function machineIdFor(raw) {
  if (raw !== undefined && raw !== null) {
    return { raw, aesKey: crypto.createHash("sha256").update(raw).digest("hex") };
  }
  const nmid = peerRequire("node-machine-id");
  return { raw: nmid.machineIdSync(true), aesKey: nmid.machineIdSync() };
}

/** keytar's API over a Map (service, account) -> password. */
function memoryKeytar() {
  const items = new Map();
  const key = (s, a) => `${s}\u0000${a}`;
  return {
    items,
    async setPassword(service, account, password) {
      items.set(key(service, account), { account, password });
    },
    async getPassword(service, account) {
      const it = items.get(key(service, account));
      return it === undefined ? null : it.password;
    },
    async deletePassword(service, account) {
      return items.delete(key(service, account));
    },
    async findCredentials(service) {
      const prefix = `${service}\u0000`;
      return [...items.entries()]
        .filter(([k]) => k.startsWith(prefix))
        .map(([, v]) => ({ account: v.account, password: v.password }));
    },
  };
}

function unavailable(native, names) {
  for (const name of names) {
    Object.defineProperty(native, name, {
      enumerable: true,
      get() {
        throw new Error(`leapp-core peer: nativeService.${name} is not provided by this shim`);
      },
    });
  }
}

/** An INativeService for leapp-core over `home`. */
function nativeService(home, aesKey, keytar) {
  const native = {
    fs: { ...fs, removeSync: (p) => fs.rmSync(p, { recursive: true, force: true }) },
    os: { ...os, homedir: () => home },
    path,
    url,
    crypto,
    process,
    machineId: aesKey,
    keytar,
  };
  unavailable(native, [
    "rimraf", "ini", "exec", "unzip", "copydir", "sudo", "semver", "followRedirects",
    "httpProxyAgent", "httpsProxyAgent", "nodeIpc", "msalEncryptionService", "hashElement",
    "requireModule", "fixPath", "tar", "fetch",
  ]);
  return native;
}

const quietLogger = {
  entries: [],
  log(message, level) {
    this.entries.push({ message, level });
  },
  show(message, level) {
    this.entries.push({ message, level, shown: true });
  },
};

/**
 * leapp-core's services over `home`, wired as in Leapp.
 * opts: { aesKey, keytar, logger }
 * Constructing the Repository loads the workspace (creating an empty one if
 * there is none), which is what Leapp does on start.
 */
function services(home, opts = {}) {
  const aesKey = opts.aesKey || machineIdFor(opts.rawMachineId).aesKey;
  const keytar = opts.keytar || memoryKeytar();
  const logger = opts.logger || quietLogger;
  const native = nativeService(home, aesKey, keytar);

  const { LogService } = core("services/log-service");
  const { FileService } = core("services/file-service");
  const { WorkspaceConsistencyService } = core("services/workspace-consistency-service");
  const { Repository } = core("services/repository");
  const { KeychainService } = core("services/keychain-service");
  const { AwsCoreService } = core("services/aws-core-service");
  const { BehaviouralSubjectService } = core("services/behavioural-subject-service");

  const logService = new LogService(logger);
  const fileService = new FileService(native);
  const consistency = new WorkspaceConsistencyService(fileService, native, logService);
  const repository = new Repository(native, fileService, consistency);
  repository.getWorkspace();
  const notifier = new BehaviouralSubjectService(repository);
  const keychainService = new KeychainService(native);
  const awsCoreService = new AwsCoreService(native, logService);

  return { native, aesKey, keytar, logger, logService, fileService, consistency, repository, notifier, keychainService, awsCoreService };
}

/** Adds leapp-core's session services (lazily required) to `s`. */
function sessionServices(s) {
  const { AwsIamUserService } = core("services/session/aws/aws-iam-user-service");
  const { AwsIamRoleFederatedService } = core("services/session/aws/aws-iam-role-federated-service");
  const { AwsIamRoleChainedService } = core("services/session/aws/aws-iam-role-chained-service");
  const { AwsParentSessionFactory } = core("services/session/aws/aws-parent-session.factory");
  const noMfa = { promptForMFACode: () => { throw new Error("no MFA prompter in the leapp-core peer"); } };

  s.awsIamUserService = new AwsIamUserService(s.notifier, s.repository, noMfa, noMfa, s.keychainService, s.fileService, s.awsCoreService);
  s.awsIamRoleFederatedService = new AwsIamRoleFederatedService(s.notifier, s.repository, s.fileService, s.awsCoreService, null, 3600);
  let sso = null;
  try {
    const { AwsSsoOidcService } = core("services/aws-sso-oidc.service");
    const { AwsSsoRoleService } = core("services/session/aws/aws-sso-role-service");
    const oidc = new AwsSsoOidcService(null, s.repository, true);
    sso = new AwsSsoRoleService(s.notifier, s.repository, s.fileService, s.keychainService, s.awsCoreService, s.native, oidc);
  } catch (e) {
    s.ssoError = e;
  }
  s.awsSsoRoleService = sso;
  const parents = new AwsParentSessionFactory(s.awsIamUserService, s.awsIamRoleFederatedService, sso);
  s.awsIamRoleChainedService = new AwsIamRoleChainedService(s.notifier, s.repository, s.awsCoreService, s.fileService, s.awsIamUserService, parents);
  try {
    const { AzureSessionService } = core("services/session/azure/azure-session-service");
    s.azureSessionService = new AzureSessionService(s.notifier, s.repository, s.fileService, null, path.join(s.native.os.homedir(), ".azure", "msal_token_cache.json"), s.native, null, s.logService);
  } catch (e) {
    s.azureError = e;
  }
  return s;
}

function workspacePath(home) {
  return path.join(home, core("models/constants").constants.lockFileDestination);
}

module.exports = { ENV, core, peerRequire, leappCoreVersion, machineIdFor, memoryKeytar, nativeService, services, sessionServices, workspacePath };
