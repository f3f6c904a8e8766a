#!/usr/bin/env node
// write-workspace.js DIR [--machine-id RAW]
//
// Writes, through leapp-core (npm @noovolari/leapp-core, found in
// $SESSION_PEERS_LEAPP_CORE), a small Leapp workspace under DIR as HOME:
// DIR/.Leapp/Leapp-lock.json (encrypted by leapp-core) with one session of
// every type leapp-core can create without a cloud:
//   awsIamUser          AwsIamUserService.create (keys into the in-memory keytar)
//   awsIamRoleChained   AwsIamRoleChainedService.create, parent = the IAM user
//   awsIamRoleFederated IdpUrlsService.createIdpUrl + AwsIamRoleFederatedService.create
//   awsSsoRole          Repository.addAwsSsoIntegration + AwsSsoRoleService.create
//   azure               Repository.addAzureIntegration + AzureSessionService.create
// (The integration services' createIntegration are not used: Azure's runs
// `az --version` first; the repository call is the one they make after.)
//
// Prints one JSON line: the machine id used and what was written:
// {"leapp_core_version","raw_machine_id","aes_key","workspace","backup",
//  "workspace_version","sessions":[{"type","sessionId","sessionName"}],
//  "not_written":[{"type","reason"}], "keychain":[{"service","account","password"}],
//  "leapp_view":{"sessions","aws_sso_integrations","azure_integrations","profiles",
//                "idp_urls","default_region","default_location"}}
// leapp_view is what leapp-core holds after loading the file again.
// aes_key is the passphrase (sha256 hex of raw_machine_id, as
// node-machine-id's machineIdSync() returns it). Without --machine-id the
// raw id is this machine's, from node-machine-id.
"use strict";

const fs = require("fs");
const path = require("path");
const L = require("./leapp.js");

function usage(msg) {
  if (msg) process.stderr.write(`write-workspace.js: ${msg}\n`);
  process.stderr.write("usage: write-workspace.js DIR [--machine-id RAW]\n");
  process.exit(2);
}

async function main() {
  const argv = process.argv.slice(2);
  let dir;
  let raw;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--machine-id") raw = argv[++i];
    else if (dir === undefined) dir = argv[i];
    else usage(`unexpected argument ${argv[i]}`);
  }
  if (!dir) usage("DIR is required");
  if (raw === "") usage("--machine-id must not be empty");
  fs.mkdirSync(dir, { recursive: true });
  const home = path.resolve(dir);

  const id = L.machineIdFor(raw);
  const s = L.sessionServices(L.services(home, { aesKey: id.aesKey }));
  const profileId = s.repository.getDefaultProfileId();
  const notWritten = [];
  const byName = (name) => s.repository.getSessions().find((x) => x.sessionName === name);

  // awsIamUser
  await s.awsIamUserService.create({
    sessionName: "peer-iam-user",
    region: "eu-west-1",
    profileId,
    accessKey: "AKIAIOSFODNN7EXAMPLE",
    secretKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    mfaDevice: "arn:aws:iam::111122223333:mfa/peer",
  });
  const user = byName("peer-iam-user");

  // awsIamRoleChained, parent = the IAM user
  await s.awsIamRoleChainedService.create({
    sessionName: "peer-role-chained",
    region: "eu-west-1",
    roleArn: "arn:aws:iam::444455556666:role/PeerChained",
    profileId,
    parentSessionId: user.sessionId,
    roleSessionName: "assumed-from-leapp",
  });

  // awsIamRoleFederated, with an IdP URL
  try {
    const { IdpUrlsService } = L.core("services/idp-urls-service");
    const idpUrls = new IdpUrlsService(null, s.repository);
    const idp = idpUrls.createIdpUrl("https://idp.example.com/app/aws/sso/saml");
    await s.awsIamRoleFederatedService.create({
      sessionName: "peer-role-federated",
      region: "eu-west-1",
      idpUrl: idp.id,
      idpArn: "arn:aws:iam::777788889999:saml-provider/PeerIdp",
      roleArn: "arn:aws:iam::777788889999:role/PeerFederated",
      profileId,
    });
  } catch (e) {
    notWritten.push({ type: "awsIamRoleFederated", reason: String(e && e.message) });
  }

  // awsSsoRole, with an AWS SSO integration
  try {
    if (!s.awsSsoRoleService) throw s.ssoError || new Error("AwsSsoRoleService not constructible");
    s.repository.addAwsSsoIntegration("https://d-1234567890.awsapps.com/start", "peer-sso", "eu-west-1", "In-browser");
    const integration = s.repository.listAwsSsoIntegrations().find((x) => x.alias === "peer-sso");
    await s.awsSsoRoleService.create({
      sessionName: "PeerAccount",
      region: "eu-west-1",
      roleArn: "arn:aws:iam::123456789012/AdministratorAccess",
      profileId,
      awsSsoConfigurationId: integration.id,
      email: "ops@example.com",
    });
  } catch (e) {
    notWritten.push({ type: "awsSsoRole", reason: String(e && e.message) });
  }

  // azure, with an Azure integration
  try {
    if (!s.azureSessionService) throw s.azureError || new Error("AzureSessionService not constructible");
    s.repository.addAzureIntegration("peer-azure", "00000000-0000-0000-0000-0000000000aa", "westeurope");
    const integration = s.repository.listAzureIntegrations().find((x) => x.alias === "peer-azure");
    await s.azureSessionService.create({
      sessionName: "peer-azure-subscription",
      region: "westeurope",
      subscriptionId: "00000000-0000-0000-0000-0000000000bb",
      tenantId: integration.tenantId,
      azureIntegrationId: integration.id,
    });
  } catch (e) {
    notWritten.push({ type: "azure", reason: String(e && e.message) });
  }

  // Read back with a fresh leapp-core load (as Leapp does on start: this also
  // writes the backup file).
  const check = L.services(home, { aesKey: id.aesKey });
  const sessions = check.repository.getSessions().map((x) => ({ type: x.type, sessionId: x.sessionId, sessionName: x.sessionName }));
  const workspace = L.workspacePath(home);
  const backup = path.join(home, L.core("models/constants").constants.lockFileBackupPath);

  process.stdout.write(
    JSON.stringify({
      leapp_core_version: L.leappCoreVersion(),
      raw_machine_id: id.raw,
      aes_key: id.aesKey,
      workspace,
      backup: fs.existsSync(backup) ? backup : null,
      workspace_version: check.repository.getWorkspace()._workspaceVersion,
      sessions,
      not_written: notWritten,
      // What leapp-core itself holds after loading the file: the oracle an
      // importer's reading is compared with, field by field.
      leapp_view: {
        sessions: check.repository.getSessions().map(plain),
        aws_sso_integrations: check.repository.listAwsSsoIntegrations().map(plain),
        azure_integrations: check.repository.listAzureIntegrations().map(plain),
        profiles: check.repository.getProfiles().map(plain),
        idp_urls: check.repository.getIdpUrls().map(plain),
        default_region: check.repository.getDefaultRegion(),
        default_location: check.repository.getDefaultLocation(),
      },
      keychain: [...s.keytar.items.entries()].map(([k, v]) => ({ service: k.split("\u0000")[0], account: v.account, password: v.password })),
    }) + "\n",
  );
}

// An object's own enumerable fields, as JSON has them.
function plain(x) {
  return JSON.parse(JSON.stringify(x));
}

main().catch((e) => {
  process.stderr.write(`write-workspace.js: ${e && e.stack ? e.stack : e}\n`);
  process.exit(1);
});
