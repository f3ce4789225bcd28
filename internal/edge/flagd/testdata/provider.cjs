// Evaluates abmesh tests through OpenFeature's JavaScript SDK and flagd
// provider in RPC mode, with no abmesh code, for TestJavaScriptProvider:
// one JSON object per line on stdout. Environment: ABMESH_HOST,
// ABMESH_PORT, ABMESH_UNITS; NODE_PATH finds the npm packages.
'use strict';
const { OpenFeature, ProviderEvents } = require('@openfeature/server-sdk');
const { FlagdProvider } = require('@openfeature/flagd-provider');

const out = (o) => process.stdout.write(JSON.stringify(o) + '\n');
const pick = (d) => ({ value: d.value, variant: d.variant, reason: d.reason, errorCode: d.errorCode });

async function main() {
  const client = OpenFeature.getClient();
  let changed;
  const winnerGone = new Promise((resolve) => { changed = resolve; });
  OpenFeature.addHandler(ProviderEvents.ConfigurationChanged, (d) => {
    out({ event: 'changed', flags: d.flagsChanged });
    if ((d.flagsChanged || []).includes('winner-test')) changed();
  });
  // The default cache (lru) is on: STATIC answers are cached by key.
  await OpenFeature.setProviderAndWait(new FlagdProvider({
    resolverType: 'rpc', host: process.env.ABMESH_HOST, port: Number(process.env.ABMESH_PORT), tls: false,
  }));
  out({ event: 'ready' });
  const countries = ['de', 'us', 'fr'];
  for (let i = 0; i < Number(process.env.ABMESH_UNITS); i++) {
    const ctx = { targetingKey: `u-${i}`, country: countries[i % 3], tier: i % 5, beta: i % 2 === 0 };
    out({
      unit: ctx.targetingKey,
      checkout: pick(await client.getStringDetails('checkout', 'default', ctx)),
      banner: pick(await client.getBooleanDetails('banner', false, ctx)),
      pricing: pick(await client.getStringDetails('pricing', 'default', ctx)),
    });
  }
  const one = { targetingKey: 'u-1' };
  out({ case: 'winner', ...pick(await client.getStringDetails('winner-test', 'default', one)) });
  out({ case: 'winner again', ...pick(await client.getStringDetails('winner-test', 'default', one)) });
  out({ case: 'unknown', ...pick(await client.getStringDetails('no-such-test', 'default', one)) });
  out({ case: 'number', ...pick(await client.getNumberDetails('checkout', 7, one)) });
  out({ case: 'boolean of checkout', ...pick(await client.getBooleanDetails('checkout', true, one)) });
  out({ case: 'no targetingKey', ...pick(await client.getStringDetails('checkout', 'default', {})) });
  out({ event: 'evaluated' });
  await winnerGone;
  out({ case: 'winner deleted', ...pick(await client.getStringDetails('winner-test', 'default', one)) });
  await OpenFeature.close();
}

main().then(() => process.exit(0), (err) => { out({ event: 'failed', error: String(err) }); process.exit(1); });
