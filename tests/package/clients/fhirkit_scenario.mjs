// An EHR integration's scenario against the MedLedger FHIR gateway, driven by fhir-kit-client
// (npm, Vermonster's FHIR R4 client), for tests/package/test_gateway_clients.py.
//
//   node fhirkit_scenario.mjs BASE_URL PATIENT < transaction-bundle.json
//
// The bearer token comes in the environment (MEDLEDGER_TOKEN), never on the command line. Steps:
// POST the transaction Bundle read from stdin, search Observations of PATIENT two at a time
// following `next` with the library's nextPage, read, vread and history of the first one,
// Patient/PATIENT/$everything, and a read of a record that does not exist. Prints one JSON
// object: {steps: [{step, status, body}]}; a failed step is recorded with the status and body
// the library's error carries (a step that fails without a response stops the scenario).
import { Client } from 'fhir-kit-client';

const [baseUrl, patient] = process.argv.slice(2);
const token = process.env.MEDLEDGER_TOKEN;
if (!baseUrl || !patient || !token) {
  console.error('usage: MEDLEDGER_TOKEN=... node fhirkit_scenario.mjs BASE_URL PATIENT < bundle');
  process.exit(2);
}

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const bundle = JSON.parse(Buffer.concat(chunks).toString('utf8'));

const client = new Client({ baseUrl, bearerToken: token });
const steps = [];

async function step(name, run) {
  try {
    const body = await run();
    steps.push({ step: name, status: 200, body });
    return body;
  } catch (error) {
    if (!error.response) throw error;
    steps.push({ step: name, status: error.response.status, body: error.response.data });
    return undefined;
  }
}

await step('transaction', () => client.transaction({ body: bundle }));
let page = await step('search', () => client.search({
  resourceType: 'Observation', searchParams: { patient, _count: '2' },
}));
const found = [...(page?.entry ?? [])];
for (;;) {
  const next = page && client.nextPage({ bundle: page });
  if (!next) break;
  page = await step('nextPage', () => next);
  found.push(...(page?.entry ?? []));
}
const id = found[0]?.resource?.id;
await step('read', () => client.read({ resourceType: 'Observation', id }));
await step('vread', () => client.vread({ resourceType: 'Observation', id, version: '1' }));
await step('history', () => client.history({ resourceType: 'Observation', id }));
await step('everything', () => client.operation({
  name: '$everything', resourceType: 'Patient', id: patient, method: 'GET',
}));
await step('read-missing', () => client.read({ resourceType: 'Observation', id: `0x${'ab'.repeat(32)}` }));

process.stdout.write(JSON.stringify({ steps }));
