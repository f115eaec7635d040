// Drives @azure/arm-containerinstance with an @azure/identity credential against a skiff
// host: `node aci.js OP 'JSON args'` prints one JSON line, {"ok":true,"result":...} or
// {"ok":false,"error":{name,statusCode,code,message}}.
// Environment: SKIFF_URL (https://localhost:PORT), SKIFF_TENANT, SKIFF_APP_ID, SKIFF_SECRET (or
// SKIFF_CERT_FILE, a PEM with key and certificate, for a ClientCertificateCredential), SKIFF_SUB,
// NODE_EXTRA_CA_CERTS (the skiff CA), NODE_PATH (where the npm packages are).
"use strict";
const { ClientCertificateCredential, ClientSecretCredential } = require("@azure/identity");
const { ContainerInstanceManagementClient } = require("@azure/arm-containerinstance");
const { session } = require("./ws");

const env = process.env;
const url = env.SKIFF_URL;
const credOptions = { authorityHost: url, disableInstanceDiscovery: true };
const credential = env.SKIFF_CERT_FILE
  ? new ClientCertificateCredential(env.SKIFF_TENANT, env.SKIFF_APP_ID, { certificatePath: env.SKIFF_CERT_FILE },
                                    credOptions)
  : new ClientSecretCredential(env.SKIFF_TENANT, env.SKIFF_APP_ID, env.SKIFF_SECRET, credOptions);
const client = new ContainerInstanceManagementClient(credential, env.SKIFF_SUB, { endpoint: url });

async function all(iter) {
  const out = [];
  for await (const x of iter) out.push(x);
  return out;
}

const ops = {
  async create(a) {
    const container = {
      name: a.container || a.name,
      image: a.image,
      resources: { requests: { cpu: a.cpu || 1, memoryInGB: a.memoryInGB || 0.5 } },
    };
    if (a.command) container.command = a.command;
    if (a.env) container.environmentVariables = a.env;
    const group = { location: a.location || "local", osType: "Linux", containers: [container],
                    restartPolicy: a.restartPolicy || "Always" };
    if (a.tags) group.tags = a.tags;
    return client.containerGroups.beginCreateOrUpdateAndWait(a.rg, a.name, group, { updateIntervalInMs: 500 });
  },
  get: (a) => client.containerGroups.get(a.rg, a.name),
  list: () => all(client.containerGroups.list()),
  listByResourceGroup: (a) => all(client.containerGroups.listByResourceGroup(a.rg)),
  update: (a) => client.containerGroups.update(a.rg, a.name, { tags: a.tags }),
  start: (a) => client.containerGroups.beginStartAndWait(a.rg, a.name, { updateIntervalInMs: 500 }),
  stop: (a) => client.containerGroups.stop(a.rg, a.name),
  restart: (a) => client.containerGroups.beginRestartAndWait(a.rg, a.name, { updateIntervalInMs: 500 }),
  logs: (a) => client.containers.listLogs(a.rg, a.name, a.container, a.tail !== undefined ? { tail: a.tail } : {}),
  async exec(a) {
    const r = await client.containers.executeCommand(a.rg, a.name, a.container,
      { command: a.command, terminalSize: { rows: 24, cols: 80 } });
    const s = await session(r.webSocketUri, r.password, { input: a.input, ms: a.ms || 30000 });
    // a password is single use: a second connection with it must not run anything
    const again = a.reuse ? await session(r.webSocketUri, r.password, { ms: 5000 }) : null;
    return { webSocketUri: r.webSocketUri, passwordLength: (r.password || "").length, session: s, again };
  },
  async attach(a) {
    const r = await client.containers.attach(a.rg, a.name, a.container);
    const s = await session(r.webSocketUri, r.password, { ms: a.ms || 5000 });
    return { webSocketUri: r.webSocketUri, passwordLength: (r.password || "").length, session: s };
  },
  delete: (a) => client.containerGroups.beginDeleteAndWait(a.rg, a.name, { updateIntervalInMs: 500 }),
  async token() {
    const t = await credential.getToken(`${url}/.default`);
    return { token: t.token, expiresOnTimestamp: t.expiresOnTimestamp };
  },
};

async function main() {
  const [op, arg] = process.argv.slice(2);
  if (!ops[op]) throw new Error(`unknown op ${op}`);
  const result = await ops[op](arg ? JSON.parse(arg) : {});
  process.stdout.write(JSON.stringify({ ok: true, result: result === undefined ? null : result }) + "\n");
}

main().catch((e) => {
  process.stdout.write(JSON.stringify({ ok: false, error: { name: e.name, statusCode: e.statusCode,
    code: e.code, message: String(e.message || e).slice(0, 2000) } }) + "\n");
});
