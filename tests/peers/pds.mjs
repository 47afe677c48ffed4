// A real Bluesky PDS (+ an in-memory PLC directory) for stormer's tests.
//
//   PDS_MODULES=.peers/pds TMPDIR=/some/dir node22 tests/peers/pds.mjs PDS_PORT PLC_PORT [--rate-limits]
//
// @atproto/dev-env starts the PDS with its rate limits off; `--rate-limits` turns them on
// (`rateLimitsEnabled`, what PDS_RATE_LIMITS_ENABLED sets on a production PDS — dev-env passes
// its own config and never reads that variable): the PDS's own limits, in memory, e.g.
// createSession 30 per 5 minutes per account and IP.
//
// Prints one JSON line {"pds": url, "plc": url} on stdout once both listen, and closes both on
// SIGTERM or SIGINT. The PDS keeps its SQLite files and blobs under os.tmpdir() and never
// deletes them: the caller sets TMPDIR to a folder of its own and removes it afterwards.
//
// This file lives in the repository and the packages in .peers/pds (installed by `make peers`),
// so @atproto/dev-env is resolved from PDS_MODULES rather than from this file's location.
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const CLOSE_TIMEOUT_MS = 10_000;

const [pdsPort, plcPort] = process.argv.slice(2, 4).map(Number);
const flags = process.argv.slice(4);
const rateLimits = flags.includes('--rate-limits');
if (!pdsPort || !plcPort || !process.env.PDS_MODULES
    || flags.some((flag) => flag !== '--rate-limits')) {
  console.error('usage: PDS_MODULES=DIR node pds.mjs PDS_PORT PLC_PORT [--rate-limits]');
  process.exit(2);
}

const require = createRequire(path.resolve(process.env.PDS_MODULES, 'package.json'));
const { TestNetworkNoAppView } = await import(
  pathToFileURL(require.resolve('@atproto/dev-env')).href
);

const net = await TestNetworkNoAppView.create({
  plc: { port: plcPort },
  pds: {
    port: pdsPort,
    hostname: 'localhost',
    rateLimitsEnabled: rateLimits,
    // Sessions carry the account's DID document (PDS_ENABLE_DID_DOC_WITH_SESSION; off by
    // default, on in dev-env's own `bin.js`), as bsky.social's do: clients read the PDS from it
    // (https://docs.bsky.app/docs/advanced-guides/entryway). Its #atproto_pds endpoint is this
    // PDS's public URL, registered in the PLC directory when an account is created.
    enableDidDocWithSession: true,
  },
});

let closing = false;
const close = async (signal) => {
  if (closing) return;
  closing = true;
  // A stuck close must not leave the test session waiting on us forever.
  setTimeout(() => {
    console.error(`pds.mjs: close() took over ${CLOSE_TIMEOUT_MS} ms after ${signal}; exiting`);
    process.exit(1);
  }, CLOSE_TIMEOUT_MS).unref();
  try {
    await net.close();
    process.exit(0);
  } catch (err) {
    console.error('pds.mjs: close failed:', err);
    process.exit(1);
  }
};
process.on('SIGTERM', () => close('SIGTERM'));
process.on('SIGINT', () => close('SIGINT'));

process.stdout.write(JSON.stringify({ pds: net.pds.url, plc: net.plc.url }) + '\n');
